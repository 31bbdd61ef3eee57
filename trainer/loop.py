"""The training loop: P x K batches of augmented clips, the recipe's losses, warm-up and step decay,
mixed precision on CUDA, validation on held-out identities, checkpoints with provenance, resume."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from crosscam.errors import ConfigError
from models.architectures import arch_spec
from models.backends.torch_runtime import TorchEmbedder
from models.checkpoint import build_model, load_checkpoint
from models.errors import ModelFileError
from models.preprocess import preprocess
from models.reidnet import ReIDNet, ReIDOutput
from models.spec import InputSpec, ModelSpec
from models.zoo import missing_file_error
from trainer import losses
from trainer.data.clips import BadFrames, read_clip
from trainer.data.index import DatasetError, DatasetIndex, Tracklet
from trainer.data.sampling import IdentitySampler, clip_indices
from trainer.data.transforms import Augment, augment_clip
from trainer.evaluate import evaluate_index
from trainer.hooks import (
    BestCheckpointer,
    Checkpointer,
    CSVLog,
    HookBase,
    LRScheduler,
    Progress,
    TensorBoardWriter,
    TrainState,
    Validation,
    load_state,
)
from trainer.recipe import LossRecipe, Recipe
from trainer.validation import hold_out

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    clips: torch.Tensor  # float[B,T,3,H,W], normalised
    labels: torch.Tensor  # long[B], 0..C-1
    erased: torch.Tensor  # bool[B,T]
    bad: list[str]  # unreadable frame paths met while reading this batch


class TrainClips(torch.utils.data.Dataset):
    """Item ``(i, seed)``: a sampled, augmented, normalised clip of training tracklet ``i``."""

    def __init__(
        self, tracklets: tuple[Tracklet, ...], labels: list[int], recipe: Recipe, input_spec: InputSpec
    ) -> None:
        self.tracklets, self.labels, self.input = tracklets, labels, input_spec
        self.frames, self.mode = recipe.model.frames, recipe.data.clip_sampling
        self.augment = Augment(**recipe.augment.model_dump())
        self.same_label: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            self.same_label.setdefault(label, []).append(i)

    def __len__(self) -> int:
        return len(self.tracklets)

    def __getitem__(self, item: tuple[int, int]) -> tuple[np.ndarray, int, np.ndarray, list[str]]:
        i, seed = item
        rng = np.random.default_rng(seed)
        bad = BadFrames()
        spec = self.input
        for j in [i] + [k for k in self.same_label[self.labels[i]] if k != i]:
            t = self.tracklets[j]
            clip = (
                read_clip(t, clip_indices(len(t.paths), self.frames, self.mode, rng), spec.height, spec.width, bad)
                if t.paths
                else None
            )
            if clip is not None:
                clip, erased = augment_clip(clip, self.augment, rng)
                return preprocess(clip[None], spec)[0], self.labels[i], erased, sorted(bad.paths)
        raise DatasetError(
            f"no readable frame in any tracklet of identity {self.tracklets[i].pid} "
            f"(e.g. {self.tracklets[i].paths[:1]}); check the data set with `crosscam data inspect`"
        )


def _collate(items) -> Batch:
    clips, labels, erased, bad = zip(*items, strict=True)
    return Batch(
        torch.from_numpy(np.stack(clips)),
        torch.tensor(labels),
        torch.from_numpy(np.stack(erased)),
        [p for b in bad for p in b],
    )


class _Batches(torch.utils.data.Sampler):
    """P x K index batches, each index paired with its own augmentation seed (reproducible for any worker count)."""

    def __init__(self, sampler: IdentitySampler, iters: int, seed: int, epoch: int) -> None:
        self.sampler, self.iters, self.seed, self.epoch = sampler, iters, seed, epoch

    def __len__(self) -> int:
        return self.iters

    def __iter__(self):
        produced = 0
        while produced < self.iters:
            for batch in self.sampler:
                yield [(i, hash((self.seed, self.epoch, produced, n)) & 0x7FFFFFFF) for n, i in enumerate(batch)]
                produced += 1
                if produced == self.iters:
                    return


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class LossInputs:
    """What the loss terms read from one training batch: the network's output, the batch (labels ``long[B]``,
    erased frames ``bool[B,T]``), the recipe's loss section, the network (for the classifier's weights), the
    centres ``float[C,D]`` (None where there are none) and ``metric_feature float[B,D]``, in float32: the
    feature ``loss.metric_feature`` names, before the BNNeck (``out.feature``) or after it
    (``out.neck_feature``; the pre-BN feature where the network has no neck)."""

    out: ReIDOutput
    batch: Batch
    loss: LossRecipe
    model: ReIDNet | None
    centers: torch.Tensor | None
    metric_feature: torch.Tensor


def _xent(x: LossInputs) -> torch.Tensor | None:
    """Cross-entropy with label smoothing ``loss.label_smooth`` on the classifier's logits ``float[B,C]``
    (Szegedy et al. 2016; Luo et al. 2019): ``losses.cross_entropy_label_smooth``. None without a
    classifier."""
    if x.out.logits is None:
        return None
    return losses.cross_entropy_label_smooth(x.out.logits.float(), x.batch.labels, x.loss.label_smooth)


def _triplet(x: LossInputs) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans, Beyer, Leibe 2017) on the metric feature, margin
    ``loss.triplet_margin``, ``loss.triplet_metric`` distance: ``losses.batch_hard_triplet``."""
    return losses.batch_hard_triplet(x.metric_feature, x.batch.labels, x.loss.triplet_margin, x.loss.triplet_metric)


