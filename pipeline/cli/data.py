"""``crosscam data inspect``: what a data set folder holds, and what is missing from it."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result
from pipeline.cli.progress import step
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from trainer.data.registry import DATASETS

    data = verbs.add_parser("data", help="inspect training and evaluation data sets")
    sub = data.add_subparsers(title="data commands", metavar="COMMAND")
    p = sub.add_parser(
        "inspect",
        parents=[common],
        help="tracklet, identity, query and gallery counts and missing images, to check a download",
        description="Count what a data set folder holds under its protocol, and the validation identities "
        "that training holds out of its train identities (the recipe's data.val_identities and seed).",
    )
    p.add_argument("--dataset", required=True, choices=tuple(DATASETS))
    p.add_argument("--data-root", required=True, type=Path, help="the data set's root folder")
    p.add_argument(
        "--split",
        type=int,
        default=0,
        help="train/test split (PRID-2011, iLIDS-VID; Market-1501, folder: identity split)",
    )
    p.add_argument("--splits", type=Path, help="PRID-2011 splits file (default: DATA_ROOT/splits_prid2011.json)")
    p.add_argument("--val-identities", type=float, help="share held out for validation (default: the recipe default)")
    p.add_argument(
        "--seed", type=int, help="the recipe seed that draws the validation identities (default: its default)"
    )
    p.set_defaults(handler=cmd_inspect)


def _part(tracklets) -> dict:
    return {
        "tracklets": len(tracklets),
        "identities": len({t.pid for t in tracklets}),
        "images": sum(len(t.paths) for t in tracklets),
    }


def validation_summary(index, share: float | None, seed: int | None) -> dict:
    """What ``trainer.validation.hold_out`` carves from ``index.train``, as training does it."""
    from trainer.recipe import DataRecipe, Recipe
    from trainer.validation import hold_out

    share = DataRecipe.model_fields["val_identities"].default if share is None else share
    seed = Recipe.model_fields["seed"].default if seed is None else seed
    train, val = hold_out(index, share, seed)
    return {
        "share": share,
        "seed": seed,
        "identities": len({t.pid for t in val.query}),
        "query": _part(val.query),
        "gallery": _part(val.gallery),
        "train_left": _part(train),
    }


def cmd_inspect(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from trainer.data.index import count_missing
    from trainer.data.registry import load_dataset, split_count

    with step(f"reading the {args.dataset} index under {args.data_root}"):
        index = load_dataset(args.dataset, args.data_root, split=args.split, splits=args.splits)
        splits = split_count(args.dataset, args.data_root, args.splits)
    # A query may also sit in the gallery (MARS's own protocol, Market-1501 without a test set): count once.
    tracklets = list(dict.fromkeys(index.train + index.query + index.gallery))
    test = set(index.query) | set(index.gallery)
    with step("checking that every image file exists"):
        missing, total = count_missing(dict.fromkeys(p for t in tracklets for p in t.paths))
    summary = index.summary()
    validation = validation_summary(index, args.val_identities, args.seed)
    data = {
        **summary,
        "root": str(args.data_root),
        "split": args.split,
        "splits": splits,
        "test_tracklets": len(test),
        "tracklets": len(tracklets),
        "identities": len({t.pid for t in tracklets if t.pid > 0}),  # pid 0 distractors, -1 junk
        "images": total,
        "missing_images": missing,
        "empty_tracklets": sum(1 for t in tracklets if not t.paths),
        "validation": validation,
        "skipped_files": len(index.skipped),
        "skipped_examples": list(index.skipped[:5]),
    }
    rows = [
        f"{args.dataset} at {args.data_root} (split {args.split} of {splits}): {data['identities']} identities, "
        f"{len(tracklets)} tracklets, {total} images"
    ]
    for part in ("train", "query", "gallery"):
        s = summary[part]
        rows.append(
            f"  {part:<8} {s['tracklets']:>6} tracklets  {s['identities']:>5} identities  "
            f"{s['images']:>8} images  {s['cameras']} cameras"
        )
    v = validation
    rows.append(
        f"  validation (share {v['share']}, seed {v['seed']}): {v['identities']} identities held out of train, "
        f"{v['query']['tracklets']} query + {v['gallery']['tracklets']} gallery tracklets; "
        f"{v['train_left']['tracklets']} tracklets of {v['train_left']['identities']} identities left to train on"
    )
    rows.append(f"  missing images: {missing} of {total}" + ("  (images not downloaded?)" if missing == total else ""))
    if data["empty_tracklets"]:
        rows.append(f"  sequence folders missing or empty: {data['empty_tracklets']}")
    if index.skipped:
        rows.append(f"  skipped files (name or place not understood): {len(index.skipped)}, e.g. {index.skipped[0]}")
    return Result(data, "\n".join(rows))
