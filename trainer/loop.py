"""The training loop: P x K batches of augmented clips, the recipe's losses, warm-up and step decay,
mixed precision on CUDA, validation on held-out identities, checkpoints with provenance, resume."""

from __future__ import annotations

import csv
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from models.architectures import arch_spec
from models.backends.torch_runtime import TorchEmbedder
from models.checkpoint import build_model, load_checkpoint, save_checkpoint
from models.errors import ConfigError
from models.preprocess import preprocess
from models.reidnet import ReIDNet
from models.spec import InputSpec, ModelSpec
from trainer import losses
from trainer.data.clips import BadFrames, read_clip
from trainer.data.index import DatasetError, DatasetIndex, Tracklet
from trainer.data.sampling import IdentitySampler, clip_indices
from trainer.data.transforms import Augment, augment_clip
from trainer.evaluate import evaluate_index
from trainer.recipe import Recipe
from trainer.schedule import scheduled_rate
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


def loss_terms(
    out, batch: Batch, recipe: Recipe, model: ReIDNet, centers: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The recipe's weighted loss terms (only those with a non-zero weight).

    Cross-entropy acts on the classifier's logits; triplet, centre and OSM losses on the feature
    ``loss.metric_feature`` names (before or after the BNNeck); the attention loss on the head's raw frame
    scores or its softmaxed weights (``loss.attention_input``); the rank loss on the fused features after each
    frame (``gru_rank``), with batch-hard triplet on the last one (All for One, Eq. 5)."""
    w, y = recipe.loss, batch.labels
    terms: dict[str, torch.Tensor] = {}
    if w.xent and out.logits is not None:
        terms["xent"] = w.xent * losses.cross_entropy_label_smooth(out.logits.float(), y, w.label_smooth)
    post_bn = w.metric_feature == "post_bn" and out.neck_feature is not None
    feat = (out.neck_feature if post_bn else out.feature).float()
    if w.triplet:
        terms["triplet"] = w.triplet * losses.batch_hard_triplet(feat, y, w.triplet_margin, w.triplet_metric)
    if w.center and centers is not None:
        terms["center"] = w.center * losses.center_loss(feat, y, centers)
    if w.osm:
        vectors = centers if w.osm_class_vectors == "centers" else model.neck.classifier.weight
        terms["osm"] = w.osm * losses.osm_caa_loss(feat, y, vectors, w.osm_sigma, w.osm_alpha, w.osm_l)
    if w.attention:
        frame_values = out.scores if w.attention_input == "scores" and out.scores is not None else out.attention
        terms["attention"] = w.attention * losses.attention_loss(frame_values.float(), batch.erased)
    if w.rank and out.intermediate is not None:
        terms["rank"] = w.rank * losses.frame_rank_loss(out.intermediate.float(), y, w.rank_detach_thresholds)
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
    ``log.csv``, TensorBoard events under ``tensorboard/`` and ``recipe.yaml`` into ``out_dir``.
    """
    from models.devices import resolve_torch_device

    out = Path(out_dir)
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
    spec_input = model.input_spec
    dim = model.arch.feature_dim
    centers = torch.nn.Parameter(torch.randn(len(mapping), dim, device=device) * 0.01)
    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=recipe.optim.lr, weight_decay=recipe.optim.weight_decay
    )
    center_opt = torch.optim.SGD([centers], lr=recipe.optim.center_lr)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    sampler = IdentitySampler(labels, recipe.sampler.p, recipe.sampler.k, seed=recipe.seed)
    iters = recipe.optim.iters_per_epoch or max(1, len(sampler))
    start_epoch, best_map, history = 0, -1.0, []
    state_path = out / "state.pt"
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        center_opt.load_state_dict(state["center_optimizer"])
        with torch.no_grad():
            centers.copy_(state["centers"])
        start_epoch, best_map, history = state["epoch"], state["best_map"], state["history"]
        sampler.rng = np.random.default_rng([recipe.seed, start_epoch])
        log.info("resumed from %s at epoch %d", state_path, start_epoch)
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    dataset = TrainClips(train_tracklets, labels, recipe, spec_input)
    writer = _tensorboard(out)
    bad_total: set[str] = set()
    provenance = {
        "recipe": recipe.model_dump(mode="json"),
        "dataset": index.name,
        "data_root": index.root,
        "train_identities": len(mapping),
        "val_identities": len(val_index.query),
        "trained": True,
    }
    csv_path = out / "log.csv"
    new_csv = not csv_path.is_file() or not resume
    with csv_path.open("w" if new_csv else "a", newline="") as f:
        rows = csv.writer(f)
        if new_csv:
            rows.writerow(["epoch", "iter", "lr", "loss", "terms", "val_mAP", "val_cmc1", "seconds"])
        for epoch in range(start_epoch, recipe.optim.epochs):
            model.train()
            loader = torch.utils.data.DataLoader(
                dataset,
                batch_sampler=_Batches(sampler, iters, recipe.seed, epoch),
                collate_fn=_collate,
                num_workers=recipe.data.workers,
                pin_memory=device.startswith("cuda"),
            )
            t0, running = time.perf_counter(), []
            for it, batch in enumerate(loader):
                lr = scheduled_rate(epoch + it / iters, recipe.optim)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                bad_total.update(batch.bad)
                clips, y = batch.clips.to(device, non_blocking=True), batch.labels.to(device)
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    out_ = model(clips)
                terms = loss_terms(out_, Batch(clips, y, batch.erased.to(device), []), recipe, model, centers)
                total = sum(terms.values())
                optimizer.zero_grad(set_to_none=True)
                center_opt.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                optimizer_step(scaler, optimizer, center_opt, centers, recipe.loss.center)
                running.append(total.item())
                step = epoch * iters + it
                if writer:
                    writer.add_scalar("train/loss", total.item(), step)
                    writer.add_scalar("train/lr", lr, step)
                    for name, value in terms.items():
                        writer.add_scalar(f"train/{name}", value.item(), step)
                if on_progress:
                    on_progress(
                        {
                            "epoch": epoch,
                            "iter": it,
                            "iters": iters,
                            "epochs": recipe.optim.epochs,
                            "loss": total.item(),
                            "lr": lr,
                        }
                    )
            record: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": float(np.mean(running)),
                "lr": lr,
                "seconds": time.perf_counter() - t0,
            }
            last_epoch = epoch + 1 == recipe.optim.epochs
            if val_index.query and ((epoch + 1) % recipe.eval.every == 0 or last_epoch):
                metrics = validate(model, val_index, recipe, device)
                record |= {"val_mAP": metrics["mAP"], "val_cmc1": metrics["cmc"]["1"]}
                if "rerank" in metrics:  # reported; the model is still selected on the plain mAP
                    record["val_rerank_mAP"] = metrics["rerank"]["mAP"]
                if writer:
                    writer.add_scalar("val/mAP", metrics["mAP"], epoch + 1)
                if metrics["mAP"] > best_map:
                    best_map = metrics["mAP"]
                    save_checkpoint(
                        model, out / "best.pt", provenance | {"epoch": epoch + 1, "metrics": {"val": metrics}}
                    )
            history.append(record)
            rows.writerow(
                [
                    epoch + 1,
                    iters,
                    f"{lr:.3e}",
                    f"{record['loss']:.5f}",
                    json.dumps({k: round(v.item(), 5) for k, v in terms.items()}),
                    record.get("val_mAP", ""),
                    record.get("val_cmc1", ""),
                    f"{record['seconds']:.1f}",
                ]
            )
            f.flush()
            save_checkpoint(model, out / "last.pt", provenance | {"epoch": epoch + 1})
            torch.save(
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "center_optimizer": center_opt.state_dict(),
                    "centers": centers.detach(),
                    "best_map": best_map,
                    "history": history,
                },
                state_path,
            )
    if writer:
        writer.close()
    if not (out / "best.pt").is_file():  # no validation identities: the last model is the choice
        save_checkpoint(model, out / "best.pt", provenance | {"epoch": recipe.optim.epochs})
    if bad_total:
        log.warning("%d unreadable frames were skipped, e.g. %s", len(bad_total), sorted(bad_total)[:3])
    return TrainResult(out / "best.pt", out / "last.pt", best_map, recipe.optim.epochs, history, len(bad_total))


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


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; this guards a broken install, not a normal one
        log.warning("tensorboard is not importable; writing only log.csv")
        return None
    return SummaryWriter(str(out / "tensorboard"))
