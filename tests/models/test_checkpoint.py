"""Checkpoints: round trip, identity, provenance, and clear errors for bad files."""

from __future__ import annotations

import pytest
import torch

from models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint, weights_id
from models.errors import ModelFileError
from tests.support.models import make_model


def test_round_trip_keeps_weights_spec_and_outputs(tmp_path):
    model = make_model("tiny_gru_rank", num_classes=3)
    spec = save_checkpoint(model, tmp_path / "m.pt", {"dataset": "synth", "metrics": {"mAP": 0.5}})
    loaded, loaded_spec = load_checkpoint(tmp_path / "m.pt")
    assert loaded_spec == spec
    assert loaded_spec.provenance == {"dataset": "synth", "metrics": {"mAP": 0.5}}
    assert loaded_spec.arch.num_classes == 3 and loaded_spec.feature_dim == 512
    x = torch.randn(2, 4, 3, 128, 64)
    torch.testing.assert_close(loaded(x).feature, model.eval()(x).feature)


def test_model_id_follows_the_weights():
    a, b = make_model("tiny_avg", seed=1), make_model("tiny_avg", seed=1)
    assert weights_id(a.state_dict()) == weights_id(b.state_dict())
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert weights_id(a.state_dict()) != weights_id(b.state_dict())


def test_input_spec_travels_in_the_checkpoint(tmp_path):
    from dataclasses import replace

    from models.architectures import arch_spec
    from models.checkpoint import build_model

    arch, input_spec = arch_spec("tiny_attention")
    input_spec = replace(input_spec, height=96, width=48, frames=6, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    save_checkpoint(build_model(arch, input_spec), tmp_path / "m.pt")
    spec, _ = read_checkpoint(tmp_path / "m.pt")
    assert (spec.input.height, spec.input.width, spec.input.frames) == (96, 48, 6)
    assert spec.input.mean == (0.5, 0.5, 0.5) and spec.input.std == (0.25, 0.25, 0.25)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelFileError, match=r"missing\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "bad.pt"
    save_checkpoint(make_model("tiny_avg"), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a truncated download
    with pytest.raises(ModelFileError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_foreign_pytorch_file(tmp_path):
    torch.save({"model": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a crosscam checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(make_model("tiny_avg"), path)
    data = torch.load(path, weights_only=True)
    data["spec"]["arch"]["head"] = "attention"
    torch.save(data, path)
    with pytest.raises(ModelFileError, match="do not fit architecture"):
        load_checkpoint(path)


def test_newer_spec_format_asks_for_an_upgrade(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(make_model("tiny_avg"), path)
    data = torch.load(path, weights_only=True)
    data["spec"]["format_version"] = 99
    torch.save(data, path)
    with pytest.raises(ModelFileError, match="upgrade crosscam"):
        read_checkpoint(path)
