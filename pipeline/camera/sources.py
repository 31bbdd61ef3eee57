"""Camera sources: each reads on its own thread into a bounded buffer, with an explicit state.

States (``SourceState``): ``connecting`` -> ``streaming`` -> (``reconnecting`` -> ``streaming``)* ->
``ended`` (a file reached its end), ``stopped`` (``stop()`` before it ended, also while it waits to reconnect) or
``failed`` (cannot open, or reconnect attempts used up).

Buffer policies (``BufferPolicy``) for a full buffer:
- ``drop_oldest`` (live cameras): the oldest waiting frame is dropped and counted, so a slow consumer
  sees recent frames and the camera's own buffer never backs up.
- ``wait`` (files): the reader waits for room, so every frame of a file is processed.

URLs: ``rtsp://`` / ``rtsps://`` (TCP by default; ``transport="udp"`` on request), ``http(s)://``, a video
file path (or ``file://``), a webcam index (``0``), and schemes a caller adds as a ``SourceType``: a site
(``pipeline.site``) adds ``synth://?cameras=3&people=8&seconds=60&seed=1&camera=0`` (one camera of a
synthetic world, ``synth.stream``) and ``replay://PATH`` (a video file played at its own frame rate, looped, as
if it were a live camera: ``pipeline.camera.replay``).

Frame rate: ``max_fps`` keeps at most that many frames a second of stream time (a 25 frames/s camera processed
at 5): every frame is still decoded (a compressed stream needs it), the others are skipped before the buffer
and counted (``counts["fps_skipped"]``), so they are neither offered nor dropped.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import numpy as np

from crosscam.errors import CrosscamError
from crosscam.redact import redact
from pipeline.types import Frame

log = logging.getLogger(__name__)


class SourceError(CrosscamError):
    """A source URL that cannot be used: unknown scheme, missing file, unreadable video."""


class SourceState(enum.Enum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    STOPPED = "stopped"
    FAILED = "failed"


class BufferPolicy(enum.Enum):
    DROP_OLDEST = "drop_oldest"
    WAIT = "wait"


@dataclass(frozen=True)
class Reconnect:
    """Exponential backoff with jitter: delay_n = min(max_delay, initial * factor^n) * (1 +- jitter)."""

    initial: float = 0.5
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = None  # None: retry forever (a camera may come back hours later)

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_delay, self.initial * self.factor**attempt)
        return base * (1 + rng.uniform(-self.jitter, self.jitter))


class FrameBuffer:
    """A bounded queue of frames with a named full-buffer policy."""

    def __init__(self, capacity: int, policy: BufferPolicy) -> None:
        self.capacity, self.policy = capacity, policy
        self.items: collections.deque[Frame] = collections.deque()
        self.cond = threading.Condition()
        self.dropped = 0
        self.closed = False

    def put(self, frame: Frame, stop: threading.Event) -> None:
        with self.cond:
            if self.policy is BufferPolicy.WAIT:
                while len(self.items) >= self.capacity and not stop.is_set():
                    self.cond.wait(0.1)
            elif len(self.items) >= self.capacity:
                self.items.popleft()
                self.dropped += 1
            self.items.append(frame)
            self.cond.notify_all()

    def get(self, timeout: float) -> Frame | None:
        """The next frame, or None after ``timeout`` seconds or once closed and empty."""
        with self.cond:
            if not self.items and not self.closed:
                self.cond.wait(timeout)
            if not self.items:
                return None
            frame = self.items.popleft()
            self.cond.notify_all()
            return frame

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


@dataclass(frozen=True)
class SourceSpec:
    """What to open and how: resolved from a URL by ``parse_source``."""

    camera_id: str
    url: str = field(repr=False)  # may carry credentials: shown only through ``shown``
    target: str | int = field(repr=False)  # what OpenCV opens
    live: bool
    transport: str = "tcp"
    kind: str = "video"  # video (OpenCV / FFmpeg), or the scheme of a ``SourceType`` the caller passed

    @property
    def shown(self) -> str:
        """The URL as errors, logs and statuses show it: credentials redacted (``crosscam.redact``)."""
        return redact(self.url)


class Capture(Protocol):
    """A reader of frames: ``VideoCapture``'s methods and its ``frame_count`` and ``fps``."""

    frame_count: int
    fps: float

    def opened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None, float]: ...
    def position(self) -> int: ...
    def release(self) -> None: ...


