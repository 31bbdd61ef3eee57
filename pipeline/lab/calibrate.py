"""Setting the matcher's link threshold from evidence.

Synthetic scene: a scene runs once through workers and embedder (``pipeline.lab.demo``); every published
tracklet is kept with its ground-truth person. Each threshold then replays those tracklets through the
matcher's own rules (``Linker``: same order, merge passes included) in memory, and the result is scored
with multi-camera IDF1 (``synth.truth.idf1``). The embedding, the slow part, is done once.

Labelled data set (``link_outcomes``, ``sweep_links``): the test tracklets of a data set are embedded as
the workers embed them (``frames`` crops spread evenly over the tracklet), and every tracklet is put to the
matcher's decision twice against the other cameras' tracklets, grouped by person (an identity's score is
its best tracklet's cosine, as with exemplars):

- *seen before*: its person's tracklets in other cameras are there. Linking to them is right, linking to
  anyone else wrong, no link a miss.
- *first sighting*: its person's tracklets are taken out. Any link is wrong. Each person is new once, so
  their tracklets share one first sighting (each weighs 1 / the person's number of tracklets).

A link is made as the matcher makes it: the best identity reaches the threshold and beats the runner-up by
``margin``. The chosen threshold maximises the F1 of these link decisions (precision: right links over all
links made; recall: right links over the seen-before cases). Why not the F1 of same/different pairs: the
matcher never decides on a pair, it takes the best of many identities, so a different person's high score
matters only when it beats the right one, or when the right one is absent (a first sighting, where every
link is a false link that stays in the identity's exemplars until a user unlinks it). The first-sighting
half puts that costlier error in the count at the rate a site meets it: every person is new once. The
figures hold for a gallery of the test set's size; a site with many more people in view sees more
candidates per first sighting, hence more false links at one threshold (prefer the next step up).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline.bus import records
from pipeline.bus.connect import Client
from pipeline.keys import Keys
from pipeline.matcher.linker import Linker
from pipeline.matcher.reorder import merge_period, order_key
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import Tracklet, TrackletEmbedding, closing_time


@dataclass(frozen=True)
class Labelled:
    """A published tracklet and the person it truly shows (None: no one, e.g. a false detection)."""

    record: TrackletEmbedding
    truth: int | None
    weight: float  # seconds it covers


def collect(
    client: Client, keys: Keys, tracklets: dict[str, Tracklet], scene, camera_index: dict[str, int]
) -> list[Labelled]:
    """Every record on the site's stream, in stream order, with its ground truth from ``scene``."""
    from synth.truth import identify

    out = []
    for _, fields in client.xrange(keys.tracklets):
        try:
            r = records.decode(fields)
        except records.RecordError:
            continue
        t = tracklets.get(r.tracklet_id)
        if t is None:
            continue
        truth = identify(scene, camera_index[t.camera_id], t.path)
        out.append(Labelled(r, truth, max(r.t_end - r.t_start, 0.1)))
    return out


def replay(items: Sequence[Labelled], policy: MatchPolicy, merge_every: float = 10.0, batch: int = 16) -> list[int]:
    """The identity each tracklet ends in when the matcher's rules see them as the matcher does: in stream order
    (``pipeline.matcher.reorder``), in batches of up to ``batch``, a merge pass where linking crosses into the next
    ``merge_every`` seconds of stream time, and one at the end. In the order of ``items``."""
    ids = itertools.count(1)
    linker = Linker(policy, lambda n: [next(ids) for _ in range(n)])
    order = sorted(range(len(items)), key=lambda i: order_key(items[i].record))
    assigned: dict[int, int] = {}
    merged: dict[int, int] = {}
    period = None
    chunk: list[int] = []

    def link() -> None:
        for i, r in zip(chunk, linker.link([items[i].record for i in chunk]), strict=True):
            assigned[i] = r.identity
        chunk.clear()

    for i in order:
        p = merge_period(closing_time(items[i].record), merge_every)
        if period is not None and p != period:
            link()
            merged |= {source: into for source, into, _ in linker.merges()}
        period = p
        chunk.append(i)
        if len(chunk) == batch:
            link()
    link()
    merged |= {source: into for source, into, _ in linker.merges()}

    def resolve(i: int) -> int:
        while i in merged:
            i = merged[i]
        return i

    return [resolve(assigned[i]) for i in range(len(items))]


