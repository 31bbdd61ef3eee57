"""``crosscam calibrate``: multi-camera IDF1 at each link threshold on a synthetic scene with ground truth.

The scene runs once through the camera workers and the embedder (the demo's scene unless told otherwise);
each threshold then replays the published tracklets through the matcher's rules in memory. Prints a
table, marks the best threshold and the configured one, and writes a plot and the figures as JSON.
``--seeds 2-8`` runs several scenes and averages their figures per threshold: one scene's best threshold
fits that scene.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.demo import add_scene_options, demo_embedder, demo_policy
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
    p.add_argument("--seeds", help="several scenes, averaged: '2-8' or '2,3,5' (instead of --seed)")
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
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    model = demo_embedder(args, config)
    embedder = load_embedder(model, device="cpu", cache_dir=config.cache_dir)
    policy = demo_policy(args, config)
    scenes, people, tracklets = [], 0, 0
    for seed in seeds:
        scene, cameras = synthetic_site(args.people, args.seconds, seed)
        with scratch_redis("crosscam-calibrate-redis-") as client:
            keys = Keys("calibrate", config.redis.prefix)
            with step(f"running the {len(cameras)}-camera scene (seed {seed}) through workers and embedder (once)"):
                run = run_site(client, keys, cameras, embedder, "motion", policy, DEMO_TRACKLETS)
            items = collect(client, keys, run.tracklets, scene, {c: i for i, c in enumerate(cameras)})
        if not items:
            raise UsageError(f"scene {seed} produced no tracklets to calibrate on; try more --seconds or --people")
        with step(f"replaying {len(items)} tracklets at {len(thresholds)} thresholds"):
            scenes.append({"seed": seed, "tracklets": len(items), "rows": sweep(items, policy, thresholds)})
        people += len({x.truth for x in items if x.truth is not None})
        tracklets += len(items)
    rows = scenes[0]["rows"] if len(scenes) == 1 else average(scenes)
    best = max(rows, key=lambda r: (r["idf1"], -abs(r["threshold"] - policy.threshold)))
    args.out.mkdir(parents=True, exist_ok=True)
    png, js = args.out / "calibrate.png", args.out / "calibrate.json"
    plot(rows, policy.threshold, png)
    data = {
        "best": best,
        "configured_threshold": policy.threshold,
        "rows": rows,
        "scenes": [{"seed": sc["seed"], "tracklets": sc["tracklets"]} | best_of(sc["rows"]) for sc in scenes],
        "tracklets": tracklets,
        "ground_truth_people": people,  # over every scene
        "model": str(model),
        "plot": str(png.resolve()),
    }
    js.write_text(json.dumps(data, indent=2))
    lines = ["threshold   IDF1    IDP    IDR  identities"]
    for r in rows:
        mark = " <- best" if r is best else ""
        mark += " (configured)" if abs(r["threshold"] - policy.threshold) < 1e-9 else ""
        lines.append(
            f"{r['threshold']:>9.3f} {r['idf1']:.3f}  {r['idp']:.3f}  {r['idr']:.3f}  {r['identities']:>10g}{mark}"
        )
    lines.append(
        f"best: threshold {best['threshold']:g} (IDF1 {best['idf1']:.3f}) over {tracklets} tracklets of "
        f"{people} people"
        + (f" in {len(scenes)} scenes (mean)" if len(scenes) > 1 else "")
        + f"; set it with `--set matcher.threshold={best['threshold']:g}` "
        f"or `matcher: {{threshold: {best['threshold']:g}}}` in the site config. Plot: {png.resolve()}"
    )
    return Result(data, "\n".join(lines))


def parse_seeds(text: str) -> list[int]:
    """``"2-8"`` or ``"2,3,5"`` (or both: ``"1,4-6"``)."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            lo, dash, hi = part.partition("-")
            first, last = int(lo), int(hi) if dash else int(lo)
            if last < first:
                raise ValueError
            seeds += range(first, last + 1)
    except ValueError:
        raise UsageError(f"--seeds {text!r}: give scene seeds as 2-8 or 2,3,5") from None
    if not seeds:
        raise UsageError(f"--seeds {text!r}: give scene seeds as 2-8 or 2,3,5")
    return seeds


def average(scenes: list[dict]) -> list[dict]:
    """Per threshold, the mean of every scene's IDF1, IDP, IDR and number of identities."""
    out = []
    for i, first in enumerate(scenes[0]["rows"]):
        rows = [sc["rows"][i] for sc in scenes]
        out.append(
            {"threshold": first["threshold"]}
            | {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in ("idf1", "idp", "idr")}
            | {"identities": round(sum(r["identities"] for r in rows) / len(rows), 1)}
            | {"per_scene": [r["idf1"] for r in rows]}
        )
    return out


def best_of(rows: list[dict]) -> dict:
    best = max(rows, key=lambda r: r["idf1"])
    return {"best_threshold": best["threshold"], "best_idf1": best["idf1"]}
