"""``crosscam data inspect``: what a data set folder holds, and what is missing from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result
from pipeline.cli.progress import step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    data = verbs.add_parser("data", help="inspect training and evaluation data sets")
    sub = data.add_subparsers(title="data commands", metavar="COMMAND")
    p = sub.add_parser(
        "inspect",
        parents=[common],
        help="tracklet, identity, query and gallery counts and missing images, to check a download",
    )
    p.add_argument("--dataset", required=True, choices=("mars", "prid2011", "ilidsvid"))
    p.add_argument("--data-root", required=True, type=Path, help="the data set's root folder")
    p.add_argument("--split", type=int, default=0, help="which train/test split (PRID-2011, iLIDS-VID)")
    p.add_argument("--splits", type=Path, help="PRID-2011 splits file (default: DATA_ROOT/splits_prid2011.json)")
    p.set_defaults(handler=cmd_inspect)


def cmd_inspect(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from trainer.data.index import count_missing
    from trainer.data.registry import load_dataset, split_count

    with step(f"reading the {args.dataset} index under {args.data_root}"):
        index = load_dataset(args.dataset, args.data_root, split=args.split, splits=args.splits)
        splits = split_count(args.dataset, args.data_root, args.splits)
    tracklets = index.train + index.query + index.gallery
    with step("checking that every image file exists"):
        missing, total = count_missing(p for t in tracklets for p in t.paths)
    summary = index.summary()
    data = {
        **summary,
        "root": str(args.data_root),
        "split": args.split,
        "splits": splits,
        "test_tracklets": len(index.query) + len(index.gallery),
        "images": total,
        "missing_images": missing,
        "empty_tracklets": sum(1 for t in tracklets if not t.paths),
    }
    rows = [f"{args.dataset} at {args.data_root} (split {args.split} of {splits})"]
    for part in ("train", "query", "gallery"):
        s = summary[part]
        rows.append(
            f"  {part:<8} {s['tracklets']:>6} tracklets  {s['identities']:>5} identities  "
            f"{s['images']:>8} images  {s['cameras']} cameras"
        )
    rows.append(f"  missing images: {missing} of {total}" + ("  (images not downloaded?)" if missing == total else ""))
    if data["empty_tracklets"]:
        rows.append(f"  sequence folders missing or empty: {data['empty_tracklets']}")
    return Result(data, "\n".join(rows))
