"""``crosscam hpo RECIPE --trials N``: search the recipe's named ranges with Ax on the validation split."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from pipeline.cli.app import Result
from pipeline.cli.progress import console
from pipeline.config import CrosscamConfig


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "hpo",
        parents=[common],
        help="hyper-parameter search over a recipe's hpo ranges (Ax)",
        description="Train --trials times with parameters suggested by Ax (Bayesian optimisation) "
        "within the recipe's hpo.parameters ranges, scored by validation mAP on held-out training "
        "identities. Writes OUT/hpo.json and OUT/best_recipe.yaml. --set overrides recipe keys.",
    )
    p.add_argument("recipe", help="recipe YAML file or bundled recipe name")
    p.add_argument("--data-root", required=True, type=Path)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--out", type=Path, help="output folder (default: runs/<recipe name>_hpo)")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=cmd_hpo, set_applies_to="recipe")


def cmd_hpo(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from trainer.data.registry import load_dataset
    from trainer.hpo import search
    from trainer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    index = load_dataset(recipe.data.dataset, args.data_root, split=recipe.data.split, splits=recipe.data.splits)
    out = args.out or Path("runs") / f"{recipe.name}_hpo"

    def report(r: dict) -> None:
        params = ", ".join(f"{k}={v:.4g}" for k, v in r["parameters"].items())
        console.print(f"trial {r['trial'] + 1}/{args.trials}: val mAP {r['val_mAP']:.4f}  ({params})", highlight=False)

    result = search(recipe, index, out, args.trials, device=args.device, on_trial=report)
    best_path = out / "best_recipe.yaml"
    best_path.write_text(yaml.safe_dump(result.best_recipe.model_dump(mode="json"), sort_keys=False))
    data = {
        "recipe": recipe.name,
        "out": str(out),
        "best_parameters": result.best_parameters,
        "best_val_mAP": result.best_val_map,
        "best_recipe": str(best_path),
        "trials": result.trials,
    }
    text = (
        f"best of {len(result.trials)} trials: val mAP {result.best_val_map:.4f} with "
        + ", ".join(f"{k}={v:.4g}" for k, v in result.best_parameters.items())
        + f"; recipe in {best_path}"
    )
    return Result(data, text)
