"""Multi-camera scores: figures computed by hand on small cases, and the options' meaning."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.tracks.metrics import ScoreOptions, ScoringError, box_iou, evaluate
from pipeline.tracks.mot import TrackRow

A, B = (0.0, 0.0, 10.0, 20.0), (100.0, 0.0, 10.0, 20.0)  # two people who never overlap


def walk(identity: int, frames, box) -> list[TrackRow]:
    return [TrackRow(f, identity, *box) for f in frames]


def test_a_perfect_prediction_scores_one():
    gt = {"c1": walk(1, range(1, 11), A) + walk(2, range(1, 11), B), "c2": walk(1, range(1, 6), B)}
    pred = {
        c: [TrackRow(r.frame, r.identity + 40, r.left, r.top, r.width, r.height) for r in rows]
        for c, rows in gt.items()
    }
    s = evaluate(gt, pred).overall
    assert s.idf1 == s.idp == s.idr == s.mota == s.motp == s.hota == s.deta == s.assa == 1.0
    assert (s.id_switches, s.false_positives, s.false_negatives, s.true_positives) == (0, 0, 0, 25)
    assert (s.gt_boxes, s.pred_boxes, s.gt_identities, s.pred_identities) == (25, 25, 2, 2)


def test_two_people_swapped_halfway():
    """Prediction 1 follows A for frames 1-5, then B; prediction 2 the other way round. The best identity
    assignment keeps half of each person: IDF1 = 2*10 / (20 + 20) = 0.5. Every box is found, with two
    switches: MOTA = 1 - 2/20. Boxes are exact (DetA 1) and every match's association score is
    5 / (10 + 10 - 5): HOTA = sqrt(1/3)."""
    gt = {"c1": walk(1, range(1, 11), A) + walk(2, range(1, 11), B)}
    pred = {
        "c1": walk(1, range(1, 6), A) + walk(1, range(6, 11), B) + walk(2, range(1, 6), B) + walk(2, range(6, 11), A)
    }
    s = evaluate(gt, pred).overall
    assert s.idf1 == s.idp == s.idr == 0.5 and (s.idtp, s.idfp, s.idfn) == (10, 10, 10)
    assert s.mota == pytest.approx(0.9, abs=1e-12) and s.id_switches == 2
    assert s.deta == 1.0 and s.assa == pytest.approx(1 / 3, abs=1e-12)
    assert s.hota == pytest.approx(math.sqrt(1 / 3), abs=1e-12)


def test_a_person_in_two_cameras_is_one_identity():
    """Person 1 crosses from c1 to c2 and the prediction calls it 1 in c1, 2 in c2: each camera alone is
    perfect, but across cameras only one half keeps the identity (IDF1 0.5), and the change is a switch."""
    gt = {"c1": walk(1, range(1, 11), A), "c2": walk(1, range(1, 11), A)}
    pred = {"c1": walk(1, range(1, 11), A), "c2": walk(2, range(1, 11), A)}
    scores = evaluate(gt, pred)
    assert scores.overall.idf1 == 0.5 and scores.overall.id_switches == 1 and scores.overall.gt_identities == 1
    assert {c: s.idf1 for c, s in scores.cameras.items()} == {"c1": 1.0, "c2": 1.0}
    local = evaluate(gt, pred, ScoreOptions(local_ids=True))
    assert local.overall.idf1 == 1.0 and local.overall.gt_identities == 2 and local.warnings == ()


def test_the_scene_by_hand(scene):
    """The conftest scene, counted by hand. Ground truth: cam1 12 + 12 + 6 person boxes (the static person and
    the conf-0 row are not people to find), cam2 8 + 6: 44. Prediction: 12 + 6 + 6 + 4 + 1 in cam1 (15, on
    the distractor, dropped) and 4 + 4 + 6 in cam2: 43. Misses: person 3 (6) and person 4's frame 8 (1);
    false positives: 14 (4), 16 (1), person 4's frame 8 (1). Switches: person 2 (12 -> 13), person 1 in cam2
    (11 -> 17). MOTA = (37 - 6 - 2) / 44. Identities: 1 <-> 11 (12 + 4 boxes), 2 <-> 13 (6), 4 <-> 12 (5):
    IDTP 27, IDF1 = 2*27 / (44 + 43)."""
    scores = evaluate(scene.gt, scene.pred)
    s = scores.overall
    assert (s.gt_boxes, s.pred_boxes, s.true_positives, s.false_negatives, s.false_positives) == (44, 43, 37, 7, 6)
    assert s.id_switches == 2 and s.mota == pytest.approx(29 / 44, abs=1e-12)
    assert (s.idtp, s.idfn, s.idfp) == (27, 17, 16) and s.idf1 == pytest.approx(54 / 87, abs=1e-12)
    assert (s.gt_identities, s.pred_identities) == (4, 6)
    cam1 = scores.cameras["cam1"]
    assert (cam1.gt_boxes, cam1.pred_boxes, cam1.false_positives, cam1.id_switches) == (30, 29, 5, 1)
    assert cam1.mota == pytest.approx((24 - 5 - 1) / 30, abs=1e-12)
    assert list(scores.cameras) == ["cam1", "cam2"] and scores.warnings == ()


def test_the_iou_threshold(scene):
    """Person 4's frame-8 box in cam2 is 25 pixels off, IoU 15/65: a match only below that."""
    strict, loose = (evaluate(scene.gt, scene.pred, ScoreOptions(iou=t)).cameras["cam2"] for t in (0.5, 0.2))
    assert (strict.false_negatives, strict.false_positives) == (1, 1)
    assert (loose.false_negatives, loose.false_positives) == (0, 0)


