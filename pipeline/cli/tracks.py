"""``crosscam eval-tracks``: score per-frame tracks against ground truth over all cameras and per camera.

Both folders hold one MOTChallenge file per camera (``<camera>.txt``, or ``<camera>/gt/gt.txt``) with global
identities (``pipeline.tracks.mot``); TrackEval computes IDF1/IDP/IDR, CLEAR MOT and HOTA on every camera's
frames as one sequence, and on each camera alone (``pipeline.tracks.metrics``). See docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.cli.app import Result, UsageError
from pipeline.config import CrosscamConfig
from pipeline.tracks.options import ScoreOptions

if TYPE_CHECKING:
    from pipeline.tracks.metrics import Scores, TrackScores

LAYOUT = "one file per camera: <camera>.txt, or MOTChallenge's <camera>/gt/gt.txt"


def register(verbs: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = verbs.add_parser(
        "eval-tracks",
        parents=[common],
        help="score per-frame tracks against ground truth: IDF1, MOTA, HOTA over all cameras and per camera",
        description="Score a folder of predicted per-frame tracks against a ground-truth folder, both in the "
        "MOTChallenge format with identities shared across cameras. Every camera's frames are scored as one "
        "sequence (cameras in sorted order), then each camera alone; TrackEval computes the metrics.",
    )
    p.add_argument("--gt", required=True, type=Path, help=f"ground-truth folder ({LAYOUT})")
    p.add_argument("--pred", required=True, type=Path, help=f"prediction folder ({LAYOUT})")
    p.add_argument(
        "--iou",
        type=float,
        default=ScoreOptions.iou,
        help="box overlap at which a prediction matches a ground-truth box (default: %(default)s)",
    )
    p.add_argument(
        "--gt-ids",
        metavar="IDS",
        help="score only these ground-truth identities, e.g. 1,2,5 or 3-7; predicted boxes on the other "
        "ground-truth people are dropped, not counted as false positives",
    )
    p.add_argument(
        "--local-ids",
        action="store_true",
        help="each camera numbers its own identities (in both folders): scores tracking within cameras only",
    )
    p.set_defaults(handler=cmd_eval_tracks)

    e = verbs.add_parser(
        "export-tracks",
        parents=[common],
        help="write a site's per-frame tracks with global identities: one MOTChallenge file per camera",
        description="Every stored sighting's box in every frame, with the identity it has now (after merges and "
        "unlinks), as DIR/<camera>.txt in the MOTChallenge format; with --video CAMERA=FILE, also that camera's "
        "video with the boxes and identities drawn on it (DIR/<camera>.mp4).",
    )
    e.add_argument("--out", required=True, type=Path, help="folder for <camera>.txt (and <camera>.mp4)")
    e.add_argument("--camera", action="append", help="only this camera; repeat for more (default: every camera)")
    e.add_argument(
        "--video",
        action="append",
        default=[],
        metavar="CAMERA=FILE",
        help="draw the tracks on this camera's recording (the file the camera read, or a recording of its stream "
        "from the same start); repeat for more",
    )
    e.add_argument(
        "--all",
        action="store_true",
        help="also the tentative identities (one camera, less than matcher.tentative_seconds: possibly no one)",
    )
    e.add_argument("--redis-url", help="default: $CROSSCAM_REDIS_URL, else redis.url, else an embedded server")
    e.add_argument("--site", help="site name (default: site)")
    e.set_defaults(handler=cmd_export_tracks)


def parse_ids(text: str) -> frozenset[int]:
    """``"1,2,5"`` or ``"3-7"`` (or both: ``"1,4-6"``)."""
    from pipeline.cli.common import parse_ranges

    return frozenset(parse_ranges(text, "--gt-ids", "ground-truth identities", "1,2,5 or 3-7", least=1))


def cmd_eval_tracks(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline.tracks.metrics import evaluate
    from pipeline.tracks.mot import read_tracks

    if not 0 < args.iou <= 1:
        raise UsageError(f"--iou {args.iou}: give a box overlap above 0 and at most 1 (0.5 is usual)")
    options = ScoreOptions(
        iou=args.iou,
        gt_ids=parse_ids(args.gt_ids) if args.gt_ids is not None else None,
        local_ids=args.local_ids,
    )
    gt = read_tracks(args.gt, ground_truth=True)
    pred = read_tracks(args.pred)
    scores = evaluate(gt, pred, options)
    for warning in scores.warnings:
        print(f"crosscam: warning: {warning}", file=sys.stderr)
    data = {"gt": str(args.gt), "pred": str(args.pred), **scores.as_dict()}
    return Result(data, table(scores))


def _listed(ids: frozenset[int]) -> str:
    shown = sorted(ids)
    return ",".join(map(str, shown[:10])) + (f",... ({len(shown)})" if len(shown) > 10 else "")


def table(scores: TrackScores) -> str:
    """All cameras, then each camera: one row of figures each."""
    head = f"{'cameras':<16} {'IDF1':>6} {'IDP':>6} {'IDR':>6} {'MOTA':>7} {'HOTA':>6} {'IDs':>5} {'FP':>7} {'FN':>7}"
    head += f" {'GT ids':>7} {'pred ids':>8}"
    rows = [head]

    def row(name: str, s: Scores) -> str:
        return (
            f"{name:<16} {s.idf1:>6.3f} {s.idp:>6.3f} {s.idr:>6.3f} {s.mota:>7.3f} {s.hota:>6.3f} "
            f"{s.id_switches:>5} {s.false_positives:>7} {s.false_negatives:>7} {s.gt_identities:>7} "
            f"{s.pred_identities:>8}"
        )

    rows.append(row(f"all {len(scores.cameras)} cameras", scores.overall))
    rows += [row(f"  {camera}", s) for camera, s in scores.cameras.items()]
    o = scores.options
    rows.append(
        f"IoU {o.iou:g}"
        + (f"; ground-truth identities {_listed(o.gt_ids)} only" if o.gt_ids is not None else "")
        + ("; local ids (each camera's own: no cross-camera figure)" if o.local_ids else "")
        + (f"; left out (no ground truth): {', '.join(scores.left_out)}" if scores.left_out else "")
    )
    return "\n".join(rows)


def parse_videos(items: list[str]) -> dict[str, Path]:
    """``CAMERA=FILE`` pairs; the files must exist."""
    out = {}
    for item in items:
        camera, eq, file = item.partition("=")
        if not eq or not camera or not file:
            raise UsageError(f"--video {item!r}: give CAMERA=FILE, e.g. --video hall=/data/hall.mp4")
        if not Path(file).is_file():
            raise UsageError(f"--video {item!r}: no such file {file}")
        out[camera] = Path(file)
    return out


def cmd_export_tracks(args: argparse.Namespace, config: CrosscamConfig) -> Result:
    from pipeline.cli.common import open_site
    from pipeline.tracks.export import write_tracks

    videos = parse_videos(args.video)
    site = open_site(args, config)
    tentative = None if args.all else config.matcher.tentative_seconds
    result = write_tracks(site.client, site.keys, args.out, args.camera, videos, tentative)
    if not result.files:
        raise UsageError(f"site {site.name!r} has no cameras with sightings; is --config/--site/--redis-url right?")
    lines = [f"{camera}: {result.rows[camera]} boxes -> {path}" for camera, path in result.files.items()]
    lines += [f"{camera}: annotated -> {path}" for camera, path in result.videos.items()]
    lines.append(f"{len(result.identities)} identities over {len(result.files)} cameras")
    return Result(result.as_dict() | {"site": site.name}, "\n".join(lines))
