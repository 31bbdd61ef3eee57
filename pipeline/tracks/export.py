"""Per-frame tracks out of a site's store: every camera's every frame with its people's boxes and *current* global
identities, as MOTChallenge files (``pipeline.tracks.mot``).

A sighting holds its tracklet's box in every frame (``pipeline.types.PATH_COLUMNS``: detected, or filled in between
detections where the motion gate or ``detector.every`` skipped the detector), and the identity the matcher gave it,
rewritten by merges and ``unlink``: so an export made later reflects every later decision. A row's conf is the
detector's confidence, 0 on a filled-in frame. Frames are the sources' own frame numbers plus one (MOTChallenge
counts from 1): for a video file, its frame; for a live stream, frames counted from the worker's start.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crosscam.errors import CrosscamError
from pipeline.bus.connect import Client
from pipeline.keys import Keys
from pipeline.store.tracks import SightingPath, camera_ids, sighting_paths
from pipeline.tracks.mot import TrackRow, read_mot, write_mot


@dataclass
class Export:
    """What an export wrote: per camera its file and rows, and what was left out, by reason."""

    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    identities: set[int] = field(default_factory=set)
    left_out: Counter[str] = field(default_factory=Counter)
    videos: dict[str, Path] = field(default_factory=dict)  # annotated videos written beside the files

    def as_dict(self) -> dict:
        return {
            "files": {c: str(p) for c, p in self.files.items()},
            "videos": {c: str(p) for c, p in self.videos.items()},
            "rows": self.rows,
            "identities": len(self.identities),
            "left_out": dict(self.left_out),
        }


def track_rows(
    paths: Iterable[SightingPath], skip: set[int] | None = None, left_out: Counter | None = None
) -> list[TrackRow]:
    """One camera's sightings as rows, one per identity and frame. Two sightings of one identity in one frame (the
    tracker followed one person as two tracks, both linked to them) keep the detected box, then the more confident;
    sightings of the identities in ``skip`` are left out (counted in ``left_out``)."""
    best: dict[tuple[int, int], TrackRow] = {}
    left_out = Counter() if left_out is None else left_out
    for s in paths:
        if skip and s.identity in skip:
            left_out["tentative"] += 1
            continue
        for frame, _, x1, y1, x2, y2, score in s.path.tolist():
            row = TrackRow(int(frame) + 1, s.identity, x1, y1, x2 - x1, y2 - y1, conf=score)
            key = (row.frame, row.identity)
            held = best.get(key)
            if held is not None:
                left_out["same_identity_twice_in_a_frame"] += 1
                if held.conf >= row.conf:
                    continue
            best[key] = row
    return sorted(best.values(), key=lambda r: (r.frame, r.identity))


def export_tracks(
    client: Client,
    keys: Keys,
    out: Path,
    cameras: Iterable[str] | None = None,
    skip: set[int] | None = None,
) -> Export:
    """Write ``out/<camera>.txt`` for each of ``cameras`` (default: every camera of the site), leaving out the
    identities in ``skip``."""
    result = Export()
    for camera in cameras if cameras is not None else camera_ids(client, keys):
        skipped: dict[str, int] = {}
        rows = track_rows(sighting_paths(client, keys, camera, skipped=skipped), skip, result.left_out)
        result.left_out.update({f"sightings_{k}": v for k, v in skipped.items()})
        result.files[camera] = write_mot(out / f"{camera}.txt", rows)
        result.rows[camera] = len(rows)
        result.identities |= {r.identity for r in rows}
    return result


def tentative_identities(client: Client, keys: Keys, seconds: float) -> set[int]:
    """The site's tentative identities (``pipeline.store.fields.tentative`` at ``seconds``)."""
    from pipeline import store

    everyone = store.persons(client, keys, limit=2**62, tentative_seconds=seconds)
    return {p.person for p in everyone if p.tentative}


def write_tracks(
    client: Client,
    keys: Keys,
    out: Path,
    cameras: Iterable[str] | None = None,
    videos: dict[str, Path] | None = None,
    tentative_seconds: float | None = None,
) -> Export:
    """``export_tracks`` into ``out``, and each camera's tracks drawn on its video (``videos``: camera -> file) as
    ``out/<camera>.mp4``; with ``tentative_seconds``, the tentative identities left out. A folder that cannot be
    written is a ``CrosscamError`` before anything is written."""
    from pipeline.tracks.annotate import annotate_video

    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".crosscam-write-check"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise CrosscamError(f"{out}: cannot write tracks there ({e.strerror}); give a folder you can write") from None
    skip = tentative_identities(client, keys, tentative_seconds) if tentative_seconds is not None else None
    result = export_tracks(client, keys, out, cameras, skip)
    for camera, video in (videos or {}).items():
        rows = read_mot(result.files[camera]) if camera in result.files else []
        annotate_video(video, rows, out / f"{camera}.mp4")
        result.videos[camera] = out / f"{camera}.mp4"
    return result
