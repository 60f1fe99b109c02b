"""Open-GOP H.264 (x264 ``open-gop=1``): a key frame that is no IDR picture keeps the older pictures
in the decoder, yet the pictures shown after it never predict from those shown before it (that is
what makes it a recovery point). Reference matching must not try those older pictures either, or a
clip's motion-vector field depends on whether decoding started at the key (a seek) or before it.

Ground truth: a texture panned (+2, +1) px per frame, encoded by libx264 with open GOPs and
B-frames; the field of every clip starting at or just past a key must equal the same frames of the
sequential decode, and show the pan.
"""

from __future__ import annotations

import numpy as np
import pytest

from compvid import decode_clip, probe
from compvid.frame_store import ReferenceOrder
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames

N, W, H, GOP, DX, DY = 48, 96, 64, 12, 2, 1
OPEN_GOP = {"x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=1:bframes=3:ref=4"}


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=DX, dy=DY, seed=5)
    return frames


@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".h264"])
def test_field_after_a_seek_to_an_open_gop_key_is_the_sequential_one(tmp_path, pictures, suffix):
    path = encode_frames(pictures, tmp_path / f"open{suffix}", recipe=EncoderRecipe("libx264", suffix, OPEN_GOP))
    info = probe(path)
    assert len(info.keyframe_indices) >= 3
    whole = decode_clip(path, start=0, num_frames=info.num_frames, size=None, info=info)
    p_frames = [t for t, kind in enumerate(whole.frame_types) if kind == "P"]
    for t in p_frames:  # the decoded field shows the pan (not a trivially equal empty field)
        moving = np.abs(whole.mv[:, t]).sum(axis=0) > 0
        assert moving.mean() > 0.5, t
        assert np.median(whole.mv[0, t][moving]) == DX and np.median(whole.mv[1, t][moving]) == DY, t
    for key in info.keyframe_indices[1:]:
        for start in (key, key + 1):
            if start + 8 > info.num_frames:
                continue
            clip = decode_clip(path, start=start, num_frames=8, size=None, info=info)
            np.testing.assert_array_equal(clip.rgb, whole.rgb[start:start + 8], err_msg=f"start {start}")
            np.testing.assert_array_equal(clip.mv, whole.mv[:, start:start + 8], err_msg=f"start {start}")


def order(pictures: list[tuple[int, int, int]], key_pts: int) -> ReferenceOrder:
    """A ReferenceOrder of (display index = pts, decode order, key pts so far) pictures, all references."""
    refs = ReferenceOrder()
    for pts, decoded, key in pictures:
        refs.packets[pts] = (decoded, True, 0, key)
        refs.note_frame(pts, pts)
    return refs


def test_only_leading_pictures_of_a_recovery_point_predict_from_before_it():
    # decode order: P8 (key 0), I12 (key), B10 (leading, shown before 12), P16 (trailing)
    refs = order([(0, 0, 0), (8, 1, 0), (12, 2, 12), (10, 3, 12), (16, 4, 12)], key_pts=12)
    assert refs.may_reference(8, 10) and refs.may_reference(12, 10)  # leading: both sides of the key
    assert refs.may_reference(12, 16) and refs.may_reference(10, 16) is False  # trailing: not before the key
    assert not refs.may_reference(8, 16)
    assert refs.may_reference(0, 8)  # before the key: as before
