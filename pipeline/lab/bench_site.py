"""The site benchmark (``crosscam bench site``): how many cameras one machine serves in real time.

For each number of cameras N, a real site runs in the deployment's process layout: a redis-server of its own
(append-only file fsynced every second, on a free port in a temporary folder), the matcher as a separate
``crosscam matcher`` process, and this process as the camera process, built as ``crosscam run`` builds it
(``Site``, ``site.cameras(embedder)``, ``process.camera(...)``, ``process.run(...)``), with N cameras each
playing a video as a live camera (``replay://``) at ``source.fps`` frames a second.

After a warm-up that is not counted (models compile, caches fill), for ``seconds``:

- per camera, the frames expected (``fps`` x the window's seconds, ``fps`` at most the video's own rate),
  offered (the source's new frames plus those already waiting at the start of the window), processed (the
  worker's frames), dropped (the oldest waiting frame thrown away because the worker was behind) and their
  ratio, and the tracklets it closed;
- latency, for each tracklet closed in the window: from its closing (when the tracker hands it over) and
  from its last frame's time to its sighting being queryable (the id of the matcher's entry for it in the
  site's decisions stream, written in the same script as the sighting); p50, p99, max;
- CPU (CPU seconds over wall seconds) of the camera process, per camera, of the matcher and of Redis;
  resident memory sampled every few seconds: start, end and slope (MB/min).

The cameras run ``margin`` seconds past the window's end, so their stop (every open track closed at once, on
every camera) falls outside it; tracklets closed after a camera's source stopped are never counted, and every
tracklet is left to become queryable before the site is torn down. While it runs, SIGTERM interrupts the
benchmark as Ctrl-C does, so the redis-server, the matcher process and the temporary folder are removed.

N holds real time when every camera was offered >= 95 % of the frames expected and processed >= 95 % of
those offered, the p99 from closing to queryable is under 1 s, and every tracklet closed in the window became
queryable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from crosscam.errors import CrosscamError
from pipeline.config import CrosscamConfig
from pipeline.lab.soak import Child, RedisServer, rss_mb, slope_mb_per_min

MIN_PROCESSED = 0.95  # of the frames offered, on every camera
MIN_OFFERED = 0.95  # of the frames expected (fps x seconds), on every camera
REPLAY_FPS = 25.0  # the rate replay:// plays a video whose header gives none
MAX_P99_S = 1.0  # closing -> queryable
MAX_SLOPE = 2.0  # MB/min a process may grow by and count as flat (as in the soak)
JUDGE_AFTER = 120.0  # seconds of samples memory needs to be judged
MATCHER = (sys.executable, "-m", "pipeline", "matcher")


class SiteBenchError(CrosscamError):
    """A part of the benchmark's site did not start or stopped early (what, and its last output)."""


@dataclass(frozen=True)
class SiteBenchOptions:
    cameras: tuple[int, ...] = (1, 2, 4)
    seconds: float = 60.0
    warmup: float = 10.0
    fps: float = 5.0
    videos: tuple[Path, ...] = ()
    detector: str | None = None  # default: detector.weights
    sample_every: float = 2.0
    drain_timeout: float = 30.0  # after the cameras stop, how long tracklets may take to become queryable
    matcher_args: tuple[str, ...] = ()  # --config/--set for the matcher process (the site's own configuration)
    matcher_timeout: float = 180.0  # for the matcher process to start and take its lease
    together: bool = False  # every camera plays its video from the start (a burst load), else staggered
    margin: float = 5.0  # seconds the cameras run past the window's end, so their stop falls outside it


def start_redis(folder: Path, port: int | None = None) -> RedisServer:
    """The benchmark's own redis-server (``pipeline.lab.soak.RedisServer``, its append-only file fsynced every
    second) on a free port (or ``port``) in ``folder``, answering; a ``SiteBenchError`` with the end of its log
    when it does not start (it is stopped then)."""
    from pipeline.lab.rtsp_server import free_port

    try:
        server = RedisServer(folder, port or free_port(), appendfsync="everysec")
    except RuntimeError as e:  # no redis-server binary
        raise SiteBenchError(str(e)) from None
    try:
        server.start()
    except RuntimeError as e:
        server.stop()
        raise SiteBenchError(str(e)) from None
    return server


