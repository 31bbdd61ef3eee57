"""The spool: embedded tracklets a camera process could not publish before it stopped, kept on disk and published
when a camera process of the site starts again.

A process asked to stop while Redis cannot be reached keeps trying for ``redis.stop_wait`` seconds; what it
still holds then is written here (``write_spool``) instead of being lost. The next camera process of the site
on this machine publishes every spooled record, oldest file first and in order within a file, before its cameras
start, so their new tracks are numbered after the spooled ones (``replay_spools``); a file is removed only once
all of it is on the stream. A record published twice (a process that died half-way through a file) is stored
once: the matcher drops a duplicate camera, track and sequence number.

One file per stop: ``<directory>/<site>/<nanoseconds>-<pid>.spool``, written to a temporary name and renamed,
JSON lines: a header ``{"spool": 1, "site": ..., "records": N}``, then each record's stream fields
(``records.encode``) with their bytes in base64. A file that cannot be read is renamed ``*.bad`` with one logged
line naming it (nothing of it is lost, and it does not stop the start); a record that no longer decodes goes to
the site's dead-letter stream with its reason.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from crosscam.errors import CrosscamError
from pipeline.bus import records
from pipeline.types import TrackletEmbedding

log = logging.getLogger(__name__)

VERSION = 1
SUFFIX = ".spool"


class SpoolError(CrosscamError):
    """A spool file that cannot be read: its path and line are named."""


@dataclass
class Replayed:
    """What ``replay_spools`` did: records published, files finished, files set aside as unreadable, records
    dead-lettered, and whether Redis failed part-way (the rest waits for the next start)."""

    published: int = 0
    files: int = 0
    bad_files: list[Path] = field(default_factory=list)
    dead: int = 0
    interrupted: bool = False


def site_dir(directory: Path, site: str) -> Path:
    return Path(directory) / site


def write_spool(directory: Path, site: str, waiting: Sequence[TrackletEmbedding]) -> Path:
    """Write ``waiting`` (oldest first) as one spool file of ``site`` under ``directory``; returns its path."""
    folder = site_dir(directory, site)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}-{os.getpid()}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(json.dumps({"spool": VERSION, "site": site, "records": len(waiting)}) + "\n")
        for t in waiting:
            fields = records.encode(t)
            f.write(json.dumps({k: base64.b64encode(v).decode("ascii") for k, v in fields.items()}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_spool(path: Path) -> tuple[str, list[dict[str, bytes]]]:
    """``(site, records' stream fields)`` of a spool file; ``SpoolError`` names the file and line when it cannot
    be read (truncated, not a spool, another version)."""
    try:
        lines = Path(path).read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SpoolError(f"{path}: cannot read the spool file ({e})") from e
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("spool") != VERSION or not isinstance(header.get("site"), str):
        raise SpoolError(f"{path}:1: not a crosscam spool file of version {VERSION}")
    count = header.get("records")
    if not isinstance(count, int) or count != len(lines) - 1:
        raise SpoolError(f"{path}: the header says {count} records, the file holds {len(lines) - 1} (truncated?)")
    out = []
    for n, line in enumerate(lines[1:], start=2):
        try:
            fields = json.loads(line)
            out.append({str(k): base64.b64decode(v, validate=True) for k, v in fields.items()})
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as e:
            raise SpoolError(f"{path}:{n}: not a spooled record ({e})") from e
    return header["site"], out


def pending(directory: Path, site: str) -> list[Path]:
    """The site's spool files, oldest first."""
    folder = site_dir(directory, site)
    return sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.name) if folder.is_dir() else []


@contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """An exclusive lock on the site's spool folder: True when this process holds it (another process starting
    at the same moment replays the files instead)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def replay_spools(
    directory: Path,
    site: str,
    publish: Callable[[TrackletEmbedding], object],
    dead_letter: Callable[[str, dict, str], object],
    transient: Callable[[BaseException], bool],
) -> Replayed:
    """Publish every spooled record of ``site`` in order and remove each file once all of it is published.
    ``dead_letter(source_id, fields, reason)`` takes a record that no longer decodes. A failure ``transient``
    calls an outage stops the replay (the file stays for the next start); any other failure of a record
    dead-letters it."""
    done = Replayed()
    folder = site_dir(directory, site)
    if not pending(directory, site):
        return done
    with _locked(folder) as mine:
        if not mine:
            return done
        for path in pending(directory, site):
            try:
                _, fields_list = read_spool(path)
            except SpoolError as e:
                bad = path.with_suffix(".bad")
                os.replace(path, bad)
                log.error("%s; set aside as %s", e, bad)
                done.bad_files.append(bad)
                continue
            for n, fields in enumerate(fields_list):
                source = f"spool:{path.name}:{n}"
                try:
                    publish(records.decode(fields))
                except records.RecordError as e:
                    dead_letter(source, fields, f"spooled record: {e}")
                    done.dead += 1
                    continue
                except Exception as e:
                    if transient(e):
                        log.warning("Redis unreachable while publishing %s: the rest waits for the next start", path)
                        done.interrupted = True
                        return done
                    dead_letter(source, fields, f"spooled record not published: {e}")
                    done.dead += 1
                    continue
                done.published += 1
            path.unlink()
            done.files += 1
    if done.published or done.dead:
        log.warning(
            "published %d tracklets spooled by an earlier stop (%d files; %d dead-lettered)",
            done.published,
            done.files,
            done.dead,
        )
    return done
