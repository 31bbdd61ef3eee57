"""``crosscam synth dataset`` and ``crosscam synth scene``: synthetic data sets and scenes in real on-disk layouts."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.common import add_scene_spec_options, scene_spec
from pipeline.cli.progress import console
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:

    synth = verbs.add_parser("synth", help="synthetic people, scenes and data sets with exact ground truth")
    sub = synth.add_subparsers(title="synth commands", metavar="COMMAND")
    p = sub.add_parser("dataset", parents=[common], help="write a data set in the MARS / PRID-2011 / iLIDS-VID layout")
    p.add_argument("--layout", required=True, choices=("mars", "prid2011", "ilidsvid"))
    p.add_argument("--root", required=True, type=Path, help="output folder (created; must be empty if it exists)")
    p.add_argument("--ids", type=int, default=60, help="number of identities")
    p.add_argument("--seed", type=int, default=0, help="world seed: the same seed gives the same data set")
    p.set_defaults(handler=cmd_dataset)

    p = sub.add_parser(
        "scene",
        parents=[common],
        help="write a synthetic scene: a video per camera and MOTChallenge ground truth",
        description="Writes OUT/cam<i>.mp4, OUT/gt/cam<i>.txt (MOTChallenge: frame,id,left,top,width,height,1,1,"
        "visibility; frames from 1, global person ids) and OUT/scene.json (overlaps, transit windows). The options "
        "are the synth:// URL's parameters; the videos play in `crosscam demo --video OUT/cam0.mp4 --video ...`.",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder (created; must be empty if it exists)")
    add_scene_spec_options(p)
    p.set_defaults(handler=cmd_scene)


def cmd_dataset(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from rich.progress import Progress

    from synth.datasets import LAYOUTS

    if args.ids < 4:
        raise UsageError(f"--ids {args.ids}: need at least 4 identities (half train, half test)")
    if args.root.exists() and (not args.root.is_dir() or any(args.root.iterdir())):
        raise UsageError(f"--root {args.root}: exists and is not an empty folder; choose a new folder")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"rendering {args.layout} tracklets", total=None)
        info = LAYOUTS[args.layout](
            args.root,
            ids=args.ids,
            seed=args.seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    return Result(info, f"wrote a synthetic {args.layout} data set of {args.ids} identities to {args.root}")


def cmd_scene(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from rich.progress import Progress

    from synth.files import write_scene
    from synth.scene import Scene

    spec = scene_spec(args, "crosscam synth scene options")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UsageError(f"--out {args.out}: exists and is not an empty folder; choose a new folder")
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"rendering {spec.cameras} cameras", total=None)
        info = write_scene(
            args.out, Scene(spec), progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    return Result(
        info,
        f"wrote {spec.cameras} videos of {info['frames']} frames and their ground truth ({info['truth_rows']} rows, "
        f"{info['people']} people) to {args.out}",
    )
