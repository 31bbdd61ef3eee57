"""``crosscam calibrate``: multi-camera IDF1 at each link threshold on a synthetic scene with ground truth.

The scene runs once through the camera workers and the embedder (the demo's scene unless told otherwise);
each threshold then replays the published tracklets through the matcher's rules in memory. Prints a
table, marks the best threshold and the configured one, and writes a plot and the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.demo import add_scene_options, demo_embedder
from pipeline.cli.progress import step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "calibrate",
        parents=[common],
        help="sweep the matcher's threshold on a synthetic scene with ground truth (multi-camera IDF1)",
    )
    p.add_argument("--thresholds", default="0.30:0.90:0.025", help="start:stop:step, or a comma-separated list")
    add_scene_options(p)
    p.add_argument("--out", type=Path, default=Path("crosscam-calibrate"), help="folder for calibrate.png and .json")
    p.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from pipeline.bus import Keys, scratch_redis
    from pipeline.calibrate import collect, parse_thresholds, plot, sweep
    from pipeline.demo import DEMO_TRACKLETS, run_site, synthetic_site

    try:
        thresholds = parse_thresholds(args.thresholds)
    except ValueError as e:
        raise UsageError(f"--thresholds {args.thresholds!r}: {e} (e.g. 0.3:0.9:0.05 or 0.5,0.6,0.7)") from None
    if not thresholds or not all(-1 <= t <= 1 for t in thresholds):
        raise UsageError(f"--thresholds {args.thresholds!r}: give cosine thresholds between -1 and 1")
    model = demo_embedder(args, config)
    embedder = load_embedder(model, device="cpu", cache_dir=config.cache_dir)
    policy = config.matcher.policy()
    scene, cameras = synthetic_site(args.people, args.seconds, args.seed)
    with scratch_redis("crosscam-calibrate-redis-") as client:
        keys = Keys("calibrate", config.redis.prefix)
        with step(f"running the {len(cameras)}-camera scene through workers and embedder (once)"):
            run = run_site(client, keys, cameras, embedder, "motion", policy, DEMO_TRACKLETS)
        items = collect(client, keys, run.tracklets, scene, {c: i for i, c in enumerate(cameras)})
    if not items:
        raise UsageError("the scene produced no tracklets to calibrate on; try more --seconds or --people")
    with step(f"replaying {len(items)} tracklets at {len(thresholds)} thresholds"):
        rows = sweep(items, policy, thresholds)
    best = max(rows, key=lambda r: (r["idf1"], -abs(r["threshold"] - policy.threshold)))
    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / "calibrate.png", args.out / "calibrate.json"
    plot(rows, policy.threshold, png)
    data = {
        "best": best,
        "configured_threshold": policy.threshold,
        "rows": rows,
        "tracklets": len(items),
        "ground_truth_people": len({x.truth for x in items if x.truth is not None}),
        "model": str(model),
        "plot": str(png.resolve()),
    }
    js.write_text(json.dumps(data, indent=2))
    lines = ["threshold   IDF1    IDP    IDR  identities"]
    for r in rows:
        mark = " <- best" if r is best else ""
        mark += " (configured)" if abs(r["threshold"] - policy.threshold) < 1e-9 else ""
        lines.append(
            f"{r['threshold']:>9.3f} {r['idf1']:.3f}  {r['idp']:.3f}  {r['idr']:.3f}  {r['identities']:>10}{mark}"
        )
    lines.append(
        f"best: threshold {best['threshold']:g} (IDF1 {best['idf1']:.3f}) over {len(items)} tracklets of "
        f"{data['ground_truth_people']} people; set it with `--set matcher.threshold={best['threshold']:g}` "
        f"or `matcher: {{threshold: {best['threshold']:g}}}` in the site config. Plot: {png.resolve()}"
    )
    return Result(data, "\n".join(lines))
