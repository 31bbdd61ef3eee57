"""The store's queries over a real Redis, on sightings a real matcher stored: persons, history, explain,
sighting and thumbnail, search."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from pipeline import store
from pipeline.bus.publisher import Publisher
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.rules import MatchPolicy
from pipeline.types import TrackletEmbedding

THUMB = cv2.imencode(".jpg", np.full((16, 8, 3), 90, np.uint8))[1].tobytes()
CAMERAS = ("cam0", "cam1", "cam2")


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def faces(n: int, dim: int = 32, seed: int = 0) -> list[np.ndarray]:
    return [unit(v) for v in np.random.default_rng(seed).normal(size=(n, dim))]


def tracklet(site: str, camera: str, track: int, t0: float, feature: np.ndarray) -> TrackletEmbedding:
    """A 3-second tracklet whose feature is ``feature`` with a little noise of its own."""
    noise = np.random.default_rng(track).normal(scale=0.05, size=feature.shape)
    return TrackletEmbedding(
        site, camera, track, 0, t0, t0 + 3.0, unit(feature + noise), np.full(4, 0.25, np.float32), THUMB, "m1"
    )


@pytest.fixture
def walked(redis_client, bus_keys) -> list[np.ndarray]:
    """Persons 1-3 walk through cam0, cam1, cam2 in turn (person ``p`` on camera ``c`` from ``10 (p - 1) + 5 c``
    s, track ``100 c + p``); person 4 is seen only on cam0, from 50 s (track 4). Linked by a real matcher."""
    people = faces(4)
    publisher = Publisher(redis_client, bus_keys)
    walks = [(10.0 * p + 5.0 * c, c, 100 * c + p + 1, people[p]) for p in range(3) for c in range(3)]
    for t0, c, track, face in sorted(walks, key=lambda w: w[0]):
        publisher.publish(tracklet(bus_keys.site, CAMERAS[c], track, t0, face))
    publisher.publish(tracklet(bus_keys.site, "cam0", 4, 50.0, people[3]))
    counts = Matcher(redis_client, bus_keys, MatchPolicy(threshold=0.7)).start().run(idle_exit=0.3)
    assert counts["processed"] == 10 and counts["new"] == 4
    return people


@pytest.fixture
def merged(redis_client, bus_keys) -> None:
    """One person seen as three identities (cam0 track 1, cam1 track 2, cam2 track 3) that no sighting links
    (threshold 0.9999); the merge pass joins 3 into 2 (the nearest) and 2 into 1."""
    face = faces(1, seed=3)[0]
    rng = np.random.default_rng(5)
    second = unit(face + rng.normal(scale=0.05, size=face.shape))
    third = unit(second + rng.normal(scale=0.02, size=face.shape))
    publisher = Publisher(redis_client, bus_keys)
    for i, feature in enumerate((face, second, third)):
        publisher.publish(
            TrackletEmbedding(
                bus_keys.site,
                CAMERAS[i],
                i + 1,
                0,
                10.0 * i,
                10.0 * i + 3,
                feature,
                np.ones(4, np.float32),
                THUMB,
                "m1",
            )
        )
    policy = MatchPolicy(threshold=0.9999, merge_threshold=0.5)
    Matcher(redis_client, bus_keys, policy, merge_every=1e9).start().run(idle_exit=0.3)


def test_persons_most_recent_first_with_camera_since_and_limit(redis_client, bus_keys, walked):
    persons = store.persons(redis_client, bus_keys)
    assert [p.person for p in persons] == [4, 3, 2, 1]  # by last sighting's end
    p3 = persons[1]
    assert (p3.first_seen, p3.last_seen, p3.sightings) == (20.0, 33.0, 3)
    assert sorted(p3.cameras) == list(CAMERAS) and p3.thumb == "cam0:3:0"
    assert persons[0].cameras == ["cam0"] and persons[0].sightings == 1
    assert [p.person for p in store.persons(redis_client, bus_keys, since=23.0)] == [4, 3, 2]  # last seen since
    assert [p.person for p in store.persons(redis_client, bus_keys, camera="cam2")] == [3, 2, 1]
    assert [p.person for p in store.persons(redis_client, bus_keys, camera="cam1", since=15.0)] == [3, 2]
    assert [p.person for p in store.persons(redis_client, bus_keys, limit=2)] == [4, 3]
    assert [p.person for p in store.persons(redis_client, bus_keys, camera="cam0", limit=3)] == [4, 3, 2]
    assert store.persons(redis_client, bus_keys, camera="cam9") == []


def test_a_short_one_camera_person_is_tentative_and_left_out_unless_asked_for(redis_client, bus_keys, walked):
    """Person 4 was seen once, on cam0, for 3 s; persons 1-3 on three cameras."""
    assert not any(p.tentative for p in store.persons(redis_client, bus_keys))  # 3 s is not under 2 s
    persons = store.persons(redis_client, bus_keys, tentative_seconds=5.0)
    assert [p.person for p in persons if p.tentative] == [4]
    shown = store.persons(redis_client, bus_keys, tentative_seconds=5.0, everyone=False)
    assert [p.person for p in shown] == [3, 2, 1]


def test_tentative_is_one_camera_and_little_time():
    from pipeline.matcher.rules import Sighting
    from pipeline.store.fields import tentative

    glimpse = [Sighting("a", 1, 10.0, 10.5), Sighting("a", 1, 10.6, 11.2)]
    assert tentative(glimpse, 2.0) and not tentative(glimpse, 1.0)
    assert not tentative([*glimpse, Sighting("b", 3, 20.0, 20.2)], 2.0)  # seen on a second camera: someone
    assert not tentative(glimpse, 0.0)  # 0 turns the rule off


def test_history_is_in_time_order_with_every_camera(redis_client, bus_keys, walked):
    h = store.history(redis_client, bus_keys, 2)
    assert (h.person, h.asked, h.first_seen, h.last_seen) == (2, 2, 10.0, 23.0)
    assert [s.sighting for s in h.sightings] == ["cam0:2:0", "cam1:102:0", "cam2:202:0"]
    assert [s.t_start for s in h.sightings] == [10.0, 15.0, 20.0] and h.cameras == list(CAMERAS)
    assert h.thumb == "cam0:2:0" and [s.decision for s in h.sightings] == ["new", "link", "link"]
    assert all(s.identity == 2 and s.score is not None for s in h.sightings[1:])
    with pytest.raises(store.NotFound, match="no person 99 "):
        store.history(redis_client, bus_keys, 99)


def test_history_skips_expired_sightings(redis_client, bus_keys, walked):
    redis_client.pexpire(bus_keys.sighting("cam1:101:0"), 1)
    time.sleep(0.05)
    h = store.history(redis_client, bus_keys, 1)
    assert [s.sighting for s in h.sightings] == ["cam0:1:0", "cam2:201:0"] and h.cameras == ["cam0", "cam2"]


def test_history_of_a_merged_identity_is_the_person_it_joined(redis_client, bus_keys, merged):
    assert [p.person for p in store.persons(redis_client, bus_keys)] == [1]
    assert store.resolve(redis_client, bus_keys, 3) == 1
    h = store.history(redis_client, bus_keys, 3)
    assert (h.person, h.asked) == (1, 3)
    assert [s.sighting for s in h.sightings] == ["cam0:1:0", "cam1:2:0", "cam2:3:0"]
    assert all(s.identity == 1 for s in h.sightings)


def test_explain_gives_the_decision_and_the_merge_chain(redis_client, bus_keys, merged):
    e = store.explain(redis_client, bus_keys, "cam2:3:0")
    assert e.sighting == "cam2:3:0" and e.camera == "cam2" and e.decision == "new" and e.identity == 1
    assert [(m.from_, m.into) for m in e.merges] == [(3, 2), (2, 1)] and e.person == 1
    assert all(0.5 <= m.score <= 1.0 for m in e.merges) and e.merges[0].score > e.merges[1].score
    assert store.explain(redis_client, bus_keys, "cam1:2:0").merges == e.merges[1:]
    first = store.explain(redis_client, bus_keys, "cam0:1:0")
    assert first.merges == [] and first.person == 1
    data = e.model_dump(mode="json", by_alias=True)  # the JSON the CLI and the API give
    assert data["merges"][0] == {"from": 3, "into": 2, "score": e.merges[0].score} and data["person"] == 1


def test_sighting_and_thumbnail(redis_client, bus_keys, walked):
    s = store.sighting(redis_client, bus_keys, "cam1:101:0")
    assert (s.camera, s.track, s.seq, s.t_start, s.t_end, s.model) == ("cam1", 101, 0, 5.0, 8.0, "m1")
    assert s.decision == "link" and s.identity == 1 and s.best == 1 and s.score >= 0.7 and s.excluded == 0
    assert s.stream_id and s.ingested == pytest.approx(time.time(), abs=120)
    assert store.thumbnail(redis_client, bus_keys, "cam1:101:0") == THUMB
    with pytest.raises(store.NotFound, match="no sighting 'cam9:1:0'"):
        store.sighting(redis_client, bus_keys, "cam9:1:0")
    with pytest.raises(store.NotFound, match="no sighting 'cam9:2:0'"):
        store.thumbnail(redis_client, bus_keys, "cam9:2:0")
    with pytest.raises(store.NotFound, match="no sighting 'cam9:3:0'"):
        store.explain(redis_client, bus_keys, "cam9:3:0")


def test_search_ranks_the_stored_persons(redis_client, bus_keys, walked):
    gallery = store.load_gallery(redis_client, bus_keys)
    hits = store.search(gallery, walked[1], top_k=3)
    assert hits[0][0] == 2 and len(hits) == 3
    assert hits[0][1] > 0.9 and hits[0][1] > hits[1][1] >= hits[2][1]
    results = store.search_histories(redis_client, bus_keys, gallery, walked[3], top_k=2)
    assert results[0].person == 4 and results[0].score == round(results[0].score, 4)
    assert results[0].history.person == 4 and [s.sighting for s in results[0].history.sightings] == ["cam0:4:0"]
    assert store.search(Gallery(), walked[0]) == []
