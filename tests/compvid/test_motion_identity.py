"""Faster painting and matching give the fields they gave before, bit for bit.

The functions as they were before issue 12's speed-ups are kept below, verbatim
(``*_before``), as the slow references: the new code must give the very same
bytes wherever the issue fixed no bug. The painter is also checked against an
obvious per-block painter at frame sizes with a small power-of-two factor
(854x480, 600x450, 426x240), which used to force 2-px cells.
"""

from __future__ import annotations

import numpy as np
import pytest

from compvid.motion import BlockMotion, rasterize_rows


# ----------------------------------------------------------------------------
# compvid.motion.rasterize_rows before issue 12 (cells: the power of two dividing every clipped edge and the frame size)
# ----------------------------------------------------------------------------


def rasterize_rows_before(
    motion: BlockMotion,
    frame_of_row: np.ndarray,
    num_frames: int,
    *,
    frame_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """:func:`rasterize_frames` for the rows of ``num_frames`` frames held together.

    ``frame_of_row``: int (N,), the frame (0 .. num_frames - 1) of each row.
    Vectorised over all frames at once: blocks are painted on the grid of their
    common divisor (4 px for H.264, 8-16 px for MPEG) with 2-D difference
    arrays, O(N + cells), then gathered to the output; no loop per vector.
    """
    height, width = frame_size
    out_h, out_w = out_size if out_size is not None else frame_size
    t = int(num_frames)
    if t == 0 or len(motion) == 0:
        return np.zeros((2, t, out_h, out_w), np.float32)
    frame = np.asarray(frame_of_row, np.intp)
    x0, w, y0, h = motion.x0, motion.w, motion.y0, motion.h
    x1, y1 = np.clip(x0 + w, 0, width), np.clip(y0 + h, 0, height)
    x0, y0 = np.clip(x0, 0, width), np.clip(y0, 0, height)
    keep = (x1 > x0) & (y1 > y0)
    dx, dy = motion.dx, motion.dy
    if not keep.all():
        x0, x1, y0, y1, frame, dx, dy = x0[keep], x1[keep], y0[keep], y1[keep], frame[keep], dx[keep], dy[keep]
    if x0.size == 0:
        return np.zeros((2, t, out_h, out_w), np.float32)
    # Cell size: a grid every clipped block edge lies on.
    # (The largest power of two dividing them all: the lowest bit set in any.)
    bits = int(np.bitwise_or.reduce(x0) | np.bitwise_or.reduce(x1) | np.bitwise_or.reduce(y0)
               | np.bitwise_or.reduce(y1)) | width | height
    g = bits & -bits
    gw, gh = -(-width // g), -(-height // g)
    cx0, cx1, cy0, cy1 = x0 // g, -(-x1 // g), y0 // g, -(-y1 // g)
    stride, plane = gw + 1, (gh + 1) * (gw + 1)
    # +1 at (y0,x0) and (y1,x1), -1 at (y0,x1) and (y1,x0): cumsum over both
    # axes turns the corners into the rectangle's indicator. Count, dx and dy
    # are painted in one bincount (three planes apart), into (3, 4 corners, N).
    n = x0.size
    span = t * plane
    base = frame * plane
    index = np.empty((3, 4, n), np.intp)
    index[0, 0] = base + cy0 * stride + cx0
    index[0, 1] = base + cy1 * stride + cx1
    index[0, 2] = base + cy0 * stride + cx1
    index[0, 3] = base + cy1 * stride + cx0
    np.add(index[0], span, out=index[1])
    np.add(index[0], 2 * span, out=index[2])
    sx, sy = out_w / width, out_h / height
    sign = np.array([1.0, 1.0, -1.0, -1.0])[:, None]  # (4, 1)
    values = np.empty((3, 4, n))
    values[0] = sign
    np.multiply(sign, dx * sx, out=values[1])
    np.multiply(sign, dy * sy, out=values[2])
    diff = np.bincount(index.reshape(-1), weights=values.reshape(-1), minlength=3 * span)
    painted = diff.reshape(3 * t, gh + 1, stride)
    np.cumsum(painted, axis=1, out=painted)  # in place: no second (3T, gh+1, gw+1) array
    np.cumsum(painted, axis=2, out=painted)
    painted = painted.reshape(3, t, gh + 1, stride)[:, :, :gh, :gw]
    inv = np.rint(painted[0])  # (T, gh, gw) vectors per cell -> 1 / count, 0 where none
    np.divide(1.0, inv, out=inv, where=inv > 0)
    grid = np.empty((2, t, gh, gw), np.float32)
    np.multiply(painted[1:], inv, out=grid, casting="unsafe")  # mean of the cell's vectors
    # Output pixel centre -> source pixel -> cell.
    rows = np.minimum(((np.arange(out_h) + 0.5) / sy).astype(np.intp), height - 1) // g
    cols = np.minimum(((np.arange(out_w) + 0.5) / sx).astype(np.intp), width - 1) // g
    # Columns first (a small gather), then whole output rows (contiguous copies).
    # Every index is in range; "wrap" skips numpy's bounds checks.
    wide = grid.reshape(2 * t, gh, gw).take(cols, axis=2, mode="wrap")  # (2T, gh, W_out)
    return wide.take(rows, axis=1, mode="wrap").reshape(2, t, out_h, out_w)  # (2, T, H_out, W_out)


# ----------------------------------------------------------------------------
# Painting
# ----------------------------------------------------------------------------


def paint_per_block(motion: BlockMotion, frame_of_row, num_frames, height, width, out_h, out_w) -> np.ndarray:
    """Obvious painter: add each block's vector to its clipped rectangle of source pixels, divide by
    the count, sample at the output pixel centres (nearest); float32 (2, T, out_h, out_w)."""
    total = np.zeros((2, num_frames, height, width))
    count = np.zeros((num_frames, height, width))
    sx, sy = out_w / width, out_h / height
    for i in range(len(motion)):
        y0, x0 = int(motion.y0[i]), int(motion.x0[i])
        ys = slice(min(max(y0, 0), height), min(max(y0 + int(motion.h[i]), 0), height))
        xs = slice(min(max(x0, 0), width), min(max(x0 + int(motion.w[i]), 0), width))
        f = frame_of_row[i]
        total[0, f, ys, xs] += motion.dx[i] * sx
        total[1, f, ys, xs] += motion.dy[i] * sy
        count[f, ys, xs] += 1
    field = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    rows = [min(int((oy + 0.5) / sy), height - 1) for oy in range(out_h)]
    cols = [min(int((ox + 0.5) / sx), width - 1) for ox in range(out_w)]
    return field[:, :, rows][:, :, :, cols].astype(np.float32)


def codec_blocks(rng, num_frames, height, width, sizes, per_frame):
    """Blocks on the macroblock grid of a frame coded in whole 16-px macroblocks (so the last
    ones hang over the right and bottom border, as FFmpeg exports them), partitions of ``sizes``,
    some overlapping (bi-prediction); frame of each row."""
    mbs_x, mbs_y = -(-width // 16), -(-height // 16)
    n = num_frames * per_frame
    w = rng.choice(sizes, n).astype(np.int32)
    h = rng.choice(sizes, n).astype(np.int32)
    x0 = (rng.integers(0, mbs_x, n) * 16 + rng.integers(0, 4, n) * 4 % (16 - w + 4 * (w == 16))).astype(np.int32)
    y0 = (rng.integers(0, mbs_y, n) * 16 + rng.integers(0, 4, n) * 4 % (16 - h + 4 * (h == 16))).astype(np.int32)
    x0 -= x0 % w  # partitions sit on their own size's grid
    y0 -= y0 % h
    motion = BlockMotion(x0, y0, w, h, rng.normal(0, 3, n).astype(np.float32), rng.normal(0, 3, n).astype(np.float32),
                         np.zeros(n, bool))
    return motion, np.repeat(np.arange(num_frames), per_frame)


SIZES = [(480, 854), (480, 848), (450, 600), (448, 592), (240, 426), (240, 432), (272, 640)]


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("partitions", [(4, 8, 16), (8, 16), (16,)], ids=["h264", "mpeg4", "mpeg2"])
def test_painting_matches_a_per_block_painter_and_the_painter_before(height, width, partitions):
    rng = np.random.default_rng(height * width + len(partitions))
    motion, frame = codec_blocks(rng, 3, height, width, partitions, per_frame=300)
    short = 128
    out = (short, round(width * short / height))
    for out_size in (None, out):
        out_h, out_w = out_size or (height, width)
        got = rasterize_rows(motion, frame, 3, frame_size=(height, width), out_size=out_size)
        assert got.dtype == np.float32 and got.shape == (2, 3, out_h, out_w)
        np.testing.assert_allclose(got, paint_per_block(motion, frame, 3, height, width, out_h, out_w),
                                   rtol=1e-6, atol=1e-6)
        before = rasterize_rows_before(motion, frame, 3, frame_size=(height, width), out_size=out_size)
        assert got.tobytes() == before.tobytes()


def test_painting_blocks_off_every_grid_and_frames_without_inner_edges():
    # Estimated fields and direct-mode fills may sit anywhere; a block covering the whole frame
    # leaves no inner edge at all.
    rng = np.random.default_rng(1)
    n = 60
    motion = BlockMotion(rng.integers(-5, 70, n).astype(np.int32), rng.integers(-5, 50, n).astype(np.int32),
                         rng.integers(1, 20, n).astype(np.int32), rng.integers(1, 20, n).astype(np.int32),
                         rng.normal(0, 2, n).astype(np.float32), rng.normal(0, 2, n).astype(np.float32),
                         np.zeros(n, bool))
    frame = np.repeat(np.arange(2), n // 2)
    for out_size in (None, (20, 31)):
        out_h, out_w = out_size or (45, 67)
        got = rasterize_rows(motion, frame, 2, frame_size=(45, 67), out_size=out_size)
        np.testing.assert_allclose(got, paint_per_block(motion, frame, 2, 45, 67, out_h, out_w), rtol=1e-6, atol=1e-6)
    whole = BlockMotion(*(np.array([v], t) for v, t in ((-8, np.int32), (-8, np.int32), (880, np.int32),
                                                        (496, np.int32), (1.5, np.float32), (-2.0, np.float32),
                                                        (False, bool))))
    got = rasterize_rows(whole, np.zeros(1, np.intp), 1, frame_size=(480, 854), out_size=(128, 228))
    np.testing.assert_array_equal(got[0], np.float32(1.5 * 228 / 854))
    np.testing.assert_array_equal(got[1], np.float32(-2.0 * 128 / 480))
