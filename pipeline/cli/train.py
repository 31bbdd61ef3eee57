"""``crosscam train RECIPE`` and ``crosscam eval CKPT...``."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.cli.app import Result, UsageError
from pipeline.cli.progress import console, show_training, training_progress
from pipeline.config import CrosscamConfig
from trainer.recipe import load_recipe


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from trainer.data.registry import DATASETS

    p = verbs.add_parser(
        "train",
        parents=[common],
        help="train the re-ID network from a recipe",
        description="Train per RECIPE (a YAML file, or the name of a bundled recipe: "
        "see trainer/recipes/). --set overrides recipe keys, e.g. --set optim.epochs=5.",
    )
    p.add_argument("recipe", help="recipe YAML file or bundled recipe name")
    p.add_argument("--data-root", required=True, type=Path, help="the data set's root folder")
    p.add_argument("--out", type=Path, help="output folder (default: runs/<recipe name>)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.pt")
    p.set_defaults(handler=cmd_train, set_applies_to="recipe")

    e = verbs.add_parser(
        "eval",
        parents=[common],
        help="CMC and mAP of checkpoints on a data set's test split",
        description="Evaluate under the data set's protocol. With several checkpoints (PRID-2011, "
        "iLIDS-VID: one per split), each runs on the split it was trained on and the results are averaged.",
    )
    e.add_argument("checkpoints", nargs="+", type=Path, help="model file(s): checkpoint, ONNX or engine")
    e.add_argument("--dataset", required=True, choices=tuple(DATASETS))
    e.add_argument("--data-root", required=True, type=Path)
    e.add_argument("--split", type=int, help="split to test on (default: the checkpoint's own, else 0)")
    e.add_argument("--splits", type=Path, help="PRID-2011 splits file (default: DATA_ROOT/splits_prid2011.json)")
    e.add_argument(
        "--rerank", action="store_true", help="also report k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)"
    )
    e.add_argument("--frames", type=int, help="clip length for dense evaluation (default: the model's)")
    e.add_argument(
        "--distance",
        choices=("cosine", "euclidean"),
        help="cosine of L2-normalised tracklet features, or squared Euclidean of raw ones (the AAAI-2020 code's "
        "test); default: the checkpoint's recipe (eval.distance), else cosine",
    )
    e.add_argument("--backend", default="auto", help="runtime: auto, torch, onnxruntime, openvino, tensorrt")
    e.add_argument("--device", default="auto")
    e.set_defaults(handler=cmd_eval)


def cmd_train(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from trainer.data.registry import load_dataset
    from trainer.loop import train

    recipe = load_recipe(args.recipe, args.overrides)
    index = load_dataset(recipe.data.dataset, args.data_root, split=recipe.data.split, splits=recipe.data.splits)
    out = args.out or Path("runs") / recipe.name
    with training_progress() as bar:
        task = bar.add_task(f"training {recipe.name}", total=None, status="")

        def progress(p: dict) -> None:
            show_training(bar, task, p)

        result = train(recipe, index, out, device=args.device, resume=args.resume, on_progress=progress)
    data = {
        "recipe": recipe.name,
        "out": str(out),
        "best": str(result.best),
        "last": str(result.last),
        "best_val_mAP": result.best_val_map,
        "epochs": result.epochs,
        "bad_frames": result.bad_frames,
        "history": result.history,
    }
    text = (
        f"trained {recipe.name} for {result.epochs} epochs: best validation mAP {result.best_val_map:.4f}; "
        f"checkpoints in {out}" + (f"; {result.bad_frames} unreadable frames skipped" if result.bad_frames else "")
    )
    return Result(data, text)


def cmd_eval(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from rich.progress import Progress

    from models.embedder import load_embedder
    from trainer.data.registry import load_dataset
    from trainer.evaluate import average_results, evaluate_index, recipe_distance, recipe_split

    if args.dataset == "mars" and len(args.checkpoints) > 1:
        raise UsageError("MARS has one test split: evaluate one checkpoint at a time (or use `crosscam bench mars`)")
    results = []
    for ckpt in args.checkpoints:
        embedder = load_embedder(ckpt, backend=args.backend, device=args.device, cache_dir=config.cache_dir)
        split = args.split if args.split is not None else recipe_split(embedder.spec)
        index = load_dataset(args.dataset, args.data_root, split=split, splits=args.splits)
        frames = args.frames or embedder.spec.input.frames
        distance = args.distance or recipe_distance(embedder.spec)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"embedding {args.dataset} split {split} with {ckpt.name}", total=None)
            r = evaluate_index(
                embedder,
                index,
                frames,
                rerank=args.rerank,
                progress=lambda d, t, task=task: bar.update(task, completed=d, total=t),
                distance=distance,
            )
        results.append(r | {"checkpoint": str(ckpt), "split": split})
    data = results[0] if len(results) == 1 else average_results(results)
    data |= {"dataset": args.dataset}
    lines = [f"{args.dataset}: mAP {data['mAP']:.4f}  " + "  ".join(f"CMC-{k} {v:.4f}" for k, v in data["cmc"].items())]
    if "rerank" in data:
        rr = data["rerank"]
        lines.append(
            "re-ranked: mAP {:.4f}  ".format(rr["mAP"]) + "  ".join(f"CMC-{k} {v:.4f}" for k, v in rr["cmc"].items())
        )
    if len(results) > 1:
        lines.append(f"(mean over {len(results)} splits)")
    bad = sum(r["bad_frames"] for r in results)
    if bad:
        lines.append(f"{bad} unreadable frames were skipped, e.g. {results[0]['bad_frame_examples'][:2]}")
    return Result(data, "\n".join(lines))