def _center(x: LossInputs) -> torch.Tensor | None:
    """Center loss (Wen et al. 2016) ``(1/B) sum_i ||f_i - c_{y_i}||^2`` on the metric feature:
    ``losses.center_loss``. None without centres."""
    if x.centers is None:
        return None
    return losses.center_loss(x.metric_feature, x.batch.labels, x.centers)


def _osm(x: LossInputs) -> torch.Tensor:
    """Online soft mining with class-aware attention (Wang et al. 2019) on the metric feature:
    ``losses.osm_caa_loss``. The class vectors are the centre-loss centres (``loss.osm_class_vectors:
    centers``, the AAAI-2020 paper's "CL centers") or the classifier's weights ``float[C,D]``."""
    vectors = x.centers if x.loss.osm_class_vectors == "centers" else x.model.neck.classifier.weight
    return losses.osm_caa_loss(
        x.metric_feature, x.batch.labels, vectors, x.loss.osm_sigma, x.loss.osm_alpha, x.loss.osm_l
    )


def _attention(x: LossInputs) -> torch.Tensor:
    """The AAAI-2020 attention loss ``(1/B) sum_b sum_t s_bt e_bt`` over the randomly erased frames:
    ``losses.attention_loss``. ``s float[B,T]`` are the head's raw ReLU'd frame scores
    (``loss.attention_input: scores``, where the head has them) or its softmaxed attention weights."""
    scores = x.out.scores
    values = scores if x.loss.attention_input == "scores" and scores is not None else x.out.attention
    return losses.attention_loss(values.float(), x.batch.erased)


def _rank(x: LossInputs) -> torch.Tensor | None:
    """All for One's rank term (Navaneet et al. 2019, Eq. 5) ``sum_t (t/T) L_t^rank`` on the fused features
    after each frame ``float[B,T,D]``: ``losses.frame_rank_loss``. None where the head gives none (only
    ``gru_rank`` does). Eq. 5's batch-hard triplet on the last fused feature is the ``triplet`` term."""
    if x.out.intermediate is None:
        return None
    return losses.frame_rank_loss(x.out.intermediate.float(), x.batch.labels, x.loss.rank_detach_thresholds)


LOSS_TERMS: dict[str, Callable[[LossInputs], torch.Tensor | None]] = {
    "xent": _xent,
    "triplet": _triplet,
    "center": _center,
    "osm": _osm,
    "attention": _attention,
    "rank": _rank,
}
"""Loss term name (also the name of its weight in the recipe's ``loss`` section) -> its unweighted value
(a 0-d tensor), or None where the network's output cannot give it. The total loss sums the weighted terms in
this order."""


