"""The training loop's hooks (trainer/hooks.py), each driven directly, and the loss table."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint
from synth.datasets import write_mars
from trainer.data.registry import load_dataset
from trainer.data.sampling import IdentitySampler
from trainer.hooks import (
    CSV_COLUMNS,
    BestCheckpointer,
    Checkpointer,
    CSVLog,
    LRScheduler,
    Progress,
    TensorBoardWriter,
    TrainState,
    Validation,
    load_state,
)
from trainer.loop import LOSS_TERMS, Batch, build_for_recipe, loss_terms, train
from trainer.recipe import LossRecipe, Recipe
from trainer.schedule import scheduled_rate


def _state(out, epochs: int = 4, seed: int = 0) -> TrainState:
    recipe = Recipe.model_validate(
        {
            "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16},
            "seed": seed,
            "optim": {"epochs": epochs, "warmup_epochs": 2, "milestones": [3]},
        }
    )
    torch.manual_seed(seed)
    model = build_for_recipe(recipe, num_classes=3)
    centers = torch.nn.Parameter(torch.randn(3, model.arch.feature_dim))
    return TrainState(
        recipe=recipe,
        out=out,
        device="cpu",
        amp=False,
        model=model,
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        center_opt=torch.optim.SGD([centers], lr=0.5),
        centers=centers,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        sampler=IdentitySampler([0, 0, 1, 1, 2, 2], p=2, k=2, seed=seed),
        iters=4,
        provenance={"trained": True},
    )


def _finish_epoch(s: TrainState, epoch: int, hooks, loss: float = 1.0) -> None:
    """What the loop does at the end of an epoch: its record, then every hook's after_epoch."""
    s.epoch = epoch
    s.history.append({"epoch": epoch + 1, "loss": loss, "lr": s.lr, "seconds": 0.5})
    for hook in hooks:
        hook.after_epoch(s)


def _provenance(path):
    return load_checkpoint(path)[1].provenance


def test_validation_runs_every_n_epochs_and_after_the_last(tmp_path):
    s = _state(tmp_path, epochs=7)
    calls = []

    def evaluate():
        calls.append(s.epoch + 1)
        return {"mAP": 0.25, "cmc": {"1": 0.5}, "rerank": {"mAP": 0.375}}

    hook = Validation(3, evaluate)
    metrics_after = []
    for epoch in range(7):
        _finish_epoch(s, epoch, [hook])
        metrics_after.append(s.metrics)
    assert calls == [3, 6, 7]
    assert [m is not None for m in metrics_after] == [False, False, True, False, False, True, True]
    validated = [r for r in s.history if "val_mAP" in r]
    assert [r["epoch"] for r in validated] == [3, 6, 7]
    assert validated[0] == {"epoch": 3, "loss": 1.0, "lr": 0.0, "seconds": 0.5} | {
        "val_mAP": 0.25,
        "val_cmc1": 0.5,
        "val_rerank_mAP": 0.375,
    }


def test_best_checkpoint_is_written_when_validation_improves(tmp_path):
    s = _state(tmp_path)
    maps = iter([0.2, 0.5, 0.4])
    hooks = [Validation(1, lambda: {"mAP": next(maps), "cmc": {"1": 0.0}}), BestCheckpointer()]
    best = tmp_path / "best.pt"
    _finish_epoch(s, 0, hooks)
    assert s.best_map == 0.2 and _provenance(best)["epoch"] == 1
    _finish_epoch(s, 1, hooks)
    assert s.best_map == 0.5 and _provenance(best)["epoch"] == 2
    assert _provenance(best)["metrics"]["val"]["mAP"] == 0.5 and _provenance(best)["trained"]
    written = best.stat().st_mtime_ns
    _finish_epoch(s, 2, hooks)  # 0.4: no better
    assert s.best_map == 0.5 and best.stat().st_mtime_ns == written and _provenance(best)["epoch"] == 2
    hooks[1].after_train(s)  # a best.pt exists: kept
    assert _provenance(best)["epoch"] == 2


