"""Specs in artifacts (channel order, calibrated threshold, reading and rewriting them), and foreign models
imported with `crosscam model import`."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from models.artifacts import read_spec, write_spec
from models.errors import ModelFileError
from models.preprocess import preprocess
from models.spec import InputSpec, ModelSpec


def test_bgr_input_flips_the_planes_in_preprocessing():
    rgb = InputSpec(height=2, width=2, frames=1, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    clips = np.zeros((1, 1, 2, 2, 3), np.uint8)
    clips[..., 0] = 255  # pure red
    x_rgb = preprocess(clips, rgb)
    x_bgr = preprocess(clips, replace(rgb, channels="bgr"))
    np.testing.assert_allclose(x_rgb[0, 0, :, 0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(x_bgr[0, 0, :, 0, 0], [0.0, 0.0, 1.0])


def test_spec_round_trip_and_version_one_specs_still_load(tiny_checkpoints):
    spec = read_spec(tiny_checkpoints["tiny_avg"])
    calibrated = replace(spec, input=replace(spec.input, channels="bgr"), link_threshold=0.5)
    assert ModelSpec.from_dict(json.loads(json.dumps(calibrated.to_dict()))) == calibrated
    old = spec.to_dict()
    del old["input"]["channels"], old["link_threshold"]
    old["format_version"] = 1
    loaded = ModelSpec.from_dict(old)
    assert loaded.input.channels == "rgb" and loaded.link_threshold is None and loaded == spec


def test_an_unknown_channel_order_is_a_model_file_error(tiny_checkpoints):
    d = read_spec(tiny_checkpoints["tiny_avg"]).to_dict()
    d["input"]["channels"] = "yuv"
    with pytest.raises(ModelFileError, match=r"malformed crosscam model spec.*channels"):
        ModelSpec.from_dict(d, source="m.pt")


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_write_spec_stores_a_threshold_in_place(tiny_checkpoints, tiny_onnx, tmp_path, kind):
    source = tiny_checkpoints["tiny_attention"] if kind == "checkpoint" else tiny_onnx["tiny_attention"]
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    spec = read_spec(path)
    calibration = {"dataset": "market1501", "pairs": 1000}
    new = replace(spec, link_threshold=0.55, provenance=spec.provenance | {"calibration": calibration})
    write_spec(path, new)
    assert read_spec(path) == new and not list(tmp_path.glob("*.tmp"))
    from models.embedder import load_embedder

    embedder = load_embedder(path, device="cpu")
    assert embedder.spec.link_threshold == 0.55
    features, _ = embedder.embed(np.zeros((1, 4, 128, 64, 3), np.uint8))
    assert features.shape == (1, spec.feature_dim)


def test_write_spec_refuses_a_spec_of_other_weights(tiny_checkpoints, tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(tiny_checkpoints["tiny_avg"].read_bytes())
    other = read_spec(tiny_checkpoints["tiny_attention"])
    with pytest.raises(ModelFileError, match="describes other weights"):
        write_spec(path, other)