def loss_terms(
    out: ReIDOutput, batch: Batch, recipe: Recipe, model: ReIDNet | None, centers: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The recipe's weighted loss terms ``weight * LOSS_TERMS[name](...)``, each a 0-d tensor, for the terms
    with a non-zero weight that the output can give; in ``LOSS_TERMS``'s order.

    Cross-entropy acts on the classifier's logits; triplet, centre and OSM losses on the feature
    ``loss.metric_feature`` names (before or after the BNNeck); the attention loss on the head's raw frame
    scores or its softmaxed weights (``loss.attention_input``); the rank loss on the fused features after each
    frame (``gru_rank``), with batch-hard triplet on the last one (All for One, Eq. 5)."""
    w = recipe.loss
    post_bn = w.metric_feature == "post_bn" and out.neck_feature is not None
    x = LossInputs(out, batch, w, model, centers, (out.neck_feature if post_bn else out.feature).float())
    terms: dict[str, torch.Tensor] = {}
    for name, term in LOSS_TERMS.items():
        weight = getattr(w, name)
        if weight and (value := term(x)) is not None:
            terms[name] = weight * value
    return terms


def check_losses(recipe: Recipe, model: ReIDNet) -> None:
    """Refuse loss settings the network cannot serve, before any training: a term that would silently do
    nothing (the rank loss without fused features per frame) or be unbounded (the attention loss on a head
    whose frame scores are signed)."""
    w, head = recipe.loss, model.arch.head
    if w.rank and head != "gru_rank":
        raise ConfigError(
            f"{recipe.name}: loss.rank needs the fused feature after every frame, which only the gru_rank head "
            f"gives; {model.arch.name!r} has the {head!r} head (set loss.rank: 0 or a *_gru_rank architecture)"
        )
    if w.attention and w.attention_input == "scores" and head != "attention":
        raise ConfigError(
            f"{recipe.name}: loss.attention on raw scores needs the temporal attention head's ReLU'd scores; "
            f"the {head!r} head of {model.arch.name!r} has none that are bounded below (use an *_attention "
            "architecture, or loss.attention_input: weights)"
        )


@dataclass(frozen=True)
class TrainResult:
    best: Path
    last: Path
    best_val_map: float
    epochs: int
    history: list[dict[str, Any]]
    bad_frames: int


def _relabel(tracklets: tuple[Tracklet, ...]) -> tuple[list[int], dict[int, int]]:
    mapping = {pid: i for i, pid in enumerate(sorted({t.pid for t in tracklets}))}
    return [mapping[t.pid] for t in tracklets], mapping


def build_for_recipe(recipe: Recipe, num_classes: int) -> ReIDNet:
    """The network a recipe trains: its architecture (with the recipe's head options, neck and last stride), or
    ``model.init_checkpoint``'s network with a new classifier. From a checkpoint, every weight whose name and
    shape still fit is loaded; a head option that changes a layer's size (e.g. the GRU's hidden size, MARS 512
    -> PRID-2011 128 in All for One) starts that layer afresh."""
    m = recipe.model
    if m.init_checkpoint:
        source, spec = load_checkpoint(m.init_checkpoint)
        arch = replace(
            spec.arch,
            num_classes=num_classes,
            head_options=spec.arch.head_options | m.head_options,
            neck=m.neck or spec.arch.neck,
        )
        model = build_model(arch, replace(spec.input, frames=m.frames))
        own = model.state_dict()
        state = {
            k: v
            for k, v in source.state_dict().items()
            if k in own and own[k].shape == v.shape and not k.startswith("neck.classifier")
        }
        fresh = sorted({k.rsplit(".", 1)[0] for k in own if k not in state and not k.startswith("neck.classifier")})
        if fresh:
            log.info("%s: layers that start afresh: %s", m.init_checkpoint, ", ".join(fresh))
        model.load_state_dict(state, strict=False)
        return model
    arch, input_spec = arch_spec(m.arch, num_classes=num_classes)
    if m.pretrained not in (None, "imagenet") and not Path(m.pretrained).is_file():
        known = missing_file_error(Path(m.pretrained))
        raise ModelFileError(
            f"{recipe.name}: {known or f'{m.pretrained}: pre-trained weights file not found'}; "
            "or pass --set model.pretrained=PATH (a path relative to the working directory)"
        )
    if m.pretrained is None and arch.backbone != "tiny":
        log.warning(
            "%s: model.pretrained and model.init_checkpoint are both unset: the %s backbone starts from random "
            "weights (set model.init_checkpoint to fine-tune a trained model)",
            recipe.name,
            arch.backbone,
        )
    arch = replace(arch, head_options=dict(m.head_options), neck=m.neck or "bnneck")
    if m.last_stride:
        arch = replace(arch, last_stride=m.last_stride)
    sizes = {k: v for k, v in (("height", m.height), ("width", m.width)) if v}
    input_spec = replace(input_spec, frames=m.frames, **sizes)
    return build_model(arch, input_spec, pretrained=m.pretrained)


def optimizer_step(
    scaler: torch.amp.GradScaler,
    optimizer: torch.optim.Optimizer,
    center_opt: torch.optim.Optimizer,
    centers: torch.Tensor,
    center_weight: float,
) -> None:
    """Step the network's optimiser and the centre loss's own, after ``scaler.scale(loss).backward()``.

    Under mixed precision every gradient, the centres' too, carries the loss scale (65,536 at first), so
    both optimisers step through ``scaler``: it unscales their gradients and skips a step whose gradients
    overflowed. The centres learn at ``center_lr``, not ``lr * center_weight``, so their gradient is divided
    by the loss weight."""
    if centers.grad is not None and center_weight:
        scaler.unscale_(center_opt)
        centers.grad.mul_(1.0 / center_weight)
        scaler.step(center_opt)
    scaler.step(optimizer)
    scaler.update()


def train(
    recipe: Recipe,
    index: DatasetIndex,
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train per ``recipe`` on ``index.train``; select the model on held-out identities.

    Writes ``last.pt`` / ``best.pt`` (crosscam checkpoints with provenance), ``state.pt`` (to resume),
    ``log.csv``, TensorBoard events under ``tensorboard/`` and ``recipe.yaml`` into ``out_dir``. With
    ``resume``, continues after the last epoch ``state.pt`` records. ``on_progress`` receives a report after
    every step (``trainer.hooks.Progress``).
    """
    s, dataset, val_index = _build_state(recipe, index, Path(out_dir), device)
    if resume:
        load_state(s)
    (s.out / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    hooks = build_hooks(s, val_index, resume, on_progress)
    for hook in hooks:
        hook.before_train(s)
    for epoch in range(s.start_epoch, recipe.optim.epochs):
        s.epoch = epoch
        _run_epoch(s, dataset, hooks)
        for hook in hooks:
            hook.after_epoch(s)
    for hook in hooks:
        hook.after_train(s)
    if s.bad:
        log.warning("%d unreadable frames were skipped, e.g. %s", len(s.bad), sorted(s.bad)[:3])
    return TrainResult(s.out / "best.pt", s.out / "last.pt", s.best_map, recipe.optim.epochs, s.history, len(s.bad))


def _build_state(
    recipe: Recipe, index: DatasetIndex, out: Path, device: str
) -> tuple[TrainState, TrainClips, DatasetIndex]:
    """The loop's state before its first epoch, the training clips and the held-out identities' index.

    Seeds Python's, NumPy's and torch's generators with ``recipe.seed``; from torch's, the network's initial
    weights are drawn first, then the centres ``float[C,D]`` (``N(0, 0.01^2)``)."""
    from models.devices import resolve_torch_device

    out.mkdir(parents=True, exist_ok=True)
    device = resolve_torch_device(device)
    use_amp = recipe.amp and device.startswith("cuda")
    seed_everything(recipe.seed)
    train_tracklets, val_index = hold_out(index, recipe.data.val_identities, recipe.seed)
    if not train_tracklets:
        raise DatasetError(f"{index.root}: no training tracklets left; check the data set")
    labels, mapping = _relabel(train_tracklets)
    model = build_for_recipe(recipe, num_classes=len(mapping)).to(device)
    check_losses(recipe, model)
    centers = torch.nn.Parameter(torch.randn(len(mapping), model.arch.feature_dim, device=device) * 0.01)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=recipe.optim.lr, weight_decay=recipe.optim.weight_decay
    )
    center_opt = torch.optim.SGD([centers], lr=recipe.optim.center_lr)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    sampler = IdentitySampler(labels, recipe.sampler.p, recipe.sampler.k, seed=recipe.seed)
    provenance = {
        "recipe": recipe.model_dump(mode="json"),
        "dataset": index.name,
        "data_root": index.root,
        "train_identities": len(mapping),
        "val_identities": len(val_index.query),
        "trained": True,
    }
    state = TrainState(
        recipe=recipe,
        out=out,
        device=device,
        amp=use_amp,
        model=model,
        optimizer=optimizer,
        center_opt=center_opt,
        centers=centers,
        scaler=scaler,
        sampler=sampler,
        iters=recipe.optim.iters_per_epoch or max(1, len(sampler)),
        provenance=provenance,
    )
    return state, TrainClips(train_tracklets, labels, recipe, model.input_spec), val_index


def build_hooks(
    s: TrainState,
    val_index: DatasetIndex,
    resume: bool,
    on_progress: Callable[[dict[str, Any]], None] | None,
) -> list[HookBase]:
    """The hooks of a training run, in the order they run: the lr schedule; validation on ``val_index``
    (where it has queries) every ``eval.every`` epochs and after the last; TensorBoard; ``best.pt``;
    ``log.csv`` (continued where ``resume``); ``last.pt`` and ``state.pt``; ``on_progress`` reports."""
    hooks: list[HookBase] = [LRScheduler()]
    if val_index.query:
        hooks.append(Validation(s.recipe.eval.every, partial(validate, s.model, val_index, s.recipe, s.device)))
    hooks += [TensorBoardWriter(), BestCheckpointer(), CSVLog(append=resume), Checkpointer()]
    if on_progress:
        hooks.append(Progress(on_progress))
    return hooks


def _run_epoch(s: TrainState, dataset: TrainClips, hooks: list[HookBase]) -> None:
    """Epoch ``s.epoch``: ``s.iters`` steps, each between the hooks' ``before_step`` and ``after_step``; then
    appends the epoch's record to ``s.history``."""
    s.model.train()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=_Batches(s.sampler, s.iters, s.recipe.seed, s.epoch),
        collate_fn=_collate,
        num_workers=s.recipe.data.workers,
        pin_memory=s.device.startswith("cuda"),
    )
    t0, step_losses = time.perf_counter(), []
    for it, batch in enumerate(loader):
        s.iter = it
        for hook in hooks:
            hook.before_step(s)
        run_step(s, batch)
        step_losses.append(s.loss)
        for hook in hooks:
            hook.after_step(s)
    s.history.append(
        {
            "epoch": s.epoch + 1,
            "loss": float(np.mean(step_losses)),
            "lr": s.lr,
            "seconds": time.perf_counter() - t0,
        }
    )