def test_without_validation_the_last_model_becomes_best_after_training(tmp_path):
    s = _state(tmp_path, epochs=2)
    hook = BestCheckpointer()
    for epoch in range(2):
        _finish_epoch(s, epoch, [hook])
    assert not (tmp_path / "best.pt").exists() and s.best_map == -1.0
    hook.after_train(s)
    assert _provenance(tmp_path / "best.pt")["epoch"] == 2 and "metrics" not in _provenance(tmp_path / "best.pt")


def test_checkpointer_writes_last_and_state_every_epoch_and_load_state_resumes(tmp_path):
    s = _state(tmp_path, seed=4)
    s.best_map = 0.3
    hook = Checkpointer()
    _finish_epoch(s, 0, [hook])
    assert _provenance(tmp_path / "last.pt")["epoch"] == 1
    assert torch.load(tmp_path / "state.pt", weights_only=False)["epoch"] == 1
    _finish_epoch(s, 1, [hook], loss=0.5)
    assert _provenance(tmp_path / "last.pt")["epoch"] == 2
    fresh = _state(tmp_path, seed=9)  # other weights and centres
    assert load_state(fresh)
    for name, value in s.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[name], value), name
    assert torch.equal(fresh.centers, s.centers)
    assert fresh.start_epoch == 2 and fresh.best_map == 0.3 and [r["loss"] for r in fresh.history] == [1.0, 0.5]
    draws = fresh.sampler.rng.integers(0, 1000, 5)
    assert (draws == np.random.default_rng([9, 2]).integers(0, 1000, 5)).all()  # the recipe's seed, the epoch
    assert not load_state(_state(tmp_path / "elsewhere"))


def test_csv_log_starts_afresh_or_continues(tmp_path):
    s = _state(tmp_path)
    path = tmp_path / "log.csv"
    path.write_text("an older run\n")
    CSVLog(append=False).before_train(s)
    assert path.read_text().splitlines() == [",".join(CSV_COLUMNS)]
    s.lr, s.terms = 1.5e-4, {"xent": torch.tensor(2.123456), "triplet": torch.tensor(0.25)}
    hook = CSVLog(append=True)
    hook.before_train(s)  # continues: no second header
    _finish_epoch(s, 0, [Validation(2, lambda: {"mAP": 0.5, "cmc": {"1": 0.75}}), hook], loss=3.0)
    _finish_epoch(s, 1, [Validation(2, lambda: {"mAP": 0.5, "cmc": {"1": 0.75}}), hook], loss=2.0)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0] == {
        "epoch": "1",
        "iter": "4",
        "lr": "1.500e-04",
        "loss": "3.00000",
        "terms": '{"xent": 2.12346, "triplet": 0.25}',
        "val_mAP": "",
        "val_cmc1": "",
        "seconds": "0.5",
    }
    assert (rows[1]["epoch"], rows[1]["val_mAP"], rows[1]["val_cmc1"]) == ("2", "0.5", "0.75")


def test_lr_scheduler_sets_the_rate_at_the_fractional_epoch(tmp_path):
    s = _state(tmp_path)
    s.optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(1))]})
    hook = LRScheduler()
    for epoch, it in [(0, 0), (1, 2), (3, 1)]:
        s.epoch, s.iter = epoch, it
        hook.before_step(s)
        assert s.lr == scheduled_rate(epoch + it / 4, s.recipe.optim)
        assert [g["lr"] for g in s.optimizer.param_groups] == [s.lr, s.lr]
    assert s.center_opt.param_groups[0]["lr"] == 0.5  # the centres keep center_lr


def test_tensorboard_writer_without_tensorboard_writes_nothing(tmp_path, monkeypatch):
    import trainer.hooks

    monkeypatch.setattr(trainer.hooks, "_summary_writer", lambda out: None)
    s = _state(tmp_path)
    hook = TensorBoardWriter()
    hook.before_train(s)
    s.terms = {"xent": torch.tensor(1.0)}
    hook.after_step(s)
    s.metrics = {"mAP": 0.5}
    hook.after_epoch(s)
    hook.after_train(s)
    assert not (tmp_path / "tensorboard").exists()