def at_threshold(policy: MatchPolicy, threshold: float) -> MatchPolicy:
    """``policy`` linking at ``threshold``, its merge threshold kept at or above it."""
    return replace(policy, threshold=threshold, merge_threshold=max(policy.merge_threshold, threshold))


def sweep(
    items: Sequence[Labelled], policy: MatchPolicy, thresholds: Iterable[float], merge_every: float = 10.0
) -> list[dict]:
    """IDF1, IDP, IDR and the number of identities at each threshold (the rest of ``policy`` unchanged; the
    merge threshold is kept at or above the link threshold)."""
    from synth.truth import idf1

    rows = []
    for th in thresholds:
        persons = replay(items, at_threshold(policy, th), merge_every)
        score = idf1((x.truth, person, x.weight) for x, person in zip(items, persons, strict=True))
        rows.append(
            {"threshold": round(th, 4)} | {k: round(v, 4) if isinstance(v, float) else v for k, v in score.items()}
        )
    return rows


def frame_scores(items: Sequence[Labelled], policy: MatchPolicy, merge_every: float, truth: Mapping[str, list]):
    """The per-frame scores (``pipeline.tracks.metrics.Scores``, every camera) of the tracklets' boxes
    (``Tracklet.path``) under the identities ``policy`` gives them, against ``truth`` (camera -> its per-frame
    ground truth, ``pipeline.tracks.mot.TrackRow``)."""
    from pipeline.store.tracks import SightingPath
    from pipeline.tracks.export import track_rows
    from pipeline.tracks.metrics import evaluate

    persons = replay(items, policy, merge_every)
    by_camera: dict[str, list[SightingPath]] = {camera: [] for camera in truth}
    for x, person in zip(items, persons, strict=True):
        r = x.record
        if r.path is not None:
            by_camera.setdefault(r.camera_id, []).append(
                SightingPath(r.tracklet_id, r.camera_id, person, r.track_id, r.path)
            )
    return evaluate(dict(truth), {camera: track_rows(paths) for camera, paths in by_camera.items()}).overall


def parse_thresholds(text: str) -> list[float]:
    """``"0.3:0.9:0.05"`` (start:stop:step, stop included) or ``"0.5,0.6,0.7"``."""
    if ":" in text:
        start, stop, step = (float(x) for x in text.split(":"))
        if step <= 0 or stop < start:
            raise ValueError("start:stop:step needs step > 0 and stop >= start")
        n = round((stop - start) / step)
        return [round(start + i * step, 6) for i in range(n + 1)]
    return [float(x) for x in text.split(",") if x.strip()]


def plot(rows: list[dict], current: float, path) -> None:
    """IDF1, IDP and IDR against the threshold, with the configured one marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["threshold"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key, style in (("idf1", "-o"), ("idp", "--"), ("idr", ":")):
        ax.plot(xs, [r[key] for r in rows], style, label=key.upper())
    best = max(rows, key=lambda r: r["idf1"])
    ax.axvline(best["threshold"], color="green", alpha=0.4, label=f"best {best['threshold']:g}")
    ax.axvline(current, color="grey", alpha=0.6, linestyle="-.", label=f"configured {current:g}")
    ax.set_xlabel("matcher.threshold (cosine)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower center", ncol=3, fontsize=8)
    ax.set_title("multi-camera IDF1 against the link threshold")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --- a labelled data set: link decisions across cameras ---------------------------------------------------------
LINK_RULE = (
    "maximum F1 of the matcher's link decisions (best identity >= threshold and >= margin above the runner-up) "
    "over every test tracklet against the other cameras' tracklets, once with its person there (seen before) "
    "and once without (first sighting: any link is false)"
)


def embed_for_links(
    embedder, tracklets: Sequence, batch: int = 32, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """``float32[N,D]``: each data-set tracklet (``trainer.data.index.Tracklet``) embedded as a worker embeds
    one: a clip of the model's ``frames`` crops spread evenly over it (``pipeline.camera.tracklets.even_indices``),
    resized to the model's input. A tracklet none of whose images can be read gets a zero row."""
    from pipeline.camera.tracklets import even_indices
    from trainer.data.clips import BadFrames, read_clip

    spec, bad = embedder.spec.input, BadFrames()
    out = np.zeros((len(tracklets), embedder.feature_dim), np.float32)
    for start in range(0, len(tracklets), batch):
        rows, clips = [], []
        for i in range(start, min(start + batch, len(tracklets))):
            t = tracklets[i]
            clip = (
                read_clip(t, even_indices(len(t.paths), spec.frames), spec.height, spec.width, bad) if t.paths else None
            )
            if clip is not None:
                rows.append(i)
                clips.append(clip)
        if clips:
            out[rows] = embedder.embed(np.stack(clips))[0]
        if progress:
            progress(min(start + batch, len(tracklets)), len(tracklets))
    return out