def run_step(s: TrainState, batch: Batch) -> None:
    """One optimisation step on ``batch`` (on the CPU; moved to ``s.device`` here) at the learning rate the
    optimiser holds: forward (float16 autocast where ``s.amp``), the recipe's loss terms, backward through the
    loss scale, both optimisers' steps. Leaves the terms in ``s.terms``, their sum in ``s.loss`` and the
    batch's unreadable frames in ``s.bad``."""
    s.bad.update(batch.bad)
    clips, y = batch.clips.to(s.device, non_blocking=True), batch.labels.to(s.device)
    with torch.autocast("cuda", dtype=torch.float16, enabled=s.amp):
        out = s.model(clips)
    s.terms = loss_terms(out, Batch(clips, y, batch.erased.to(s.device), []), s.recipe, s.model, s.centers)
    total = sum(s.terms.values())
    s.optimizer.zero_grad(set_to_none=True)
    s.center_opt.zero_grad(set_to_none=True)
    s.scaler.scale(total).backward()
    optimizer_step(s.scaler, s.optimizer, s.center_opt, s.centers, s.recipe.loss.center)
    s.loss = total.item()


def validate(model: ReIDNet, val_index: DatasetIndex, recipe: Recipe, device: str) -> dict[str, Any]:
    """mAP / CMC on the held-out identities, with the model in eval mode (restored to train after)."""
    was_training = model.training
    model.eval()
    # no model id needed here: hashing every weight at each validation would be wasted work
    embedder = TorchEmbedder(model, ModelSpec(arch=model.arch, input=model.input_spec), device=device, fp16=False)
    try:
        return evaluate_index(
            embedder,
            val_index,
            recipe.model.frames,
            batch_clips=recipe.eval.batch_clips,
            distance=recipe.eval.distance,
            rerank=recipe.eval.rerank,
        )
    finally:
        # the embedder lays the backbone out channels-last for speed; training goes on in the layout it began in
        model.float().train(was_training)
        model.backbone.to(memory_format=torch.contiguous_format)
