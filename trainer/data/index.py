"""Plain values describing a video re-ID data set: tracklets of image paths, and its splits."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crosscam.errors import CrosscamError


class DatasetError(CrosscamError):
    """A data set folder or file is missing or does not have the expected layout."""


@dataclass(frozen=True)
class Tracklet:
    """One person's sequence in one camera: image files in frame order."""

    paths: tuple[str, ...]
    pid: int
    camid: int


@dataclass(frozen=True)
class DatasetIndex:
    """Train / query / gallery tracklets of one data set (one split for PRID-2011 and iLIDS-VID)."""

    name: str
    root: str
    train: tuple[Tracklet, ...]
    query: tuple[Tracklet, ...]
    gallery: tuple[Tracklet, ...]
    skipped: tuple[str, ...] = ()  # image files left out because their names or places could not be read

    def summary(self) -> dict:
        def part(tracklets: tuple[Tracklet, ...]) -> dict:
            return {
                "tracklets": len(tracklets),
                "identities": len({t.pid for t in tracklets}),
                "images": sum(len(t.paths) for t in tracklets),
                "cameras": len({t.camid for t in tracklets}),
            }

        return {
            "dataset": self.name,
            "train": part(self.train),
            "query": part(self.query),
            "gallery": part(self.gallery),
        }


def count_missing(paths: Iterable[str]) -> tuple[int, int]:
    """(missing, total) over image paths, listing each folder once instead of stat-ing every file."""
    listed: dict[str, set[str] | None] = {}
    missing = total = 0
    for path in paths:
        folder, name = os.path.split(path)
        if folder not in listed:
            try:
                listed[folder] = set(os.listdir(folder))
            except OSError:
                listed[folder] = None
        entries = listed[folder]
        total += 1
        missing += entries is None or name not in entries
    return missing, total


def require(path: Path, what: str, layout: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{path}: {what} not found. Expected layout:\n{layout}")
    return path
