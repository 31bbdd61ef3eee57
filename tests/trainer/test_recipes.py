"""Every bundled recipe loads and trains a few iterations, on small generated data of its data set's layout;
the settings that reproduce each paper are what the recipes say (docs/reproduction.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from synth.datasets import write_mars, write_prid2011
from trainer.data.registry import load_dataset
from trainer.loop import build_for_recipe, train
from trainer.recipe import RECIPES as RECIPE_DIR
from trainer.recipe import Recipe, load_recipe

RECIPES = sorted(p.stem for p in Path(RECIPE_DIR).glob("*.yaml"))

# a few iterations of a small batch at a small input: what each recipe builds and computes, not how well it learns
SHRINK = [
    "model.pretrained=null",
    "model.height=64",
    "model.width=32",
    "sampler.p=3",
    "sampler.k=2",
    "optim.epochs=1",
    "optim.iters_per_epoch=2",
    "data.workers=0",
    "data.val_identities=0.2",
    "eval.every=1",
]


@pytest.fixture(scope="module")
def data_roots(tmp_path_factory):
    mars = tmp_path_factory.mktemp("mars")
    write_mars(mars, ids=16, seed=3, size=(64, 32))
    prid = tmp_path_factory.mktemp("prid")
    write_prid2011(prid, ids=24, seed=3, size=(64, 32))
    return {"mars": mars, "prid2011": prid}


def _dataset(recipe: Recipe, roots):
    """The recipe's own data set where it is generated here; MARS layout otherwise (Market-1501, folder)."""
    name = recipe.data.dataset if recipe.data.dataset in roots else "mars"
    return name, load_dataset(name, roots[name], split=recipe.data.split)


@pytest.fixture(scope="module")
def mars_gru_checkpoint(data_roots, tmp_path_factory):
    recipe = load_recipe("mars_gru_rank", SHRINK)
    out = tmp_path_factory.mktemp("mars_gru_rank")
    return train(recipe, load_dataset("mars", data_roots["mars"]), out, device="cpu").last


@pytest.mark.slow
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_trains_a_few_iterations(name, data_roots, mars_gru_checkpoint, tmp_path):
    overrides = list(SHRINK)
    if name.startswith("prid_"):  # fine-tunes: start from a MARS checkpoint, as their descriptions say
        overrides.append(
            f"model.init_checkpoint={mars_gru_checkpoint}" if "gru" in name else "model.arch=resnet50_attention"
        )
    recipe = load_recipe(name, overrides)
    if recipe.data.dataset not in data_roots:
        recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"dataset": "mars"})})
    _, index = _dataset(recipe, data_roots)
    result = train(recipe, index, tmp_path, device="cpu")
    assert len(result.history) == 1
    loss = result.history[0]["loss"]
    assert loss == loss and loss > 0  # finite, and some term is active
    assert 0.0 <= result.best_val_map <= 1.0
    assert (tmp_path / "best.pt").is_file()


def test_prid_fine_tune_starts_the_gru_afresh_at_hidden_128(mars_gru_checkpoint, data_roots):
    """All for One fine-tunes its MARS model on PRID-2011 with a GRU of 128 (MARS: 512): every layer that still
    fits comes from MARS, the GRU starts afresh."""
    from models.checkpoint import load_checkpoint

    source, _ = load_checkpoint(mars_gru_checkpoint)
    recipe = load_recipe("prid_gru_rank_from_mars", [*SHRINK, f"model.init_checkpoint={mars_gru_checkpoint}"])
    model = build_for_recipe(recipe, num_classes=5)
    assert model.head.gru.hidden_size == 128 and source.head.gru.hidden_size == 512
    assert model.arch.neck == "none" and model.arch.feature_dim == 128
    torch.testing.assert_close(model.head.fc[1].weight, source.head.fc[1].weight)
    ours, theirs = model.backbone.state_dict(), source.backbone.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(ours[key], theirs[key])


def test_the_papers_settings():
    """The values docs/reproduction.md lists, as the recipes set them."""
    gru = load_recipe("mars_gru_rank", [])
    assert (gru.optim.lr, gru.optim.schedule, gru.optim.decay_factor) == (1e-4, "exponential", 0.001)
    assert gru.optim.epochs * gru.optim.iters_per_epoch == 15_000
    assert gru.optim.decay_start * gru.optim.iters_per_epoch == 9_000
    assert (gru.loss.xent, gru.loss.triplet, gru.loss.rank, gru.model.neck) == (0.0, 1.0, 1.0, "none")
    assert gru.model.head_options == {"attention": True, "fc_dim": 512, "hidden": 512, "dropout": 0.5}
    prid = load_recipe("prid_gru_rank_from_mars", [])
    assert prid.optim.epochs * prid.optim.iters_per_epoch == 5_000 and prid.model.head_options["hidden"] == 128
    best = load_recipe("mars_bbot_osm_clcenters_attention", [])
    assert (best.loss.metric_feature, best.loss.attention_input, best.loss.attention) == ("post_bn", "scores", 1.0)
    assert (best.optim.warmup_factor, best.optim.warmup_epochs, best.optim.epochs) == (0.01, 10, 400)
    assert (best.model.height, best.model.width, best.augment.erase_fill) == (224, 112, "mean")
    assert best.eval.distance == "euclidean" and best.loss.triplet == 0.0
    baseline = load_recipe("mars_baseline_ta", [])
    assert (baseline.model.neck, baseline.model.last_stride, baseline.loss.label_smooth) == ("none", 2, 0.1)
    ablation = [load_recipe(n, []) for n in ("market_osnet_gru", "market_osnet_gru_attention", "market_osnet_gru_rank")]
    assert [r.model.head_options["attention"] for r in ablation] == [False, True, True]
    assert [r.loss.rank for r in ablation] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("name", RECIPES)
def test_pretrained_weights_are_a_bare_file_name(name):
    """A bundled recipe names its weights by file name alone (or imagenet, or none): the user puts the file in
    the working directory or passes ``--set model.pretrained=PATH``; no recipe points into another folder."""
    pretrained = load_recipe(name, []).model.pretrained
    assert pretrained in (None, "imagenet") or Path(pretrained).name == pretrained


def test_missing_pretrained_weights_say_where_to_fetch_them_and_how_to_point_at_them(tmp_path, monkeypatch):
    from models.errors import ModelFileError

    monkeypatch.chdir(tmp_path)
    recipe = load_recipe("market_osnet_ta", [])
    with pytest.raises(ModelFileError) as caught:
        build_for_recipe(recipe, num_classes=4)
    message = str(caught.value)
    assert message.startswith("market_osnet_ta: osnet_x0_25_msmt17.pth: not found")
    assert "fetch osnet_x0_25_msmt17.pth from https://" in message and "--set model.pretrained=PATH" in message