MAX_SAMPLES = 200  # RSS samples a process's report keeps (evenly thinned)


@dataclass
class Usage:
    """CPU seconds and RSS samples of one process, from the start of the measured window."""

    pid: int
    cpu0: float | None = None
    cpu1: float | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the window, MB)

    def cpu(self) -> float | None:
        """User + system CPU seconds of the process so far (psutil when installed, else /proc); None once
        it is gone."""
        try:
            import psutil
        except ImportError:
            psutil = None
        if psutil is not None:
            try:
                t = psutil.Process(self.pid).cpu_times()
            except psutil.Error:
                return None
            return t.user + t.system
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def sample(self, t: float) -> None:
        mb = rss_mb(self.pid)
        if mb is not None:
            self.samples.append((round(t, 1), round(mb, 1)))

    def report(self, wall: float, share: int = 1) -> dict:
        busy = None if self.cpu0 is None or self.cpu1 is None else (self.cpu1 - self.cpu0) / wall
        s = self.samples
        late = [x for x in s if x[0] >= s[-1][0] / 2] if s else []  # the window's second half
        return {
            "cpu": None if busy is None else round(busy, 3),  # CPU seconds a wall second (1.0: one core busy)
            "cpu_per_camera": None if busy is None else round(busy / share, 3),
            "rss_start_mb": s[0][1] if s else None,
            "rss_end_mb": s[-1][1] if s else None,
            "rss_max_mb": max(m for _, m in s) if s else None,
            # the whole process's last RSS divided by its cameras (process RSS / N), not a camera's own memory
            "rss_end_mb_per_camera": round(s[-1][1] / share, 1) if s else None,
            "rss_slope_mb_per_min": round(slope_mb_per_min(s), 2) if len(s) >= 2 else None,
            "rss_late_slope_mb_per_min": round(slope_mb_per_min(late), 2) if len(late) >= 2 else None,
            # flat: the slope over the window's second half at most MAX_SLOPE (the first minutes fill the working
            # set: open tracks' crops, the runtimes' arenas), judged over JUDGE_AFTER seconds or more (None: too short)
            "memory_flat": slope_mb_per_min(late) <= MAX_SLOPE
            if late and late[-1][0] - late[0][0] >= JUDGE_AFTER
            else None,
            "rss_mb": s[:: max(1, -(-len(s) // MAX_SAMPLES))],  # (seconds into the window, MB), at most MAX_SAMPLES
        }


def percentiles(values: list[float]) -> dict:
    """p50, p99 and max of ``values`` in seconds (None for each when there are none)."""
    if not values:
        return {"n": 0, "p50_s": None, "p99_s": None, "max_s": None}
    import numpy as np

    a = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50_s": round(float(np.percentile(a, 50)), 3),
        "p99_s": round(float(np.percentile(a, 99)), 3),
        "max_s": round(float(a.max()), 3),
    }


def verdict(cameras: list[dict], close_latency: dict, lost: int) -> tuple[bool, list[str]]:
    """Whether N cameras hold real time, and why not."""
    why = []
    for c in cameras:
        expected = c.get("expected")
        if expected and c["offered"] < MIN_OFFERED * expected:
            why.append(
                f"{c['camera']} was offered {c['offered']} of the {expected} frames expected "
                f"({c['offered'] / expected:.1%} < {MIN_OFFERED:.0%}): its source fell behind the asked rate"
            )
        if c["processed_fraction"] is None:
            why.append(f"{c['camera']}: no frames offered")
        elif c["processed_fraction"] < MIN_PROCESSED:
            why.append(f"{c['camera']} processed {c['processed_fraction']:.1%} of its frames (< {MIN_PROCESSED:.0%})")
    p99 = close_latency["p99_s"]
    if p99 is None:
        why.append("no tracklet closed in the window: no latency measured")
    elif p99 >= MAX_P99_S:
        why.append(f"p99 from closing to queryable {p99:.2f} s (>= {MAX_P99_S:g} s)")
    if lost:
        why.append(f"{lost} tracklets closed in the window never became queryable")
    return not why, why


def _window_counts(worker) -> dict:
    """A camera's counters at one moment: offered, processed, dropped, waiting in its buffer."""
    buffer = worker.source.buffer
    with buffer.cond:
        return {
            "offered": worker.source.counts["frames"],
            "processed": worker.report.frames,
            "dropped": buffer.dropped,
            "waiting": len(buffer.items),
        }


def camera_row(camera: str, start: dict, end: dict, tracklets: int, expected: int | None = None) -> dict:
    """One camera's figures over the window from two ``_window_counts``. The frames waiting at the start count
    as offered in the window; the worker's frames minus those it had taken before (offered - dropped - waiting
    at the start, the one it was working on included) are its processed ones, so processed <= offered.
    ``expected``: the frames the camera should have been offered (its rate x the window's seconds)."""
    offered = end["offered"] - start["offered"] + start["waiting"]
    taken_before = start["offered"] - start["dropped"] - start["waiting"]
    processed = max(0, end["processed"] - taken_before)
    return {
        "camera": camera,
        "expected": expected,
        "offered": offered,
        "processed": processed,
        "dropped": end["dropped"] - start["dropped"],
        "waiting_at_end": end["waiting"],
        "processed_fraction": round(processed / offered, 4) if offered else None,
        "tracklets": tracklets,
    }


@dataclass(frozen=True)
class Closed:
    """A tracklet as the camera handed it over: when (wall clock), its last frame's time, its camera, and
    whether the camera's source had stopped (the flush of every open track when a camera stops)."""

    at: float
    t_end: float
    camera: str
    flushed: bool = False


def in_window(closed: dict[str, Closed], start: float, end: float) -> dict[str, Closed]:
    """The tracklets closed in ``[start, end]``, those flushed when a camera stopped left out."""
    return {k: v for k, v in closed.items() if start <= v.at <= end and not v.flushed}


def video_rate(path: Path) -> float:
    """The frames a second ``replay://`` plays ``path`` at: its header's rate, else ``REPLAY_FPS``."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return fps if fps > 0 else REPLAY_FPS


class StreamTimes:
    """When each tracklet reached a stream: the id (ms) of its first entry there, read as the stream grows.
    The decisions stream (``sighting`` field) says when it became queryable, the tracklet stream (``camera``,
    ``track``, ``seq``) when it was published."""

    def __init__(self, client, key: str, tracklet_id: Callable[[dict], str | None]) -> None:
        self.client, self.key, self.tracklet_id, self.last, self.at = client, key, tracklet_id, "-", {}

    def read(self) -> dict[str, float]:
        while True:
            lo = "(" + self.last if self.last != "-" else "-"
            chunk = self.client.xrange(self.key, min=lo, max="+", count=1000)
            if not chunk:
                return self.at
            for sid, fields in chunk:
                tracklet = self.tracklet_id(fields)
                if tracklet is not None:
                    self.at.setdefault(tracklet, int(sid.split(b"-")[0]) / 1000)
            self.last = chunk[-1][0].decode()


def decided(fields: dict) -> str | None:
    """The sighting a decisions entry made queryable (a link or a new identity; not a merge or an unlink)."""
    sighting = fields.get(b"sighting")
    return sighting.decode() if sighting is not None and fields.get(b"decision") != b"unlink" else None


def published(fields: dict) -> str | None:
    """The tracklet id of a tracklet stream record."""
    return f"{fields[b'camera'].decode()}:{int(fields[b'track'])}:{int(fields[b'seq'])}"


def run_site_bench(
    config: CrosscamConfig,
    options: SiteBenchOptions,
    embedder,
    say: Callable[[str, float], None] | None = None,
) -> dict:
    """Every N of ``options.cameras`` in turn; returns the rows and the largest N that holds."""
    say = say or (lambda message, done: None)
    config = config.model_copy(update={"source": config.source.model_copy(update={"fps": options.fps})})
    rows = []
    with sigterm_interrupts():
        for i, n in enumerate(options.cameras):

            def progress(message: str, done: float, i=i, n=n) -> None:
                say(f"{n} camera{'s' * (n > 1)}: {message}", (i + done) / len(options.cameras))

            rows.append(measure(config, options, embedder, n, progress))
    held = [r["cameras"] for r in rows if r["holds"]]
    return {"results": rows, "max_cameras_real_time": max(held) if held else 0}


@contextlib.contextmanager
def sigterm_interrupts():
    """While in the block (on the main thread), SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, so the
    site's processes and folder are cleaned up on the way out; a second SIGTERM during the cleanup is ignored.
    The previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure(config: CrosscamConfig, options: SiteBenchOptions, embedder, n: int, say) -> dict:
    """One site of ``n`` cameras: its own Redis server and matcher process, this process as its cameras."""
    import redis

    from pipeline.keys import Keys
    from pipeline.site import Site

    name = f"bench-{n}-{uuid.uuid4().hex[:6]}"
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crosscam-bench-site-")))
        say("starting Redis and the matcher", 0.0)
        redis_server = start_redis(work)
        stack.callback(redis_server.stop)
        raw = redis.Redis.from_url(redis_server.url)
        matcher = Child(
            "matcher",
            [*MATCHER, "--redis-url", redis_server.url, "--site", name, *options.matcher_args, "--json"],
            work / "matcher.log",
        )
        matcher.start(0.0)
        stack.callback(lambda: matcher.signal(signal.SIGKILL, 10))
        _wait_for_matcher(raw, Keys(name, config.redis.prefix), matcher, options.matcher_timeout)
        site = Site.open(config, name, redis_server.url)
        process = site.cameras(embedder)
        closed: dict[str, Closed] = {}  # tracklet id -> when and how it closed
        lock = threading.Lock()
        sources = {}  # camera -> its source, to tell the tracklets flushed when it stops

        def on_tracklet(tracklet) -> None:
            source = sources.get(tracklet.camera_id)
            flushed = source is not None and source.buffer.closed  # the worker's finish() after its source stopped
            with lock:
                key = f"{tracklet.camera_id}:{tracklet.track_id}:{tracklet.seq}"
                closed[key] = Closed(time.time(), float(tracklet.t_end), tracklet.camera_id, flushed)
            process.service.submit(tracklet)

        videos = options.videos
        say("loading the detectors", 0.0)
        workers = [
            process.camera(f"cam{c}", replay_url(videos, c, n, options.together), options.detector, on_tracklet)
            for c in range(n)
        ]
        sources.update((w.camera_id, w.source) for w in workers)
        stack.callback(lambda: [w.source.stop() for w in workers])  # on an interruption: stop reading
        rates = {f"cam{c}": min(options.fps, video_rate(videos[c % len(videos)])) for c in range(n)}
        usage = {"camera_process": Usage(os.getpid()), "matcher": Usage(matcher.proc.pid)}
        usage["redis"] = Usage(redis_server.proc.pid)
        marks: dict = {}
        stop = threading.Event()
        sampler = threading.Thread(
            target=_sample, args=(options, workers, usage, marks, stop, say), name="bench-sampler", daemon=True
        )
        marks["run"] = time.time()
        sampler.start()
        # past the window's end by a margin: a camera's stop flushes its open tracks, which must not be timed
        reports = process.run(workers, options.warmup + options.seconds + options.margin)
        stop.set()
        sampler.join()
        if "start" not in marks:  # the sources ended before the warm-up did
            raise SiteBenchError("the cameras stopped before the warm-up ended: " + _states(reports))
        wall = marks["end"] - marks["start"]
        say("waiting for the last sightings", 1.0)
        decisions = StreamTimes(site.client, site.keys.decisions, decided)
        window = in_window(closed, marks["start"], marks["end"])
        # every tracklet handed over, the window's and those after it, is queryable before the teardown
        drained = _drain(decisions, closed, options.drain_timeout)
        matcher.signal(signal.SIGINT, 20)
        at = decisions.read()
        sent = StreamTimes(site.client, site.keys.tracklets, published).read()
        from_close = [at[k] - v.at for k, v in window.items() if k in at]
        from_end = [at[k] - v.t_end for k, v in window.items() if k in at]
        to_stream = [sent[k] - v.at for k, v in window.items() if k in sent]
        matching = [at[k] - sent[k] for k in window if k in at and k in sent]
        per_camera = {w.camera_id: sum(v.camera == w.camera_id for v in window.values()) for w in workers}
        end = marks["end_counts"]
        cameras = [camera_row(w.camera_id, marks["counts"][w.camera_id], end[w.camera_id], per_camera[w.camera_id],
                              round(rates[w.camera_id] * wall)) | {"run_counts": reports[w.camera_id].counts}
                   for w in workers]  # fmt: skip
        close_latency, lost = percentiles(from_close), sum(k not in at for k in window)
        holds, why = verdict(cameras, close_latency, lost)
        return {
            "cameras": n,
            "site": name,
            "seconds": round(wall, 1),
            "fps": options.fps,
            "margin_s": options.margin,
            "per_camera": cameras,
            "processed_fraction_min": min((c["processed_fraction"] or 0.0) for c in cameras),
            "tracklets": len(window),
            "flushed": sum(v.flushed for v in closed.values()),  # closed as the cameras stopped, not counted
            "queryable": len(window) - lost,
            "lost": lost,
            "published": process.service.counts["published"],
            "embedding_dropped": process.service.counts["dropped"],
            "latency_close_to_queryable": close_latency,
            "latency_last_frame_to_queryable": percentiles(from_end),
            "latency_close_to_published": percentiles(to_stream),  # detection done: embedding, publishing
            "latency_published_to_queryable": percentiles(matching),  # the matcher's part
            "drain_s": drained,
            "usage": {k: u.report(wall, n if k == "camera_process" else 1) for k, u in usage.items()},
            "holds": holds,
            "why_not": why,
            "sources": _states(reports),
        }


def video_seconds(path: Path) -> float:
    """A video file's length in seconds (0 when its header does not say)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        fps, frames = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    return frames / fps if fps > 0 and frames > 0 else 0.0


def replay_url(videos: tuple[Path, ...], camera: int, cameras: int, together: bool) -> str:
    """Camera ``camera``'s source: its video (cycled over ``videos``) played as a live camera, starting
    ``camera / cameras`` of the way into it unless ``together``: real cameras do not see the same moment, so
    their tracklets do not close all at once."""
    video = videos[camera % len(videos)].resolve()
    sharing = -(-cameras // len(videos))  # cameras playing this video
    start = 0.0 if together else (camera // len(videos)) * video_seconds(video) / sharing
    return f"replay://{video}?start={start:.2f}"


def _states(reports) -> str:
    return ", ".join(f"{c} {r.final_state}" + (f" ({r.error})" if r.error else "") for c, r in reports.items())


def _wait_for_matcher(client, keys, matcher: Child, timeout: float) -> None:
    """Until the matcher process holds the site's lease (it has started and is reading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.exists(keys.lease):
            return
        if not matcher.alive():
            raise SiteBenchError(f"the matcher exited with {matcher.proc.returncode}:\n{matcher.tail()}")
        time.sleep(0.2)
    raise SiteBenchError(f"the matcher did not start within {timeout:g} s:\n{matcher.tail()}")


def _sample(options: SiteBenchOptions, workers, usage: dict[str, Usage], marks: dict, stop, say) -> None:
    """Marks the window's start (counters, CPU) after the warm-up and its end (the same), sampling memory
    meanwhile. The window ends ``warmup + seconds`` after the run began, or earlier when ``stop`` is set."""
    t0 = marks["run"]
    total = options.warmup + options.seconds
    next_sample = 0.0
    while True:
        now = time.time()
        if "start" not in marks and now - t0 >= options.warmup:
            marks["counts"] = {w.camera_id: _window_counts(w) for w in workers}
            for u in usage.values():
                u.cpu0 = u.cpu()
            marks["start"] = now
        ended = stop.is_set() or now - t0 >= total
        if "start" in marks and (now - marks["start"] >= next_sample or ended):
            for u in usage.values():
                u.sample(now - marks["start"])
            next_sample += options.sample_every
        if ended:
            if "start" in marks:
                marks["end_counts"] = {w.camera_id: _window_counts(w) for w in workers}
                for u in usage.values():
                    u.cpu1 = u.cpu()
                marks["end"] = now
                say(f"window closed; the cameras run {options.margin:g} s more, not counted, then stop", 0.95)
            return
        phase = "warming up" if "start" not in marks else "measuring"
        say(f"{phase}, {now - t0:.0f}/{total:g} s", min((now - t0) / total, 1.0) * 0.95)
        stop.wait(0.25)


def _drain(decisions: StreamTimes, window: dict, timeout: float) -> float:
    """Wait (``timeout`` at most) until every tracklet of ``window`` is queryable; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        at = decisions.read()
        if all(k in at for k in window):
            break
        time.sleep(0.2)
    return round(time.monotonic() - start, 1)