def pair_scores(features: np.ndarray, pids: np.ndarray, camids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of every pair of tracklets in different cameras: (same person ``float[P]``, different people
    ``float[Q]``). ``features float[N,D]`` L2-normalised, ``pids``/``camids`` ``int[N]``."""
    f = np.asarray(features, np.float32)
    i, j = np.triu_indices(len(f), k=1)
    cross = camids[i] != camids[j]
    i, j = i[cross], j[cross]
    scores = np.einsum("nd,nd->n", f[i], f[j])
    same = pids[i] == pids[j]
    return scores[same], scores[~same]


@dataclass(frozen=True)
class LinkOutcomes:
    """Per tracklet (``float[N]`` / ``bool[N]``), what the matcher's decision depends on.

    ``best``/``runner``: the best and second-best identity scores among the other cameras' tracklets (-inf
    when there is none), ``right``: whether the best is the tracklet's own person, ``seen``: whether its person
    is there at all; ``first_best``/``first_runner``: the same without its person (its first sighting), which
    weighs ``first_weight`` (1 / its person's tracklets: a person is new once)."""

    best: np.ndarray
    runner: np.ndarray
    right: np.ndarray
    seen: np.ndarray
    first_best: np.ndarray
    first_runner: np.ndarray
    first_weight: np.ndarray


def _top2(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``float[N,K]``: best value, its column, second-best value (-inf where absent)."""
    if scores.shape[1] == 0:
        empty = np.full(len(scores), -np.inf)
        return empty, np.zeros(len(scores), int), empty
    order = np.argsort(-scores, axis=1, kind="stable")[:, :2]
    rows = np.arange(len(scores))
    best = scores[rows, order[:, 0]]
    runner = scores[rows, order[:, 1]] if scores.shape[1] > 1 else np.full(len(scores), -np.inf)
    return best, order[:, 0], runner


def link_outcomes(features: np.ndarray, pids: np.ndarray, camids: np.ndarray) -> LinkOutcomes:
    """The scores each tracklet's link decision depends on (see ``LinkOutcomes``); identities are scored by
    their best tracklet in a camera other than the query's."""
    f = np.asarray(features, np.float32)
    pids, camids = np.asarray(pids), np.asarray(camids)
    sims = f @ f.T
    sims[camids[:, None] == camids[None, :]] = -np.inf  # other cameras only (the tracklet itself included)
    people, column = np.unique(pids, return_inverse=True)
    order = np.argsort(column, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(column[order]) != 0])
    by_person = np.maximum.reduceat(sims[:, order], starts, axis=1)  # [N, people]: best tracklet of each
    own = np.searchsorted(people, pids)
    rows = np.arange(len(f))
    seen = np.isfinite(by_person[rows, own])
    best, where, runner = _top2(by_person)
    without = by_person.copy()
    without[rows, own] = -np.inf
    first_best, _, first_runner = _top2(without)
    weight = 1.0 / np.bincount(column)[column]
    return LinkOutcomes(best, runner, where == own, seen, first_best, first_runner, weight)


def _links(best: np.ndarray, runner: np.ndarray, threshold: float, margin: float) -> np.ndarray:
    """``bool[N]``: where the matcher links (``pipeline.matcher.rules.decide``: threshold, then margin)."""
    with np.errstate(invalid="ignore"):  # -inf - -inf where there is no candidate at all: no link either way
        return (best >= threshold) & (best - runner >= margin)


def sweep_links(
    o: LinkOutcomes, same: np.ndarray, different: np.ndarray, thresholds: Iterable[float], margin: float
) -> list[dict]:
    """At each threshold: right and wrong links (seen before; first sightings, weighted so that each person
    counts once), misses, link precision / recall / F1, and the share of same-person and different-person
    pairs at or above it."""
    rows = []
    seen, people = int(o.seen.sum()), float(o.first_weight.sum())
    for th in thresholds:
        linked = _links(o.best, o.runner, th, margin) & o.seen
        right = int((linked & o.right).sum())
        wrong_seen = int((linked & ~o.right).sum())
        wrong_first = float(o.first_weight[_links(o.first_best, o.first_runner, th, margin)].sum())
        made = right + wrong_seen + wrong_first
        precision = right / made if made else 1.0
        recall = right / seen if seen else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append(
            {
                "threshold": round(float(th), 4),
                "f1": round(f1, 4),
                "precision": round(precision, 4),
                "recall": round(recall, 4),
                "right_links": right,
                "wrong_links_seen": wrong_seen,
                "wrong_links_first": round(wrong_first, 2),
                "first_sighting_false_link_rate": round(wrong_first / people, 4) if people else 0.0,
                "missed": seen - right,
                "same_pairs_above": round(float((same >= th).mean()), 4) if len(same) else 0.0,
                "different_pairs_above": round(float((different >= th).mean()), 6) if len(different) else 0.0,
            }
        )
    return rows


def pick_threshold(rows: Sequence[dict]) -> dict:
    """The row of highest link F1; on a tie the higher threshold (fewer false links)."""
    return max(rows, key=lambda r: (r["f1"], r["threshold"]))


def pair_f1_threshold(same: np.ndarray, different: np.ndarray, thresholds: Iterable[float]) -> float:
    """For reference: the threshold maximising the F1 of same-person pairs against different-person pairs."""

    def f1(th: float) -> float:
        tp, fp = float((same >= th).sum()), float((different >= th).sum())
        return 2 * tp / (tp + fp + len(same)) if len(same) else 0.0

    return max(thresholds, key=lambda th: (f1(th), th))


def distribution(scores: np.ndarray, bins: np.ndarray) -> dict:
    """Count, mean, quantiles and a histogram (``counts`` over ``bins`` edges) of cosine scores."""
    if not len(scores):
        return {"count": 0}
    q = np.quantile(scores, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
    return {
        "count": len(scores),
        "mean": round(float(scores.mean()), 4),
        "quantiles": {
            k: round(float(v), 4) for k, v in zip(("p1", "p5", "p25", "p50", "p75", "p95", "p99"), q, strict=True)
        },
        "histogram": np.histogram(scores, bins)[0].tolist(),
    }


def plot_links(same: np.ndarray, different: np.ndarray, rows: list[dict], chosen: float, path, title: str) -> None:
    """Same-person and different-person score histograms, and link precision / recall / F1 against the
    threshold, with the chosen one marked, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    bins = np.linspace(-0.2, 1.0, 61)
    left.hist(different, bins, density=True, alpha=0.55, label=f"different people ({len(different):,} pairs)")
    left.hist(same, bins, density=True, alpha=0.55, label=f"same person ({len(same):,} pairs)")
    left.axvline(chosen, color="green", label=f"chosen {chosen:g}")
    left.set_xlabel("cosine of tracklet features, across cameras")
    left.set_ylabel("density")
    left.legend(fontsize=8)
    xs = [r["threshold"] for r in rows]
    for key, style in (("f1", "-"), ("precision", "--"), ("recall", ":")):
        right.plot(xs, [r[key] for r in rows], style, label=f"link {key}")
    right.plot(xs, [r["first_sighting_false_link_rate"] for r in rows], "-.", label="false links, first sightings")
    right.axvline(chosen, color="green", alpha=0.5)
    right.set_xlabel("link threshold (cosine)")
    right.set_ylim(0, 1.02)
    right.grid(alpha=0.3)
    right.legend(fontsize=8, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_site_pairs(positives: np.ndarray, negatives: np.ndarray, chosen: float, path, title: str) -> None:
    """The scores of a site's self-labelled pairs (one track's consecutive tracklets; two tracks seen at once on
    one camera) with the fitted threshold, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    bins = np.linspace(-0.2, 1.0, 61)
    ax.hist(negatives, bins, density=True, alpha=0.55, label=f"two people seen together ({len(negatives):,} pairs)")
    ax.hist(positives, bins, density=True, alpha=0.55, label=f"one track, consecutive tracklets ({len(positives):,})")
    ax.axvline(chosen, color="green", label=f"fitted threshold {chosen:g}")
    ax.set_xlabel("cosine of tracklet features, same camera")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
