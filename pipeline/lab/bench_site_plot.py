"""The site benchmark's plot (``crosscam bench site --plot``): against the number of cameras, the frames
processed, the p99 latency to queryable and the CPU of each process, with the real-time limits; and the camera
process's resident memory over each run."""

from __future__ import annotations

from pathlib import Path

from pipeline.lab.bench_site import MAX_P99_S, MIN_PROCESSED


def plot_site_bench(result: dict, path: Path) -> None:
    """Processed fraction and p99 latency against N, and CPU against N, as a PNG; the real-time limits dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["results"]
    ns = [r["cameras"] for r in rows]
    fig, (a, b, c, d) = plt.subplots(1, 4, figsize=(16, 3.8), dpi=110)
    a.plot(ns, [100 * r["processed_fraction_min"] for r in rows], "-o", label="worst camera")
    a.axhline(100 * MIN_PROCESSED, ls="--", color="C3", label=f"real time: {MIN_PROCESSED:.0%}")
    a.set(xlabel="cameras", ylabel="frames processed / offered (%)", title="processed")
    a.set_ylim(min(90.0, *(100 * r["processed_fraction_min"] - 2 for r in rows)), 101)
    p99 = [r["latency_close_to_queryable"]["p99_s"] for r in rows]
    b.plot(ns, [float("nan") if v is None else v for v in p99], "-o", label="closing -> queryable")
    p99_end = [r["latency_last_frame_to_queryable"]["p99_s"] for r in rows]
    b.plot(ns, [float("nan") if v is None else v for v in p99_end], "-s", label="last frame -> queryable")
    b.axhline(MAX_P99_S, ls="--", color="C3", label=f"real time: {MAX_P99_S:g} s")
    b.set(xlabel="cameras", ylabel="p99 latency (s)", title="latency", yscale="log")  # from tenths to tens of s
    for key, label in (("camera_process", "camera process"), ("matcher", "matcher"), ("redis", "Redis")):
        c.plot(ns, [r["usage"][key]["cpu"] or 0.0 for r in rows], "-o", label=label)
    c.set(xlabel="cameras", ylabel="CPU (cores busy)", title="CPU")
    for ax in (a, b, c):
        ax.set_xticks(ns)
    for r in rows:
        samples = r["usage"]["camera_process"].get("rss_mb") or []
        d.plot(
            [t / 60 for t, _ in samples],
            [mb for _, mb in samples],
            label=f"{r['cameras']} camera{'s' if r['cameras'] != 1 else ''}",
        )
    d.set(xlabel="minutes into the measured window", ylabel="camera process RSS (MB)", title="memory")
    for ax in (a, b, c, d):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"cameras at {rows[0]['fps']:g} frames/s; largest N in real time: {result['max_cameras_real_time']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
