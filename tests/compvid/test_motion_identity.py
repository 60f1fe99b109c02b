"""Faster painting and matching give the fields they gave before, bit for bit.

The functions as they were before issue 12's speed-ups are kept below, verbatim
(``*_before``), as the slow references: the new code must give the very same
bytes wherever the issue fixed no bug. The painter is also checked against an
obvious per-block painter at frame sizes with a small power-of-two factor
(854x480, 600x450, 426x240), which used to force 2-px cells.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest

from compvid.motion import BlockMotion, RawVectors, rasterize_rows


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
# compvid.motion's reference-distance matcher before issue 12 (numpy, samples-first)
# ----------------------------------------------------------------------------


# Sample offsets inside a block, as fractions of its size: a 4x4 grid of points,
# and its 8-point checkerboard half for the cheap pass.
_GRID = (np.arange(4, dtype=np.float32) + 0.5) / 4.0 - 0.5
_GX = np.tile(_GRID, 4)  # (16,)
_GY = np.repeat(_GRID, 4)  # (16,)
_CHECKER = ((np.arange(16) // 4 + np.arange(16) % 4) % 2 == 0)
_ALL, _HALF = np.arange(16), np.flatnonzero(_CHECKER)  # sample columns: 4x4 grid, checkerboard


class _SamplerBefore:
    """Motion-compensated match costs of some rows of a frame batch.

    Whole-pixel sample positions: block grid offsets per block size; the
    displaced samples rounded to whole pixels. Arrays are laid out samples-first, (S, rows), so that
    every elementwise step runs along long rows.
    """

    def __init__(self, vectors: RawVectors, rows: np.ndarray, flat: np.ndarray, here_base: np.ndarray,
                 height: int, width: int, field_parity: np.ndarray | None = None) -> None:
        sizes_w, self.size_w = np.unique(vectors.w[rows], return_inverse=True)
        sizes_h, self.size_h = np.unique(vectors.h[rows], return_inverse=True)
        self.off_x = np.floor(_GX[:, None] * sizes_w[None, :]).astype(np.int32)  # (16, widths)
        self.off_y = np.floor(_GY[:, None] * sizes_h[None, :]).astype(np.int32)  # (16, heights)
        self.base_x, self.base_y = vectors.cx[rows], vectors.cy[rows]
        self.move_x, self.move_y = vectors.mx[rows], vectors.my[rows]  # float32, sub-pel
        # Rows sampled on one field: the reference rows are rounded onto that field's lines.
        self.field_parity = None if field_parity is None else field_parity[rows].astype(np.float32)
        self.here_base = here_base  # (n,) flat offset of each row's own plane
        self.flat, self.height, self.width = flat, height, width
        self.plane_size = height * width

    def costs(self, sel: np.ndarray, table: np.ndarray, grid: np.ndarray = _ALL) -> np.ndarray:
        """Mean abs difference float32 (len(sel), C') of rows ``sel`` against the
        planes ``table`` (len(sel), C') (-1: no candidate, inf), on sample columns ``grid``."""
        height, width, flat = self.height, self.width, self.flat
        x = self.off_x[grid][:, self.size_w[sel]] + self.base_x[sel]  # (S, s)
        y = self.off_y[grid][:, self.size_h[sel]] + self.base_y[sel]
        cur = np.clip(y, 0, height - 1) * width + np.clip(x, 0, width - 1)
        # Rounded per sample: a half-pel vector lands on both neighbours across
        # the block (round half to even), a cheap stand-in for interpolation.
        ref_y = y.astype(np.float32) + self.move_y[sel]
        if self.field_parity is None:
            ref_y = np.rint(ref_y).astype(np.int32)
        else:  # the nearest line of field q: 2 round((y - q) / 2) + q
            q = self.field_parity[sel]
            ref_y = (2 * np.rint((ref_y - q) / 2) + q).astype(np.int32)
        ref_x = np.rint(x.astype(np.float32) + self.move_x[sel]).astype(np.int32)
        ref = np.clip(ref_y, 0, height - 1) * width + np.clip(ref_x, 0, width - 1)
        here = flat.take(cur + self.here_base[sel], mode="wrap")  # (S, s) uint8; indices are in range
        planes_t = (np.maximum(table, 0) * self.plane_size).T  # (C', s)
        there = flat.take(planes_t[:, None, :] + ref[None, :, :], mode="wrap")  # (C', S, s)
        diff = np.maximum(there, here)
        diff -= np.minimum(there, here)  # |a - b| in uint8
        total = diff.sum(axis=1, dtype=np.uint16)  # (C', s); at most 16 * 255
        out = total.T.astype(np.float32) * np.float32(1.0 / grid.size)  # (s, C')
        out[table < 0] = np.inf
        return out


def match_reference_distances_frames_before(
    vectors: RawVectors,
    frame_of_row: np.ndarray,
    frames: np.ndarray,
    current: np.ndarray,
    candidates: Sequence[dict[int, int]],
    *,
    min_gap: float = 1.0,
    sample_rows: int = 32,
    field_parity: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each vector's reference frame by motion compensation, for K frames at once.

    ``vectors``: the rows of K frames together; ``frame_of_row``: int (N,), which
    of the K frames each row belongs to. ``frames``: uint8 (F, H, W) luma planes
    of the decoded window; ``current``: int (K,), the plane of each frame;
    ``candidates``: per frame, signed display offset -> plane of a candidate
    reference (o < 0 past, o > 0 future). A vector (FFmpeg sense, src = dst + m)
    points into its reference; the candidate at offset ``o`` (same sign as the
    row's direction) is scored by the mean absolute difference between grid
    samples of the block in the current frame and the samples displaced by m in
    the candidate (whole-pixel rounding).

    Three steps keep it cheap, each vectorised over all K frames (no loop per
    frame or row): up to ``sample_rows`` moving rows of each frame try every
    candidate on a 4x4 grid and elect the frame's usual distances; every row
    tries its frame's usual distances on an 8-point grid; moving rows that
    match none of them well try every candidate on the 4x4 grid. Rows shorter
    than a quarter pixel need no distance. Rows whose best two candidates
    differ by less than ``min_gap`` grey levels are *unsure* and take their
    frame's most common confident distance. Every frame's result depends on its
    own rows and candidates only. ``field_parity``: int (N,), for rows sampled
    on the lines of one field (interlaced pictures), the parity (0 top, 1
    bottom) of the reference field, whose lines the displaced samples are
    rounded onto; None: whole frames.

    Returns ``distance`` int32 (N,) >= 1, ``unsure`` bool (N,), and the best
    match ``cost`` float32 (N,) in grey levels (inf where no candidate exists).
    """
    n = len(vectors)
    distance = np.ones(n, np.int32)
    unsure = np.zeros(n, bool)
    best_cost = np.full(n, np.inf, np.float32)
    k = len(current)
    if n == 0 or k == 0:
        return distance, unsure, best_cost
    frame_of_row = np.asarray(frame_of_row, np.intp)
    current = np.asarray(current, np.intp)
    _, height, width = frames.shape
    plane_size = height * width
    flat = frames.reshape(-1)  # (F * H * W,)
    moving_all = np.hypot(vectors.mx, vectors.my) >= 0.25
    for direction in (-1, 1):
        per_frame = [sorted((o for o in c if (o > 0) == (direction > 0) and o != 0), key=abs) for c in candidates]
        count = np.array([len(o) for o in per_frame], np.intp)  # (K,)
        width_c = int(count.max())
        if width_c == 0:
            continue
        offsets = np.zeros((k, width_c), np.int64)  # (K, C), nearest first
        planes = np.full((k, width_c), -1, np.intp)  # (K, C), -1 = no candidate
        for f, (offs, cand) in enumerate(zip(per_frame, candidates)):
            offsets[f, : len(offs)] = offs
            planes[f, : len(offs)] = [cand[o] for o in offs]
        rows = np.flatnonzero((vectors.direction == direction) & (count[frame_of_row] > 0))
        if rows.size == 0:
            continue
        order = np.argsort(frame_of_row[rows], kind="stable")  # group by frame
        rows = rows[order]
        fr = frame_of_row[rows]  # (n,)
        moving = moving_all[rows]

        costs = _SamplerBefore(vectors, rows, flat, current[fr] * plane_size, height, width, field_parity).costs

        # Step 1: a spread sample of each frame's moving rows against every candidate.
        movers = np.flatnonzero(moving)  # grouped by frame (rows are)
        m_k = np.bincount(fr[movers], minlength=k)  # (K,)
        n_k = np.where(count > 1, np.minimum(m_k, sample_rows), 0)  # one candidate: nothing to elect
        usual = np.zeros((k, width_c), bool)
        usual[:, 0] = True  # frames without movers: the nearest candidate
        typical = np.full(k, np.inf, np.float32)
        if movers.size:
            fk = np.repeat(np.arange(k), n_k)  # (s,) frame of each sample
            j = np.arange(fk.size) - np.repeat(np.cumsum(n_k) - n_k, n_k)
            spread = j * (m_k[fk] - 1) // np.maximum(n_k[fk] - 1, 1)  # linspace over the frame's movers
            sample = movers[(np.cumsum(m_k) - m_k)[fk] + spread]
            c1 = costs(sample, planes[fk])  # (s, C)
            low = c1.min(axis=1)
            win1 = c1.argmin(axis=1)
            if width_c > 1:
                gap1 = np.partition(c1, 1, axis=1)[:, 1] - low
                voted = gap1 >= min_gap
                votes = np.bincount(fk[voted] * width_c + win1[voted], minlength=k * width_c).reshape(k, width_c)
                total = votes.sum(axis=1)
                usual = np.where(total[:, None] > 0, votes >= np.maximum(1.0, 0.1 * total)[:, None], usual)
            ranked = np.lexsort((low, fk))  # by frame, then cost
            has = n_k > 0
            typical[has] = low[ranked][(np.cumsum(n_k) - n_k)[has] + n_k[has] // 2]  # per-frame median
        # Step 2: every row against its frame's usual distances, on the cheap grid.
        n_usual = usual.sum(axis=1)
        width_u = int(n_usual.max())
        slots = np.argsort(~usual, axis=1, kind="stable")[:, :width_u]  # (K, U) usual positions first
        slot_ok = np.take_along_axis(usual, slots, axis=1)
        usual_planes = np.where(slot_ok, np.take_along_axis(planes, slots, axis=1), -1)
        usual_offsets = np.take_along_axis(offsets, slots, axis=1)
        c2 = costs(np.arange(rows.size), usual_planes[fr], _HALF)  # (n, U)
        best = c2.argmin(axis=1)
        chosen = np.abs(usual_offsets[fr, best]).astype(np.int32)
        cost = c2[np.arange(rows.size), best]
        gap = np.full(rows.size, np.inf, np.float32)
        if width_u > 1:
            gap = np.partition(c2, 1, axis=1)[:, 1] - cost
        # Step 3: poor matches try every candidate on the full grid.
        poor = np.flatnonzero(moving & (cost > 2.0 * typical[fr] + 4.0) & (count[fr] > n_usual[fr]))
        if poor.size:
            cp = costs(poor, planes[fr[poor]])  # (p, C)
            bp = cp.argmin(axis=1)
            chosen[poor] = np.abs(offsets[fr[poor], bp])
            cost[poor] = cp[np.arange(poor.size), bp]
            gap[poor] = (np.partition(cp, 1, axis=1)[:, 1] - cost[poor]) if width_c > 1 else np.inf
        doubt = moving & (gap < min_gap)
        confident = moving & ~doubt
        if doubt.any() and confident.any():
            span = int(chosen.max()) + 1
            tally = np.bincount(fr[confident] * span + chosen[confident], minlength=k * span).reshape(k, span)
            fix = doubt & (tally.sum(axis=1) > 0)[fr]
            chosen[fix] = tally.argmax(axis=1)[fr[fix]]
        distance[rows] = chosen
        unsure[rows] = doubt
        best_cost[rows] = cost
    return distance, unsure, best_cost


# ----------------------------------------------------------------------------
# compvid.mv_gop.DirectModeFill.finish before issue 12 §2's third step (every filled frame's rows painted)
# ----------------------------------------------------------------------------


def direct_mode_finish_before(self, normalised, vectors, rows, distances, frames, store):
    from compvid.block_rows import join_rows, take_rows
    from compvid.frame_store import REFERENCE_TYPES
    from compvid.mv_strategy import ClipMotion

    with_rows, motion = rows.with_rows, normalised.motion
    direct = [m for m, n in enumerate(with_rows) if store.types.get(frames[n]) == "B"]
    if not direct:
        return normalised
    # The other frames' rows stay as they are; these are rebuilt one by one.
    bounds = np.concatenate([[0], np.cumsum(rows.sizes)])  # rows of frame m: bounds[m]:bounds[m + 1]
    direct_rows = np.zeros(len(with_rows), bool)
    direct_rows[direct] = True
    stay = ~direct_rows[rows.member]
    parts: list[BlockMotion] = [take_rows(motion, stay)]
    owners: list[np.ndarray] = [rows.frame_of_row[stay]]
    # Served reference frames are normalised already (their rows all point to the previous
    # reference): they donate without reading their side data again. Display index -> motion.
    donors: dict[int, BlockMotion] = {
        frames[n]: take_rows(motion, slice(bounds[m], bounds[m + 1]))
        for m, n in enumerate(with_rows) if not direct_rows[m] and store.types.get(frames[n]) in REFERENCE_TYPES}
    has_mv, filled = normalised.has_mv.copy(), normalised.filled.copy()
    for m in direct:
        n = with_rows[m]
        span = slice(bounds[m], bounds[m + 1])
        raw = RawVectors(*(getattr(vectors, f)[span] for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
        motion_n, has_mv[n], filled[n] = fill_frame_before(frames[n], raw, take_rows(motion, span), store,
                                                           int(distances.future[m]), int(distances.past[m]), donors)
        parts.append(motion_n)
        owners.append(np.full(len(motion_n), n, np.intp))
    return ClipMotion(join_rows(parts), np.concatenate(owners), has_mv, filled, 0, normalised.moving)


def fill_frame_before(i, vectors, motion, store, future, past, donors):
    """compvid.mv_gop._fill_frame before: (motion, has_mv, filled)."""
    from compvid.block_rows import centres_inside, join_rows, take_rows
    from compvid.frame_store import REFERENCE_TYPES
    from compvid.mv_gop import reference_distance

    zero = (vectors.mx == 0) & (vectors.my == 0)
    if not zero.any():
        return motion, True, False
    donor = None
    for offset in (future, -past):
        j = i + offset
        if j in donors:
            donor = donors[j]
            break
        rows = store.vectors(j)
        if rows is not None and len(rows) and store.types.get(j) in REFERENCE_TYPES:
            donor = donors[j] = rows.normalise(np.full(len(rows), reference_distance(store, j, -1), np.int32))
            break
    if donor is None:
        # Nothing to fill from: say so instead of passing zeros off as motion.
        return take_rows(motion, ~zero), bool((~zero).any()), False
    if zero.all():  # FFmpeg 8 exports only zero rows for MPEG-4 B-frames: take the donor whole
        return donor, True, True
    covered = centres_inside(donor, take_rows(motion, zero))
    return join_rows([take_rows(motion, ~zero), take_rows(donor, covered)]), True, True


# ----------------------------------------------------------------------------
# Painting
# ----------------------------------------------------------------------------


@pytest.fixture(params=["numpy", "compiled"])
def loops(request, monkeypatch):
    """Run the matcher's cost sums and the painter in numpy and, where numba is installed, in compiled loops."""
    from compvid import kernels

    if request.param == "compiled" and not kernels.ENABLED:
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    monkeypatch.setattr(kernels, "ENABLED", request.param == "compiled")
    return request.param


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
def test_painting_matches_a_per_block_painter_and_the_painter_before(loops, height, width, partitions):
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


@pytest.mark.parametrize("seed", range(3))
def test_painting_rows_in_any_frame_order(loops, seed):
    """Rows need not come grouped by frame (MPEG-4 direct-mode fills come after the other frames'
    rows); some frames have none. Overlapping blocks make the order of additions matter."""
    rng = np.random.default_rng(seed)
    motion, frame = codec_blocks(rng, 5, 144, 176, (4, 8, 16), per_frame=200)
    frame = frame.copy()
    frame[frame == 3] = 4  # frame 3: no rows
    order = rng.permutation(len(frame))
    shuffled = BlockMotion(*(getattr(motion, f)[order] for f in ("x0", "y0", "w", "h", "dx", "dy", "unsure")))
    for out_size in (None, (128, 156), (40, 52)):
        got = rasterize_rows(shuffled, frame[order], 6, frame_size=(144, 176), out_size=out_size)
        before = rasterize_rows_before(shuffled, frame[order], 6, frame_size=(144, 176), out_size=out_size)
        assert got.tobytes() == before.tobytes()
        assert not got[:, 3].any() and not got[:, 5].any()


def test_compiled_painter_writes_zeros_for_frames_without_blocks():
    """The compiled painter skips the sums of a frame without blocks and writes its zeros itself:
    into an output full of NaN, those frames come out +0.0 and the others as numpy paints them."""
    from compvid import kernels

    loop = kernels.paint_cells()
    if loop is None:
        pytest.skip("compiled loops off: numba not installed (pip install -e '.[fast]') or COMPVID_NUMBA=0")
    rng = np.random.default_rng(4)
    n, cells_h, cells_w = 40, 6, 7
    cx0, cy0 = rng.integers(0, cells_w, n), rng.integers(0, cells_h, n)
    cx1, cy1 = np.minimum(cx0 + rng.integers(1, 4, n), cells_w), np.minimum(cy0 + rng.integers(1, 4, n), cells_h)
    frame = rng.choice([0, 2, 4], n)  # frames 1, 3 and 5: none
    vx, vy = rng.normal(0, 3, n).astype(np.float32), rng.normal(0, 3, n).astype(np.float32)
    rows, cols = np.arange(cells_h), np.arange(cells_w)
    out = np.full((2, 6, cells_h, cells_w), np.nan, np.float32)
    loop(cx0, cx1, cy0, cy1, frame, vx, vy, 6, cells_h, cells_w, rows, cols, np.full(6, -1, np.intp), out)
    assert out[:, [1, 3, 5]].tobytes() == np.zeros((2, 3, cells_h, cells_w), np.float32).tobytes()
    motion = BlockMotion(*(a.astype(np.int32) for a in (cx0, cy0, cx1 - cx0, cy1 - cy0)), vx, vy, np.zeros(n, bool))
    want = paint_per_block(motion, frame, 6, cells_h, cells_w, cells_h, cells_w)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    assert out.tobytes() == rasterize_rows_before(motion, frame, 6, frame_size=(cells_h, cells_w)).tobytes()


def test_painting_blocks_off_every_grid_and_frames_without_inner_edges(loops):
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


# ----------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------


def textured_planes(rng, num, height, width, motion):
    """Luma planes of one smoothed random texture, plane f moved by f * motion (sx, sy) px, plus noise."""
    big = rng.integers(0, 256, (height + 160, width + 160)).astype(np.int32)
    big = ((big + np.roll(big, 1, 0) + np.roll(big, 1, 1) + np.roll(big, 1, (0, 1))) // 4).astype(np.uint8)
    planes = []
    for f in range(num):
        sx, sy = int(round(f * motion[0])), int(round(f * motion[1]))
        plane = big[80 - sy: 80 - sy + height, 80 - sx: 80 - sx + width].astype(np.int32)
        planes.append(np.clip(plane + rng.integers(-3, 4, plane.shape), 0, 255).astype(np.uint8))
    return np.stack(planes)


def random_rows(rng, frames, height, width, per_frame):
    """Rows of several frames as FFmpeg exports them: partitions of 4-16 px (some hanging over the
    border), vectors spanning 1-4 frames of (2, -1) px motion, some off by quarter and half pixels,
    some zero rows, both directions; frame of each row (grouped)."""
    n = len(frames) * per_frame
    w = rng.choice([4, 8, 16], n).astype(np.int32)
    h = np.where(rng.random(n) < 0.5, w, rng.choice([4, 8, 16], n)).astype(np.int32)
    cx = (rng.integers(-1, width // 4 + 2, n) * 4).astype(np.int32)
    cy = (rng.integers(-1, height // 4 + 2, n) * 4).astype(np.int32)
    direction = np.where(rng.random(n) < 0.7, -1, 1).astype(np.int8)
    span = rng.integers(1, 5, n)
    # FFmpeg sense (src = dst + m): content moving +(2, -1) px per frame sat at dst - span (2, -1) in a
    # past reference and will sit at dst + span (2, -1) in a future one.
    noisy = rng.random(n) < 0.3  # sub-pel misses: poor matches, ties, unsure rows
    mx = (direction * 2.0 * span + rng.integers(-2, 3, n) * 0.25 * noisy).astype(np.float32)
    my = (direction * -1.0 * span + rng.integers(-2, 3, n) * 0.5 * noisy).astype(np.float32)
    zero = rng.random(n) < 0.2
    mx[zero], my[zero] = 0, 0
    return (RawVectors(direction, mx, my, cx, cy, w, h), np.repeat(np.arange(len(frames)), per_frame))


def matcher_case(seed, *, height=72, width=104, num_planes=12):
    rng = np.random.default_rng(seed)
    planes = textured_planes(rng, num_planes, height, width, (2, -1))
    current = np.array([3, 5, 6, 9])
    # Per frame: signed display offset -> plane; from one candidate (nothing to elect) to eight.
    candidates = [{-1: 2, 1: 4}, {o: 5 + o for o in (-5, -4, -3, -2, -1, 1, 2)},
                  {o: 6 + o for o in (-4, -2, -1, 2)}, {o: 9 + o for o in (-6, -5, -4, -3, -2, -1, 1, 2)}]
    vectors, frame_of_row = random_rows(rng, current, height, width, per_frame=90)
    return vectors, frame_of_row, planes, current, candidates


def assert_same(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.tobytes() == w.tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_matcher_gives_the_results_it_gave_before(loops, seed):
    from compvid.motion import match_reference_distances_frames

    vectors, frame_of_row, planes, current, candidates = matcher_case(seed)
    want = match_reference_distances_frames_before(vectors, frame_of_row, planes, current, candidates)
    assert_same(match_reference_distances_frames(vectors, frame_of_row, planes, current, candidates), want)
    # The planes as decode_clip keeps them: views into wider frame buffers (line stride past the width).
    buffers = np.zeros((len(planes), planes.shape[1] + 3, planes.shape[2] + 24), np.uint8)
    buffers[:, : planes.shape[1], : planes.shape[2]] = planes
    views = [b[: planes.shape[1], : planes.shape[2]] for b in buffers]
    assert not views[0].flags.c_contiguous
    assert_same(match_reference_distances_frames(vectors, frame_of_row, views, current, candidates), want)
    # Line strides that differ between planes (the compiled loops then read contiguous copies), and
    # planes whose columns are not adjacent bytes.
    mixed = [v if n % 2 else np.ascontiguousarray(v) for n, v in enumerate(views)]
    assert_same(match_reference_distances_frames(vectors, frame_of_row, mixed, current, candidates), want)
    wide = np.zeros((len(planes), planes.shape[1], 2 * planes.shape[2]), np.uint8)
    wide[:, :, ::2] = planes
    assert_same(match_reference_distances_frames(vectors, frame_of_row, list(wide[:, :, ::2]), current, candidates),
                 want)
    # Rows not grouped by frame, a larger sample and gap, and field rows sampled on one field's lines.
    order = np.random.default_rng(seed).permutation(len(vectors))
    shuffled = RawVectors(*(getattr(vectors, f)[order] for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
    for kw in (dict(), dict(sample_rows=64, min_gap=2.5),
               dict(field_parity=np.random.default_rng(seed).integers(0, 2, len(vectors)))):
        want = match_reference_distances_frames_before(shuffled, frame_of_row[order], planes, current, candidates, **kw)
        got = match_reference_distances_frames(shuffled, frame_of_row[order], planes, current, candidates, **kw)
        assert_same(got, want)


def test_matcher_with_votes_too_spread_to_elect_a_candidate(loops):
    """Sixteen candidates (MAX_REFERENCE_DISTANCE) and sixteen sampled movers, each matching a
    different one clearly: no candidate gets a tenth of the votes, so the frame has no usual
    candidate; its rows score inf in the cheap pass, movers go to the full pass, still rows keep
    the nearest distance. Beside a frame that elects one: the same numbers as before, both paths.
    Alone: before, numpy's argmin over no column raised ValueError; now the same results."""
    from compvid.motion import match_reference_distances_frames

    rng = np.random.default_rng(5)
    planes = textured_planes(rng, 18, 64, 96, (1, -1))
    n = 40
    distance_true = np.r_[np.arange(1, 17), np.ones(n - 16, int)]
    still = np.arange(n) >= 16
    mx = np.where(still, 0, -1.0 * distance_true).astype(np.float32)  # FFmpeg sense: src = dst + m
    my = np.where(still, 0, 1.0 * distance_true).astype(np.float32)
    spread = RawVectors(np.full(n, -1, np.int8), mx, my, rng.integers(20, 76, n).astype(np.int32),
                        rng.integers(20, 44, n).astype(np.int32), np.full(n, 16, np.int32), np.full(n, 16, np.int32))
    # A second frame (plane 9) whose movers all match the candidate 2 frames back.
    one = RawVectors(np.full(n, -1, np.int8), np.full(n, -2.0, np.float32), np.full(n, 2.0, np.float32),
                     spread.cx, spread.cy, spread.w, spread.h)
    both = RawVectors(*(np.r_[getattr(spread, f), getattr(one, f)]
                        for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
    candidates = [{-d: 17 - d for d in range(1, 17)}, {-d: 9 - d for d in range(1, 9)}]
    for kw in (dict(sample_rows=16), dict(sample_rows=16, min_gap=0.5)):
        args = (both, np.repeat([0, 1], n), planes, np.array([17, 9]), candidates)
        want = match_reference_distances_frames_before(*args, **kw)
        got = match_reference_distances_frames(*args, **kw)
        assert_same(got, want)
        np.testing.assert_array_equal(got[0][:16], distance_true[:16])  # the full pass finds every mover's
        assert (got[0][16:n] == 1).all() and np.isinf(got[2][16:n]).all()
        assert (got[0][n:] == 2).all()
        alone = match_reference_distances_frames(spread, np.zeros(n, np.intp), planes, np.array([17]),
                                                 candidates[:1], **kw)
        assert_same(alone, tuple(a[:n] for a in got))


def counting_calls(monkeypatch, module, name):
    """Wrap ``module.name`` so that its calls are counted; the list of call counts (one entry)."""
    calls = [0]
    inner = getattr(module, name)

    def counted(*args):
        calls[0] += 1
        return inner(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_the_compiled_matcher_is_the_one_that_runs(loops, monkeypatch):
    """Where numba runs, match_reference_distances_frames and unused_list_rows go through
    compvid.matcher_loops (so the tests above compare it), except for inputs whose numbers numpy
    works out in other precisions (float64 vectors, a numpy float64 threshold): those stay numpy."""
    from compvid import kernels
    from compvid.motion import match_reference_distances_frames, unused_list_rows

    vectors, frame_of_row, planes, current, candidates = matcher_case(0)
    if loops == "numpy":
        assert kernels.matcher_loops() is None
        return
    module = kernels.matcher_loops()
    matched = counting_calls(monkeypatch, module, "match_direction")
    paired = counting_calls(monkeypatch, module, "unused_list_rows")
    _, _, cost = match_reference_distances_frames(vectors, frame_of_row, planes, current, candidates)
    unused_list_rows(vectors, cost, frame_of_row=frame_of_row)
    assert matched[0] == 2 and paired[0] == 1  # one call per direction
    wide = RawVectors(*(getattr(vectors, f).astype(np.float64) if f in ("mx", "my") else getattr(vectors, f)
                        for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
    got = match_reference_distances_frames(wide, frame_of_row, planes, current, candidates)
    assert_same(got, match_reference_distances_frames_before(wide, frame_of_row, planes, current, candidates))
    match_reference_distances_frames(vectors, frame_of_row, planes, current, candidates, min_gap=np.float64(1.0))
    unused_list_rows(vectors, cost, frame_of_row=frame_of_row, ratio=np.float64(2.0))
    assert matched[0] == 2 and paired[0] == 1


def test_the_compiled_matcher_prefetches(loops):
    """The matcher's loops hint the CPU with an LLVM prefetch (compvid.matcher_loops.prefetch): the
    intrinsic compiles to one, on this machine's LLVM, and prefetching changes no result (the
    tests above run the loops with it)."""
    if loops == "numpy":
        pytest.skip("the compiled loops' prefetching")
    import numba

    from compvid import kernels

    module = kernels.matcher_loops()
    hinted = numba.njit(lambda array, index: module.prefetch(array, index))  # a fresh compile, not the cache
    hinted(np.zeros(64, np.uint8), 3)
    (ir,) = hinted.inspect_llvm().values()
    assert "call void @llvm.prefetch" in ir


def unused_list_rows_before(vectors: RawVectors, cost: np.ndarray, *, ratio: float = 2.0, margin: float = 4.0,
                            frame_of_row: np.ndarray | None = None) -> np.ndarray:
    """compvid.motion.unused_list_rows before issue 12 §2 (a stable sort of block keys)."""
    n = len(vectors)
    drop = np.zeros(n, bool)
    if n < 2:
        return drop
    frame = np.zeros(n, np.int64) if frame_of_row is None else np.asarray(frame_of_row, np.int64)
    # One int64 key per block: frame, centre (FFmpeg's int16), size (uint8).
    block = ((((frame << 16) | (vectors.cx.astype(np.int64) & 0xFFFF)) << 16 | (vectors.cy.astype(np.int64) & 0xFFFF))
             << 16 | ((vectors.w.astype(np.int64) & 0xFF) << 8) | (vectors.h.astype(np.int64) & 0xFF))
    order = np.argsort(block * 2 + (vectors.direction > 0), kind="stable")
    k = block[order]
    d, c = vectors.direction[order], cost[order]
    pair = (k[:-1] == k[1:]) & (d[:-1] < 0) & (d[1:] > 0)  # sorted: past row, then future row
    first, second = np.flatnonzero(pair), np.flatnonzero(pair) + 1
    worse_first = c[first] > ratio * c[second] + margin
    worse_second = c[second] > ratio * c[first] + margin
    drop[order[first[worse_first]]] = True
    drop[order[second[worse_second]]] = True
    return drop


@pytest.mark.parametrize("seed", range(4))
def test_unused_list_rows_drops_what_it_dropped_before(loops, seed):
    """Blocks from a small pool, so that most have partners, some several rows of one list (the
    one next to the other list in key order pairs), some rows of direction 0 (sorted with the past
    rows, never paired); centres past FFmpeg's int16 and sizes past uint8 wrap in the key as before;
    costs on a coarse grid (ties at the threshold), some inf; rows in any order, several frames;
    a threshold that differs in float32 and float64 (1.1 * 10 + 0.1)."""
    from compvid.motion import unused_list_rows

    rng = np.random.default_rng(seed)
    n = 3000
    pool = 400
    cx = rng.integers(-40, 700, pool)
    cx[:5] = [70000, 70000 - 65536, -3, 65533, 4]
    block = rng.integers(0, pool, n)
    w = rng.choice([4, 8, 16, 260], pool)[block].astype(np.int32)
    vectors = RawVectors(rng.choice(np.array([-1, 1, 0], np.int8), n, p=[0.5, 0.45, 0.05]),
                         np.zeros(n, np.float32), np.zeros(n, np.float32), cx[block].astype(np.int32),
                         rng.integers(-20, 300, pool)[block].astype(np.int32), w,
                         rng.choice([4, 8, 16], pool)[block].astype(np.int32))
    frame = rng.integers(0, 3, n)
    cost = (rng.integers(0, 40, n) * 0.5).astype(np.float32)
    cost[rng.random(n) < 0.05] = np.inf
    cost[:20] = 10.0
    cost[20:40] = np.float32(11.1)
    # Rows grouped by frame as decode_clip passes them (frame by frame), and not (all at once).
    by_frame = np.argsort(frame, kind="stable")
    grouped = RawVectors(*(getattr(vectors, f)[by_frame] for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
    cases = [(vectors, cost, frame), (vectors, cost, None), (grouped, cost[by_frame], frame[by_frame])]
    for kw in (dict(), dict(ratio=1.1, margin=0.1), dict(ratio=3, margin=0)):
        for v, c, f in cases:
            want = unused_list_rows_before(v, c, frame_of_row=f, **kw)
            got = unused_list_rows(v, c, frame_of_row=f, **kw)
            assert got.dtype == bool and got.tobytes() == want.tobytes()
            assert want.sum() > 50  # pairs found and dropped
    # The obvious reading on a case small enough to follow: two blocks, a past row each, a future
    # row each, one future row far worse than its partner.
    small = RawVectors(np.array([-1, 1, -1, 1, 1], np.int8), np.zeros(5, np.float32), np.zeros(5, np.float32),
                       np.array([8, 8, 24, 24, 24], np.int32), np.full(5, 8, np.int32), np.full(5, 16, np.int32),
                       np.full(5, 16, np.int32))
    # Block 24 has two future rows: the first of them pairs with the past row (as the stable sort has it).
    got = unused_list_rows(small, np.array([2.0, 40.0, 2.0, 30.0, 3.0], np.float32))
    assert got.tolist() == [False, True, False, True, False]


def test_a_numba_that_does_not_load_leaves_the_numpy_path(monkeypatch, caplog):
    import sys

    from compvid import kernels
    from compvid.motion import match_reference_distances_frames

    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    monkeypatch.setattr(kernels, "ENABLED", True)
    monkeypatch.setattr(kernels, "_compiled", {})
    vectors, frame_of_row, planes, current, candidates = matcher_case(0)
    got = match_reference_distances_frames(vectors, frame_of_row, planes, current, candidates)
    assert not kernels.ENABLED and "numba does not load" in caplog.text
    assert_same(got, match_reference_distances_frames_before(vectors, frame_of_row, planes, current, candidates))


# ----------------------------------------------------------------------------
# Whole clips: fields as decode_clip served them before
# ----------------------------------------------------------------------------


def clips_before_and_now(source, windows, **kw):
    """decode_clip of each (start, frames) window with the matcher, painter and MPEG-4 direct-mode fill
    before issue 12, and now."""
    import compvid.motion as motion_mod
    import compvid.mv_gop as gop_mod
    import compvid.mv_matching as matching_mod
    import compvid.mv_strategy as strategy_mod
    from compvid import decode_clip, probe

    def before_on_a_stack(vectors, frame_of_row, frames, *args, **kw):
        # decode_clip stacked the luma planes before issue 12 §2; now it may pass them as a list.
        frames = frames if isinstance(frames, np.ndarray) else np.stack(frames)
        return match_reference_distances_frames_before(vectors, frame_of_row, frames, *args, **kw)

    def painter_before(motion, frame_of_row, num_frames, *, frame_size, out_size=None, copy_of=None):
        # The frames named by copy_of were painted (as zeros) and then overwritten with their donor's field.
        fields = rasterize_rows_before(motion, frame_of_row, num_frames, frame_size=frame_size, out_size=out_size)
        for n in [] if copy_of is None else np.flatnonzero(copy_of >= 0).tolist():
            fields[:, n] = fields[:, copy_of[n]]
        return fields

    info = probe(source)
    with pytest.MonkeyPatch.context() as mp:
        for mod in (matching_mod, motion_mod):
            mp.setattr(mod, "match_reference_distances_frames", before_on_a_stack)
        for mod in (strategy_mod, motion_mod):
            mp.setattr(mod, "rasterize_rows", painter_before)
        mp.setattr(gop_mod.DirectModeFill, "finish", direct_mode_finish_before)
        before = [decode_clip(source, start=s, num_frames=n, info=info, with_rgb=False, **kw) for s, n in windows]
    now = [decode_clip(source, start=s, num_frames=n, info=info, with_rgb=False, **kw) for s, n in windows]
    return before, now


def assert_same_clips(before, now):
    for b, n in zip(before, now):
        assert b.mv.tobytes() == n.mv.tobytes()
        assert (b.unsure_fraction, b.has_mv.tolist(), b.vector_counts.tolist()) == (
            n.unsure_fraction, n.has_mv.tolist(), n.vector_counts.tolist())


GENERATED = [  # recipe, motion, size: every path through the matcher and the painter
    ("h264", "object", (176, 120)), ("h264", "pan", (160, 96)), ("h264-nopyramid", "object", (176, 120)),
    ("h264-slices", "pan", (176, 120)), ("h264-shortgop", "object", (176, 120)), ("h264-ref1", "pan", (176, 120)),
    ("h264-mbaff", "object", (176, 128)), ("mpeg4", "object", (176, 120)), ("mpeg2", "pan", (168, 120)),
]


@pytest.mark.parametrize("recipe, motion, size", GENERATED, ids=[f"{r}-{m}" for r, m, _ in GENERATED])
def test_generated_clips_give_the_fields_they_gave_before(loops, moving_video, recipe, motion, size):
    width, height = size
    path = moving_video(recipe, dx=2, dy=-1, num_frames=40, width=width, height=height, motion=motion)
    before, now = clips_before_and_now(path, [(0, 16), (5, 16), (20, 20)], size=64)
    assert_same_clips(before, now)
    before, now = clips_before_and_now(path, [(3, 12)])  # native size
    assert_same_clips(before, now)


@pytest.mark.media
@pytest.mark.parametrize("name", ["h264_high_bframes_bikes_640x272.mp4",
                                  "h264_high_bframes_carphone_pristine_176x144.mp4", "h264_high_realshort_320x240.mp4",
                                  "mpeg4asp_xvid_bframes_megamind_720x528.avi", "mpeg2_xine_logo_600x450.mpg"])
def test_real_clips_give_the_fields_they_gave_before(loops, shared_media, name):
    before, now = clips_before_and_now(shared_media / name, [(0, 24), (9, 16)], size=128)
    assert_same_clips(before, now)


def test_mpeg4_direct_mode_frames_copy_the_field_of_their_served_donor(loops, moving_video, monkeypatch):
    """MPEG-4 B-frames exported as zero take their donor's rows whole; where the donor is served too,
    its field is copied, not painted again: the copy path runs (else the comparison with the fill
    before, above, proves nothing about it), and the fields are those the fill before gave."""
    from compvid import decode_clip, probe
    from compvid.mv_strategy import ClipMotion

    copies = []
    fields_and_counts = ClipMotion.fields_and_counts

    def spy(self, *a):
        copies.append(None if self.copy_of is None else self.copy_of.copy())
        return fields_and_counts(self, *a)

    monkeypatch.setattr(ClipMotion, "fields_and_counts", spy)
    path = moving_video("mpeg4", dx=2, dy=-1, num_frames=40, width=176, height=120, motion="object")
    clip = decode_clip(path, start=4, num_frames=16, info=probe(path), with_rgb=False, size=64)
    (copy_of,) = copies
    copied = np.flatnonzero(copy_of >= 0)
    assert copied.size >= 4  # 16 frames of an IPBB... GOP: B-frames whose next reference is served
    assert all(clip.frame_types[n] == "B" and clip.frame_types[copy_of[n]] in "IP" for n in copied)
    assert clip.mv_filled[copied].all() and clip.has_mv[copied].all()
    for n in copied:
        assert clip.mv[:, n].tobytes() == clip.mv[:, copy_of[n]].tobytes()
        assert clip.vector_counts[n] == clip.vector_counts[copy_of[n]] > 0
    assert np.abs(clip.mv[:, copied]).max() > 0  # moving content: the copies are no zero fields
    monkeypatch.undo()
    before, now = clips_before_and_now(path, [(4, 16)], size=64)
    assert_same_clips(before, now)


# ----------------------------------------------------------------------------
# The best two candidates of each row (compiled and numpy)
# ----------------------------------------------------------------------------


def best_two_per_row(costs: np.ndarray):
    """Obvious reference: for each row, the first column holding its minimum, that minimum, and the
    smallest value among the other columns (inf with one column)."""
    best, low, second = [], [], []
    for row in costs.tolist():
        b = row.index(min(row))
        best.append(b)
        low.append(row[b])
        second.append(min(row[:b] + row[b + 1:], default=float("inf")))
    return np.array(best, np.intp), np.array(low, np.float32), np.array(second, np.float32)


@pytest.mark.parametrize("columns", [1, 2, 3, 9])
def test_best_two_takes_the_first_minimum_and_the_next_smallest(loops, columns):
    from compvid.motion import _best_two

    rng = np.random.default_rng(columns)
    # Costs on a coarse grid of grey levels, so that rows hold ties; some rows all inf (no candidate).
    costs = (rng.integers(0, 6, (400, columns)) * 0.5).astype(np.float32)
    costs[rng.random(costs.shape) < 0.2] = np.inf
    costs[:7] = np.inf
    got = _best_two(costs)
    want = best_two_per_row(costs)
    assert_same(got, want)
    assert_same(_best_two(costs[:, ::-1]), best_two_per_row(costs[:, ::-1]))  # a strided view
    assert [a.shape for a in _best_two(costs[:0])] == [(0,)] * 3


def test_painter_copies_frames_named_by_copy_of(loops):
    """``copy_of`` frames come out as the bytes of the frame they name, whatever rows they hold
    (not painted), the other frames as painting all gives; a chain of copies or a bad shape is refused."""
    rng = np.random.default_rng(7)
    motion, frame = codec_blocks(rng, 6, 144, 176, (8, 16), per_frame=120)
    frame = frame.copy()
    frame[frame == 2] = 0  # frame 2: no rows, copies frame 4
    copy_of = np.array([-1, -1, 4, -1, -1, 1])  # frame 5 has rows, yet copies frame 1
    for out_size in (None, (64, 78)):
        got = rasterize_rows(motion, frame, 6, frame_size=(144, 176), out_size=out_size, copy_of=copy_of)
        want = rasterize_rows_before(motion, frame, 6, frame_size=(144, 176), out_size=out_size)
        assert got[:, [0, 1, 3, 4]].tobytes() == want[:, [0, 1, 3, 4]].tobytes()
        assert got[:, 2].tobytes() == want[:, 4].tobytes() and got[:, 5].tobytes() == want[:, 1].tobytes()
        assert np.abs(want[:, 4]).max() > 0 and not np.array_equal(want[:, 5], want[:, 1])
    for bad in (np.array([-1, -1, 4, -1, 2, -1]), np.array([-1, 6, -1, -1, -1, -1]), np.array([-1, -1])):
        with pytest.raises(ValueError, match="copy_of"):
            rasterize_rows(motion, frame, 6, frame_size=(144, 176), copy_of=bad)
