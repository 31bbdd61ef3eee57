"""Clip sampling, P x K batches and clip-consistent augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.sampling import IdentitySampler, clip_indices, dense_clips
from trainer.data.transforms import Augment, augment_clip, jitter_colors


def test_consecutive_clips():
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = clip_indices(10, 4, "consecutive", rng)
        assert len(idx) == 4 and np.all(np.diff(idx) == 1) and 0 <= idx[0] <= 6


def test_short_tracklets_are_padded_by_repeating():
    assert clip_indices(3, 8, "consecutive", np.random.default_rng(0)).tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert clip_indices(1, 4, "even", np.random.default_rng(0)).tolist() == [0, 0, 0, 0]


def test_even_clips_take_one_frame_per_chunk():
    idx = clip_indices(20, 4, "even", np.random.default_rng(1))
    assert [i // 5 for i in idx] == [0, 1, 2, 3]


def test_dense_clips_cover_every_frame_once():
    clips = dense_clips(10, 4)
    assert [c.tolist() for c in clips] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]
    assert [c.tolist() for c in dense_clips(2, 4)] == [[0, 1, 0, 1]]


def test_identity_sampler_batches():
    pids = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4]
    sampler = IdentitySampler(pids, p=2, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    for batch in batches:
        ids = [pids[i] for i in batch]
        assert len(batch) == 6 and len(set(ids)) == 2 and all(ids.count(p) == 3 for p in set(ids))
    with pytest.raises(ValueError, match="needs 8 identities"):
        IdentitySampler(pids, p=8, k=2)


def test_augmentation_is_the_same_for_every_frame():
    base = np.random.default_rng(0).integers(0, 255, size=(1, 32, 16, 3), dtype=np.uint8)
    clip = np.repeat(base, 4, axis=0)
    out, erased = augment_clip(clip, Augment(erase=0.0), np.random.default_rng(3))
    assert out.shape == clip.shape and not erased.any()
    assert all(np.array_equal(out[0], out[i]) for i in range(4))  # one flip and crop for the clip


def test_color_jitter_changes_the_whole_clip_alike():
    clip = np.full((4, 16, 8, 3), 100, np.uint8)
    out, _ = augment_clip(clip, Augment(erase=0.0, pad=0, flip=0.0, color=1.0), np.random.default_rng(2))
    assert all(np.array_equal(out[0], out[i]) for i in range(4))  # one camera look per clip
    assert not np.array_equal(out[0], clip[0])
    assert np.array_equal(jitter_colors(clip, np.array([0.5, 1.0, 3.0]), 10.0)[0, 0, 0], [60, 110, 255])
    same, _ = augment_clip(clip, Augment(erase=0.0, pad=0, flip=0.0), np.random.default_rng(2))
    assert np.array_equal(same, clip)  # off by default


def test_erasing_is_recorded_per_frame():
    clip = np.full((6, 64, 32, 3), 128, np.uint8)
    out, erased = augment_clip(clip, Augment(erase=0.5, pad=0, flip=0.0), np.random.default_rng(5))
    assert 0 < erased.sum() < 6
    for i in range(6):
        assert np.any(out[i] != 128) == erased[i]
