"""``crosscam eval-tracks``: a prediction folder scored against a ground-truth folder."""

from __future__ import annotations

import textwrap

from pipeline.cli import main
from pipeline.tracks.mot import TrackRow, write_mot
from tests.support.cli import run_json
from tests.support.paths import REPO


def walk(identity: int, frames, x: float) -> list[TrackRow]:
    return [TrackRow(f, identity, x, 0.0, 10.0, 20.0, cls=1) for f in frames]


def folders(tmp_path):
    """Person 1 crosses from lobby to door, person 2 stays in the lobby. The prediction tracks both, but
    gives person 1 another identity at the door; a third camera has no ground truth. Ground truth in
    MOTChallenge's layout, prediction as one file per camera."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_mot(gt / "lobby" / "gt" / "gt.txt", walk(1, range(1, 11), 0) + walk(2, range(1, 11), 50))
    write_mot(gt / "door" / "gt" / "gt.txt", walk(1, range(1, 11), 0))
    write_mot(pred / "lobby.txt", walk(7, range(1, 11), 0) + walk(8, range(1, 11), 50))
    write_mot(pred / "door.txt", walk(9, range(1, 11), 0))
    write_mot(pred / "yard.txt", walk(9, range(1, 5), 0))
    return gt, pred


def test_scores_as_json(capsys, tmp_path):
    gt, pred = folders(tmp_path)
    code, data, err = run_json(capsys, "eval-tracks", "--gt", str(gt), "--pred", str(pred))
    assert code == 0
    overall = data["overall"]
    assert overall["idtp"] == 20 and overall["idf1"] == 20 / 30 and overall["mota"] == 1 - 1 / 30
    assert {c: s["idf1"] for c, s in data["cameras"].items()} == {"door": 1.0, "lobby": 1.0}
    assert data["left_out"] == ["yard"] and data["iou"] == 0.5 and data["gt"] == str(gt)
    warnings = [line for line in err.splitlines() if line.startswith("crosscam: warning: ")]
    assert warnings == ["crosscam: warning: prediction camera yard has no ground truth: left out of the scores"]


def test_the_table_and_options(capsys, tmp_path):
    gt, pred = folders(tmp_path)
    assert main(["eval-tracks", "--gt", str(gt), "--pred", str(pred), "--local-ids", "--iou", "0.7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:7] == ["cameras", "IDF1", "IDP", "IDR", "MOTA", "HOTA", "IDs"]
    assert lines[1].split()[:4] == ["all", "2", "cameras", "1.000"]  # each camera's ids its own: nothing crosses
    assert [line.split()[0] for line in lines[2:4]] == ["door", "lobby"]
    assert (
        lines[-1] == "IoU 0.7; local ids (each camera's own: no cross-camera figure); left out (no ground truth): yard"
    )
    code, data, _ = run_json(capsys, "eval-tracks", "--gt", str(gt), "--pred", str(pred), "--gt-ids", "2")
    assert code == 0 and data["gt_ids"] == [2] and data["overall"]["gt_identities"] == 1
    assert data["overall"]["pred_boxes"] == 10  # the boxes on person 1 are dropped, not false positives


def test_usage_errors_exit_2_with_one_line(capsys, tmp_path):
    gt, pred = folders(tmp_path)
    for argv, said in [
        (["--gt-ids", "2-x"], "--gt-ids '2-x': give ground-truth identities as 1,2,5 or 3-7"),
        (["--gt-ids", "5"], "identities to score 5 are not in the ground truth"),
        (["--iou", "0"], "--iou 0.0: give a box overlap above 0 and at most 1"),
    ]:
        code, data, err = run_json(capsys, "eval-tracks", "--gt", str(gt), "--pred", str(pred), *argv)
        assert code == 2 and said in data["error"] and err.count("\n") == 1
    (pred / "door.txt").write_text("1,1,0,0,10,20\n1,1,0,0,10,20\n")
    code, data, _ = run_json(capsys, "eval-tracks", "--gt", str(gt), "--pred", str(pred))
    assert code == 2 and data["error"] == (
        f"identity 1 appears twice in frame 1 of {pred / 'door.txt'} (lines 1 and 2): ids must be unique within a frame"
    )
    code, data, _ = run_json(capsys, "eval-tracks", "--gt", str(tmp_path / "none"), "--pred", str(pred))
    assert code == 2 and data["type"] == "TrackFileError" and "no such folder" in data["error"]


def test_a_cvat_export_renumbered_as_the_docs_show(capsys, tmp_path, monkeypatch):
    """docs/evaluation.md's renumbering snippet, run on two CVAT MOT 1.1 exports whose track ids are per
    camera. Person 3 is behind glass (ignored) in frames 6-10 of the entrance: the prediction that follows it
    there is dropped, not a false positive. A prediction that tracks everyone scores 1."""
    doc = (REPO / "docs" / "evaluation.md").read_text()
    snippet = textwrap.dedent(doc.split("```python\n", 1)[1].split("```", 1)[0])  # indented in a numbered list
    cvat = {  # CVAT track id -> (x, frames, ignored frames)
        "entrance": {1: (0, range(1, 11), ()), 2: (100, range(1, 11), range(6, 11))},
        "hall": {1: (0, range(1, 11), ()), 2: (100, range(5, 11), ()), 3: (200, range(8, 11), ())},
    }
    for camera, tracks in cvat.items():
        rows = [
            TrackRow(f, track, x, 0.0, 10.0, 20.0, 0.0 if f in ignored else 1.0, 1, 1.0)
            for track, (x, frames, ignored) in tracks.items()
            for f in frames
        ]
        write_mot(tmp_path / "cvat" / camera / "gt" / "gt.txt", rows)
    monkeypatch.chdir(tmp_path)
    exec(snippet, {})
    crosscam_ids = {1: 10, 2: 12, 3: 11, 4: 13}  # the global person -> the prediction's identity
    for camera, ids in {"entrance": {1: 1, 2: 3}, "hall": {1: 2, 2: 4, 3: 1}}.items():
        rows = [
            TrackRow(f, crosscam_ids[ids[track]], x + 1, 0.0, 10.0, 20.0)
            for track, (x, frames, _) in cvat[camera].items()
            for f in frames
        ]
        write_mot(tmp_path / "pred" / f"{camera}.txt", rows)
    code, data, err = run_json(capsys, "eval-tracks", "--gt", "gt", "--pred", "pred")
    s = data["overall"]
    assert code == 0 and "warning" not in err
    assert s["idf1"] == s["mota"] == 1.0 and s["false_positives"] == 0 and s["id_switches"] == 0
    assert (s["gt_boxes"], s["pred_boxes"], s["gt_identities"]) == (10 + 5 + 10 + 6 + 3, 34, 4)
