"""``crosscam bench matcher``: link throughput and query latency against a real Redis at a gallery size."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from pipeline import store
from pipeline.bus import records
from pipeline.bus.batch import Commands, Fence
from pipeline.bus.connect import Client
from pipeline.bus.publisher import Publisher
from pipeline.keys import Keys
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.rules import Decision, Linked, Sighting
from pipeline.site import Site
from pipeline.types import TrackletEmbedding

_THUMB = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")  # a minimal JPEG marker pair


def _unit(rng, n: int, dim: int) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _tracklet(site: str, i: int, cams: int, track: int, t0: float, feature: np.ndarray) -> TrackletEmbedding:
    """The benchmark's ``i``-th tracklet: on camera ``i % cams``, 2 s long, from ``t0``."""
    return TrackletEmbedding(
        site, f"cam{i % cams}", track, 0, t0, t0 + 2.0, feature, np.full(4, 0.25, np.float32), _THUMB, "bench"
    )


def _publish(publisher: Publisher, site: str, features: np.ndarray, cams: int, t0: float, track0: int) -> None:
    pipe = publisher.client.pipeline(transaction=False)
    for i, f in enumerate(features):
        pipe.xadd(publisher.keys.tracklets, records.encode(_tracklet(site, i, cams, track0 + i, t0 + i, f)))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def _seed(client: Client, keys: Keys, people: np.ndarray, cams: int, exemplars: int = 1, chunk: int = 2000) -> None:
    """Store ``exemplars`` sightings per person (each its own exemplar, on cameras ``i, i+1, ...``) through
    the matcher's own write path (``store.write_links``), without scoring: the state a matcher that had
    linked them would leave, written in seconds even for 100,000."""
    new = Decision("new", None, float("nan"), None, None, float("nan"), "seeded by the benchmark")
    rng = np.random.default_rng(1)
    dim = people.shape[1]
    for start in range(0, len(people), chunk):
        gallery, links = Gallery(), []
        for i in range(start, min(start + chunk, len(people))):
            views = people[i] + rng.normal(scale=0.5 / np.sqrt(dim), size=(exemplars, dim)).astype(np.float32)
            views[0] = people[i]
            views /= np.linalg.norm(views, axis=1, keepdims=True)
            gallery.set(i + 1, views)
            for k in range(exemplars):
                t = _tracklet(keys.site, i + k, cams, i * exemplars + k, float(i) + 3.0 * k, views[k])
                gallery.add_sighting(i + 1, Sighting(t.camera_id, t.track_id, t.t_start, t.t_end))
                links.append(Linked(t, i + 1, new, k == 0))
        w = Commands()
        store.write_links(w, keys, links, ["0-0"] * len(links), gallery, None)
        w.run(client, Fence.of(keys, "", client.get(keys.epoch)))  # before any matcher holds the lease
    client.set(keys.next_identity, len(people))


def bench_matcher(
    site: Site,
    identities: int,
    tracklets: int = 2000,
    dim: int = 256,
    queries: int = 200,
    progress: Callable[[str], None] | None = None,
    seed: int = 0,
    exemplars: int = 1,
) -> dict:
    """Fill ``site``'s store with ``identities`` persons (``exemplars`` sightings and exemplars each: 1 is a
    young gallery, 8 the default cap a site reaches), start the site's matcher on it (its gallery loaded from
    Redis), then time linking ``tracklets`` new sightings of them (noisy re-views), and ``history`` and
    ``search`` queries."""
    client, keys, batch = site.client, site.keys, site.config.matcher.batch
    rng = np.random.default_rng(seed)
    people = _unit(rng, identities, dim)
    publisher = site.publisher()
    progress and progress(f"seeding {identities} identities")
    _seed(client, keys, people, 8, exemplars)
    t = time.perf_counter()
    matcher = site.matcher(consumer="bench").start()  # merge passes on, as configured: part of the cost
    load_s = time.perf_counter() - t
    who = rng.integers(0, identities, tracklets)
    noisy = people[who] + rng.normal(scale=0.5 / np.sqrt(dim), size=(tracklets, dim)).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    track0 = identities * exemplars + 1  # new track ids, after the seeded ones
    _publish(publisher, keys.site, noisy, 8, 3.0 * (identities + exemplars) + 1000.0, track0)
    progress and progress(f"linking {tracklets} tracklets")
    times, done = [], 0
    start = time.perf_counter()
    while done < tracklets:
        t = time.perf_counter()
        n = matcher.step(block_ms=50)
        if n:
            times.append((time.perf_counter() - t) / n)
        done += n
    matcher.flush()  # a last full batch is still to be written
    elapsed = time.perf_counter() - start
    correct = sum(
        store.sighting(client, keys, f"cam{i % 8}:{track0 + i}:0").identity == who[i] + 1
        for i in range(0, tracklets, max(1, tracklets // 200))
    )
    checked = len(range(0, tracklets, max(1, tracklets // 200)))
    hist, search = [], []
    gallery = matcher.linker.gallery
    for q in range(queries):
        t = time.perf_counter()
        store.history(client, keys, int(rng.integers(1, identities + 1)))
        hist.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.search(gallery, noisy[q % tracklets], 5)
        search.append(time.perf_counter() - t)
    ms = lambda xs, q: round(1000 * float(np.percentile(xs, q)), 3)  # noqa: E731
    return {
        "identities": identities,
        "tracklets": tracklets,
        "link_tracklets_per_s": round(tracklets / elapsed, 1),
        "link_ms_per_tracklet_p50": ms(times, 50),
        "link_ms_per_tracklet_p99": ms(times, 99),
        "link_correct": round(correct / checked, 3),
        "history_ms_p50": ms(hist, 50),
        "history_ms_p99": ms(hist, 99),
        "search_ms_p50": ms(search, 50),
        "search_ms_p99": ms(search, 99),
        "gallery_load_s": round(load_s, 2),
        "batch": batch,
        "dim": dim,
        "exemplars": exemplars,
    }
