"""The jobs done around the training steps of ``trainer.loop.train``, one hook each: the learning-rate
schedule, validation, TensorBoard, ``log.csv``, checkpoints and progress reports.

``train`` calls every hook's methods in the order the hooks are listed, with the loop's ``TrainState``::

    hook.before_train(s)
    for each epoch:
        for each step:
            hook.before_step(s)
            forward, losses, backward, optimiser steps
            hook.after_step(s)
        hook.after_epoch(s)  # s.record: the epoch's row of s.history
    hook.after_train(s)
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.checkpoint import save_checkpoint
from models.reidnet import ReIDNet
from trainer.data.sampling import IdentitySampler
from trainer.recipe import Recipe
from trainer.schedule import scheduled_rate

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
CSV_COLUMNS = ("epoch", "iter", "lr", "loss", "terms", "val_mAP", "val_cmc1", "seconds")


@dataclass
class TrainState:
    """What the loop and its hooks share.

    ``epoch`` and ``iter`` count from 0 (the epoch now running, the step within it); ``history`` holds one
    record per finished epoch, whose ``epoch`` counts from 1. ``lr``, ``loss`` and ``terms`` are the last
    step's learning rate, weighted total loss and weighted loss terms (0-d tensors). ``metrics`` is the
    validation result of the epoch just finished (``evaluate_index``'s dict), None where it was not validated.
    ``bad`` collects the unreadable frame paths met so far.
    """

    recipe: Recipe
    out: Path
    device: str
    amp: bool  # float16 autocast with a loss scale (CUDA only)
    model: ReIDNet
    optimizer: torch.optim.Optimizer
    center_opt: torch.optim.Optimizer
    centers: torch.nn.Parameter  # float[C,D], the centre loss's class centres
    scaler: torch.amp.GradScaler
    sampler: IdentitySampler
    iters: int  # steps per epoch
    provenance: dict[str, Any]  # written into every checkpoint
    start_epoch: int = 0
    epoch: int = 0
    iter: int = 0
    lr: float = 0.0
    loss: float = 0.0
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_map: float = -1.0  # best validation mAP so far; -1 before any validation
    metrics: dict[str, Any] | None = None
    bad: set[str] = field(default_factory=set)

    @property
    def epochs(self) -> int:
        return self.recipe.optim.epochs

    @property
    def record(self) -> dict[str, Any]:
        """The current epoch's record (``history[-1]``): epoch (1-based), loss (mean over its steps), lr (the
        last step's), seconds (the steps' wall time); validation adds val_mAP, val_cmc1, val_rerank_mAP."""
        return self.history[-1]


class HookBase:
    """A job done around the training steps. Each method receives the loop's state; by default it does
    nothing."""

    def before_train(self, s: TrainState) -> None:
        pass

    def before_step(self, s: TrainState) -> None:
        pass

    def after_step(self, s: TrainState) -> None:
        pass

    def after_epoch(self, s: TrainState) -> None:
        pass

    def after_train(self, s: TrainState) -> None:
        pass


class LRScheduler(HookBase):
    """Before every step, sets the network optimiser's learning rate to ``scheduled_rate`` at the fractional
    epoch ``epoch + iter / iters`` (linear warm-up, then step or exponential decay). The centres keep
    ``optim.center_lr``."""

    def before_step(self, s: TrainState) -> None:
        s.lr = scheduled_rate(s.epoch + s.iter / s.iters, s.recipe.optim)
        for group in s.optimizer.param_groups:
            group["lr"] = s.lr


class Validation(HookBase):
    """After every ``every``-th epoch and after the last: ``evaluate()`` (mAP / CMC on the held-out
    identities) into ``s.metrics``, and val_mAP, val_cmc1 (and val_rerank_mAP where re-ranked) into the
    epoch's record. ``s.metrics`` is None after an epoch that is not validated."""

    def __init__(self, every: int, evaluate: Callable[[], dict[str, Any]]) -> None:
        self.every, self.evaluate = every, evaluate

    def after_epoch(self, s: TrainState) -> None:
        done = s.epoch + 1
        s.metrics = None
        if done % self.every and done != s.epochs:
            return
        s.metrics = metrics = self.evaluate()
        s.record.update({"val_mAP": metrics["mAP"], "val_cmc1": metrics["cmc"]["1"]})
        if "rerank" in metrics:  # reported; the model is still selected on the plain mAP
            s.record["val_rerank_mAP"] = metrics["rerank"]["mAP"]


class TensorBoardWriter(HookBase):
    """TensorBoard events under ``out/tensorboard``: train/loss, train/lr and train/<term> at every step
    (x axis: steps since the first epoch, ``epoch * iters + iter``), val/mAP at every validation (x axis: the
    1-based epoch)."""

    writer: Any = None

    def before_train(self, s: TrainState) -> None:
        self.writer = _summary_writer(s.out)

    def after_step(self, s: TrainState) -> None:
        if self.writer:
            step = s.epoch * s.iters + s.iter
            self.writer.add_scalar("train/loss", s.loss, step)
            self.writer.add_scalar("train/lr", s.lr, step)
            for name, value in s.terms.items():
                self.writer.add_scalar(f"train/{name}", value.item(), step)

    def after_epoch(self, s: TrainState) -> None:
        if self.writer and s.metrics is not None:
            self.writer.add_scalar("val/mAP", s.metrics["mAP"], s.epoch + 1)

    def after_train(self, s: TrainState) -> None:
        if self.writer:
            self.writer.close()


