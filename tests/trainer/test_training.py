"""Training end to end on generated data in the real MARS / PRID-2011 layouts."""

from __future__ import annotations

import csv
from typing import ClassVar

import numpy as np
import pytest
import torch

from models.backends.torch_runtime import TorchEmbedder
from models.checkpoint import model_spec
from pipeline.cli import main
from synth.datasets import write_mars, write_prid2011
from tests.support.cli import run_json
from trainer.data.registry import load_dataset
from trainer.data.sampling import dense_clips
from trainer.evaluate import average_results, embed_tracklets
from trainer.loop import build_for_recipe, optimizer_step, train, validate
from trainer.recipe import Recipe
from trainer.schedule import exponential_rate, learning_rate, scheduled_rate
from trainer.validation import hold_out


@pytest.fixture(scope="module")
def mars60(tmp_path_factory):
    root = tmp_path_factory.mktemp("mars60")
    write_mars(root, ids=60, seed=0, size=(128, 64))
    return root


def test_exponential_schedule_of_hermans_et_al():
    """eps(t) = eps_0 up to t_0, then eps_0 * 0.001^((t - t_0) / (t_1 - t_0)): at the end 1e-3 x lr."""
    assert exponential_rate(0, 1e-4, 90, 150) == 1e-4
    assert exponential_rate(90, 1e-4, 90, 150) == 1e-4
    assert exponential_rate(120, 1e-4, 90, 150) == pytest.approx(1e-4 * 0.001**0.5)
    assert exponential_rate(150, 1e-4, 90, 150) == pytest.approx(1e-7)
    optim = Recipe.model_validate(
        {"optim": {"lr": 1e-4, "schedule": "exponential", "decay_start": 90, "epochs": 150, "warmup_epochs": 0}}
    ).optim
    assert scheduled_rate(100, optim) == pytest.approx(exponential_rate(100, 1e-4, 90, 150))


def test_warm_up_starts_at_its_factor():
    """The AAAI-2020 code warms up from 0.01 x lr; the bag of tricks paper from 0.1 x lr."""
    assert learning_rate(0, 1.0, 10, [40, 70], 0.5, warmup_factor=0.01) == pytest.approx(0.01)
    assert learning_rate(5, 1.0, 10, [40, 70], 0.5, warmup_factor=0.01) == pytest.approx(0.505)
    optim = Recipe.model_validate({"optim": {"lr": 2.0, "warmup_epochs": 10, "warmup_factor": 0.01}}).optim
    assert scheduled_rate(0, optim) == pytest.approx(0.02) and scheduled_rate(10, optim) == 2.0


def test_learning_rate_schedule():
    assert learning_rate(0, 1.0, 10, [40, 70], 0.5) == pytest.approx(0.1)
    assert learning_rate(5, 1.0, 10, [40, 70], 0.5) == pytest.approx(0.55)
    assert learning_rate(10, 1.0, 10, [40, 70], 0.5) == 1.0
    assert learning_rate(40, 1.0, 10, [40, 70], 0.5) == 0.5
    assert learning_rate(75, 1.0, 10, [40, 70], 0.5) == 0.25


