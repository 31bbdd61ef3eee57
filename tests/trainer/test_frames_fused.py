"""Rank-1 against frames fused (``crosscam bench frames``): the curves, the property they rest on, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.architectures import arch_spec
from models.checkpoint import load_checkpoint
from models.errors import ModelFileError
from models.spec import ModelSpec
from synth.datasets import write_mars
from tests.support.cli import run_json
from trainer.data.registry import load_dataset
from trainer.evaluate import recipe_distance
from trainer.frames_fused import frames_fused, rank_curves

FRAMES = 4


@pytest.fixture(scope="module")
def mars8(tmp_path_factory):
    root = tmp_path_factory.mktemp("mars8")
    write_mars(root, ids=8, seed=0, size=(128, 64))
    return root


def _clips(seed: int = 0, batch: int = 3, frames: int = FRAMES) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, 128, 64, generator=g)


def test_gru_step_features_end_at_the_eval_feature(tiny_checkpoints):
    """The command reads f_T of the GRU as the model's retrieval feature: step T must be forward's feature."""
    model, _ = load_checkpoint(tiny_checkpoints["tiny_gru_rank"])
    clips = _clips()
    with torch.no_grad():
        steps = model.step_features(clips)
        feature = model(clips).feature
    assert steps.shape == (3, FRAMES, model.arch.feature_dim)
    torch.testing.assert_close(steps[:, -1], feature, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(steps[:, 0], steps[:, -1])  # the earlier steps are other features


def test_avg_step_features_are_the_head_on_each_prefix(tiny_checkpoints):
    model, _ = load_checkpoint(tiny_checkpoints["tiny_avg"])
    clips = _clips(1)
    with torch.no_grad():
        steps = model.step_features(clips)
        for t in range(1, FRAMES + 1):
            torch.testing.assert_close(steps[:, t - 1], model(clips[:, :t]).feature, rtol=1e-5, atol=1e-5)


def test_rank_curves_tell_the_growing_query_from_both_growing():
    """Two people in two cameras. After one frame each query looks like the other person, and so does each
    gallery entry: matched step against step the first frame is right; against the full gallery it is wrong."""
    q = np.array([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]], np.float32)  # [Nq=2, T=2, D=2]
    g = q.copy()
    ids = {"q_pids": np.array([1, 2]), "g_pids": np.array([1, 2]), "q_camids": np.array([1, 1])}
    ids["g_camids"] = np.array([2, 2])
    curves = rank_curves(q, g, ids)
    assert curves["both"]["cmc1"] == [1.0, 1.0]
    assert curves["query"]["cmc1"] == [0.0, 1.0]
    assert curves["query"]["mAP"][0] == pytest.approx(0.5) and curves["query"]["mAP"][1] == pytest.approx(1.0)


def test_recipe_distance_defaults_to_cosine_and_refuses_unknown_ones():
    arch, input_spec = arch_spec("tiny_avg")
    assert recipe_distance(ModelSpec(arch, input_spec)) == "cosine"
    spec = ModelSpec(arch, input_spec, provenance={"recipe": {"eval": {"distance": "euclidean"}}})
    assert recipe_distance(spec) == "euclidean"
    with pytest.raises(ModelFileError, match="manhattan"):
        recipe_distance(ModelSpec(arch, input_spec, provenance={"recipe": {"eval": {"distance": "manhattan"}}}))


def test_curves_on_a_data_set(tiny_checkpoints, mars8):
    index = load_dataset("mars", mars8)
    models = [
        (arch, str(tiny_checkpoints[arch]), *load_checkpoint(tiny_checkpoints[arch]))
        for arch in ("tiny_avg", "tiny_gru_rank")
    ]
    calls: list[tuple[int, int]] = []
    result = frames_fused(
        models, index, "mars", FRAMES, batch=8, progress=lambda label: lambda d, t: calls.append((d, t))
    )
    assert result["dataset"] == "mars" and result["frames"] == FRAMES
    assert [m["label"] for m in result["models"]] == ["tiny_avg", "tiny_gru_rank"]
    distinct = len(dict.fromkeys(index.query + index.gallery))
    assert calls[-1] == (distinct, distinct)
    for m in result["models"]:
        assert m["distance"] == "cosine" and m["bad_frames"] == 0
        for kind in ("both", "query"):
            for metric in ("cmc1", "mAP"):
                assert len(m[kind][metric]) == FRAMES
                assert all(0.0 <= v <= 1.0 for v in m[kind][metric])
        # at t = T both curves rank the same full-T features
        assert m["query"]["cmc1"][-1] == m["both"]["cmc1"][-1]
        assert m["query"]["mAP"][-1] == pytest.approx(m["both"]["mAP"][-1])
    avg = result["models"][0]
    assert avg["both"]["mAP"] != avg["query"]["mAP"]  # the earlier steps do differ between the two curves


def test_command_writes_json_and_plot(capsys, tiny_checkpoints, mars8, tmp_path):
    out = tmp_path / "fig2"
    code, data, err = run_json(
        capsys,
        "bench",
        "frames",
        "--checkpoints",
        str(tiny_checkpoints["tiny_avg"]),
        str(tiny_checkpoints["tiny_gru_rank"]),
        "--dataset",
        "mars",
        "--data-root",
        str(mars8),
        "--frames",
        "3",
        "--labels",
        "no rank loss",
        "rank loss",
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    assert code == 0
    written = json.loads((out / "frames_fused.json").read_text())
    assert written["frames"] == 3 and [m["label"] for m in written["models"]] == ["no rank loss", "rank loss"]
    assert written["models"] == data["models"] and data["png"] == str(out / "frames_fused.png")
    assert all(len(m[k]["cmc1"]) == 3 for m in written["models"] for k in ("both", "query"))
    png = (out / "frames_fused.png").read_bytes()
    assert len(png) > 1000 and png.startswith(b"\x89PNG")
    assert "rank loss (query)" in err  # the table goes to stderr under --json


@pytest.mark.parametrize("problem", ["missing checkpoint", "garbage checkpoint", "missing data root", "labels"])
def test_command_errors_name_the_path(capsys, tiny_checkpoints, mars8, tmp_path, problem):
    ckpt, root, extra = str(tiny_checkpoints["tiny_avg"]), str(mars8), []
    if problem == "missing checkpoint":
        ckpt = str(tmp_path / "nope.pt")
    elif problem == "garbage checkpoint":
        (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
        ckpt = str(tmp_path / "junk.pt")
    elif problem == "missing data root":
        root = str(tmp_path / "no_mars")
    else:
        extra = ["--labels", "a", "b"]
    argv = ["bench", "frames", "--checkpoints", ckpt, "--dataset", "mars", "--data-root", root, "--out", str(tmp_path)]
    code, data, err = run_json(capsys, *argv, *extra)
    assert code == 2
    expected = {"missing checkpoint": ckpt, "garbage checkpoint": ckpt, "missing data root": root}.get(
        problem, "--labels"
    )
    assert expected in data["error"] and "Traceback" not in err
    assert not (tmp_path / "frames_fused.json").exists()
