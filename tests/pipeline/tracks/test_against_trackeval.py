"""Our figures equal TrackEval run the documented way on the same files.

TrackEval's own ``Evaluator`` with its ``MotChallenge2DBox`` dataset reads a MOTChallenge folder written here:
one sequence made of the cameras one after another (each camera's frames offset by the frames of the cameras
before it, seqinfo.ini giving the total), the ground truth under ``gt/<seq>/gt/gt.txt`` and the prediction
under ``trackers/crosscam/data/<seq>.txt``, as scripts/run_mot_challenge.py lays them out with
``SKIP_SPLIT_FOL``. ``DO_PREPROC`` is on: it is the MOT17 convention (conf-0 rows and non-pedestrian rows left
out of the ground truth, predictions on distractor classes dropped) that ``pipeline.tracks.metrics`` follows,
so the scene's static person and flagged row are scored the same way by both.
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.tracks.metrics import ScoreOptions, evaluate
from tests.support.trackeval import assert_equal_figures, trackeval_figures


def test_the_scene_scores_as_trackeval_scores_it(tmp_path, scene):
    ours = evaluate(scene.gt, scene.pred).overall
    assert 0 < ours.idf1 < 1 and 0 < ours.hota < 1 and ours.id_switches > 0  # a case with something to get wrong
    assert_equal_figures(ours, trackeval_figures(tmp_path, scene.gt, scene.pred, scene.lengths))


def test_each_camera_scores_as_trackeval_scores_it_alone(tmp_path, scene):
    ours = evaluate(scene.gt, scene.pred).cameras["cam2"]
    theirs = trackeval_figures(tmp_path, {"cam2": scene.gt["cam2"]}, {"cam2": scene.pred["cam2"]}, scene.lengths)
    assert_equal_figures(ours, theirs)


def test_a_subset_of_identities_scores_as_trackeval_with_the_others_as_distractors(tmp_path, scene):
    """``gt_ids`` is MOTChallenge's distractor rule applied to the identities left out: TrackEval, given the
    ground truth with every other identity's rows marked class 8 (distractor), gives the same figures."""
    wanted = frozenset({1, 4})
    ours = evaluate(scene.gt, scene.pred, ScoreOptions(gt_ids=wanted)).overall
    marked = {c: [r if r.identity in wanted else replace(r, cls=8) for r in rows] for c, rows in scene.gt.items()}
    assert_equal_figures(ours, trackeval_figures(tmp_path, marked, scene.pred, scene.lengths))


def test_local_ids_score_as_trackeval_with_ids_made_unique_by_camera(tmp_path, scene):
    ours = evaluate(scene.gt, scene.pred, ScoreOptions(local_ids=True)).overall

    def by_camera(tracks):
        return {
            c: [replace(r, identity=100 * (i + 1) + r.identity) for r in tracks[c]]
            for i, c in enumerate(sorted(tracks))
        }

    theirs = trackeval_figures(tmp_path, by_camera(scene.gt), by_camera(scene.pred), scene.lengths)
    assert_equal_figures(ours, theirs)
    assert ours.gt_identities == 5  # person 1 counts once per camera
