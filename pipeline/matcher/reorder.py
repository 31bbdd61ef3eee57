"""The order the matcher links tracklets in: stream time, the same whatever order the cameras delivered them in.

Which identity a tracklet joins depends on the tracklets linked before it, so a site whose cameras deliver at
their own pace (threads, processes, networks) would give different identities from one run to the next if the
matcher linked in arrival order. Instead it links in **stream order**: by the stream time each tracklet closed
at (the frame its camera closed it on; then camera, track, seq), which a camera reaches in order. A tracklet
waits in the ``Reorder`` buffer until every camera's *watermark* has reached it: each camera process publishes,
per camera, a stream time at or below which it will publish no more tracklets (``pipeline.embedding``). Merge
passes run at fixed points of stream time (every ``merge_every`` seconds of it), so they too fall between the
same tracklets in every run.

The wait is bounded: a tracklet held for ``window`` seconds (wall clock) is linked anyway, with every tracklet
before it; a camera whose watermark has not moved for ``window`` seconds (a dead process, a camera that lost its
stream) is not waited for. Only then can the order depend on timing. ``window`` 0 links in arrival order.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.types import TrackletEmbedding, closing_time


def order_key(t: TrackletEmbedding) -> tuple[float, str, int, int]:
    """A tracklet's place in stream order: when it closed (``pipeline.types.closing_time``), then camera, track, seq."""
    return (closing_time(t), t.camera_id, t.track_id, t.seq)


def merge_period(t: float, every: float) -> float:
    """The merge period stream time ``t`` falls in: a merge pass runs between two tracklets of different periods."""
    return math.floor(t / every) if math.isfinite(t) else t


def stream_order(tracklets: Iterable[TrackletEmbedding]) -> list[TrackletEmbedding]:
    """``tracklets`` in the order the matcher links them."""
    return sorted(tracklets, key=order_key)


@dataclass
class Watermarks:
    """The cameras' watermarks as the matcher last read them, and since when each has not moved (monotonic clock)."""

    window: float
    marks: dict[str, tuple[float, float]] = field(default_factory=dict)  # camera -> (watermark, unchanged since)

    def update(self, read: Mapping[str, float], now: float) -> float:
        """Take the watermarks just read (camera -> stream time) and return the site's: the lowest of the cameras
        whose watermark moved in the last ``window`` seconds; ``inf`` when there is none to wait for."""
        for camera, mark in read.items():
            old = self.marks.get(camera)
            if old is None or old[0] != mark:
                self.marks[camera] = (mark, now)
        live = [m for m, since in self.marks.values() if math.isinf(m) or now - since < self.window]
        return min(live, default=math.inf)


@dataclass(order=True)
class _Held:
    key: tuple[float, str, int, int]
    arrived: float = field(compare=False)
    stream_id: str = field(compare=False)
    tracklet: TrackletEmbedding = field(compare=False)


class Reorder:
    """Tracklets waiting to be linked in stream order (module docstring)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._heap: list[_Held] = []
        self._ids: set[str] = set()  # tracklet ids held

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, tracklet_id: str) -> bool:
        return tracklet_id in self._ids

    def add(self, stream_id: str, tracklet: TrackletEmbedding, now: float) -> None:
        """Hold ``tracklet`` (its record's ``stream_id``), arrived at ``now`` (monotonic seconds)."""
        heapq.heappush(self._heap, _Held(order_key(tracklet), now, stream_id, tracklet))
        self._ids.add(tracklet.tracklet_id)

    def release(self, watermark: float, now: float) -> list[tuple[str, TrackletEmbedding]]:
        """The tracklets to link now, in stream order: those that closed at or before ``watermark``, and every one
        up to the last that has waited ``window`` seconds."""
        if not self._heap:
            return []
        if self.window <= 0:
            cut = (math.inf,)
        else:
            expired = [h.key for h in self._heap if now - h.arrived >= self.window]
            cut = max([(watermark,), *expired]) if expired else (watermark,)
        out = []
        while self._heap and (self._heap[0].key[0] <= cut[0] or self._heap[0].key <= cut):
            held = heapq.heappop(self._heap)
            self._ids.discard(held.tracklet.tracklet_id)
            out.append((held.stream_id, held.tracklet))
        return out

    def clear(self) -> None:
        """Forget what is held (its records are pending: they are read again)."""
        self._heap, self._ids = [], set()

    def oldest_wait(self, now: float) -> float:
        """Seconds the longest-held tracklet has waited (0 when none)."""
        return max((now - h.arrived for h in self._heap), default=0.0)