def _one_step(loss_scale: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of a linear layer and its centre loss, through a real GradScaler (CPU) at ``loss_scale``."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 4)
    centers = torch.nn.Parameter(torch.randn(3, 4) * 0.01)
    before = centers.detach().clone()
    optimizer, center_opt = torch.optim.SGD(layer.parameters(), lr=0.1), torch.optim.SGD([centers], lr=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=loss_scale or 1.0, enabled=loss_scale is not None)
    x, y = torch.randn(8, 6), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    feat = layer(x)
    weight = 5e-4
    total = feat.pow(2).mean() + weight * ((feat - centers[y]) ** 2).sum(1).mean()
    scaler.scale(total).backward()
    optimizer_step(scaler, optimizer, center_opt, centers, weight)
    return layer.weight.detach().clone(), centers.detach().clone(), before


def test_mixed_precision_loss_scale_does_not_reach_the_centers():
    """Under AMP the centres' gradient carries the loss scale too; it must be unscaled before their step.
    (Left scaled, every CUDA run with a centre loss diverges, the centre term growing to 1e18.)"""
    plain_w, plain_c, before = _one_step(None)
    scaled_w, scaled_c, _ = _one_step(65536.0)
    assert (plain_c - before).abs().max() > 1e-4  # the centres learn
    assert torch.allclose(scaled_w, plain_w, atol=1e-6)
    assert torch.allclose(scaled_c, plain_c, atol=1e-6)


def test_hold_out_keeps_identities_apart(mars60):
    index = load_dataset("mars", mars60)
    train_tracklets, val = hold_out(index, 0.34, seed=0)
    val_ids = {t.pid for t in val.query}
    assert len(val_ids) == 10 and not val_ids & {t.pid for t in train_tracklets}
    assert {t.pid for t in val.gallery} <= val_ids
    assert not {t.pid for t in index.query} & ({t.pid for t in train_tracklets} | val_ids)  # test ids untouched


EPOCHS = 4  # synth_tiny validates every 4 epochs: one validation, at the end


@pytest.mark.slow
def test_cpu_training_raises_validation_map_far_above_untrained(capsys, mars60, tmp_path):
    """Acceptance: tiny_attention trained by the synth_tiny recipe for its first 100 iterations (4 epochs of 25;
    half a minute on two cores) on 60 generated identities ends far above the same network untrained, on the
    same held-out identities. The full recipe trains the demo model (pipeline/lab/demo.py)."""
    from trainer.recipe import load_recipe

    recipe = load_recipe("synth_tiny", [])
    index = load_dataset("mars", mars60)
    _, val = hold_out(index, recipe.data.val_identities, recipe.seed)
    torch.manual_seed(recipe.seed)
    untrained = validate(build_for_recipe(recipe, num_classes=20), val, recipe, "cpu")["mAP"]
    code, data, _ = run_json(
        capsys,
        "train",
        "synth_tiny",
        "--data-root",
        str(mars60),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
        "--set",
        f"optim.epochs={EPOCHS}",
    )
    trained = data["best_val_mAP"]
    print(f"validation mAP: untrained {untrained:.3f}, trained {trained:.3f}")
    assert code == 0
    assert trained >= untrained + 0.3 and trained >= 0.6
    with (tmp_path / "run" / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == EPOCHS and float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    code, info, _ = run_json(capsys, "model", "info", str(tmp_path / "run" / "best.pt"))
    assert info["spec"]["provenance"]["recipe"]["name"] == "synth_tiny"
    assert info["spec"]["provenance"]["metrics"]["val"]["mAP"] == pytest.approx(trained)
    # the trained model on the data set's own test split, with re-ranking
    code, result, _ = run_json(
        capsys, "eval", str(tmp_path / "run" / "best.pt"), "--dataset", "mars", "--data-root", str(mars60), "--rerank"
    )
    assert code == 0 and result["queries"] == 30 and result["mAP"] > 0.3
    assert set(result["cmc"]) == {"1", "5", "10", "20"} and "rerank" in result
    code, table, _ = run_json(
        capsys, "bench", "mars", "--checkpoints", str(tmp_path / "run" / "best.pt"), "--data-root", str(mars60)
    )
    assert code == 0 and "| synth_tiny |" in table["markdown"]
    assert table["rows"][0]["mAP"] == pytest.approx(result["mAP"])


def test_resume_continues_where_it_stopped(mars60, tmp_path):
    base = {
        "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16},
        "sampler": {"p": 4, "k": 2},
        "data": {"val_identities": 0.2},
        "eval": {"every": 1},
    }
    short = Recipe.model_validate(base | {"optim": {"epochs": 1, "iters_per_epoch": 2, "warmup_epochs": 0}})
    longer = Recipe.model_validate(base | {"optim": {"epochs": 2, "iters_per_epoch": 2, "warmup_epochs": 0}})
    index = load_dataset("mars", mars60)
    first = train(short, index, tmp_path, device="cpu")
    second = train(longer, index, tmp_path, device="cpu", resume=True)
    assert [h["epoch"] for h in first.history] == [1]
    assert [h["epoch"] for h in second.history] == [1, 2]  # epoch 1 was not run again


def test_corrupt_frames_are_skipped_and_counted(tmp_path):
    root = tmp_path / "mars"
    write_mars(root, ids=8, seed=1, size=(32, 16))
    index = load_dataset("mars", root)
    for t in index.train[:3]:
        with open(t.paths[0], "wb") as f:
            f.write(b"not a jpeg")
    recipe = Recipe.model_validate(
        {
            "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16},
            "sampler": {"p": 4, "k": 4},
            "data": {"val_identities": 0.0},
            "optim": {"epochs": 1, "iters_per_epoch": 6, "warmup_epochs": 0},
        }
    )
    result = train(recipe, index, tmp_path / "run", device="cpu")
    assert 1 <= result.bad_frames <= 3


def test_prid_ten_split_averaging(tmp_path, capsys):
    write_prid2011(tmp_path / "prid", ids=16, seed=0, size=(32, 16))
    checkpoints = []
    for split in (0, 1):
        recipe = Recipe.model_validate(
            {
                "data": {"dataset": "prid2011", "split": split, "val_identities": 0.0},
                "model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16},
                "sampler": {"p": 4, "k": 2},
                "optim": {"epochs": 1, "iters_per_epoch": 1, "warmup_epochs": 0},
            }
        )
        index = load_dataset("prid2011", tmp_path / "prid", split=split)
        checkpoints.append(str(train(recipe, index, tmp_path / f"s{split}", device="cpu").best))
    code, data, _ = run_json(
        capsys, "eval", *checkpoints, "--dataset", "prid2011", "--data-root", str(tmp_path / "prid")
    )
    assert code == 0 and data["splits"] == 2
    assert data["mAP"] == pytest.approx(sum(s["mAP"] for s in data["per_split"]) / 2)


def test_average_results_by_hand():
    a = {"mAP": 0.5, "cmc": {"1": 0.4, "5": 0.8}, "rerank": {"mAP": 0.6, "cmc": {"1": 0.5, "5": 0.9}}}
    b = {"mAP": 0.7, "cmc": {"1": 0.6, "5": 1.0}, "rerank": {"mAP": 0.8, "cmc": {"1": 0.7, "5": 1.0}}}
    avg = average_results([a, b])
    assert avg["mAP"] == pytest.approx(0.6) and avg["cmc"] == pytest.approx({"1": 0.5, "5": 0.9})
    assert avg["rerank"]["mAP"] == pytest.approx(0.7) and avg["splits"] == 2


def test_bundled_recipes_validate_and_unknown_keys_are_named(capsys, tmp_path):
    from pathlib import Path

    from trainer.recipe import RECIPES, load_recipe

    names = sorted(p.stem for p in Path(RECIPES).glob("*.yaml"))
    assert {
        "mars_baseline_ta",
        "mars_bbot",
        "mars_bbot_osm",
        "mars_bbot_osm_clcenters",
        "mars_bbot_osm_clcenters_attention",
        "mars_gru_rank",
        "prid_finetune_from_mars",
    } <= set(names)
    for name in names:
        assert load_recipe(name, []).name == name
    best = load_recipe("mars_bbot_osm_clcenters_attention", [])
    assert (best.loss.osm_sigma, best.loss.osm_alpha, best.loss.osm_l) == (0.905, 2.844, 0.587)
    assert best.optim.milestones == (40, 70) and best.optim.gamma == 0.328 and best.optim.warmup_epochs == 10
    code, data, _ = run_json(capsys, "train", "mars_bbot", "--data-root", str(tmp_path), "--set", "optim.epoks=3")
    assert code == 2 and "optim.epoks: unknown key" in data["error"]
    code, data, _ = run_json(capsys, "train", "no_such_recipe", "--data-root", str(tmp_path))
    assert code == 2 and "recipe not found" in data["error"] and "mars_bbot" in data["error"]
    assert main(["train", "synth_tiny", "--data-root", str(tmp_path / "none"), "--json"]) == 2


def test_table1_markdown_by_hand():
    from trainer.report import table1_markdown

    row = {
        "name": "mars_bbot_osm_clcenters_attention",
        "mAP": 0.8291,
        "cmc": {"1": 0.886, "5": 0.9623, "20": 0.98},
        "rerank": {"mAP": 0.878, "cmc": {"1": 0.9}},
    }
    lines = table1_markdown([row, {"name": "mine", "mAP": 0.5, "cmc": {"1": 0.6, "5": 0.7, "20": 0.8}}]).splitlines()
    assert lines[2] == "| mars_bbot_osm_clcenters_attention | 82.9 | 88.6 | 96.2 | 98.0 | 87.8 | 90.0 | 82.9 / 88.6 |"
    assert lines[3] == "| mine | 50.0 | 60.0 | 70.0 | 80.0 | - | - | - |"


def test_bench_train_reports_clips_per_second(capsys):
    code, data, _ = run_json(
        capsys,
        "bench",
        "train",
        "--arch",
        "tiny_avg",
        "--batch",
        "4",
        "--frames",
        "2",
        "--height",
        "32",
        "--width",
        "16",
        "--device",
        "cpu",
        "--min-seconds",
        "0",
    )
    r = data["results"][0]
    assert code == 0 and r["arch"] == "tiny_avg" and r["clips_per_s"] > 0 and r["mars_epoch_estimate_s"] > 0


def test_training_is_repeatable_with_a_seed(mars60, tmp_path):
    recipe = Recipe.model_validate(
        {
            "model": {"arch": "tiny_attention", "pretrained": None, "height": 32, "width": 16},
            "sampler": {"p": 4, "k": 2},
            "data": {"val_identities": 0.0},
            "seed": 7,
            "optim": {"epochs": 2, "iters_per_epoch": 2, "warmup_epochs": 0},
        }
    )
    index = load_dataset("mars", mars60)
    a = train(recipe, index, tmp_path / "a", device="cpu")
    b = train(recipe, index, tmp_path / "b", device="cpu")
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_dense_evaluation_streams_bounded_batches(mars60):
    """Every clip of every tracklet is embedded, but never more than batch_clips at once."""
    model = build_for_recipe(
        Recipe.model_validate({"model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16}}),
        num_classes=2,
    ).eval()

    class Counting(TorchEmbedder):
        sizes: ClassVar[list[int]] = []

        def embed(self, clips, normalize=True):
            self.sizes.append(len(clips))
            return super().embed(clips, normalize)

    embedder = Counting(model, model_spec(model), device="cpu")
    tracklets = load_dataset("mars", mars60).gallery
    feats = embed_tracklets(embedder, tracklets, frames=4, batch_clips=5)
    assert max(Counting.sizes) <= 5
    assert sum(Counting.sizes) == sum(len(dense_clips(len(t.paths), 4)) for t in tracklets)
    assert feats.shape == (len(tracklets), embedder.feature_dim)
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)


def test_a_query_that_is_also_in_the_gallery_is_embedded_once(mars60):
    """Market-1501 without a test set puts each query in the gallery too (as MARS's own code does): the
    evaluation embeds it once, and scores it as if it had been embedded twice."""
    from dataclasses import replace

    from trainer.evaluate import evaluate_index, squared_distances
    from trainer.metrics import evaluate_rank

    model = build_for_recipe(
        Recipe.model_validate({"model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16}}),
        num_classes=2,
    ).eval()

    class Counting(TorchEmbedder):
        clips: ClassVar[list[int]] = [0]

        def embed(self, clips, normalize=True):
            self.clips[0] += len(clips)
            return super().embed(clips, normalize)

    embedder = Counting(model, model_spec(model), device="cpu")
    index = load_dataset("mars", mars60)
    shared = replace(index, gallery=index.query + index.gallery)
    result = evaluate_index(embedder, shared, frames=4)
    distinct = len(index.query) + len(index.gallery)
    assert Counting.clips[0] == sum(len(dense_clips(len(t.paths), 4)) for t in index.query + index.gallery)
    # the same figures as embedding every query twice
    feats = embed_tracklets(embedder, shared.query + shared.gallery, frames=4)
    q, g = feats[: len(shared.query)], feats[len(shared.query) :]
    assert len(g) == distinct
    ids = {
        "q_pids": np.array([t.pid for t in shared.query]),
        "g_pids": np.array([t.pid for t in shared.gallery]),
        "q_camids": np.array([t.camid for t in shared.query]),
        "g_camids": np.array([t.camid for t in shared.gallery]),
    }
    expected = evaluate_rank(squared_distances(q, g), **ids)
    assert result["mAP"] == pytest.approx(expected.mAP, abs=1e-6)
    assert result["cmc"]["1"] == pytest.approx(expected.cmc_at(1)["1"], abs=1e-6)


def test_validation_leaves_the_training_layout_as_it_was(mars60):
    """The torch embedder lays the backbone out channels-last for speed; validating in the middle of training
    must not change the layout (and so the arithmetic) the training goes on in."""
    recipe = Recipe.model_validate({"model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16}})
    _, val = hold_out(load_dataset("mars", mars60), 0.34, seed=0)
    model = build_for_recipe(recipe, num_classes=2).train()
    convs = [m.weight for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous() for w in convs)
    validate(model, val, recipe, "cpu")
    assert model.training and all(w.is_contiguous() for w in convs)


def _outputs(num: int = 6, dim: int = 4, frames: int = 3):
    from models.reidnet import ReIDOutput

    g = torch.Generator().manual_seed(0)
    return ReIDOutput(
        feature=torch.randn(num, dim, generator=g),
        attention=torch.softmax(torch.randn(num, frames, generator=g), 1),
        logits=None,
        intermediate=torch.randn(num, frames, dim, generator=g),
        neck_feature=torch.randn(num, dim, generator=g) * 3,
        scores=torch.rand(num, frames, generator=g) * 5,
    )


@pytest.mark.parametrize("which", ["pre_bn", "post_bn"])
def test_metric_losses_act_on_the_feature_the_recipe_names(which):
    """loss.metric_feature: triplet, centre and OSM see the pre-BN feature (bag of tricks) or the post-BN one
    (the AAAI-2020 code)."""
    from trainer import losses
    from trainer.loop import Batch, loss_terms

    out = _outputs()
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    recipe = Recipe.model_validate(
        {
            "loss": {
                "xent": 0,
                "triplet": 1.0,
                "center": 1.0,
                "osm": 1.0,
                "osm_class_vectors": "centers",
                "metric_feature": which,
            }
        }
    )
    centers = torch.randn(3, 4)
    terms = loss_terms(out, Batch(torch.zeros(6), y, torch.zeros(6, 3, dtype=torch.bool), []), recipe, None, centers)
    feat = out.neck_feature if which == "post_bn" else out.feature
    assert terms["triplet"].item() == pytest.approx(losses.batch_hard_triplet(feat, y).item())
    assert terms["center"].item() == pytest.approx(losses.center_loss(feat, y, centers).item())
    osm = losses.osm_caa_loss(feat, y, centers, 0.8, 1.2, 0.5)
    assert terms["osm"].item() == pytest.approx(osm.item())


@pytest.mark.parametrize("which", ["scores", "weights"])
def test_attention_loss_input_is_a_recipe_setting(which):
    from trainer import losses
    from trainer.loop import Batch, loss_terms

    out = _outputs()
    erased = torch.zeros(6, 3, dtype=torch.bool)
    erased[0, 1] = erased[3, 2] = True
    recipe = Recipe.model_validate(
        {"loss": {"xent": 0, "triplet": 0, "center": 0, "attention": 2.0, "attention_input": which}}
    )
    terms = loss_terms(out, Batch(torch.zeros(6), torch.arange(6), erased, []), recipe, None, None)
    values = out.scores if which == "scores" else out.attention
    assert terms["attention"].item() == pytest.approx(2.0 * losses.attention_loss(values, erased).item())
    assert set(terms) == {"attention"}


def test_rank_loss_term_uses_every_fused_feature():
    from trainer import losses
    from trainer.loop import Batch, loss_terms

    out = _outputs()
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    recipe = Recipe.model_validate({"loss": {"xent": 0, "triplet": 0, "center": 0, "rank": 0.5}})
    terms = loss_terms(out, Batch(torch.zeros(6), y, torch.zeros(6, 3, dtype=torch.bool), []), recipe, None, None)
    assert terms["rank"].item() == pytest.approx(0.5 * losses.frame_rank_loss(out.intermediate, y).item())


def test_a_tracklet_with_no_readable_frame_ranks_last(mars60, tmp_path):
    """Its features are NaN and its distances +inf: a gallery tracklet whose every frame is corrupt comes after
    every readable one for every query (a zero row would sit closer than most real matches)."""
    from dataclasses import replace

    from trainer.evaluate import evaluate_index, rank_distances

    index = load_dataset("mars", mars60)
    broken = index.gallery[0]
    folder = tmp_path / "broken"
    folder.mkdir()
    paths = []
    for i in range(len(broken.paths)):
        target = folder / f"{i}.jpg"
        target.write_bytes(b"not a jpeg")
        paths.append(str(target))
    gallery = (replace(broken, paths=tuple(paths)), *index.gallery[1:])
    model = build_for_recipe(
        Recipe.model_validate({"model": {"arch": "tiny_avg", "pretrained": None, "height": 32, "width": 16}}),
        num_classes=2,
    ).eval()
    embedder = TorchEmbedder(model, model_spec(model), device="cpu")
    feats = embed_tracklets(embedder, gallery[:3], frames=4)
    assert np.isnan(feats[0]).all() and np.isfinite(feats[1:]).all()
    q = embed_tracklets(embedder, index.query[:4], frames=4)
    d = rank_distances(q, feats)
    assert np.isinf(d[:, 0]).all() and np.isfinite(d[:, 1:]).all()
    result = evaluate_index(embedder, replace(index, gallery=gallery), frames=4, rerank=True)
    assert result["bad_frames"] >= len(paths) and 0.0 <= result["rerank"]["mAP"] <= 1.0


def test_loss_settings_the_head_cannot_serve_are_refused():
    from crosscam.errors import ConfigError
    from trainer.loop import check_losses

    tiny = {"arch": "tiny_attention", "pretrained": None}
    rank_on_attention = Recipe.model_validate({"model": tiny, "loss": {"rank": 1.0}})
    with pytest.raises(ConfigError, match=r"loss\.rank needs the fused feature after every frame"):
        check_losses(rank_on_attention, build_for_recipe(rank_on_attention, num_classes=2))
    gru = {"arch": "tiny_gru_rank", "pretrained": None}
    scores_on_gru = Recipe.model_validate({"model": gru, "loss": {"attention": 1.0}})
    with pytest.raises(ConfigError, match=r"loss\.attention on raw scores"):
        check_losses(scores_on_gru, build_for_recipe(scores_on_gru, num_classes=2))
    fine = Recipe.model_validate({"model": gru, "loss": {"rank": 1.0}})
    check_losses(fine, build_for_recipe(fine, num_classes=2))


def test_the_recipes_neck_applies_to_a_fine_tune(tmp_path):
    """model.neck set in a recipe wins over the init checkpoint's; unset, the checkpoint's neck is kept."""
    from models.checkpoint import save_checkpoint

    recipe = Recipe.model_validate({"model": {"arch": "tiny_gru_rank", "pretrained": None}})
    save_checkpoint(build_for_recipe(recipe, num_classes=3), tmp_path / "bn.pt", {})
    keep = Recipe.model_validate({"model": {"init_checkpoint": str(tmp_path / "bn.pt")}})
    assert build_for_recipe(keep, num_classes=2).arch.neck == "bnneck"
    plain = Recipe.model_validate({"model": {"init_checkpoint": str(tmp_path / "bn.pt"), "neck": "none"}})
    assert build_for_recipe(plain, num_classes=2).arch.neck == "none"
