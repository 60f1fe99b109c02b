"""compvid.motion against slow, obvious references written here."""

from __future__ import annotations

import numpy as np
import pytest

from compvid.motion import BlockMotion, RawVectors, rasterize, rasterize_frames, unused_list_rows


def random_blocks(rng, n, height, width, grid=4):
    """Blocks on a grid, some hanging over the border, some overlapping (bi-prediction)."""
    w = rng.choice([4, 8, 16], n).astype(np.int32)
    h = rng.choice([4, 8, 16], n).astype(np.int32)
    x0 = (rng.integers(-2, width // grid + 1, n) * grid).astype(np.int32)
    y0 = (rng.integers(-2, height // grid + 1, n) * grid).astype(np.int32)
    dx = rng.normal(0, 3, n).astype(np.float32)
    dy = rng.normal(0, 3, n).astype(np.float32)
    return BlockMotion(x0, y0, w, h, dx, dy, np.zeros(n, bool))


def slow_rasterize(m: BlockMotion, height, width, out_h, out_w):
    """Loop over blocks and output pixels: mean of the vectors covering each pixel centre."""
    total = np.zeros((2, out_h, out_w))
    count = np.zeros((out_h, out_w))
    sx, sy = out_w / width, out_h / height
    for i in range(len(m)):
        for oy in range(out_h):
            y = min(int((oy + 0.5) / sy), height - 1)
            if not m.y0[i] <= y < m.y0[i] + m.h[i]:
                continue
            for ox in range(out_w):
                x = min(int((ox + 0.5) / sx), width - 1)
                if m.x0[i] <= x < m.x0[i] + m.w[i]:
                    total[:, oy, ox] += (m.dx[i] * sx, m.dy[i] * sy)
                    count[oy, ox] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


@pytest.mark.parametrize("out", [None, (18, 30), (40, 64), (7, 11)])
def test_rasterize_matches_slow_reference(out):
    rng = np.random.default_rng(3)
    height, width = 36, 52  # not a multiple of 16: border blocks hang over
    m = random_blocks(rng, 40, height, width)
    out_h, out_w = out or (height, width)
    got = rasterize(m, frame_size=(height, width), out_size=out)
    assert got.dtype == np.float32 and got.shape == (2, out_h, out_w)
    np.testing.assert_allclose(got, slow_rasterize(m, height, width, out_h, out_w), atol=1e-4)


def test_rasterize_frames_equals_one_frame_at_a_time():
    rng = np.random.default_rng(5)
    motions = [random_blocks(rng, n, 48, 64) for n in (10, 0, 25, 3)]
    batch = rasterize_frames(motions, frame_size=(48, 64), out_size=(24, 40))
    for t, m in enumerate(motions):
        np.testing.assert_allclose(batch[:, t], rasterize(m, frame_size=(48, 64), out_size=(24, 40)), atol=1e-5)


def test_raw_vectors_sign_and_distance():
    # FFmpeg rows: src = dst + motion / scale. A past reference 2 frames back with
    # motion (-6, 4) means content moved (+3, -2) per frame; a future reference
    # 1 frame ahead with motion (3, -2) means the same.
    rows = np.array(
        [(-1, 16, 16, 0, 0, 8, 8, 0, -24, 16, 4), (1, 16, 16, 0, 0, 8, 8, 0, 6, -4, 2)],
        dtype=[("source", "i4"), ("w", "u1"), ("h", "u1"), ("src_x", "i2"), ("src_y", "i2"),
               ("dst_x", "i2"), ("dst_y", "i2"), ("flags", "u8"), ("motion_x", "i4"),
               ("motion_y", "i4"), ("motion_scale", "u2")],
    )
    v = RawVectors.from_side_data(rows)
    np.testing.assert_allclose(v.mx, [-6, 3])
    m = v.normalise(np.array([2, 1]))
    np.testing.assert_allclose(np.c_[m.dx, m.dy], [[3, -2], [3, -2]])
    np.testing.assert_array_equal(np.c_[m.x0, m.y0], [[0, 0], [0, 0]])  # centre 8 - 16/2
    raw = v.raw()
    np.testing.assert_allclose(np.c_[raw.dx, raw.dy], [[6, -4], [3, -2]])


def test_unused_list_rows_drops_the_worse_partner_only():
    # Two blocks with a row per direction: block A's future row matches badly
    # (phantom); block B is genuinely bi-predicted (both match well).
    v = RawVectors(
        direction=np.array([-1, 1, -1, 1], np.int8),
        mx=np.array([-3, 0, -3, 3], np.float32), my=np.zeros(4, np.float32),
        cx=np.array([8, 8, 24, 24], np.int32), cy=np.full(4, 8, np.int32),
        w=np.full(4, 16, np.int32), h=np.full(4, 16, np.int32),
    )
    cost = np.array([2.0, 40.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(unused_list_rows(v, cost), [False, True, False, False])
