"""Hyper-parameter search with Ax, for real, on a tiny budget."""

from __future__ import annotations

import json

import pytest
import yaml

from crosscam.errors import ConfigError
from synth.datasets import write_mars
from tests.support.cli import run_json
from trainer.hpo import with_parameters
from trainer.recipe import load_recipe


def test_with_parameters_sets_dotted_keys_and_names_unknown_ones():
    recipe = load_recipe("synth_tiny", [])
    changed = with_parameters(recipe, {"optim.lr": 0.002, "loss.osm_sigma": 0.7})
    assert changed.optim.lr == 0.002 and changed.loss.osm_sigma == 0.7 and recipe.optim.lr == 0.001
    with pytest.raises(ConfigError, match=r"'optim\.learning_rate' is not a recipe key"):
        with_parameters(recipe, {"optim.learning_rate": 0.1})


def test_hpo_runs_ax_trials_and_keeps_the_best(capsys, tmp_path):
    write_mars(tmp_path / "mars", ids=16, seed=4, size=(32, 16))
    code, data, err = run_json(
        capsys,
        "hpo",
        "synth_tiny",
        "--data-root",
        str(tmp_path / "mars"),
        "--trials",
        "3",
        "--out",
        str(tmp_path / "hpo"),
        "--device",
        "cpu",
        "--set",
        "optim.epochs=1",
        "--set",
        "optim.iters_per_epoch=2",
        "--set",
        "eval.every=1",
        "--set",
        "model.height=32",
        "--set",
        "model.width=16",
        "--set",
        "data.val_identities=0.5",
        "--set",
        "sampler.p=4",
        "--set",
        "sampler.k=2",
    )
    assert code == 0, err
    trials = data["trials"]
    assert len(trials) == 3 and len({json.dumps(t["parameters"], sort_keys=True) for t in trials}) == 3
    for t in trials:
        assert 3e-4 <= t["parameters"]["optim.lr"] <= 3e-3 and 0.1 <= t["parameters"]["loss.triplet_margin"] <= 0.6
    assert data["best_val_mAP"] == max(t["val_mAP"] for t in trials)
    best = yaml.safe_load((tmp_path / "hpo" / "best_recipe.yaml").read_text())
    assert best["optim"]["lr"] == pytest.approx(data["best_parameters"]["optim.lr"])
    assert json.loads((tmp_path / "hpo" / "hpo.json").read_text())["trials"] == trials


def test_hpo_without_ranges_is_a_clear_error(capsys, tmp_path):
    write_mars(tmp_path / "mars", ids=8, seed=1, size=(32, 16))
    code, data, _ = run_json(capsys, "hpo", "mars_bbot", "--data-root", str(tmp_path / "mars"), "--trials", "1")
    assert code == 2 and "no hpo.parameters" in data["error"]
