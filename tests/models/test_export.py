"""ONNX export: the clip length stays dynamic however many models a process exports."""

from __future__ import annotations

import numpy as np
import onnx

from models.backends.ort_runtime import OnnxRuntimeEmbedder
from models.checkpoint import model_spec
from models.export import export_onnx, random_clips
from tests.support.models import make_model


def frames_dim(path) -> str | int:
    dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1]
    return dim.dim_param or dim.dim_value


def test_a_second_gru_export_in_one_process_keeps_the_clip_length_dynamic(tmp_path):
    """PyTorch caches the GRU's unrolling decomposition after one export; the next export must still give the
    GRU op a dynamic clip length (the first fixed it to 4 frames before the cache was cleared)."""
    paths = []
    for i, arch in enumerate(("tiny_gru_rank", "tiny_gru_rank", "tiny_attention")):
        model = make_model(arch, seed=i)
        paths.append(export_onnx(model, model_spec(model), tmp_path / f"{i}-{arch}.onnx"))
    assert [frames_dim(p) for p in paths] == ["frames"] * 3
    embedder = OnnxRuntimeEmbedder(paths[1], device="cpu")
    for frames in (1, 6):
        features, attention = embedder.embed(random_clips(2, frames, 128, 64))
        assert features.shape[0] == 2 and attention.shape == (2, frames)
        assert np.allclose(attention.sum(axis=1), 1.0, atol=1e-5)
