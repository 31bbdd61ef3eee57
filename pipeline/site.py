"""The one place that builds a running site from its configuration.

A site is one Redis (a server, or one slot of a Redis Cluster), one tracklet stream, one matcher, and camera processes that publish to it
(``docs/architecture.md``). Everything that runs a site builds it here: ``crosscam worker``, ``run``,
``matcher``, ``api`` and the queries, the demo, calibration and the benchmarks. Library classes below take
explicit arguments; this module is where the configuration turns into them.

- ``Site.open(config)`` connects to the site's Redis (``connect``; the URL resolved by ``redis_url``:
  ``redis+cluster://`` for a Redis Cluster).
- ``site.cameras(embedder)`` gives a ``CameraProcess``: the publisher, the embedder and its batching service
  that the cameras of one process share, and ``camera(...)`` builds each camera's worker.
- ``site.matcher()`` builds the site's matcher; ``site.policy()`` its rules.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from crosscam.errors import ConfigError
from models.embedder import Embedder, load_embedder
from pipeline.bus import spool
from pipeline.bus.backlog import TRANSIENT, transient
from pipeline.bus.connect import Client, connect
from pipeline.bus.publisher import Publisher, dead_letter, last_track, write_watermarks
from pipeline.bus.site_models import announce_model
from pipeline.camera.detection import DetectionService
from pipeline.camera.replay import REPLAY
from pipeline.camera.sources import Reconnect, Source, open_source, source_from_env
from pipeline.camera.tracking import DetectorOptions, make_tracker
from pipeline.camera.tracklets import TrackletBuffer, TrackletPolicy
from pipeline.camera.worker import CameraStages, CameraWorker, WorkerReport
from pipeline.config import CrosscamConfig
from pipeline.embedding import EmbeddingService
from pipeline.ids import CAMERA_ID_RULE, is_site_name
from pipeline.keys import Keys
from pipeline.matcher.consumer import Matcher
from pipeline.matcher.ground import ground_plane
from pipeline.matcher.rules import MatchPolicy
from pipeline.turns import Turns
from pipeline.types import Tracklet
from synth.stream import SYNTH

log = logging.getLogger(__name__)

_DETECTION_FIELDS = ("weights", "runtime", "conf", "iou", "imgsz", "device", "half", "batch")
"""The detector options that make a detector: cameras alike in these share one."""

SOURCE_TYPES = {"synth": SYNTH, "replay": REPLAY}  # sources a site opens besides video files, streams and webcams


def redis_url(explicit: str | None, config: CrosscamConfig) -> str | None:
    """The site's Redis: ``explicit`` (``--redis-url``), else ``$CROSSCAM_REDIS_URL``, else ``redis.url``; None
    means the embedded server."""
    return explicit or os.environ.get("CROSSCAM_REDIS_URL") or config.redis.url


def embedded_db(config: CrosscamConfig) -> Path:
    """The data file of the embedded Redis server (``redis.embedded_db``, else under the cache dir)."""
    from models.export import default_cache_dir

    return config.redis.embedded_db or Path(config.cache_dir or default_cache_dir()) / "redis" / "crosscam.db"


def embedder_path(explicit: str | Path | None, config: CrosscamConfig) -> str | Path:
    """The re-ID model: ``explicit`` (``--embedder``), else ``embedder.path``, else the bundled real model."""
    from models.zoo import default_embedder

    return explicit or config.embedder.path or default_embedder()


CUDA_BATCH, CPU_BATCH = 32, 8
"""``embedder.max_batch`` when unset: a GPU gains from large batches; a CPU runs 8 tracklets as fast a tracklet as
32, and its runtime (onnxruntime's arena, OpenVINO's) keeps the memory of the largest batch it has run."""


def open_embedder(config: CrosscamConfig, path: str | Path | None = None) -> Embedder:
    """The embedder of ``config.embedder`` for the model at ``path`` (see ``embedder_path``); its ``max_batch`` is
    ``embedder.max_batch``, else the engine's own, else ``CUDA_BATCH`` or ``CPU_BATCH`` for its device."""
    e = config.embedder
    embedder = load_embedder(
        embedder_path(path, config),
        backend=e.backend,
        device=e.device,
        fp16=e.fp16,
        threads=e.threads,
        cache_dir=config.cache_dir,
        max_batch=e.max_batch,
    )
    if embedder.max_batch is None:
        embedder.max_batch = device_batch(embedder.device)
    return embedder


def device_batch(device: str) -> int:
    """Tracklets embedded at once by default on ``device``: ``CUDA_BATCH`` on a GPU, ``CPU_BATCH`` else."""
    return CUDA_BATCH if str(device).startswith("cuda") else CPU_BATCH


