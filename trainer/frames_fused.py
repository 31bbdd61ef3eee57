"""Accuracy as frames arrive: rank-1 and mAP of a model's feature after 1, 2, ..., T frames of each tracklet.

"All for One: Frame-wise Rank Loss" (Navaneet et al. 2019, Sec. 3.4, Fig. 2) plots rank-1 accuracy against
the number of frames the GRU has fused, for a model trained with and without the rank loss; the rank loss
is meant to make each intermediate fused feature better than the ones before it. Here any crosscam model
gives the curve: ``ReIDNet.step_features`` returns the retrieval feature after each prefix of a clip (the
GRU's fused features f_1..f_T of one pass for ``gru_rank``; the head run on each prefix otherwise).

Two curves per model:

- ``both``: query and gallery tracklets both after t frames (the paper's figure);
- ``query``: the query after t frames against the gallery's full T-frame features, what a live system sees
  as a person's tracklet grows in front of a camera while the gallery holds people seen in full.

At t = T the two agree. Each tracklet contributes its first dense clip of T frames; a tracklet shorter than
T has its frames repeated in order (``dense_clips``), so its later steps fuse frames already seen.

For ``gru_rank`` with attention, step t of a T-frame pass is not quite the model run on t frames: the
attention residual (Eq. 6a) subtracts the mean of all T frames, so the weights of frames 1..t already
depend on the later ones. The curves follow the paper (one pass); a live system's t-frame feature may
differ slightly from ``query``'s at t < T.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from models.preprocess import l2_normalize, preprocess
from models.reidnet import ReIDNet
from models.spec import InputSpec, ModelSpec
from trainer.data.clips import BadFrames, read_clip
from trainer.data.index import DatasetIndex, Tracklet
from trainer.data.sampling import dense_clips
from trainer.evaluate import distinct_tracklets, protocol_ids, rank_distances, recipe_distance
from trainer.metrics import evaluate_rank

Progress = Callable[[int, int], None]  # (done, total) tracklets
CURVES = ("both", "query")


def first_clip(tracklet: Tracklet, frames: int, spec: InputSpec, bad: BadFrames) -> np.ndarray | None:
    """``uint8[T,H,W,3]``: the tracklet's first ``frames`` frames (repeated in order when it is shorter), at
    the model's input size; None when it has no readable frame."""
    if not tracklet.paths:
        return None
    return read_clip(tracklet, dense_clips(len(tracklet.paths), frames)[0], spec.height, spec.width, bad)