@pytest.fixture(scope="module")
def mars12(tmp_path_factory):
    root = tmp_path_factory.mktemp("mars12")
    write_mars(root, ids=12, seed=2, size=(32, 16))
    return load_dataset("mars", root)


def test_train_reports_every_step_and_validates_on_schedule(mars12, tmp_path):
    recipe = Recipe.model_validate(
        {
            "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16},
            "sampler": {"p": 4, "k": 2},
            "data": {"val_identities": 0.25},
            "eval": {"every": 2},
            "optim": {"epochs": 3, "iters_per_epoch": 2, "warmup_epochs": 0},
        }
    )
    reports = []
    result = train(recipe, mars12, tmp_path, device="cpu", on_progress=reports.append)
    assert [(r["epoch"], r["iter"]) for r in reports] == [(e, i) for e in range(3) for i in range(2)]
    assert all(r["iters"] == 2 and r["epochs"] == 3 and r["loss"] > 0 for r in reports)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert ["val_mAP" in h for h in result.history] == [False, True, True]
    assert result.best_val_map == max(h["val_mAP"] for h in result.history[1:])
    best_epoch = _provenance(result.best)["epoch"]
    assert result.history[best_epoch - 1]["val_mAP"] == result.best_val_map
    assert _provenance(result.last)["epoch"] == 3
    with (tmp_path / "log.csv").open() as f:
        assert [r["val_mAP"] != "" for r in csv.DictReader(f)] == [False, True, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.pt",
        "last.pt",
        "log.csv",
        "recipe.yaml",
        "state.pt",
        "tensorboard",
    ]


def test_progress_passes_the_step_report():
    reports = []
    s = type("S", (), {"epoch": 2, "iter": 1, "iters": 5, "epochs": 9, "loss": 0.25, "lr": 1e-4})()
    Progress(reports.append).after_step(s)
    assert reports == [{"epoch": 2, "iter": 1, "iters": 5, "epochs": 9, "loss": 0.25, "lr": 1e-4}]


def test_the_loss_table_names_recipe_weights_and_keeps_its_order():
    """Every term is weighted by the recipe's ``loss.<name>``; a zero weight leaves it out; the terms come in
    the table's order, each its weight times the table's function."""
    from models.reidnet import ReIDOutput
    from trainer.loop import LossInputs

    assert set(LOSS_TERMS) <= set(LossRecipe.model_fields)
    g = torch.Generator().manual_seed(1)
    out = ReIDOutput(
        feature=torch.randn(6, 4, generator=g),
        attention=torch.softmax(torch.randn(6, 3, generator=g), 1),
        logits=torch.randn(6, 3, generator=g),
        intermediate=torch.randn(6, 3, 4, generator=g),
        neck_feature=torch.randn(6, 4, generator=g),
        scores=torch.rand(6, 3, generator=g),
    )
    batch = Batch(torch.zeros(6), torch.tensor([0, 0, 1, 1, 2, 2]), torch.rand(6, 3, generator=g) > 0.5, [])
    centers = torch.randn(3, 4, generator=g)
    weights = {"xent": 1.0, "triplet": 2.0, "center": 0.5, "osm": 0.25, "attention": 3.0, "rank": 0.125}
    recipe = Recipe.model_validate({"loss": weights | {"osm_class_vectors": "centers"}})
    terms = loss_terms(out, batch, recipe, None, centers)
    assert list(terms) == list(LOSS_TERMS) == list(weights)
    x = LossInputs(out, batch, recipe.loss, None, centers, out.feature)
    for name, term in LOSS_TERMS.items():
        assert terms[name].item() == pytest.approx(weights[name] * term(x).item()), name
    off = Recipe.model_validate({"loss": weights | {"osm_class_vectors": "centers", "triplet": 0, "rank": 0}})
    assert list(loss_terms(out, batch, off, None, centers)) == ["xent", "center", "osm", "attention"]