@dataclass(frozen=True)
class SourceType:
    """A kind of source a caller adds by URL scheme (``synth.stream.SYNTH`` for ``synth://``): ``check(url)``
    raises ``SourceError`` for a bad URL (at parse time, not on the reader thread), ``open(url)`` returns its
    reader. Such sources are read like files (every frame, none dropped) unless ``live``: then like a camera
    (the oldest waiting frame dropped when the consumer is slow, reopened when it stops delivering, stamped
    with wall-clock time); a live reader whose ``ended`` attribute is true has ended for good."""

    check: Callable[[str], object]
    open: Callable[[str], Capture]
    live: bool = False


def parse_source(
    camera_id: str, url: str, transport: str = "tcp", types: Mapping[str, SourceType] | None = None
) -> SourceSpec:
    """Check a source URL and decide how to open it (``types``: further schemes); an error names the URL and
    what is accepted (credentials redacted from it)."""
    types = types or {}
    shown = redact(url)
    scheme = urlparse(url).scheme.lower()
    if url.strip().isdigit():
        return SourceSpec(camera_id, url, int(url), live=True)
    if scheme in ("rtsp", "rtsps", "http", "https"):
        if transport not in ("tcp", "udp"):
            raise SourceError(f"{shown}: transport must be tcp or udp, got {transport!r}")
        if not urlparse(url).hostname:
            raise SourceError(f"{shown}: no host in the URL")
        _check_port(url, shown)
        return SourceSpec(camera_id, url, url, live=True, transport=transport)
    if scheme in types:
        types[scheme].check(url)
        return SourceSpec(camera_id, url, url, live=types[scheme].live, kind=scheme)
    if scheme in ("", "file"):
        path = Path(urlparse(url).path if scheme == "file" else url)
        if not path.is_file():
            raise SourceError(f"{shown}: video file not found")
        return SourceSpec(camera_id, url, str(path), live=False)
    more = "".join(f", {name}://" for name in types)
    raise SourceError(
        f"{shown}: unknown source scheme {scheme!r}; use rtsp://, rtsps://, http(s)://, a video file path, "
        f"file://{more} or a webcam index such as 0"
    )


def _check_port(url: str, shown: str) -> None:
    """FFmpeg ends a URL's host at its first ``/``, ``?`` or ``#``: a password holding one raw leaves a host
    whose "port" is part of the password, which never connects."""
    try:
        _ = urlparse(url).port  # raises ValueError for a port that is not a number
    except ValueError:
        raise SourceError(
            f"{shown}: the port is not a number from 0 to 65535; a password that holds '/', '?' or '#' must be "
            "percent-encoded (%2F, %3F, %23)"
        ) from None


ENV_SOURCE = "env:"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def source_from_env(value: str, environ: Mapping[str, str]) -> str:
    """A source as given (``--source``, a camera's ``source``), or, for ``env:NAME``, the URL in the environment
    variable ``NAME``: a URL with a password then stays out of process lists and config files."""
    if not value.startswith(ENV_SOURCE):
        return value
    name = value[len(ENV_SOURCE) :]
    if not _ENV_NAME.fullmatch(name):
        raise SourceError(f"source {value!r}: env: takes an environment variable's name, such as env:CAMERA_URL")
    url = environ.get(name, "").strip()
    if not url:
        raise SourceError(f"source {value}: the environment variable {name} is not set or empty; set it to the URL")
    return url


_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_OPENING = threading.Lock()


@contextlib.contextmanager
def _ffmpeg_options(options: str | None) -> Iterator[None]:
    """OpenCV reads FFmpeg's options for a capture from this variable while the capture opens. Captures open
    one at a time under a lock, a live stream's with its own options (cameras open on several threads); the
    variable is restored after, and left as the user set it for other captures."""
    with _OPENING:
        if options is None:
            yield
            return
        before = os.environ.get(_FFMPEG_OPTIONS)
        os.environ[_FFMPEG_OPTIONS] = options
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_FFMPEG_OPTIONS, None)
            else:
                os.environ[_FFMPEG_OPTIONS] = before