class Site:
    """One site: its configuration, its Redis client and its keys."""

    def __init__(self, config: CrosscamConfig, client: Client, name: str | None = None) -> None:
        self.config, self.client = config, client
        self.name = name or config.site
        self.keys = Keys(self.name, config.redis.prefix)

    @classmethod
    def open(cls, config: CrosscamConfig, name: str | None = None, redis: str | None = None) -> Site:
        """Connect to the site's Redis (``redis``: a URL; see ``redis_url``)."""
        if name is not None and not is_site_name(name):
            raise ConfigError(f"site {name[:64]!r}: not a site name ({CAMERA_ID_RULE}); see --site")
        url = redis_url(redis, config)
        if url is None and config.redis.replicas:
            raise ConfigError(
                f"redis.replicas: {config.redis.replicas} needs a Redis with replicas, and the embedded server has "
                "none: give a Redis URL (--redis-url, $CROSSCAM_REDIS_URL or redis.url) or set redis.replicas: 0"
            )
        return cls(config, connect(url, embedded_db(config)), name)

    def publisher(self) -> Publisher:
        """The site's publisher (its tracklet stream trimmed to about ``redis.maxlen`` records; a record is
        published once ``redis.replicas`` replicas hold it)."""
        r = self.config.redis
        return Publisher(self.client, self.keys, r.maxlen, r.replicas, r.replica_timeout)

    # --- the matcher process ------------------------------------------------------------------------
    def policy(self, model_threshold: float | None = None) -> MatchPolicy:
        """The matcher's rules (``matcher`` section; a model's calibrated threshold unless the site sets one), with
        the ground plane of the cameras that have ``ground`` points (bad points raise a ``ConfigError``)."""
        m = self.config.matcher
        ground = ground_plane({c.id: c.ground for c in self.config.cameras if c.ground}, m.ground_near, m.ground_far)
        return replace(m.policy(model_threshold), ground=ground)

    def matcher(self, consumer: str | None = None, merge_every: float | None = None) -> Matcher:
        """The site's matcher, linking at the workers' announced model's threshold unless the config sets
        ``matcher.threshold``; ``merge_every`` overrides the config's."""
        m = self.config.matcher
        return Matcher(
            self.client,
            self.keys,
            self.policy(),
            consumer=consumer,
            batch=m.batch,
            claim_idle=m.claim_idle,
            merge_every=m.merge_every if merge_every is None else merge_every,
            ttl=m.ttl,
            lease=m.lease,
            model_threshold=not m.threshold_is_set,
            maxlen=self.config.redis.maxlen,
            replicas=self.config.redis.replicas,
            replica_timeout=self.config.redis.replica_timeout,
            reorder_window=m.reorder_window,
        )

    # --- camera processes ---------------------------------------------------------------------------
    def cameras(self, embedder: Embedder) -> CameraProcess:
        """What the cameras of one process share, embedding with ``embedder``. The model is announced to
        the matcher before any record is published, so it links at the model's own threshold."""
        return CameraProcess(self, embedder)


def _lost(worker: CameraWorker) -> WorkerReport:
    """The report of a worker whose thread ended without one (``CameraWorker.run`` returns one on any error)."""
    worker.report.final_state, worker.report.error = "failed", f"camera {worker.camera_id}: its thread ended"
    return worker.report


def spool_dir(config: CrosscamConfig) -> Path:
    """Where stopping camera processes keep what Redis could not take (``redis.spool``, else under the cache dir)."""
    from models.export import default_cache_dir

    return config.redis.spool or Path(config.cache_dir or default_cache_dir()) / "spool"