def step_embed(
    model: ReIDNet,
    tracklets: Sequence[Tracklet],
    frames: int,
    device: str = "cpu",
    batch: int = 32,
    bad: BadFrames | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """``float32[N,T,D]``: each tracklet's retrieval feature after 1..``frames`` frames of its first clip.

    The model runs in eval mode without gradients, ``batch`` tracklets at a time; a tracklet with no
    readable frame gets NaN rows (it then ranks last: ``rank_distances``) and its frames are counted in ``bad``."""
    bad = bad if bad is not None else BadFrames()
    spec = model.input_spec
    out = np.full((len(tracklets), frames, model.arch.feature_dim), np.nan, np.float32)
    model.eval()
    for start in range(0, len(tracklets), batch):
        chunk = tracklets[start : start + batch]
        clips = [first_clip(t, frames, spec, bad) for t in chunk]
        rows = [start + i for i, c in enumerate(clips) if c is not None]
        if rows:
            x = torch.from_numpy(preprocess(np.stack([c for c in clips if c is not None]), spec)).to(device)
            with torch.no_grad():
                out[rows] = model.step_features(x).float().cpu().numpy()
        if progress:
            progress(min(start + batch, len(tracklets)), len(tracklets))
    return out


def for_distance(features: np.ndarray, distance: str) -> np.ndarray:
    """Features ready for squared Euclidean ranking: L2-normalised along the last axis for ``cosine``,
    unchanged for ``euclidean`` (NaN rows stay NaN)."""
    return features if distance == "euclidean" else l2_normalize(features)


def rank_curves(query: np.ndarray, gallery: np.ndarray, ids: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    """Rank-1 (``cmc1``) and mAP at every step t of ``query float[Nq,T,D]`` and ``gallery float[Ng,T,D]``
    (already prepared for the distance), for both curves: ``both`` ranks step t against step t,
    ``query`` ranks step t against the gallery's last step."""
    frames = query.shape[1]
    curves: dict[str, dict[str, list]] = {kind: {"cmc1": [], "mAP": []} for kind in CURVES}
    for t in range(frames):
        for kind, g in (("both", gallery[:, t]), ("query", gallery[:, -1])):
            r = evaluate_rank(rank_distances(query[:, t], g), **ids)
            curves[kind]["cmc1"].append(r.cmc_at(1)["1"])
            curves[kind]["mAP"].append(float(r.mAP))
    return curves


def model_curves(
    model: ReIDNet,
    spec: ModelSpec,
    index: DatasetIndex,
    frames: int,
    device: str = "cpu",
    batch: int = 32,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One model's entry of the result: both curves, the distance ranked with and the unreadable frames.

    Each distinct tracklet is embedded once (a protocol may put a query in the gallery too)."""
    distance = recipe_distance(spec)
    tracklets, q_rows, g_rows = distinct_tracklets(index)
    bad = BadFrames()
    feats = for_distance(step_embed(model, tracklets, frames, device, batch, bad, progress), distance)
    return {
        "arch": spec.arch.name,
        "head": spec.arch.head,
        "distance": distance,
        **rank_curves(feats[q_rows], feats[g_rows], protocol_ids(index)),
        "bad_frames": len(bad),
    }


def frames_fused(
    models: Sequence[tuple[str, str, ReIDNet, ModelSpec]],
    index: DatasetIndex,
    dataset: str,
    frames: int,
    device: str = "cpu",
    batch: int = 32,
    progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, Any]:
    """Figure 2 as data: ``{"dataset", "frames", "models": [{"label", "checkpoint", "arch", "both":
    {"cmc1": [T], "mAP": [T]}, "query": {...}, ...}]}`` for ``(label, checkpoint, model, spec)`` each.

    ``progress(label)`` gives the per-tracklet progress callback of one model's embedding pass."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    entries = []
    for label, checkpoint, model, spec in models:
        model.to(device)
        curves = model_curves(model, spec, index, frames, device, batch, progress(label) if progress else None)
        model.to("cpu")
        entries.append({"label": label, "checkpoint": checkpoint, **curves})
    return {"dataset": dataset, "frames": frames, "models": entries}


def rank1_table(result: dict[str, Any]) -> str:
    """A plain-text table: t, then each model's rank-1 (%) with query and gallery after t frames, and with
    the query after t frames against the full gallery."""
    header = ["t"] + [f"{m['label']} ({kind})" for m in result["models"] for kind in CURVES]
    rows = [
        [str(t + 1)] + [f"{100 * m[kind]['cmc1'][t]:.1f}" for m in result["models"] for kind in CURVES]
        for t in range(result["frames"])
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in [header, *rows])


def plot_frames_fused(result: dict[str, Any], path) -> None:
    """Rank-1 (%) against frames fused as a PNG: one colour per model, solid for ``both`` (query and gallery
    after t frames), dashed for ``query`` (query after t frames, full gallery)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    xs = list(range(1, result["frames"] + 1))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for i, m in enumerate(result["models"]):
        color = f"C{i % 10}"
        ax.plot(xs, [100 * v for v in m["both"]["cmc1"]], "-o", color=color, label=f"{m['label']}: both after t")
        ax.plot(
            xs,
            [100 * v for v in m["query"]["cmc1"]],
            "--",
            color=color,
            label=f"{m['label']}: query after t, full gallery",
        )
    ax.set_xlabel("frames fused (t)")
    ax.set_ylabel("rank-1 (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"rank-1 against frames fused on {result['dataset']}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
