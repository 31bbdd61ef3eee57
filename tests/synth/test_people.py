"""The synthetic people renderer: deterministic, distinct, and with pattern-only twins."""

from __future__ import annotations

import numpy as np

from synth.camera import apply_style, camera_style
from synth.people import MIN_PATTERN_CONTRAST, appearance, contrasting, render_person
from synth.sequences import render_tracklet


def test_appearance_is_deterministic_per_seed():
    assert appearance(5, seed=1) == appearance(5, seed=1)
    assert appearance(5, seed=1) != appearance(5, seed=2)


def test_every_fourth_identity_differs_from_the_previous_only_in_pattern():
    for pid in (3, 7, 11):
        a, b = appearance(pid - 1), appearance(pid)
        assert a.top_pattern != b.top_pattern
        assert (a.top, a.bottom, a.skin, a.height) == (b.top, b.bottom, b.skin, b.height)


def test_a_pattern_stands_out_from_its_top():
    """A pattern in nearly the top's own colour would make a near twin a clone no model could tell apart."""
    for seed in range(1, 9):
        for pid in range(1, 13):
            a = appearance(pid, seed)
            assert np.linalg.norm(np.subtract(a.top, a.pattern_color)) >= MIN_PATTERN_CONTRAST, (seed, pid)
    brown = (93, 61, 28)
    assert contrasting((95, 50, 48), brown) != (95, 50, 48)  # seed 1's persons 2 and 3 before the rule
    assert contrasting((240, 240, 20), brown) == (240, 240, 20)  # already distinct: unchanged


def test_render_person_fills_a_person_shaped_mask():
    img, mask = render_person(appearance(1), phase=0.3, height=256, width=128)
    assert img.shape == (256, 128, 3) and mask.shape == (256, 128)
    rows, cols = np.nonzero(mask)
    assert rows.max() - rows.min() > 0.75 * 256  # tall
    assert cols.max() - cols.min() < 0.9 * 128  # narrower than the box
    assert (mask > 0).mean() > 0.1


def test_walking_changes_the_pose():
    _, a = render_person(appearance(1), phase=0.0, height=128, width=64)
    _, b = render_person(appearance(1), phase=1.5, height=128, width=64)
    assert (a != b).mean() > 0.01


def test_camera_styles_differ_and_shift_colours():
    s1, s2 = camera_style(1), camera_style(2)
    assert s1 != s2
    grey = np.full((32, 16, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    assert abs(apply_style(grey, s1, rng).mean() - apply_style(grey, s2, rng).mean()) > 0.5


def test_render_tracklet_shape_and_variation():
    crops = render_tracklet(appearance(2), camera_style(1), 6, 128, 64, np.random.default_rng(0))
    assert crops.shape == (6, 128, 64, 3) and crops.dtype == np.uint8
    assert np.abs(crops[0].astype(int) - crops[3].astype(int)).mean() > 1.0
