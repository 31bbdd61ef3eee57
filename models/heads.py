"""Temporal heads: a clip's frames -> one clip feature.

A head's ``forward(maps, vectors=None)`` takes the frames' feature maps ``float[B,T,C,h,w]`` and their
frame vectors ``float[B,T,V]`` (``Backbone.frame_vectors``: global average pooling of the maps unless the
backbone has a frame head, as OSNet's fc). Heads pool the vectors; the attention head scores frames on the
maps. ``vectors`` defaults to the maps' global average pooling.

Every head returns ``(feature float[B,D], attention float[B,T], intermediate float[B,T,D] | None)``;
attention sums to 1 over frames for every head (uniform for ``avg``), so the embedder can always pick
the best-weighted frame as the thumbnail. Pooling lives in the model so an export is the whole thing.
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
    intermediate: torch.Tensor | None  # float[B,T,D] (gru_rank in training), else None


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
    vectors ``v_t`` (``gap(x_t)`` for a backbone without a frame head).
    Works for any number of frames T.

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
        return HeadOutput(feature, attention, None)


class GRURankHead(nn.Module):
    """Residual-attention GRU fusion of "All for One: Frame-wise Rank Loss" (Navaneet et al.).

    Frame vectors go through dropout 0.5 and an FC to ``fc_dim``: ``x_t``. The residual
    ``r_t = x_t - mean_t(x)`` is scored by a two-hidden-layer ReLU MLP, ``s_t``; with
    ``w_t = exp(s_t)`` the GRU's input at step t is the weighted running mean
    ``u_t = sum_{i<=t} w_i x_i / sum_{i<=t} w_i``. The GRU's hidden states ``f_1..f_T`` are the
    intermediate fused features (the rank loss uses every one); ``f_T`` is the clip feature.
    Attention is ``softmax_t(s_t)``, the weight each frame has in the final running mean.
    """

    def __init__(
        self,
        in_channels: int,
        map_size: tuple[int, int],
        vector_dim: int | None = None,
        fc_dim: int = 512,
        hidden: int = 512,
        mlp_dim: int = 256,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(vector_dim or in_channels, fc_dim), nn.ReLU(inplace=True)
        )
        self.scorer = nn.Sequential(
            nn.Linear(fc_dim, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, mlp_dim),
            nn.ReLU(inplace=True),
            nn.Linear(mlp_dim, 1),
        )
        self.gru = nn.GRU(fc_dim, hidden, batch_first=True)
        self.out_dim = hidden

    def forward(self, maps: torch.Tensor, vectors: torch.Tensor | None = None) -> HeadOutput:
        x = self.fc(_frame_vectors(maps, vectors))  # [B,T,F]
        s = self.scorer(x - x.mean(dim=1, keepdim=True)).squeeze(-1)  # [B,T]
        w = torch.exp(s - s.max(dim=1, keepdim=True).values)  # stable; the ratio is unchanged
        u = torch.cumsum(w.unsqueeze(-1) * x, dim=1) / torch.cumsum(w, dim=1).unsqueeze(-1)
        fused, _ = self.gru(u)  # [B,T,H]
        return HeadOutput(fused[:, -1], s.softmax(dim=1), fused)


HEADS: dict[str, type[nn.Module]] = {
    "avg": AvgHead,
    "attention": TemporalAttentionHead,
    "gru_rank": GRURankHead,
}
