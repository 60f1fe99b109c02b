"""compvid.buffers: an output array's memory is used again only once nothing refers to it."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from compvid import buffers, decode_clip
from compvid.buffers import reusable_empty
from compvid.synthetic import write_moving_video

SHAPE = (2, 8, 128, 160)  # float32: 1.3 MB, pooled


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch):
    monkeypatch.setattr(buffers, "_free", [])


def test_an_empty_array_of_the_shape_and_type_asked():
    a = reusable_empty(SHAPE, np.float32)
    assert a.shape == SHAPE and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    a[...] = 1.5
    assert float(a.sum()) == 1.5 * a.size


def test_memory_of_a_dropped_array_is_used_again():
    a = reusable_empty(SHAPE, np.float32)
    where = address(a)
    del a
    gc.collect()
    b = reusable_empty(SHAPE, np.float32)
    assert address(b) == where
    c = reusable_empty((SHAPE[0] * SHAPE[1] * SHAPE[2] * SHAPE[3],), np.int32)  # same bytes, other shape
    assert address(c) != where  # b still holds it


@pytest.mark.parametrize("holder", ["view", "tensor", "slice copy source"])
def test_memory_still_referred_to_is_never_handed_out(holder):
    a = reusable_empty(SHAPE, np.float32)
    a[...] = 7.0
    kept = {"view": lambda: a[1, 2:], "tensor": lambda: torch.from_numpy(a),
            "slice copy source": lambda: a.reshape(-1)[::3]}[holder]()
    del a
    gc.collect()
    b = reusable_empty(SHAPE, np.float32)
    b[...] = -1.0
    assert float(np.asarray(kept).min()) == 7.0 and float(np.asarray(kept).max()) == 7.0
    del kept, b
    gc.collect()
    assert kept_of(int(np.prod(SHAPE)) * 4) == 2  # both back once nothing holds them


def kept_of(size: int) -> int:
    return sum(1 for b in buffers._free if b.nbytes == size)


def test_few_buffers_are_kept_and_small_arrays_are_plain(monkeypatch):
    many = [reusable_empty(SHAPE, np.float32) for _ in range(5)]
    del many
    gc.collect()
    assert kept_of(int(np.prod(SHAPE)) * 4) == buffers.KEEP_PER_SIZE
    small = reusable_empty((16, 16), np.float32)
    del small
    gc.collect()
    assert kept_of(16 * 16 * 4) == 0
    # Many frame sizes: at most MAX_KEPT_BYTES kept, the sizes given back last.
    monkeypatch.setattr(buffers, "MAX_KEPT_BYTES", 3 * (2 << 20))
    sizes = [(2 << 20) + 4096 * k for k in range(6)]
    arrays = [reusable_empty((s,), np.uint8) for s in sizes]
    while arrays:  # given back in order of size
        del arrays[0]
    gc.collect()
    assert sum(b.nbytes for b in buffers._free) <= buffers.MAX_KEPT_BYTES
    assert [b.nbytes for b in buffers._free][-2:] == sizes[-2:]


def test_clips_decoded_after_a_dropped_one_are_the_same_and_leave_kept_ones_alone(tmp_path):
    path = write_moving_video(tmp_path / "pan.mp4", recipe="h264", num_frames=40, width=320, height=240,
                              motion="pan")
    first = decode_clip(path, start=0, num_frames=24, size=128)  # its field (2, 24, 128, 170) is pooled
    assert first.mv.nbytes >= buffers.MIN_BYTES and first.rgb.nbytes >= buffers.MIN_BYTES
    mv, rgb = first.mv.copy(), first.rgb.copy()
    second = decode_clip(path, start=8, num_frames=24, size=128)
    np.testing.assert_array_equal(first.mv, mv)  # untouched by the later clip
    np.testing.assert_array_equal(first.rgb, rgb)
    where = address(second.mv)
    expected_mv, expected_rgb = second.mv.copy(), second.rgb.copy()
    del second
    gc.collect()
    again = decode_clip(path, start=8, num_frames=24, size=128)  # on the memory the dropped clip had
    assert address(again.mv) == where
    np.testing.assert_array_equal(again.mv, expected_mv)
    np.testing.assert_array_equal(again.rgb, expected_rgb)
