"""``crosscam demo``: the main job on embedded defaults.

A 3-camera synthetic scene (8 people, 60 s, exact ground truth) runs through the whole system in one
process: camera workers (motion detector + ByteTrack), the batched embedder, the matcher and the HTTP
API, on an embedded Redis. The re-ID model is ``synth_tiny`` trained on synthetic people who are not in
the scene (built once and cached, 2.5-5 minutes on two cores) unless ``--embedder`` names one. It
prints every person's cross-camera history and the multi-camera IDF1 against the ground truth, and
writes ``report.html``. ``--video A --video B`` runs the same on real files (no ground truth, no IDF1)
with the bundled real model (``models.zoo.default_embedder``) unless ``--embedder`` names one. The matcher
links at the model's own calibrated threshold unless ``matcher.threshold`` is set.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import add_scene_options, demo_embedder, history_text
from pipeline.cli.progress import step
from pipeline.cli.stopping import stop_signals
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "demo", parents=[common], help="run the whole system on a synthetic 3-camera scene (or on --video files)"
    )
    p.add_argument("--video", action="append", type=Path, help="a video file; repeat for each camera")
    p.add_argument("--detector", help="YOLO weights for --video runs (default: detector.weights, i.e. motion)")
    add_scene_options(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("crosscam-demo"),
        help="folder for report.html, the per-frame tracks (tracks/<camera>.txt, with --video also <camera>.mp4 drawn "
        "with them) and, for the synthetic scene, its ground truth (truth/<camera>.txt)",
    )
    p.add_argument(
        "--tracks-out", type=Path, help="folder for the per-frame tracks instead of OUT/tracks (MOTChallenge files)"
    )
    p.set_defaults(handler=cmd_demo)


def video_camera_ids(videos: list[Path]) -> list[str]:
    """Camera ids for ``--video`` files: their names without suffix (``cam1.mp4`` -> ``cam1``), characters
    outside ``A-Za-z0-9_.-`` replaced; ``cam0``, ``cam1``, ... when two names would collide."""
    names = [re.sub(r"[^A-Za-z0-9_.-]", "_", v.stem) or "video" for v in videos]
    return names if len(set(names)) == len(names) else [f"cam{i}" for i in range(len(videos))]


def cmd_demo(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from models.embedder import load_embedder
    from pipeline import store
    from pipeline.bus.connect import scratch_redis
    from pipeline.lab.demo import demo_config, run_site, score_against_truth, score_frames, synthetic_site, write_truth
    from pipeline.serve.report import write_report
    from pipeline.site import Site
    from pipeline.tracks.export import write_tracks

    model = demo_embedder(args, config, real=bool(args.video))
    embedder = load_embedder(model, device="cpu", cache_dir=config.cache_dir)
    scene = None
    if args.video:
        missing = [str(v) for v in args.video if not v.is_file()]
        if missing:
            raise UsageError(f"--video: no such file(s): {', '.join(missing)}")
        cameras = {name: str(v) for name, v in zip(video_camera_ids(args.video), args.video, strict=True)}
        detector = args.detector or config.detector.weights
    else:
        scene, cameras = synthetic_site(args.people, args.seconds, args.seed)
        detector = "motion"
    with scratch_redis("crosscam-demo-redis-") as client:
        site = Site(demo_config(config, detector, synthetic=scene is not None), client)
        keys = site.keys
        running = f"running {len(cameras)} cameras, embedder and matcher on an embedded Redis"
        with stop_signals() as stop, step(running):  # a signal stops the cameras; what they made is scored
            run = run_site(site, cameras, embedder, stop=stop)
        videos = dict(zip(cameras, args.video, strict=True)) if args.video else {}
        tracks_dir = args.tracks_out or args.out / "tracks"
        tracks = write_tracks(client, keys, tracks_dir, list(cameras), videos, config.matcher.tentative_seconds)
        metrics, frames = {}, {}
        if scene is not None:
            index = {c: i for i, c in enumerate(cameras)}
            metrics = score_against_truth(client, keys, run, scene, index)
            frames = score_frames(
                write_truth(scene, index, args.out / "truth"), tracks.files[next(iter(cameras))].parent
            )
        persons = store.persons(client, keys, limit=100_000)
        histories = [store.history(client, keys, p.person) for p in sorted(persons, key=lambda p: p.first_seen)]
        title = "crosscam demo: " + (
            "synthetic 3-camera scene" if scene is not None else ", ".join(map(str, args.video))
        )
        report = write_report(
            args.out / "report.html", client, keys, title, metrics | {"model": str(model)}, list(cameras)
        )
    data = {
        "idf1": metrics.get("idf1"),
        "link_threshold": run.link_threshold,
        "identities": len(persons),
        "ground_truth_people": metrics.get("ground_truth_people"),
        "report": str(report.resolve()),
        "cameras": len(cameras),
        "tracklets": sum(r.tracklets for r in run.reports.values()),
        "seconds": round(run.seconds, 1),
        "matcher": run.matcher,
        "persons": [{"person": h.person, "cameras": h.cameras, "sightings": len(h.sightings)} for h in histories],
        "metrics": metrics,
        "per_frame": frames,
        "tracks": tracks.as_dict(),
        "model": str(model),
        "stopped_by": stop.by,
    }
    lines = [history_text(h) for h in histories]
    if scene is not None:
        lines.append(
            f"multi-camera IDF1 {metrics['idf1']:.3f} (IDP {metrics['idp']:.3f}, IDR {metrics['idr']:.3f}): "
            f"{len(persons)} persons found for {metrics['ground_truth_people']} people in the scene; "
            f"{metrics['passages_covered']} of {metrics['passages']} camera passages detected"
        )
        lines.append(
            f"per frame, every camera: IDF1 {frames['idf1']:.3f} (IDP {frames['idp']:.3f}, IDR {frames['idr']:.3f}), "
            f"MOTA {frames['mota']:.3f}, HOTA {frames['hota']:.3f} against the scene's ground truth "
            f"({args.out / 'truth'}; score any run with crosscam eval-tracks)"
        )
    lines.append(f"per-frame tracks: {tracks_dir.resolve()}")
    lines.append(f"linked at threshold {run.link_threshold:g} ({model.name}); report: {report.resolve()}")
    if stop.by:
        lines.append(f"stopped by {stop.by} before the sources ended: the figures are of what ran")
    return Result(data, "\n".join(lines))
