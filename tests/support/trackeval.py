"""TrackEval run the documented way on per-frame tracks: its own ``Evaluator`` with its ``MotChallenge2DBox`` dataset
over a MOTChallenge folder written here, one sequence made of the cameras one after another (each camera's frames
offset by the frames of the cameras before it, seqinfo.ini giving the total), the ground truth under
``gt/<seq>/gt/gt.txt`` and the prediction under ``trackers/crosscam/data/<seq>.txt``, as scripts/run_mot_challenge.py
lays them out with ``SKIP_SPLIT_FOL``. ``DO_PREPROC`` is on: it is the MOT17 convention (conf-0 rows and
non-pedestrian rows left out of the ground truth, predictions on distractor classes dropped) that
``pipeline.tracks.metrics`` follows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pipeline.tracks.mot import TrackRow, write_mot

SEQ = "cameras"


def trackeval_figures(root, gt: dict[str, list[TrackRow]], pred: dict[str, list[TrackRow]], lengths: dict[str, int]):
    import trackeval

    offsets, total = {}, 0
    for camera in sorted(gt):
        offsets[camera], total = total, total + lengths[camera]

    def one_sequence(tracks: dict[str, list[TrackRow]]) -> list[TrackRow]:
        return [replace(r, frame=r.frame + offsets[c]) for c, rows in tracks.items() for r in rows]

    write_mot(root / "gt" / SEQ / "gt" / "gt.txt", one_sequence(gt))
    (root / "gt" / SEQ / "seqinfo.ini").write_text(f"[Sequence]\nname={SEQ}\nseqLength={total}\n")
    write_mot(root / "trackers" / "crosscam" / "data" / f"{SEQ}.txt", one_sequence(pred))
    dataset = trackeval.datasets.MotChallenge2DBox(
        {
            "GT_FOLDER": str(root / "gt"),
            "TRACKERS_FOLDER": str(root / "trackers"),
            "OUTPUT_FOLDER": str(root / "out"),
            "TRACKERS_TO_EVAL": ["crosscam"],
            "BENCHMARK": "MOT17",
            "SKIP_SPLIT_FOL": True,
            "SEQ_INFO": {SEQ: None},  # its length from seqinfo.ini
            "DO_PREPROC": True,
            "PRINT_CONFIG": False,
        }
    )
    evaluator = trackeval.Evaluator(
        {
            "USE_PARALLEL": False,
            "PRINT_RESULTS": False,
            "PRINT_CONFIG": False,
            "TIME_PROGRESS": False,
            "OUTPUT_SUMMARY": False,
            "OUTPUT_DETAILED": False,
            "PLOT_CURVES": False,
            "LOG_ON_ERROR": None,
        }
    )
    metric_config = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    metrics = [
        trackeval.metrics.HOTA(),
        trackeval.metrics.CLEAR(metric_config),
        trackeval.metrics.Identity(metric_config),
    ]
    results, messages = evaluator.evaluate([dataset], metrics)
    assert messages["MotChallenge2DBox"]["crosscam"] == "Success"
    return results["MotChallenge2DBox"]["crosscam"][SEQ]["pedestrian"]


def assert_equal_figures(ours, theirs):
    hota, clear, identity = theirs["HOTA"], theirs["CLEAR"], theirs["Identity"]
    expected = {
        "idf1": identity["IDF1"],
        "idp": identity["IDP"],
        "idr": identity["IDR"],
        "mota": clear["MOTA"],
        "motp": clear["MOTP"],
        "hota": np.mean(hota["HOTA"]),
        "deta": np.mean(hota["DetA"]),
        "assa": np.mean(hota["AssA"]),
    }
    assert {k: getattr(ours, k) for k in expected} == pytest.approx(expected, abs=1e-9, rel=0)
    assert (ours.id_switches, ours.false_positives, ours.false_negatives, ours.true_positives) == (
        clear["IDSW"],
        clear["CLR_FP"],
        clear["CLR_FN"],
        clear["CLR_TP"],
    )
    assert (ours.idtp, ours.idfp, ours.idfn) == (identity["IDTP"], identity["IDFP"], identity["IDFN"])