def test_scoring_a_subset_of_identities_drops_predictions_on_the_others(scene):
    """Scoring people 1 and 4 only: persons 2 and 3 leave the ground truth, and predictions 12 and 13 on
    person 2 are dropped rather than counted as false positives, as is 16 on the conf-0 row of identity 6."""
    s = evaluate(scene.gt, scene.pred, ScoreOptions(gt_ids=frozenset({1, 4}))).overall
    assert (s.gt_boxes, s.gt_identities) == (12 + 8 + 6, 2)
    assert s.pred_boxes == 43 - 12 - 1 and s.false_positives == 4 + 1 and s.false_negatives == 1
    with pytest.raises(ScoringError, match="identities to score 7, 9 are not in the ground truth"):
        evaluate(scene.gt, scene.pred, ScoreOptions(gt_ids=frozenset({1, 7, 9})))


def test_cameras_missing_on_either_side(scene):
    pred = {"cam1": scene.pred["cam1"], "cam9": scene.pred["cam2"]}
    scores = evaluate(scene.gt, pred)
    assert scores.left_out == ("cam9",) and list(scores.cameras) == ["cam1", "cam2"]
    assert scores.cameras["cam2"].false_negatives == scores.cameras["cam2"].gt_boxes == 14
    assert scores.warnings == (
        "prediction camera cam9 has no ground truth: left out of the scores",
        "camera cam2 has no prediction: its 14 ground-truth boxes count as missed",
    )
    with pytest.raises(ScoringError, match=r"no prediction camera \(cam9\) has ground truth \(cameras cam1, cam2\)"):
        evaluate(scene.gt, {"cam9": scene.pred["cam2"]})


def test_ground_truth_numbered_per_camera_is_suspected():
    C = (200.0, 0.0, 10.0, 20.0)
    gt = {"a": walk(1, range(1, 4), A) + walk(2, range(1, 4), B), "b": walk(1, range(1, 4), A) + walk(2, [3], B)}
    gt["b"] += walk(3, range(1, 4), C)
    (warning,) = evaluate(gt, gt).warnings
    assert warning.startswith("every camera's ground-truth identities run from 1 (a 1-2, b 1-3)")
    assert "--local-ids" in warning
    assert evaluate(gt, gt, ScoreOptions(local_ids=True)).warnings == ()
    gt["b"] = walk(1, range(1, 4), A) + walk(3, range(1, 4), C)  # b sees persons 1 and 3: numbered across cameras
    assert evaluate(gt, gt).warnings == ()
    gt["b"] = walk(1, range(1, 4), A)  # one person seen by both cameras: too little to suspect anything
    assert evaluate(gt, gt).warnings == ()


@pytest.mark.parametrize(("iou", "gt_ids"), [(0.0, None), (1.5, None), (0.5, frozenset()), (0.5, frozenset({0}))])
def test_options_check_themselves(iou, gt_ids):
    with pytest.raises(ScoringError):
        ScoreOptions(iou=iou, gt_ids=gt_ids)


def test_box_iou_is_trackevals():
    from trackeval.datasets import MotChallenge2DBox

    rng = np.random.default_rng(7)
    a = np.concatenate([rng.uniform(0, 50, (20, 2)), rng.uniform(0, 30, (20, 2))], axis=1)
    b = np.concatenate([rng.uniform(0, 50, (15, 2)), rng.uniform(0, 30, (15, 2))], axis=1)
    b[0, 2] = 0.0  # an empty box
    assert np.array_equal(box_iou(a, b), MotChallenge2DBox._calculate_box_ious(a, b, box_format="xywh"))
    assert box_iou(a[:0], b).shape == (0, 15)
    assert box_iou(np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 10, 10.0]]))[0, 0] == 50 / 150


def test_the_result_as_a_dict(scene):
    data = evaluate(scene.gt, scene.pred, ScoreOptions(gt_ids=frozenset({4, 1}))).as_dict()
    assert set(data) == {"overall", "cameras", "iou", "gt_ids", "local_ids", "left_out", "warnings"}
    assert data["gt_ids"] == [1, 4] and data["iou"] == 0.5 and list(data["cameras"]) == ["cam1", "cam2"]
    assert set(data["overall"]) >= {"idf1", "idp", "idr", "mota", "motp", "hota", "deta", "assa", "id_switches"}
