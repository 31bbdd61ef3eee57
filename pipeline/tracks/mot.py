"""Per-frame tracks in the MOTChallenge text format: one file per camera, one row per box.

A row is ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility`` (MOT16/17), comma-separated:
``frame`` is 1-based, ``id`` >= 1 is a *global* identity (the same id in two cameras' files is the same
person), the box is in pixels. Shorter rows (6 to 8 columns) leave out the trailing columns; 10-column rows
are MOT15's ``...,conf,x,y,z``, whose world coordinates are not read.

A folder of tracks holds one file per camera, the camera id being the file's stem (``DIR/<camera>.txt``), or
MOTChallenge's layout ``DIR/<camera>/gt/gt.txt``.

Ground truth follows MOT17: a row with conf 0 is not a person to find; a row whose class is given and is
not 1 (pedestrian) is not one either; a prediction on a row of a distractor class (``DISTRACTOR_CLASSES``) is
dropped instead of counted as a false positive (``pipeline.tracks.metrics`` applies this).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from crosscam.errors import CrosscamError

PEDESTRIAN = 1
UNKNOWN_CLASS = -1
# MOT17's classes whose boxes are neither found nor penalised: person on vehicle, static person, distractor,
# reflection (TrackEval's MotChallenge2DBox)
DISTRACTOR_CLASSES = frozenset({2, 7, 8, 12})
COLUMNS = "frame,id,bb_left,bb_top,bb_width,bb_height,conf,class,visibility"
LAYOUT = "<camera>.txt or <camera>/gt/gt.txt"


class TrackFileError(CrosscamError):
    """A track file or folder that cannot be read as MOTChallenge rows."""


@dataclass(frozen=True)
class TrackRow:
    """One box of one identity in one frame of one camera's video."""

    frame: int  # 1-based frame number in the camera's video
    identity: int  # >= 1; global identity, shared across cameras
    left: float  # pixels
    top: float
    width: float
    height: float
    conf: float = 1.0  # MOT column 7 (ground truth: 0 = ignore this row)
    cls: int = -1  # column 8 (-1 unknown; ground truth: 1 = pedestrian)
    visibility: float = -1.0  # column 9

    def __post_init__(self) -> None:
        if not _whole(self.frame) or self.frame < 1:
            raise ValueError(f"frame {self.frame}: frames are whole numbers from 1 (the video's first frame)")
        if not _whole(self.identity) or self.identity < 1:
            raise ValueError(f"identity {self.identity}: identities are whole numbers from 1")
        for name in ("left", "top", "width", "height", "conf", "visibility"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)}: not a finite number")
        if self.width < 0 or self.height < 0:
            raise ValueError(f"box {self.width} x {self.height}: width and height must not be negative")
        if not _whole(self.cls):
            raise ValueError(f"class {self.cls}: classes are whole numbers (1 pedestrian, -1 unknown)")


def is_person(row: TrackRow) -> bool:
    """A ground-truth row that is a person to find: conf not 0, class 1 or not given."""
    return row.conf != 0 and row.cls in (UNKNOWN_CLASS, PEDESTRIAN)


def is_distractor(row: TrackRow) -> bool:
    """A ground-truth row whose predictions are dropped rather than counted as false positives."""
    return row.cls in DISTRACTOR_CLASSES


def _whole(value: float) -> bool:
    return isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())


def _number(value: float) -> str:
    """A float as the shortest text that reads back to it (``12`` rather than ``12.0``)."""
    out = repr(float(value))
    return out[:-2] if out.endswith(".0") else out


def format_row(row: TrackRow) -> str:
    """The row as a 9-column MOTChallenge line (without the newline)."""
    box = ",".join(_number(v) for v in (row.left, row.top, row.width, row.height, row.conf))
    return f"{int(row.frame)},{int(row.identity)},{box},{int(row.cls)},{_number(row.visibility)}"


def write_mot(path: Path, rows: Iterable[TrackRow]) -> Path:
    """Write ``rows`` to ``path`` sorted by (frame, identity), atomically (a temporary file, then a rename);
    the parent folder is created. Raises ``ValueError`` for an identity twice in one frame."""
    path = Path(path)
    ordered = sorted(rows, key=lambda r: (r.frame, r.identity))
    for a, b in pairwise(ordered):
        if (a.frame, a.identity) == (b.frame, b.identity):
            raise ValueError(f"{path}: identity {a.identity} twice in frame {a.frame}: ids must be unique in a frame")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w") as f:
            f.writelines(format_row(r) + "\n" for r in ordered)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def parse_row(line: str) -> TrackRow:
    """One comma-separated MOTChallenge row (6 to 10 columns); ``ValueError`` says what is wrong with it."""
    fields = [f.strip() for f in line.strip().split(",")]
    if len(fields) > 1 and fields[-1] == "":  # a trailing comma
        fields.pop()
    if not 6 <= len(fields) <= 10:
        raise ValueError(
            f"{len(fields)} comma-separated column(s) in {line.strip()[:80]!r}: a row has 6 to 10 ({COLUMNS}; "
            "or MOT15's frame,...,conf,x,y,z)"
        )
    names = COLUMNS.split(",") if len(fields) <= 9 else [*COLUMNS.split(",")[:7], "x", "y", "z"]
    values = []
    for name, text in zip(names, fields, strict=False):
        try:
            values.append(float(text))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
    checked = (("frame", 0), ("id", 1), ("class", 7)) if len(values) in (8, 9) else (("frame", 0), ("id", 1))
    for name, index in checked:
        if not _whole(values[index]):
            raise ValueError(f"{name} {fields[index]!r} is not a whole number")
    optional = {}
    if len(values) >= 7:
        optional["conf"] = values[6]
    if 8 <= len(values) <= 9:
        optional["cls"] = int(values[7])
    if len(values) == 9:
        optional["visibility"] = values[8]
    return TrackRow(int(values[0]), int(values[1]), *values[2:6], **optional)


