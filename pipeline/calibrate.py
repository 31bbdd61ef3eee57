"""Setting the matcher's threshold from evidence: replay one run's tracklets at many thresholds.

A synthetic scene runs once through workers and embedder (``pipeline.demo``); every published tracklet
is kept with its ground-truth person. Each threshold then replays those tracklets through the matcher's
own rules (``Linker``: same order, merge passes included) in memory, and the result is scored with
multi-camera IDF1 (``synth.truth.idf1``). The embedding, the slow part, is done once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from pipeline import records
from pipeline.bus import Keys
from pipeline.matcher import Linker
from pipeline.matching import MatchPolicy
from pipeline.types import Tracklet, TrackletEmbedding


@dataclass(frozen=True)
class Labelled:
    """A published tracklet and the person it truly shows (None: no one, e.g. a false detection)."""

    record: TrackletEmbedding
    truth: int | None
    weight: float  # seconds it covers


def collect(client, keys: Keys, tracklets: dict[str, Tracklet], scene, camera_index: dict[str, int]) -> list[Labelled]:
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


def replay(items: Sequence[Labelled], policy: MatchPolicy, batch: int = 16, merge_every: int = 4) -> list[int]:
    """The identity each tracklet ends in when the matcher's rules see them in order (batches of ``batch``,
    a merge pass every ``merge_every`` batches and at the end)."""
    ids = itertools.count(1)
    linker = Linker(policy, lambda n: [next(ids) for _ in range(n)])
    assigned: list[int] = []
    merged: dict[int, int] = {}
    for k in range(0, len(items), batch):
        assigned += [r.identity for r in linker.link([x.record for x in items[k : k + batch]])]
        if (k // batch + 1) % merge_every == 0:
            merged |= {source: into for source, into, _ in linker.merges()}
    merged |= {source: into for source, into, _ in linker.merges()}

    def resolve(i: int) -> int:
        while i in merged:
            i = merged[i]
        return i

    return [resolve(i) for i in assigned]


def sweep(items: Sequence[Labelled], policy: MatchPolicy, thresholds: Iterable[float]) -> list[dict]:
    """IDF1, IDP, IDR and the number of identities at each threshold (the rest of ``policy`` unchanged; the
    merge threshold is kept at or above the link threshold)."""
    from synth.truth import idf1

    rows = []
    for th in thresholds:
        p = replace(policy, threshold=th, merge_threshold=max(policy.merge_threshold, th))
        persons = replay(items, p)
        score = idf1((x.truth, person, x.weight) for x, person in zip(items, persons, strict=True))
        rows.append(
            {"threshold": round(th, 4)} | {k: round(v, 4) if isinstance(v, float) else v for k, v in score.items()}
        )
    return rows


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
