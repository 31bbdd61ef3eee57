"""Temporal heads: a clip's frames -> one clip feature.

A head's ``forward(maps, vectors=None)`` takes the frames' feature maps ``float[B,T,C,h,w]`` and their
frame vectors ``float[B,T,V]`` (``Backbone.frame_vectors``: global average pooling of the maps unless the
backbone has a frame head, as OSNet's fc). Heads pool the vectors; the attention head scores frames on the
maps. ``vectors`` defaults to the maps' global average pooling.

Every head returns ``HeadOutput(feature float[B,D], attention float[B,T], intermediate float[B,T,D] | None,
scores float[B,T] | None)``; attention is each frame's weight in the feature, summing to 1 over frames
(uniform for ``avg``; All for One's signed weights may be negative, and sum to 1 unless the running-sum guard
acted), so the embedder can always pick the best-weighted frame as the thumbnail; ``scores`` are a head's raw,
unnormalised frame scores where it has them (the AAAI-2020 attention loss acts on them). Pooling lives in the
model so an export is the whole thing.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import ClipError


class HeadOutput(NamedTuple):
    feature: torch.Tensor  # float[B,D]
    attention: torch.Tensor  # float[B,T], sums to 1 over T
    intermediate: torch.Tensor | None = None  # float[B,T,D]: the fused feature after each frame (gru_rank)
    scores: torch.Tensor | None = None  # float[B,T]: raw frame scores before normalisation (attention heads)


def _frame_vectors(maps: torch.Tensor, vectors: torch.Tensor | None) -> torch.Tensor:
    """``vectors`` when given, else global average pooling of each frame: ``[B,T,C,h,w] -> [B,T,C]``."""
    return maps.mean(dim=(3, 4)) if vectors is None else vectors


class AvgHead(nn.Module):
    """Temporal average pooling (Gao & Nevatia 2018, "TP"): the mean of the frame vectors."""

    def __init__(self, in_channels: int, map_size: tuple[int, int], vector_dim: int | None = None) -> None:
        super().__init__()
        self.out_dim = vector_dim or in_channels

    def forward(self, maps: torch.Tensor, vectors: torch.Tensor | None = None) -> HeadOutput:
        x = _frame_vectors(maps, vectors)
        attention = torch.ones_like(x[..., 0]) / x.shape[1]
        return HeadOutput(x.mean(dim=1), attention, None)


class TemporalAttentionHead(nn.Module):
    """Temporal attention (Gao & Nevatia 2018, "TA"; the AAAI-2020 paper's seed code).

    A spatial convolution whose kernel covers the whole frame map gives each frame a
    ``mid``-dim descriptor; a temporal convolution (kernel 3) across frames scores each frame; the
    softmax over frames gives attention ``a_t`` and the feature is ``sum_t a_t * v_t`` over the frame
    vectors ``v_t`` (``gap(x_t)`` for a backbone without a frame head). Both convolutions are followed by a
    ReLU and the weights are the softmax of the ReLU'd scores, as in Gao & Nevatia's and the AAAI-2020 code;
    the scores themselves are returned too, for the attention loss. Works for any number of frames T.

    A convolution whose kernel is the whole map is a dot product over ``C*h*w``, so it runs as one
    matrix multiply on the flattened map (same weights as the ``Conv2d``; ONNX Runtime runs the
    multiply ~1.4x faster than the equivalent large-kernel convolution). Frames must therefore have
    exactly the input size the model was built for, which the embedder's preprocessing guarantees.
    """

    def __init__(
        self, in_channels: int, map_size: tuple[int, int], vector_dim: int | None = None, mid: int = 256
    ) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(in_channels, mid, kernel_size=map_size)
        self.temporal = nn.Conv1d(mid, 1, kernel_size=3, padding=1)
        self.out_dim = vector_dim or in_channels

    def forward(self, maps: torch.Tensor, vectors: torch.Tensor | None = None) -> HeadOutput:
        if maps.shape[3:] != self.spatial.kernel_size:
            raise ClipError(
                f"frame feature map {tuple(maps.shape[3:])} differs from the attention kernel "
                f"{self.spatial.kernel_size}; feed frames of the model's input size"
            )
        weight = self.spatial.weight.flatten(1)  # [mid, C*h*w]
        s = F.relu(F.linear(maps.flatten(2), weight, self.spatial.bias))  # [B, T, mid]
        scores = F.relu(self.temporal(s.transpose(1, 2))).squeeze(1)  # [B, T]
        attention = scores.softmax(dim=1)
        feature = (attention.unsqueeze(-1) * _frame_vectors(maps, vectors)).sum(dim=1)
        return HeadOutput(feature, attention, None, scores)


class GRURankHead(nn.Module):
    """Residual-attention GRU fusion of "All for One: Frame-wise Rank Loss" (Navaneet et al. 2019, Sec. 2.1, 2.3).

    Frame vectors go through dropout and an FC to ``fc_dim`` (512 and dropout 0.5 in Sec. 3.1; no activation
    after it, as in the paper): ``x_t``. With ``attention`` on, the residual ``r_t = x_t - (1/T) sum_tau x_tau``
    (Eq. 6a) is scored by an MLP, ``w_t = W relu(U r_t + b1) + b2`` (Eq. 6b; ``scorer_layers`` hidden ReLU
    layers, 1 as in the equation, where the text speaks of two), and the GRU's input at step t is the
    weighted running mean ``x^_t = sum_{tau<=t} w_tau x_tau / sum_{k<=t} w_k``. The weights are used as the
    MLP gives them, signed and unnormalised, as Eq. 6b writes them. Guard: where the running sum
    ``S_t = sum_{k<=t} w_k`` is within ``eps`` (1e-2) of 0, it is replaced by ``+-eps`` (its sign; + at 0), so
    ``x^_t`` stays finite; the output bias starts at 1 so every weight starts near 1 and the sums far from 0.
    Without attention (the paper's baseline) the GRU reads ``x_t`` itself.

    The GRU (Eqs. 1a-1d; hidden size ``hidden``: 512 for MARS, 128 for PRID-2011) gives the fused features
    ``f_1..f_T`` (its hidden states; the rank loss uses every one); ``f_T`` is the clip feature. ``attention``
    reports ``w_t / S_T``, each frame's weight in the last running mean (uniform without attention).
    """

    EPS = 1e-2

    def __init__(
        self,
        in_channels: int,
        map_size: tuple[int, int],
        vector_dim: int | None = None,
        fc_dim: int = 512,
        hidden: int = 512,
        mlp_dim: int = 256,
        dropout: float = 0.5,
        attention: bool = True,
        scorer_layers: int = 1,
    ) -> None:
        super().__init__()
        if scorer_layers < 1:
            raise ValueError(f"scorer_layers must be at least 1, got {scorer_layers}")
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(vector_dim or in_channels, fc_dim))
        self.scorer = None
        if attention:
            layers: list[nn.Module] = []
            width = fc_dim
            for _ in range(scorer_layers):
                layers += [nn.Linear(width, mlp_dim), nn.ReLU(inplace=True)]
                width = mlp_dim
            out = nn.Linear(width, 1)
            nn.init.constant_(out.bias, 1.0)
            self.scorer = nn.Sequential(*layers, out)
        self.gru = nn.GRU(fc_dim, hidden, batch_first=True)
        self.out_dim = hidden

    def forward(self, maps: torch.Tensor, vectors: torch.Tensor | None = None) -> HeadOutput:
        x = self.fc(_frame_vectors(maps, vectors))  # [B,T,F]
        if self.scorer is None:
            fused, _ = self.gru(x)
            uniform = torch.full_like(x[..., 0], 1.0 / x.shape[1])
            return HeadOutput(fused[:, -1], uniform, fused, None)
        w = self.scorer(x - x.mean(dim=1, keepdim=True)).squeeze(-1)  # [B,T], Eq. 6b
        running = torch.cumsum(w, dim=1)
        sign = torch.where(running < 0, -1.0, 1.0).to(running.dtype)
        running = torch.where(running.abs() < self.EPS, sign * self.EPS, running)
        u = torch.cumsum(w.unsqueeze(-1) * x, dim=1) / running.unsqueeze(-1)
        fused, _ = self.gru(u)  # [B,T,H]
        return HeadOutput(fused[:, -1], w / running[:, -1:], fused, w)


HEADS: dict[str, type[nn.Module]] = {
    "avg": AvgHead,
    "attention": TemporalAttentionHead,
    "gru_rank": GRURankHead,
}