class VideoCapture:
    """OpenCV's FFmpeg reader with open/read timeouts, so a dead camera cannot hang a thread. ``hardware``: ask
    FFmpeg for a hardware decoder (``VIDEO_ACCELERATION_ANY``: VA-API on Linux, D3D11 on Windows, as OpenCV's
    build offers), decoding on the CPU where there is none; ``accelerated`` says which it got."""

    def __init__(self, spec: SourceSpec, timeout_ms: int = 5000, hardware: bool = False) -> None:
        import cv2

        self.cv2 = cv2
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        if hardware and not isinstance(spec.target, int):
            params += [cv2.CAP_PROP_HW_ACCELERATION, cv2.VIDEO_ACCELERATION_ANY]
        backend = cv2.CAP_ANY if isinstance(spec.target, int) else cv2.CAP_FFMPEG
        options = f"rtsp_transport;{spec.transport}" if spec.live and isinstance(spec.target, str) else None
        with _ffmpeg_options(options):
            self.cap = cv2.VideoCapture(spec.target, backend, params)
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.accelerated = bool(self.cap.get(cv2.CAP_PROP_HW_ACCELERATION))

    def opened(self) -> bool:
        return bool(self.cap.isOpened())

    def read(self) -> tuple[bool, np.ndarray | None, float]:
        """(ok, RGB frame, stream time in seconds since the stream's start)."""
        ok, image = self.cap.read()
        pos = self.cap.get(self.cv2.CAP_PROP_POS_MSEC) / 1000.0
        if not ok or image is None:
            return False, None, pos
        return True, self.cv2.cvtColor(image, self.cv2.COLOR_BGR2RGB), pos

    def position(self) -> int:
        return int(self.cap.get(self.cv2.CAP_PROP_POS_FRAMES))

    def release(self) -> None:
        self.cap.release()


