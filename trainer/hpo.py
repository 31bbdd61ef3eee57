"""Hyper-parameter search over a recipe's named ranges with Ax (Bayesian optimisation), scored on the
held-out validation identities: never on the test split."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosscam.errors import ConfigError
from models.errors import BackendUnavailableError
from trainer.data.index import DatasetIndex
from trainer.recipe import Recipe

OBJECTIVE = "val_mAP"


@dataclass(frozen=True)
class SearchResult:
    best_parameters: dict[str, float]
    best_val_map: float
    best_recipe: Recipe
    trials: list[dict[str, Any]]


def with_parameters(recipe: Recipe, values: dict[str, float]) -> Recipe:
    """The recipe with dotted keys (``optim.lr``) set to ``values``; an unknown key is an error naming it."""
    data = recipe.model_dump(mode="json")
    for key, value in values.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"hpo.parameters: {key!r} is not a recipe key")
            node = node[part]
        if leaf not in node:
            raise ConfigError(f"hpo.parameters: {key!r} is not a recipe key")
        node[leaf] = value
    return Recipe.model_validate(data)


def _ax_name(key: str) -> str:
    return key.replace(".", "__")


def search(
    recipe: Recipe,
    index: DatasetIndex,
    out_dir: str | Path,
    trials: int,
    device: str = "auto",
    train_fn: Callable[..., Any] | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Run ``trials`` trainings, each with parameters suggested by Ax, and return the best.

    Each trial trains into ``out_dir/trial_NNN``; ``hpo.json`` there records every trial as it ends.
    """
    try:
        from ax import Client, RangeParameterConfig
    except ImportError as e:
        raise BackendUnavailableError("hyper-parameter search needs Ax: pip install 'crosscam[hpo]'") from e
    from trainer.loop import train

    ranges = recipe.hpo.parameters
    if not ranges:
        raise ConfigError(f"recipe {recipe.name!r} has no hpo.parameters to search; add named ranges under hpo:")
    if trials < 1:
        raise ConfigError("--trials must be at least 1")
    with_parameters(recipe, {k: r.low for k, r in ranges.items()})  # every key must exist before any training
    train_fn = train_fn or train
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    client = Client(random_seed=recipe.seed)
    client.configure_experiment(
        name=f"{recipe.name}_hpo",
        parameters=[
            RangeParameterConfig(
                name=_ax_name(k),
                parameter_type="int" if r.integer else "float",
                bounds=(int(r.low), int(r.high)) if r.integer else (r.low, r.high),
                scaling="log" if r.log else "linear",
            )
            for k, r in ranges.items()
        ],
    )
    client.configure_optimization(objective=OBJECTIVE)
    history: list[dict[str, Any]] = []
    for n in range(trials):
        for trial_index, suggested in client.get_next_trials(max_trials=1).items():
            values = {k: suggested[_ax_name(k)] for k in ranges}
            trial_recipe = with_parameters(recipe, values)
            result = train_fn(trial_recipe, index, out / f"trial_{n:03d}", device=device)
            client.complete_trial(trial_index=trial_index, raw_data={OBJECTIVE: float(result.best_val_map)})
            record = {
                "trial": n,
                "parameters": values,
                OBJECTIVE: float(result.best_val_map),
                "checkpoint": str(result.best),
            }
            history.append(record)
            (out / "hpo.json").write_text(json.dumps({"recipe": recipe.name, "trials": history}, indent=2))
            if on_trial:
                on_trial(record)
    best = max(history, key=lambda r: r[OBJECTIVE])  # measured, not the model's prediction
    return SearchResult(best["parameters"], best[OBJECTIVE], with_parameters(recipe, best["parameters"]), history)
