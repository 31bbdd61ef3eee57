"""MOTChallenge track files: round trip, the folder layouts, and one clear line for each kind of bad input."""

from __future__ import annotations

import re

import pytest

from pipeline.tracks.mot import (
    TrackFileError,
    TrackRow,
    camera_files,
    is_distractor,
    is_person,
    read_mot,
    read_tracks,
    write_mot,
)


def test_round_trip_sorted_by_frame_then_identity(tmp_path, scene):
    rows = scene.gt["cam1"]
    path = write_mot(tmp_path / "new" / "folder" / "cam1.txt", reversed(rows))
    assert path == tmp_path / "new" / "folder" / "cam1.txt"
    back = read_mot(path, ground_truth=True)
    assert back == sorted(rows, key=lambda r: (r.frame, r.identity))
    assert [p.name for p in path.parent.iterdir()] == ["cam1.txt"]  # no temporary file left behind


def test_written_rows_are_nine_mot_columns_with_exact_numbers(tmp_path):
    rows = [TrackRow(3, 7, 0.1, -2.5, 30.0, 1e-7, 0.93, 1, 0.25), TrackRow(1, 2, 1.0, 2.0, 3.0, 4.0)]
    path = write_mot(tmp_path / "c.txt", rows)
    assert path.read_text().splitlines() == ["1,2,1,2,3,4,1,-1,-1", "3,7,0.1,-2.5,30,1e-07,0.93,1,0.25"]
    assert read_mot(path) == sorted(rows, key=lambda r: r.frame)


def test_writing_an_identity_twice_in_a_frame_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="identity 4 twice in frame 2"):
        write_mot(tmp_path / "c.txt", [TrackRow(2, 4, 0, 0, 1, 1), TrackRow(2, 4, 5, 5, 1, 1)])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("line", "row"),
    [
        ("5,3,10,20,30,40", TrackRow(5, 3, 10, 20, 30, 40)),
        ("5,3,10,20,30,40,0.5", TrackRow(5, 3, 10, 20, 30, 40, 0.5)),
        ("5, 3, 10, 20, 30, 40, 1, 7, 0.8,", TrackRow(5, 3, 10, 20, 30, 40, 1.0, 7, 0.8)),  # spaces, trailing comma
        ("5,3,10.5,20,30,40,-1,-1,-1,-1", TrackRow(5, 3, 10.5, 20, 30, 40, -1.0)),  # MOT15: conf,x,y,z
        ("5,3,10,20,30,40,0.9,12.5,3.25,0", TrackRow(5, 3, 10, 20, 30, 40, 0.9)),  # world coordinates, not read
        ("5.0,3.0,10,20,30,40,1,1.0,1", TrackRow(5, 3, 10, 20, 30, 40, 1.0, 1, 1.0)),
    ],
)
def test_row_forms(tmp_path, line, row):
    (tmp_path / "c.txt").write_text(f"\n{line}\n\n")
    assert read_mot(tmp_path / "c.txt") == [row]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("1,1,0,0,10,10\n1,2,3\n", "line 2: 3 comma-separated column(s)"),
        ("1 1 0 0 10 10\n", "line 1: 1 comma-separated column(s)"),
        ("1,1,0,0,10,10,1,1,1,1,1\n", "line 1: 11 comma-separated column(s)"),
        ("1,x,0,0,10,10\n", "line 1: id 'x' is not a number"),
        ("0,1,0,0,10,10\n", "line 1: frame 0: frames are whole numbers from 1"),
        ("2.5,1,0,0,10,10\n", "line 1: frame '2.5' is not a whole number"),
        ("1,0,0,0,10,10\n", "line 1: identity 0: identities are whole numbers from 1"),
        ("1,-1,0,0,10,10\n", "line 1: identity -1"),
        ("1,1,0,0,-10,10\n", "line 1: box -10.0 x 10.0: width and height must not be negative"),
        ("1,1,0,0,10,inf\n", "line 1: height inf: not a finite number"),
        ("1,1,nan,0,10,10\n", "line 1: left nan: not a finite number"),
        ("1,1,0,0,10,10,1,1.5\n", "line 1: class '1.5' is not a whole number"),
    ],
)
def test_a_malformed_row_names_file_line_and_problem(tmp_path, text, said):
    path = tmp_path / "cam2.txt"
    path.write_text(text)
    with pytest.raises(TrackFileError) as e:
        read_mot(path)
    message = str(e.value)
    assert message.startswith(f"{path}, line ") and said in message and "\n" not in message


def test_an_identity_twice_in_a_frame(tmp_path):
    path = tmp_path / "cam2.txt"
    lines = [f"{f},{i},0,0,10,10" for f in (119, 120) for i in (3, 7, 9)]
    lines.insert(5, "120,7,50,50,10,10")
    path.write_text("\n".join(lines))
    with pytest.raises(TrackFileError) as e:
        read_mot(path)
    assert str(e.value) == (
        f"identity 7 appears twice in frame 120 of {path} (lines 5 and 6): ids must be unique within a frame"
    )