def read_mot(path: Path, ground_truth: bool = False) -> list[TrackRow]:
    """Every row of one camera's file, in file order; blank lines are skipped.

    Checked: each row parses (``parse_row``); an identity appears at most once in a frame; the rows of one
    identity go forward in frame (a file sorted by frame, or by identity then frame, satisfies it). With
    ``ground_truth``, conf must be the flag 0 or 1. Rows are returned whole: which count is up to the scorer
    (``is_person``, ``is_distractor``). Raises ``TrackFileError`` naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TrackFileError(f"{path}: cannot read it ({reason}): give a MOTChallenge text file") from None
    rows: list[TrackRow] = []
    seen: dict[tuple[int, int], int] = {}  # (frame, identity) -> line
    last: dict[int, tuple[int, int]] = {}  # identity -> (frame, line) of its latest row
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = parse_row(line)
        except ValueError as e:
            raise TrackFileError(f"{path}, line {number}: {e}: fix or remove the row") from None
        if ground_truth and row.conf not in (0, 1):
            raise TrackFileError(
                f"{path}, line {number}: conf {row.conf:g} in ground truth, where column 7 is a flag "
                "(1 a person to find, 0 ignore the row): is this a prediction file?"
            )
        key = (row.frame, row.identity)
        if key in seen:
            raise TrackFileError(
                f"identity {row.identity} appears twice in frame {row.frame} of {path} (lines {seen[key]} and "
                f"{number}): ids must be unique within a frame"
            )
        previous = last.get(row.identity)
        if previous is not None and row.frame < previous[0]:
            raise TrackFileError(
                f"identity {row.identity} goes back from frame {previous[0]} (line {previous[1]}) to frame "
                f"{row.frame} (line {number}) of {path}: the rows of an identity must go forward in frame; "
                "sort the file by frame"
            )
        seen[key] = number
        last[row.identity] = (row.frame, number)
        rows.append(row)
    return rows


def camera_files(folder: Path) -> dict[str, Path]:
    """Camera id -> its track file, sorted by camera id: ``folder/<camera>.txt``, or MOTChallenge's
    ``folder/<camera>/gt/gt.txt``. Other files and folders, and names starting with a dot, are passed over."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrackFileError(f"{folder}: no such folder: give a folder of per-camera track files ({LAYOUT})")
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".txt":
            camera, path = entry.stem, entry
        elif entry.is_dir() and (entry / "gt" / "gt.txt").is_file():
            camera, path = entry.name, entry / "gt" / "gt.txt"
        else:
            continue
        if camera in found:
            raise TrackFileError(f"{folder}: camera {camera} has two files, {found[camera]} and {path}: keep one")
        found[camera] = path
    if not found:
        raise TrackFileError(f"{folder} holds no camera files: put one file per camera there, named {LAYOUT}")
    return dict(sorted(found.items()))


def read_tracks(folder: Path, ground_truth: bool = False) -> dict[str, list[TrackRow]]:
    """Every camera's rows in ``folder`` (``camera_files``, ``read_mot``). Ground truth must leave each camera
    at least one person to find (``is_person``): an empty camera file is more often a mistake (a wrong class
    column, every row flagged 0) than a camera nobody walked past, whose file is better left out."""
    tracks = {}
    for camera, path in camera_files(folder).items():
        rows = read_mot(path, ground_truth)
        if ground_truth and not any(is_person(r) for r in rows):
            raise TrackFileError(_no_person(path, rows))
        tracks[camera] = rows
    return tracks


def _no_person(path: Path, rows: list[TrackRow]) -> str:
    if not rows:
        return f"{path} holds no rows: list the people to find in that camera, or remove the file"
    flagged = sum(1 for r in rows if r.conf == 0)
    classes = Counter(r.cls for r in rows if r.cls not in (UNKNOWN_CLASS, PEDESTRIAN))
    listed = ", ".join(f"{n} of class {c}" for c, n in sorted(classes.items()))
    return (
        f"{path}: none of its {len(rows)} rows is a person to find ({flagged} with conf 0"
        + (f"; {listed}" if listed else "")
        + "): a person's row has conf 1 and class 1 (or -1, or no class column)"
    )