class CSVLog(HookBase):
    """``out/log.csv``, a row per epoch (``CSV_COLUMNS``): the 1-based epoch, steps per epoch, the last step's
    lr and terms, the epoch's mean loss, val_mAP and val_cmc1 (empty where not validated), seconds. A new
    run starts the file afresh with its header; with ``append`` (a resumed run) an existing file is
    continued."""

    def __init__(self, append: bool) -> None:
        self.append = append

    def before_train(self, s: TrainState) -> None:
        path = s.out / "log.csv"
        if not (self.append and path.is_file()):
            with path.open("w", newline="") as f:
                csv.writer(f).writerow(CSV_COLUMNS)

    def after_epoch(self, s: TrainState) -> None:
        r = s.record
        with (s.out / "log.csv").open("a", newline="") as f:
            csv.writer(f).writerow(
                [
                    r["epoch"],
                    s.iters,
                    f"{s.lr:.3e}",
                    f"{r['loss']:.5f}",
                    json.dumps({k: round(v.item(), 5) for k, v in s.terms.items()}),
                    r.get("val_mAP", ""),
                    r.get("val_cmc1", ""),
                    f"{r['seconds']:.1f}",
                ]
            )


class BestCheckpointer(HookBase):
    """``out/best.pt``: the network after each validation whose mAP beats ``s.best_map`` (provenance with the
    1-based epoch and the validation metrics). After training, where there is still no ``best.pt`` (no
    validation identities), the last network with the last epoch."""

    def after_epoch(self, s: TrainState) -> None:
        if s.metrics is not None and s.metrics["mAP"] > s.best_map:
            s.best_map = s.metrics["mAP"]
            save_checkpoint(
                s.model, s.out / "best.pt", s.provenance | {"epoch": s.epoch + 1, "metrics": {"val": s.metrics}}
            )

    def after_train(self, s: TrainState) -> None:
        if not (s.out / "best.pt").is_file():
            save_checkpoint(s.model, s.out / "best.pt", s.provenance | {"epoch": s.epochs})


class Checkpointer(HookBase):
    """After every epoch: ``out/last.pt`` (a crosscam checkpoint, provenance with the 1-based epoch) and
    ``out/STATE_FILE``, what ``load_state`` resumes from: the number of finished epochs, the network's and
    both optimisers' state, the centres, the best validation mAP and the history."""

    def after_epoch(self, s: TrainState) -> None:
        save_checkpoint(s.model, s.out / "last.pt", s.provenance | {"epoch": s.epoch + 1})
        torch.save(
            {
                "epoch": s.epoch + 1,
                "model": s.model.state_dict(),
                "optimizer": s.optimizer.state_dict(),
                "center_optimizer": s.center_opt.state_dict(),
                "centers": s.centers.detach(),
                "best_map": s.best_map,
                "history": s.history,
            },
            s.out / STATE_FILE,
        )


class Progress(HookBase):
    """After every step, ``callback({epoch, iter, iters, epochs, loss, lr})``: epoch and iter 0-based, loss the
    step's weighted total."""

    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback = callback

    def after_step(self, s: TrainState) -> None:
        self.callback(
            {"epoch": s.epoch, "iter": s.iter, "iters": s.iters, "epochs": s.epochs, "loss": s.loss, "lr": s.lr}
        )


def load_state(s: TrainState) -> bool:
    """Continue from ``out/STATE_FILE`` where there is one (``Checkpointer`` writes it): the network, both
    optimisers, the centres, ``best_map`` and ``history`` as they were, ``start_epoch`` the number of
    finished epochs, and the sampler drawing from a generator seeded with ``[seed, start_epoch]``. Returns
    whether there was a state to load."""
    path = s.out / STATE_FILE
    if not path.is_file():
        return False
    state = torch.load(path, map_location=s.device, weights_only=False)
    s.model.load_state_dict(state["model"])
    s.optimizer.load_state_dict(state["optimizer"])
    s.center_opt.load_state_dict(state["center_optimizer"])
    with torch.no_grad():
        s.centers.copy_(state["centers"])
    s.start_epoch, s.best_map, s.history = state["epoch"], state["best_map"], state["history"]
    s.sampler.rng = np.random.default_rng([s.recipe.seed, s.start_epoch])
    log.info("resumed from %s at epoch %d", path, s.start_epoch)
    return True


def _summary_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency; this guards a broken install, not a normal one
        log.warning("tensorboard is not importable; writing only log.csv")
        return None
    return SummaryWriter(str(out / "tensorboard"))
