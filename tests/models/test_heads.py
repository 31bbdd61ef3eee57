"""Temporal heads against their papers' equations, computed by hand on small inputs, and the neck options."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.architectures import arch_spec
from models.checkpoint import build_model
from models.errors import ModelFileError
from models.heads import GRURankHead, TemporalAttentionHead


def _gru_input(head: GRURankHead, vectors: torch.Tensor) -> torch.Tensor:
    """What the head's GRU reads, caught with a forward hook."""
    seen: list[torch.Tensor] = []
    hook = head.gru.register_forward_hook(lambda _m, args, _out: seen.append(args[0].detach().clone()))
    try:
        head(torch.zeros(*vectors.shape[:2], 1, 1, 1), vectors)
    finally:
        hook.remove()
    return seen[0]


def _identity_head(**options) -> GRURankHead:
    """A 2-d head whose FC is the identity and whose scorer gives w_t = relu(r_t[0]) + b2 (Eq. 6b with U = (1, 0),
    b1 = 0, W = 1)."""
    head = GRURankHead(2, (1, 1), vector_dim=2, fc_dim=2, hidden=3, mlp_dim=1, dropout=0.0, **options).eval()
    with torch.no_grad():
        head.fc[1].weight.copy_(torch.eye(2))
        head.fc[1].bias.zero_()
        if head.scorer is not None:
            head.scorer[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
            head.scorer[0].bias.zero_()
            head.scorer[2].weight.fill_(1.0)
    return head


def _eq6(x: np.ndarray, b2: float, eps: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """All for One Eq. 6 on one clip ``x[T,2]``, as loops: r_t = x_t - mean(x); w_t = relu(r_t[0]) + b2;
    input_t = sum_{tau<=t} w_tau x_tau / sum_{k<=t} w_k (a sum within eps of 0 replaced by +-eps)."""
    r = x - x.mean(axis=0)
    w = np.maximum(r[:, 0], 0.0) + b2
    out = []
    for t in range(len(x)):
        s = w[: t + 1].sum()
        if abs(s) < eps:
            s = -eps if s < 0 else eps
        out.append((w[: t + 1, None] * x[: t + 1]).sum(0) / s)
    return np.array(out), w


@pytest.mark.parametrize("b2", [1.0, -0.5, 0.25])
def test_gru_input_is_the_weighted_running_mean_of_eq_6(b2):
    """Frames (0, 1), (2, 0), (1, 3), (-1, 1): the GRU reads Eq. 6's running mean, with signed, unnormalised
    weights used as the MLP gives them (b2 = -0.5 makes some negative)."""
    head = _identity_head()
    with torch.no_grad():
        head.scorer[2].bias.fill_(b2)
    x = np.array([[0.0, 1.0], [2.0, 0.0], [1.0, 3.0], [-1.0, 1.0]])
    expected, w = _eq6(x, b2)
    got = _gru_input(head, torch.tensor(x[None], dtype=torch.float32))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    out = head(torch.zeros(1, 4, 1, 1, 1), torch.tensor(x[None], dtype=torch.float32))
    np.testing.assert_allclose(out.scores[0].detach().numpy(), w, rtol=1e-6)  # the raw weights, for inspection


@pytest.mark.parametrize(("b2", "guarded"), [(-0.5, 1e-2), (-0.503, -1e-2), (0.5, None)])
def test_gru_guard_where_the_running_sum_nears_zero(b2, guarded):
    """x_t[0] = (1, -1, 0) has mean 0, so w = relu(x_t[0]) + b2 = (1 + b2, b2, b2). With b2 = -0.5 the running sum
    at t = 2 is exactly 0 and becomes +eps; with b2 = -0.503 it is -0.006 and becomes -eps; with b2 = 0.5 no
    sum is near 0. The GRU's input equals Eq. 6 with that guard, and stays finite."""
    head = _identity_head()
    with torch.no_grad():
        head.scorer[2].bias.fill_(b2)
    x = np.array([[1.0, 0.5], [-1.0, 2.0], [0.0, 1.0]])
    expected, w = _eq6(x, b2)
    running = np.cumsum(w)
    if guarded is not None:
        assert abs(running[1]) < 1e-2
        np.testing.assert_allclose(expected[1], (w[:2, None] * x[:2]).sum(0) / guarded)
    got = _gru_input(head, torch.tensor(x[None], dtype=torch.float32))[0].numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_gru_baseline_reads_each_frame_and_has_no_activation_after_the_fc():
    """Without attention (All for One's baseline) the GRU reads x_t; the FC has no ReLU (negative values pass)."""
    head = _identity_head(attention=False)
    x = torch.tensor([[[-1.0, 2.0], [3.0, -4.0]]])
    torch.testing.assert_close(_gru_input(head, x), x)
    assert not any(isinstance(m, torch.nn.ReLU) for m in head.fc)
    out = head(torch.zeros(1, 2, 1, 1, 1), x)
    torch.testing.assert_close(out.attention, torch.full((1, 2), 0.5))
    assert out.scores is None and out.intermediate.shape == (1, 2, 3)


def test_gru_scorer_depth_and_sizes_are_options():
    one = GRURankHead(8, (1, 1), vector_dim=8, fc_dim=4, hidden=6, mlp_dim=5)
    two = GRURankHead(8, (1, 1), vector_dim=8, fc_dim=4, hidden=6, mlp_dim=5, scorer_layers=2)
    linear = lambda h: [m for m in h.scorer if isinstance(m, torch.nn.Linear)]  # noqa: E731
    assert len(linear(one)) == 2 and len(linear(two)) == 3  # hidden layers + output
    assert one.gru.hidden_size == 6 and one.out_dim == 6
    assert float(linear(one)[-1].bias.detach()) == 1.0  # weights start near 1: running sums far from 0


def test_attention_head_returns_its_raw_relu_scores():
    """Gao & Nevatia / AAAI-2020: scores = relu(temporal conv), weights = softmax(scores)."""
    head = TemporalAttentionHead(4, (2, 1), mid=3)
    maps = torch.randn(2, 5, 4, 2, 1)
    out = head(maps)
    assert out.scores.shape == (2, 5) and torch.all(out.scores >= 0)
    torch.testing.assert_close(out.attention, out.scores.softmax(dim=1))


def test_neck_none_retrieves_the_heads_feature():
    arch, spec = arch_spec("tiny_gru_rank", num_classes=3)
    model = build_model(replace(arch, neck="none", head_options={"hidden": 16}), spec, pretrained=None)
    assert model.arch.feature_dim == 16 and model.neck.classifier.bias is not None
    x = torch.randn(2, 3, 3, spec.height, spec.width)
    model.eval()
    torch.testing.assert_close(model(x).feature, model.head(*model._frames(x)).feature)
    model.train()
    out = model(x)
    torch.testing.assert_close(out.neck_feature, out.feature)


def test_bnneck_gives_the_post_bn_feature_in_training():
    arch, spec = arch_spec("tiny_attention", num_classes=3)
    model = build_model(arch, spec, pretrained=None).train()
    out = model(torch.randn(4, 2, 3, spec.height, spec.width))
    assert out.scores.shape == (4, 2)
    assert not torch.allclose(out.neck_feature, out.feature)


def test_step_features_of_the_gru_are_its_fused_features():
    arch, spec = arch_spec("tiny_gru_rank")
    model = build_model(arch, spec, pretrained=None).eval()
    x = torch.randn(2, 5, 3, spec.height, spec.width)
    with torch.no_grad():
        steps = model.step_features(x)
        assert steps.shape == (2, 5, model.arch.feature_dim)
        torch.testing.assert_close(steps[:, -1], model(x).feature)
        # avg head: the feature after k frames is the model run on the first k
        avg_arch, avg_spec = arch_spec("tiny_avg")
        avg = build_model(avg_arch, avg_spec, pretrained=None).eval()
        torch.testing.assert_close(avg.step_features(x)[:, 1], avg(x[:, :2]).feature)


def test_unknown_head_option_is_a_clear_error():
    arch, spec = arch_spec("tiny_gru_rank")
    with pytest.raises(ModelFileError, match=r"head 'gru_rank' options \{'hiden': 3\}"):
        build_model(replace(arch, head_options={"hiden": 3}), spec, pretrained=None)
    with pytest.raises(ModelFileError, match="unknown neck 'bn'"):
        build_model(replace(arch, neck="bn"), spec, pretrained=None)


def test_a_gru_checkpoint_of_spec_format_2_is_refused_clearly(tmp_path):
    """A gru_rank checkpoint of spec format 2 has another head (ReLU after the FC, exp-weighted two-layer
    scorer): loading it names the file and says to train again, rather than failing on weight shapes."""
    from models.checkpoint import load_checkpoint, save_checkpoint

    arch, spec = arch_spec("tiny_gru_rank")
    path = tmp_path / "old.pt"
    save_checkpoint(build_model(arch, spec, pretrained=None), path, {})
    data = torch.load(path, weights_only=True)
    data["spec"]["format_version"] = 2
    torch.save(data, path)
    with pytest.raises(ModelFileError, match=r"old\.pt: a gru_rank model of spec format 2, .* train it again"):
        load_checkpoint(path)