class Source:
    """A camera read on its own thread. ``frames()`` yields ``Frame`` values until the source ends."""

    def __init__(
        self,
        spec: SourceSpec,
        capacity: int = 8,
        policy: BufferPolicy | None = None,
        reconnect: Reconnect | None = None,
        on_state: Callable[[SourceState, str], None] | None = None,
        opener: Callable[[SourceSpec], Capture] = VideoCapture,
        max_decode_errors: int = 25,
        max_fps: float | None = None,
    ) -> None:
        if max_fps is not None and max_fps <= 0:
            raise SourceError(f"{spec.shown}: max_fps must be positive, got {max_fps}")
        self.spec, self.max_fps = spec, max_fps
        self.policy = policy or (BufferPolicy.DROP_OLDEST if spec.live else BufferPolicy.WAIT)
        self.buffer = FrameBuffer(capacity, self.policy)
        self.reconnect = reconnect or Reconnect()
        self.on_state, self.opener, self.max_decode_errors = on_state, opener, max_decode_errors
        self.state = SourceState.CONNECTING
        self.error = ""
        self.counts = collections.Counter()
        self.state_history: list[SourceState] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"source-{spec.camera_id}", daemon=True)
        self._rng = random.Random(hash(spec.camera_id))
        self._due: float | None = None  # stream time of the next frame to keep under max_fps

    def start(self) -> Source:
        self._set(SourceState.CONNECTING)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading (a reconnection's wait ends at once) and wait up to ``timeout`` seconds for the reader
        thread (an open or a read in progress ends within the capture's own timeouts)."""
        self._stop.set()
        self._thread.join(timeout)

    def frames(self, poll: float = 0.2, until: Callable[[], bool] | None = None) -> Iterator[Frame]:
        """The frames as they come, until the source ends or, checked at least every ``poll`` seconds even
        while no frame comes (a camera reconnecting), ``until()`` is true."""
        while until is None or not until():
            frame = self.buffer.get(poll)
            if frame is not None:
                yield frame
            elif self.buffer.closed:
                return

    def _set(self, state: SourceState, error: str = "") -> None:
        if state is not self.state or not self.state_history:
            self.state_history.append(state)
        self.state, self.error = state, redact(error)
        if self.on_state:
            try:
                self.on_state(state, self.error)
            except Exception as e:  # reporting the state (Redis down, ...) must never end the reader
                log.warning("camera %s: state %s not reported: %s", self.spec.camera_id, state.value, redact(e))

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # an opener or reader that raised: the source fails, saying why
            log.error("camera %s: the source stopped: %s", self.spec.camera_id, redact(e))
            self._set(SourceState.FAILED, f"{self.spec.shown}: {type(e).__name__}: {e}")
        finally:
            self.buffer.close()

    def _loop(self) -> None:
        attempt, index = 0, 0
        while not self._stop.is_set():
            cap = self.opener(self.spec)
            if not cap.opened():
                cap.release()
                if not self.spec.live:
                    self._set(SourceState.FAILED, f"{self.spec.shown}: cannot decode this video file")
                    return
                if not self._wait_to_retry(attempt, f"{self.spec.shown}: cannot connect"):
                    return
                attempt += 1
                continue
            attempt = 0
            self._set(SourceState.STREAMING)
            t0 = time.time()
            errors = 0
            while not self._stop.is_set():
                ok, image, pos = cap.read()
                if getattr(cap, "late", 0):
                    self.counts["replay_late"] = cap.late
                if ok:
                    errors = 0
                    stamp = self._stamp(cap, index, pos, t0)
                    index += 1
                    if not self._keep(stamp):
                        self.counts["fps_skipped"] += 1
                        continue
                    self.buffer.put(Frame(self.spec.camera_id, index - 1, stamp, image), self._stop)
                    self.counts["frames"] += 1
                    continue
                if getattr(cap, "ended", False):  # a live reader that has ended for good (a replay not looped)
                    cap.release()
                    self._set(SourceState.ENDED)
                    return
                if not self.spec.live:
                    if cap.position() < cap.frame_count - 1 and errors < self.max_decode_errors:
                        errors += 1  # a frame that fails to decode: skip it, count it
                        self.counts["decode_errors"] += 1
                        continue
                    cap.release()
                    self._set(SourceState.ENDED)
                    return
                break  # a live stream stopped delivering: reconnect
            cap.release()
            if self._stop.is_set():
                break
            self.counts["reconnects"] += 1
            if not self._wait_to_retry(0, f"{self.spec.shown}: stream interrupted"):
                return
        self._set(SourceState.STOPPED)

    def _keep(self, stamp: float) -> bool:
        """Whether a frame at stream time ``stamp`` is kept under ``max_fps``: frames are kept on a grid of
        1 / max_fps seconds (a quarter period early counts as on time), so 25 frames/s capped at 10 gives 10,
        not 8.3; a jump in the stream's time (a reconnection) restarts the grid."""
        if self.max_fps is None:
            return True
        period = 1.0 / self.max_fps
        if self._due is None or stamp < self._due - 2 * period or stamp > self._due + 2 * period:
            self._due = stamp
        if stamp < self._due - period / 4:
            return False
        self._due += period
        return True

    def _stamp(self, cap: VideoCapture, index: int, pos: float, t0: float) -> float:
        """A file's frames: its own time, index / fps. Live frames: the connection's wall-clock start (a pacing
        reader's own ``started_at``) plus the stream's position when it reports one (processing delays do not
        shift it), else arrival time."""
        if not self.spec.live:
            return index / cap.fps if cap.fps > 0 else pos
        started = getattr(cap, "started_at", None)  # a reader that paces itself knows when its stream began
        if started is not None:
            return started + pos
        return t0 + pos if pos > 0 else time.time()

    def _wait_to_retry(self, attempt: int, error: str) -> bool:
        """Enter ``reconnecting`` and sleep the backoff (``stop()`` ends it at once); False when attempts are used
        up (``failed``) or stopped (``stopped``)."""
        limit = self.reconnect.max_attempts
        if limit is not None and attempt >= limit:
            self._set(SourceState.FAILED, f"{error}; gave up after {attempt} attempts")
            return False
        self._set(SourceState.RECONNECTING, error)
        if self._stop.wait(self.reconnect.delay(attempt, self._rng)):
            self._set(SourceState.STOPPED)
            return False
        return True


def open_capture(spec: SourceSpec, types: Mapping[str, SourceType] | None = None, hardware: bool = False) -> Capture:
    """The reader for a spec: OpenCV for video (``hardware``: see ``VideoCapture``), else its ``SourceType``'s."""
    if types and spec.kind in types:
        return types[spec.kind].open(spec.url)
    capture = VideoCapture(spec, hardware=hardware)
    if hardware and capture.opened() and not capture.accelerated:
        log.info("camera %s: no hardware decoder for this stream here; decoding on the CPU", spec.camera_id)
    return capture


def open_source(
    camera_id: str,
    url: str,
    transport: str = "tcp",
    types: Mapping[str, SourceType] | None = None,
    hardware: bool = False,
    **options,
) -> Source:
    """Parse ``url`` (``types``: further schemes, see ``SourceType``) and start reading it on a thread
    (``hardware``: ask for a hardware video decoder); ``options`` go to ``Source``."""
    spec = parse_source(camera_id, url, transport, types)
    opener = functools.partial(open_capture, types=types, hardware=hardware)
    return Source(spec, opener=opener, **options).start()
