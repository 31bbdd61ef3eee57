"""The video re-ID network: frame backbone (maps and frame vectors) -> temporal head -> neck (BNNeck, or none)
(-> classifier in training)."""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import torch
from torch import nn

from models.backbones import build_backbone
from models.errors import ClipError, ModelFileError
from models.heads import HEADS
from models.spec import ArchSpec, InputSpec


class ReIDOutput(NamedTuple):
    """What ``ReIDNet.forward`` returns.

    ``feature``: float[B,D]. In eval mode the post-neck feature (the one to retrieve with); in training mode
    the pre-neck feature (Luo et al. 2019 put metric losses there; the AAAI-2020 code puts them after the
    BN: ``neck_feature``).
    ``attention``: float[B,T], sums to 1 over frames.
    ``logits``: float[B,C] in training when the model has a classifier, else None.
    ``intermediate``: float[B,T,D] fused features of ``gru_rank`` in training, else None.
    ``neck_feature``: float[B,D], the post-neck feature, in training; None in eval mode.
    ``scores``: float[B,T], the head's raw frame scores (attention heads), in training; else None.
    """

    feature: torch.Tensor
    attention: torch.Tensor
    logits: torch.Tensor | None
    intermediate: torch.Tensor | None
    neck_feature: torch.Tensor | None = None
    scores: torch.Tensor | None = None


class BNNeck(nn.Module):
    """Batch-norm neck with a frozen zero bias, and a bias-free classifier (Luo et al. 2019)."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)
        self.bn.bias.requires_grad_(False)
        nn.init.constant_(self.bn.weight, 1.0)
        nn.init.constant_(self.bn.bias, 0.0)
        self.classifier = nn.Linear(dim, num_classes, bias=False) if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        neck = self.bn(feature)
        logits = self.classifier(neck) if self.classifier is not None and self.training else None
        return neck, logits


class PlainNeck(nn.Module):
    """No neck: the head's feature is retrieved as it is; the classifier (when training with cross-entropy)
    is a plain linear layer with bias, as in Gao & Nevatia's code."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(dim, num_classes) if num_classes > 0 else None

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.classifier(feature) if self.classifier is not None and self.training else None
        return feature, logits


NECKS = {"bnneck": BNNeck, "none": PlainNeck}


class ReIDNet(nn.Module):
    """``forward(clips float[B,T,3,H,W]) -> ReIDOutput``; clips are normalised as ``input_spec`` says."""

    def __init__(self, arch: ArchSpec, input_spec: InputSpec) -> None:
        super().__init__()
        if arch.head not in HEADS:
            raise ModelFileError(f"unknown temporal head {arch.head!r}; expected one of {sorted(HEADS)}")
        self.backbone = build_backbone(arch.backbone, arch.last_stride)
        map_size = self.backbone.map_size(input_spec.height, input_spec.width)
        try:
            self.head = HEADS[arch.head](
                self.backbone.out_channels, map_size, vector_dim=self.backbone.vector_dim, **arch.head_options
            )
        except (TypeError, ValueError) as e:
            raise ModelFileError(
                f"head {arch.head!r} options {arch.head_options}: {e}; see models/heads.py for its options"
            ) from None
        if arch.neck not in NECKS:
            raise ModelFileError(f"unknown neck {arch.neck!r}; expected one of {sorted(NECKS)}")
        self.neck = NECKS[arch.neck](self.head.out_dim, arch.num_classes)
        self.arch = replace(arch, feature_dim=self.head.out_dim)
        self.input_spec = input_spec

    def forward(self, clips: torch.Tensor) -> ReIDOutput:
        head = self.head(*self._frames(clips))
        neck, logits = self.neck(head.feature)
        if self.training:
            return ReIDOutput(head.feature, head.attention, logits, head.intermediate, neck, head.scores)
        return ReIDOutput(neck, head.attention, None, None)

    def _frames(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone over every frame of ``clips``: maps ``float[B,T,C,h,w]`` and frame vectors ``float[B,T,V]``."""
        if clips.dim() != 5 or clips.shape[2] != 3:
            raise ClipError(f"expected clips of shape [B,T,3,H,W], got {tuple(clips.shape)}")
        b, t = clips.shape[:2]
        maps = self.backbone(clips.flatten(0, 1))  # [B*T,C,h,w]
        vectors = self.backbone.frame_vectors(maps)  # [B*T,V]
        return maps.reshape(b, t, *maps.shape[1:]), vectors.reshape(b, t, -1)

    def step_features(self, clips: torch.Tensor) -> torch.Tensor:
        """``float[B,T,D]``: the feature after 1, 2, ..., T frames, through the neck as ``forward`` gives it (in
        eval mode the retrieval feature). A head that fuses frame by frame (``gru_rank``) gives its fused
        features f_1..f_T from one pass (All for One, Fig. 2); any other head pools each prefix of the frames
        (the backbone runs once)."""
        maps, vectors = self._frames(clips)
        head = self.head(maps, vectors)
        if head.intermediate is not None:
            steps = head.intermediate
        else:
            prefixes = [self.head(maps[:, :k], vectors[:, :k]).feature for k in range(1, maps.shape[1])]
            steps = torch.stack([*prefixes, head.feature], 1)
        b, t, d = steps.shape
        return self.neck(steps.reshape(b * t, d))[0].reshape(b, t, d)