def test_rows_sorted_by_identity_read_but_an_identity_going_back_in_frame_is_refused(tmp_path):
    path = tmp_path / "cam1.txt"
    by_identity = [f"{f},{i},0,0,10,10" for i in (1, 2) for f in (2, 4, 6)]
    path.write_text("\n".join(by_identity))
    assert [(r.identity, r.frame) for r in read_mot(path)] == [(i, f) for i in (1, 2) for f in (2, 4, 6)]
    path.write_text("\n".join([*by_identity, "5,1,0,0,10,10"]))
    with pytest.raises(TrackFileError) as e:
        read_mot(path)
    assert str(e.value) == (
        f"identity 1 goes back from frame 6 (line 3) to frame 5 (line 7) of {path}: the rows of an identity must "
        "go forward in frame; sort the file by frame"
    )


def test_ground_truth_conf_is_a_flag(tmp_path):
    path = tmp_path / "cam1.txt"
    path.write_text("1,1,0,0,10,10,1,1,1\n2,1,0,0,10,10,0.73,1,1\n")
    assert len(read_mot(path)) == 2
    with pytest.raises(TrackFileError, match=r"line 2: conf 0.73 in ground truth.*is this a prediction file"):
        read_mot(path, ground_truth=True)


def test_an_unreadable_file(tmp_path):
    path = tmp_path / "cam1.txt"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(TrackFileError, match=f"^{re.escape(str(path))}: cannot read it"):
        read_mot(path)
    with pytest.raises(TrackFileError, match="No such file"):
        read_mot(tmp_path / "absent.txt")


def test_ground_truth_conventions():
    assert is_person(TrackRow(1, 1, 0, 0, 1, 1)) and is_person(TrackRow(1, 1, 0, 0, 1, 1, cls=1))
    assert not is_person(TrackRow(1, 1, 0, 0, 1, 1, conf=0.0))
    assert not is_person(TrackRow(1, 1, 0, 0, 1, 1, cls=7)) and is_distractor(TrackRow(1, 1, 0, 0, 1, 1, cls=7))
    assert not is_distractor(TrackRow(1, 1, 0, 0, 1, 1, cls=3))  # a car: not a person, not a distractor


def test_both_folder_layouts(tmp_path, scene):
    write_mot(tmp_path / "cam2.txt", scene.gt["cam2"])
    write_mot(tmp_path / "cam1" / "gt" / "gt.txt", scene.gt["cam1"])
    (tmp_path / "seqinfo.ini").write_text("[Sequence]\n")
    (tmp_path / "cam1" / "img1").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / ".cam3.txt").write_text("hidden")
    assert camera_files(tmp_path) == {"cam1": tmp_path / "cam1" / "gt" / "gt.txt", "cam2": tmp_path / "cam2.txt"}
    assert read_tracks(tmp_path, ground_truth=True) == {
        "cam1": sorted(scene.gt["cam1"], key=lambda r: (r.frame, r.identity)),
        "cam2": sorted(scene.gt["cam2"], key=lambda r: (r.frame, r.identity)),
    }


def test_folder_mistakes(tmp_path):
    with pytest.raises(TrackFileError, match="no such folder"):
        camera_files(tmp_path / "absent")
    (tmp_path / "readme.md").write_text("")
    with pytest.raises(TrackFileError, match=r"holds no camera files: .* <camera>.txt or <camera>/gt/gt.txt"):
        camera_files(tmp_path)
    write_mot(tmp_path / "cam1.txt", [TrackRow(1, 1, 0, 0, 1, 1)])
    write_mot(tmp_path / "cam1" / "gt" / "gt.txt", [TrackRow(1, 1, 0, 0, 1, 1)])
    with pytest.raises(TrackFileError, match="camera cam1 has two files"):
        camera_files(tmp_path)


def test_ground_truth_with_no_person_left(tmp_path):
    (tmp_path / "cam1.txt").write_text("1,1,0,0,10,10,1,2,1\n2,1,0,0,10,10,0,1,1\n")
    assert len(read_tracks(tmp_path)["cam1"]) == 2  # a prediction may hold anything
    with pytest.raises(TrackFileError) as e:
        read_tracks(tmp_path, ground_truth=True)
    assert str(e.value) == (
        f"{tmp_path / 'cam1.txt'}: none of its 2 rows is a person to find (1 with conf 0; 1 of class 2): "
        "a person's row has conf 1 and class 1 (or -1, or no class column)"
    )
    (tmp_path / "cam1.txt").write_text("\n")
    with pytest.raises(TrackFileError, match=r"cam1\.txt holds no rows"):
        read_tracks(tmp_path, ground_truth=True)


def test_a_row_checks_itself():
    with pytest.raises(ValueError, match="frame 0"):
        TrackRow(0, 1, 0, 0, 1, 1)
    with pytest.raises(ValueError, match=r"class 1\.5"):
        TrackRow(1, 1, 0, 0, 1, 1, cls=1.5)
