"""Every Redis key of a site, in one table. Nothing else in crosscam spells a key.

For site ``S`` under prefix ``P`` (default ``crosscam``), every key starts ``P:{S}:``: the braces are a Redis
Cluster hash tag, so all of a site's keys hash to one cluster slot (the slot of ``S``) and live on one master.
The batch and lease scripts and the matcher's transactions touch only keys of one site, so they run on
Redis Cluster as on a single server; different sites spread over the masters. ``legacy_prefix`` is the layout
before hash tags (``P:S:``), which ``crosscam migrate-keys`` moves a site from.

| key | type | written by | holds |
|---|---|---|---|
| ``P:{S}:tracklets`` | stream | workers | tracklet records (``pipeline.bus.records``); consumer group ``matcher`` |
| ``P:{S}:tracklets:dead`` | stream | matcher | records it could not decode, with ``reason`` and ``source_id`` |
| ``P:{S}:cameras`` | set | workers | camera ids that have reported |
| ``P:{S}:camera:C`` | hash | workers | camera C's ``state``, ``since``, ``heartbeat``, counters and last ``error`` |
| ``P:{S}:tracks`` | sorted set | workers | camera id, scored by the highest track id it published: a restarted worker numbers its tracks on from there |
| ``P:{S}:stats`` | hash | workers, matcher | site counters (``published``, ``matched``, ``dead_letters``, ``trimmed``, ``refused``, ``backlog_dropped``) and the matcher's ``backlog`` and ``backlog_warning`` |
| ``P:{S}:models`` | hash | workers | model id -> JSON summary (arch, feature size, calibrated ``link_threshold``) |
| ``P:{S}:calibration`` | hash | ``calibrate --dataset site --write`` | model id -> JSON of the site's own fit of that model's link threshold (``threshold``, ``margin``, pair counts, rule, date); the matcher links at it before the model's own |
| ``P:{S}:matcher:lease`` | string | matcher | the active matcher's token (``consumer/random``, new for every tenure, so unique per process), expiring after ``matcher.lease`` seconds; every matcher write checks it |
| ``P:{S}:matcher:batch`` | string | matcher | the id of the last batch written: a batch sent again after a lost reply runs nothing |
| ``P:{S}:identities`` | sorted set | matcher | identity id, scored by its last sighting's end (stream time) |
| ``P:{S}:model`` | string | matcher | the model id of the identities' features: records of another model are dead-lettered while the site has identities |
| ``P:{S}:identity:N`` | hash | matcher | ``exemplars`` (float16), ``dim``, ``recent`` (JSON: camera, track, start, end), ``sightings``, ``first_seen``, ``last_seen``, ``thumb`` (sighting id) |
| ``P:{S}:identity:N:sightings`` | sorted set | matcher | sighting ids of identity N by start time |
| ``P:{S}:sighting:ID`` | hash | matcher | ``identity``, ``camera``, ``track``, ``seq``, ``t_start``, ``t_end``, ``feature`` (float16), ``thumb`` (JPEG), ``path`` (per-frame boxes), ``model``, ``stream_id``, ``ingested`` (wall clock) and the decision: ``decision``, ``score``, ``best``, ``runner_up``, ``runner_up_score``, ``reason``, ``excluded`` |
| ``P:{S}:timeline:C`` | sorted set | matcher | sighting ids seen on camera C by start time |
| ``P:{S}:ingested`` | sorted set | matcher | sighting ids by wall-clock ingest time (retention) |
| ``P:{S}:decisions`` | stream | matcher, ``unlink`` | audit log and live feed: every link, new identity, merge and unlink |
| ``P:{S}:merges`` | hash | matcher | merged identity -> JSON ``{"into", "score", "at"}`` |
| ``P:{S}:cannot_link`` | set | ``unlink``, matcher | ``"a:b"`` identity pairs a user split apart; merges never join them again. An unlink of A into B adds A:B and gives B every pair of A; a merge of C into D gives D every pair of C |
| ``P:{S}:next_identity`` | string | matcher | the last identity id handed out |
| ``P:{S}:epoch`` | string | ``unlink``, ``prune`` | bumped in the transaction of every change to stored identities outside the matcher: it reloads its gallery, and its writes made on the older one are refused |
| ``P:{S}:version`` | string | matcher, ``unlink``, ``prune`` | bumped by every write that changes identities: readers' caches reload |

A sighting's id is its tracklet's id, ``camera:track:seq``: the matcher writes each at most once.
Identity ids increase; a gap means a batch whose write failed (its ids are not reused).

The tracklet stream is trimmed to about ``redis.maxlen`` entries (default 100,000; about 1 GB with 2048-d
features and thumbnails): Redis trims the oldest entries, read or not, so size it for the longest outage of
the matcher. The decisions stream is trimmed to about 100,000 entries, the dead-letter stream to about 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "matcher"  # the consumer group of the tracklet stream


@dataclass(frozen=True)
class Keys:
    """The keys of one site (see the table above)."""

    site: str
    prefix: str = "crosscam"

    def _k(self, *parts: object) -> str:
        return ":".join([self.prefix, "{" + self.site + "}", *map(str, parts)])

    @property
    def legacy_prefix(self) -> str:
        """What every key of the site started with before keys carried a hash tag (``P:S:``)."""
        return f"{self.prefix}:{self.site}:"

    @property
    def pattern(self) -> str:
        """A SCAN pattern matching every key of the site (braces are plain characters in a pattern)."""
        return self._k("*")

    # --- written by the workers --------------------------------------------------------------------
    @property
    def tracklets(self) -> str:
        return self._k("tracklets")

    @property
    def dead(self) -> str:
        return self._k("tracklets", "dead")

    @property
    def cameras(self) -> str:
        return self._k("cameras")

    @property
    def tracks(self) -> str:
        return self._k("tracks")

    def camera(self, camera_id: str) -> str:
        return self._k("camera", camera_id)

    @property
    def stats(self) -> str:
        return self._k("stats")

    @property
    def models(self) -> str:
        return self._k("models")

    @property
    def calibration(self) -> str:
        return self._k("calibration")

    # --- written by the matcher and the maintenance commands ------------------------------------------
    @property
    def lease(self) -> str:
        return self._k("matcher", "lease")

    @property
    def identities(self) -> str:
        return self._k("identities")

    def identity(self, n: int) -> str:
        return self._k("identity", n)

    def sightings(self, n: int) -> str:
        return self._k("identity", n, "sightings")

    def sighting(self, sid: str) -> str:
        return self._k("sighting", sid)

    def timeline(self, camera: str) -> str:
        return self._k("timeline", camera)

    @property
    def ingested(self) -> str:
        return self._k("ingested")

    @property
    def decisions(self) -> str:
        return self._k("decisions")

    @property
    def merges(self) -> str:
        return self._k("merges")

    @property
    def cannot_link(self) -> str:
        return self._k("cannot_link")

    @property
    def next_identity(self) -> str:
        return self._k("next_identity")

    @property
    def last_batch(self) -> str:
        return self._k("matcher", "batch")

    @property
    def model(self) -> str:
        return self._k("model")

    @property
    def epoch(self) -> str:
        return self._k("epoch")

    @property
    def version(self) -> str:
        return self._k("version")


def text(value: bytes | str | None) -> str:
    """A Redis reply value as ``str`` (redis-py returns ``bytes`` unless the client decodes)."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def shown(value: bytes | str) -> str:
    """A stored value as text to show: UTF-8, with any other byte written as a backslash escape (a value another
    role wrote is never trusted to decode)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)
