"""The HTML report over a real Redis: every person and camera, thumbnails inline, text escaped."""

from __future__ import annotations

import base64
import html

import cv2
import numpy as np

from pipeline import store
from pipeline.bus.batch import Commands, Fence
from pipeline.matcher.gallery import Gallery
from pipeline.matcher.linker import Linker
from pipeline.matcher.rules import MatchPolicy
from pipeline.serve.report import write_report
from pipeline.types import TrackletEmbedding

THUMB = cv2.imencode(".jpg", np.full((16, 8, 3), 200, np.uint8))[1].tobytes()
HALL, DOOR = "hall<b>&'\"", "door"  # a camera id with every character HTML gives a meaning


def test_the_report_lists_every_person_and_camera_with_the_stores_text_escaped(tmp_path, redis_client, bus_keys):
    faces = np.random.default_rng(2).normal(size=(3, 32))
    faces = (faces / np.linalg.norm(faces, axis=1, keepdims=True)).astype(np.float32)
    seen = [(0, HALL, 0.0), (0, DOOR, 10.0), (1, DOOR, 20.0), (2, HALL, 30.0)]  # (person, camera, start)
    # stored as a version before camera ids were checked would have stored it (records with such an id are
    # refused now): linked and written the way the matcher does
    tracklets = [
        TrackletEmbedding(
            bus_keys.site, camera, track, 0, t0, t0 + 4, faces[person], np.ones(4, np.float32), THUMB, "m1"
        )
        for track, (person, camera, t0) in enumerate(seen, start=1)
    ]
    linker = Linker(
        MatchPolicy(threshold=0.9), lambda n: store.next_identities(redis_client, bus_keys, n), Gallery(), set()
    )
    linked = linker.link(tracklets)
    w = Commands()
    store.write_links(w, bus_keys, linked, ["0-0"] * len(linked), linker.gallery, None)
    w.run(redis_client, Fence.of(bus_keys, "", None))

    metrics = {"idf1": 0.5, "note": "<x> & y"}
    path = write_report(tmp_path / "out" / "report.html", redis_client, bus_keys, "<i>site</i>", metrics, [HALL, DOOR])
    page = path.read_text()
    assert path == tmp_path / "out" / "report.html" and page.startswith("<!doctype html>")
    assert "<p>3 persons; time axis 0.0 s to 34.0 s.</p>" in page
    assert [f"id=person-{n}>" in page for n in (1, 2, 3)] == [True] * 3 and page.count("<div class=person ") == 3
    assert "<b>person 1</b> — 2 sightings on hall&lt;b&gt;&amp;&#x27;&quot;, door" in page
    assert page.count(f"<span class=cam>{html.escape(HALL)}</span>") == 2  # persons 1 and 3
    assert page.count(f"<span class=cam>{DOOR}</span>") == 2  # persons 1 and 2
    assert page.count(f"alt='{html.escape(HALL)}:") == 2 and f"alt='{DOOR}:2:0'" in page
    assert page.count(f"<img src='data:image/jpeg;base64,{base64.b64encode(THUMB).decode()}'") == len(seen)
    assert "hall<b>" not in page and "<i>site</i>" not in page and "<x>" not in page  # nothing unescaped
    assert "<title>&lt;i&gt;site&lt;/i&gt;</title>" in page
    assert "<td>idf1</td><td>0.500</td>" in page and "<td>note</td><td>&lt;x&gt; &amp; y</td>" in page