class CameraProcess:
    """The publisher, the embedder and its batching service, and a detection service per YOLO weights, shared
    by the cameras of one process."""

    def __init__(self, site: Site, embedder: Embedder) -> None:
        config = site.config
        self.site, self.embedder = site, embedder
        self.detectors: dict[DetectorOptions, DetectionService] = {}
        self.turns = Turns()  # the embedder runs first, the detectors after (pipeline/turns.py)
        self.publisher = site.publisher()
        announce_model(site.client, site.keys, embedder.spec)
        # before any camera numbers its tracks: an earlier stop's spooled tracklets are published first
        self.spool_folder = spool_dir(config)
        self.replayed = spool.replay_spools(
            self.spool_folder,
            site.name,
            self.publisher.publish,
            lambda source, fields, reason: dead_letter(site.client, site.keys, source, fields, reason),
            transient,
        )
        e = config.embedder
        self.service = EmbeddingService(
            embedder,
            site.name,
            self.publisher.publish,
            max_batch=e.max_batch or embedder.max_batch or device_batch(embedder.device),
            max_wait=e.max_wait,
            backlog=config.redis.backlog,
            report_drops=lambda n: self.publisher.count("backlog_dropped", n),
            turns=self.turns,
            publish_watermarks=lambda marks: write_watermarks(site.client, site.keys, marks),
            spool=lambda waiting: spool.write_spool(self.spool_folder, site.name, waiting),
        )

    def tracklet_policy(self) -> TrackletPolicy:
        """The ``tracklets`` section at the embedder's input size and clip length."""
        spec = self.embedder.spec.input
        return TrackletPolicy(
            frames=spec.frames,
            crop_height=spec.height,
            crop_width=spec.width,
            **self.site.config.tracklets.model_dump(),
        )

    def stages(
        self, camera_id: str, detector: str | None = None, on_tracklet: Callable[[Tracklet], None] | None = None
    ) -> CameraStages:
        """A camera's detector + tracker and tracklet buffer; closed tracklets go to ``on_tracklet`` (default:
        the embedding service). ``detector`` overrides ``detector.weights``."""
        d = self.site.config.detector
        # the config section carries exactly the options' fields, so they map across by name
        options = DetectorOptions(**(d.model_dump() | {"weights": detector or d.weights}))
        detect = None if options.weights == "motion" else self.detection(options).detect
        tracker = make_tracker(camera_id, options, detect)
        first = self._first_track(camera_id)
        buffer = TrackletBuffer(camera_id, self.tracklet_policy(), first_track=first)
        return CameraStages(camera_id, tracker, buffer, on_tracklet or self.service.submit, self.service.progress)

    def stop(self, publish_wait: float | None = None) -> None:
        """Stop the detection services, then the embedding service once every queued tracklet is embedded and
        published (waiting up to ``publish_wait`` seconds, else the service's own time, for a Redis that cannot
        be reached)."""
        for detection in self.detectors.values():
            detection.stop()
        self.detectors.clear()
        if publish_wait is None:
            self.service.stop()
        else:
            self.service.stop(publish_wait)

    def detection(self, options: DetectorOptions) -> DetectionService:
        """The detection service the cameras detecting with ``options`` share (one model, batched across them);
        a bad weights file raises here."""
        key = DetectorOptions(**{f: getattr(options, f) for f in _DETECTION_FIELDS})
        if key not in self.detectors:
            detector = options.detector(self.site.config.cache_dir)
            self.detectors[key] = DetectionService(detector, max_batch=options.batch, turns=self.turns)
        return self.detectors[key]

    def _first_track(self, camera_id: str) -> int:
        """The track id a camera's tracks are numbered after: the highest it published (a restarted worker
        numbers on), or, with Redis unreachable, the wall-clock time in ms (above any id numbered on so far)."""
        try:
            return last_track(self.site.client, self.site.keys, camera_id)
        except TRANSIENT as e:
            log.warning(
                "camera %s: Redis unreachable (%s): tracks numbered after the clock's milliseconds", camera_id, e
            )
            return int(time.time() * 1000)

    def source(self, camera_id: str, url: str) -> Source:
        """A camera's source, read on its own thread from now on (``source`` section); ``env:NAME`` reads the
        URL from the environment variable ``NAME``."""
        s = self.site.config.source
        return open_source(
            camera_id,
            source_from_env(url, os.environ),
            transport=s.transport,
            types=SOURCE_TYPES,
            hardware=s.decode == "hardware",
            capacity=s.buffer,
            max_fps=s.fps,
            reconnect=Reconnect(
                initial=s.reconnect_initial, max_delay=s.reconnect_max, max_attempts=s.reconnect_attempts
            ),
            on_state=lambda state, error: self.publisher.camera_status(camera_id, state.value, error),
        )

    def camera(
        self,
        camera_id: str,
        url: str | None,
        detector: str | None = None,
        on_tracklet: Callable[[Tracklet], None] | None = None,
    ) -> CameraWorker:
        """A camera's worker; bad weights or a bad URL raise here, before its source starts reading. ``url``
        None: the source (and, unless ``detector`` is given, the detector) of the config's camera ``camera_id``."""
        if url is None:
            configured = {c.id: c for c in self.site.config.cameras}.get(camera_id)
            if configured is None:
                raise ConfigError(
                    f"camera {camera_id}: no source; pass --source URL (or env:VARIABLE), or list the camera under "
                    "`cameras:` in the config file with its source"
                )
            url, detector = configured.source, detector or configured.detector
        stages = self.stages(camera_id, detector, on_tracklet)
        return CameraWorker(self.source(camera_id, url), stages, self.publisher.camera_status)

    def configured(self) -> list[CameraWorker]:
        """The workers of the config's ``cameras``."""
        return [self.camera(c.id, c.source, c.detector) for c in self.site.config.cameras]

    def run(
        self,
        workers: list[CameraWorker],
        max_seconds: float | None = None,
        stop: threading.Event | None = None,
    ) -> dict[str, WorkerReport]:
        """Run ``workers`` on a thread each with the embedding service, until their sources end, ``max_seconds``
        pass or ``stop`` is set; returns each camera's report once every queued tracklet is published. After
        ``stop``, a Redis that cannot be reached is waited for ``redis.stop_wait`` seconds at most (short, to exit
        within a supervisor's grace period): what is not published then is spooled to disk and published by the
        next start (``service.counts["spooled"]``; ``pipeline.bus.spool``)."""
        reports: dict[str, WorkerReport] = {}
        self.service.start()
        threads = [
            threading.Thread(
                target=lambda w=w: reports.__setitem__(w.camera_id, w.run(max_seconds, stop)),
                name=f"worker-{w.camera_id}",
                daemon=True,
            )
            for w in workers
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.stop(self.site.config.redis.stop_wait if stop is not None and stop.is_set() else None)
        return {w.camera_id: reports.get(w.camera_id) or _lost(w) for w in workers}
