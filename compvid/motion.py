"""Motion vectors of one frame: extraction, reference distance, dense fields.

Convention (README, "The motion-vector convention"): every vector compvid hands out is the *forward
displacement per frame step* in pixels, d = (dx, dy), x right +, y down +:
content at p in frame t-1 sits at p + d in frame t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from compvid import kernels


@dataclass(frozen=True)
class BlockMotion:
    """The vectors of one frame as blocks; every array has shape (N,).

    ``x0, y0``: top-left corner of the block in pixels of the coded frame
    (may be negative or reach past the frame at the border; rasterising clips).
    ``w, h``: block size in pixels. ``dx, dy``: float32 forward displacement in
    pixels per frame step. ``unsure``: bool, the reference distance of this
    vector could not be told apart from another candidate.
    """

    x0: np.ndarray  # int32 (N,)
    y0: np.ndarray  # int32 (N,)
    w: np.ndarray  # int32 (N,)
    h: np.ndarray  # int32 (N,)
    dx: np.ndarray  # float32 (N,)
    dy: np.ndarray  # float32 (N,)
    unsure: np.ndarray  # bool (N,)

    def __len__(self) -> int:
        return int(self.x0.shape[0])

    @staticmethod
    def empty() -> "BlockMotion":
        z = np.zeros(0, np.int32)
        f = np.zeros(0, np.float32)
        return BlockMotion(z, z, z, z, f, f, np.zeros(0, bool))


# ----------------------------------------------------------------------------
# Bitstream vectors (FFmpeg AVMotionVector rows)
# ----------------------------------------------------------------------------


# RawVectors' fields in order, and their dtypes.
_VECTOR_FIELDS = ("direction", "mx", "my", "cx", "cy", "w", "h")
_VECTOR_DTYPES = (np.int8, np.float32, np.float32, np.int32, np.int32, np.int32, np.int32)


@dataclass(frozen=True)
class RawVectors:
    """FFmpeg's exported rows of one frame, unnormalised; arrays of shape (N,).

    ``direction``: -1 past reference (list 0), +1 future reference (list 1).
    ``mx, my``: sub-pel ``motion / motion_scale`` in pixels, FFmpeg's sense
    (src = dst + m), spanning the unknown distance to the reference frame.
    ``cx, cy``: block centre (``dst``) in pixels; ``w, h``: block size.
    """

    direction: np.ndarray  # int8 (N,)
    mx: np.ndarray  # float32 (N,)
    my: np.ndarray  # float32 (N,)
    cx: np.ndarray  # int32 (N,)
    cy: np.ndarray  # int32 (N,)
    w: np.ndarray  # int32 (N,)
    h: np.ndarray  # int32 (N,)

    def __len__(self) -> int:
        return int(self.mx.shape[0])

    def columns(self) -> tuple[np.ndarray, ...]:
        """The arrays in field order (as the compiled loops take them)."""
        return tuple(getattr(self, f) for f in _VECTOR_FIELDS)

    @staticmethod
    def allocate(n: int) -> "RawVectors":
        """Uninitialised columns for ``n`` rows, each of its field's dtype (filled by a compiled reader)."""
        return RawVectors(*(np.empty(n, t) for t in _VECTOR_DTYPES))

    @staticmethod
    def from_side_data(rows: np.ndarray) -> "RawVectors":
        """From ``frame.side_data['MOTION_VECTORS'].to_ndarray()`` (structured array)."""
        loop = kernels.vector_columns()
        if loop is not None and rows.ndim == 1 and rows.flags.c_contiguous:  # one pass instead of ten
            out = RawVectors.allocate(rows.shape[0])
            loop(rows, *out.columns())
            return out
        scale = rows["motion_scale"].astype(np.float32)
        scale[scale == 0] = 1.0  # defensive: an encoder that leaves it 0 means whole pixels
        return RawVectors(
            direction=np.sign(rows["source"]).astype(np.int8),
            mx=rows["motion_x"].astype(np.float32) / scale,
            my=rows["motion_y"].astype(np.float32) / scale,
            cx=rows["dst_x"].astype(np.int32),
            cy=rows["dst_y"].astype(np.int32),
            w=rows["w"].astype(np.int32),
            h=rows["h"].astype(np.int32),
        )

    @staticmethod
    def from_tables(tables: Sequence[np.ndarray]) -> "RawVectors":
        """The rows of several side-data tables (structured arrays, ``from_side_data``), one after another.

        The compiled loop reads each table straight into its stretch of the columns; joining the
        tables first (compvid.block_rows.join_tables) wrote all of them once more into fresh memory."""
        loop = kernels.vector_columns()
        if loop is None or len(tables) == 1 or not all(
                t.ndim == 1 and t.flags.c_contiguous and t.dtype == tables[0].dtype for t in tables):
            from compvid.block_rows import join_tables  # deferred: compvid.block_rows imports this module

            return RawVectors.from_side_data(join_tables(list(tables)))
        out = RawVectors.allocate(sum(t.shape[0] for t in tables))
        start = 0
        for t in tables:
            end = start + t.shape[0]
            loop(t, *(column[start:end] for column in out.columns()))
            start = end
        return out

    def normalise(self, distance: np.ndarray, unsure: np.ndarray | None = None) -> BlockMotion:
        """Forward displacement per frame step, given each row's reference distance.

        ``distance``: (N,) positive display-order distance in frames to each row's
        reference (half frames between fields of interlaced pictures). Past
        reference: d = -m / distance; future: d = +m / distance.
        """
        dist = np.maximum(distance.astype(np.float32), 0.5)  # half frames: field predictions
        sign = self.direction.astype(np.float32)  # -1 past, +1 future
        return BlockMotion(
            x0=self.cx - self.w // 2,
            y0=self.cy - self.h // 2,
            w=self.w,
            h=self.h,
            dx=(sign * self.mx / dist).astype(np.float32),
            dy=(sign * self.my / dist).astype(np.float32),
            unsure=np.zeros(len(self), bool) if unsure is None else unsure,
        )

    def raw(self) -> BlockMotion:
        """Unnormalised vectors, sign-corrected to forward displacement per reference."""
        return self.normalise(np.ones(len(self), np.float32))


# Sample offsets inside a block, as fractions of its size: a 4x4 grid of points,
# and its 8-point checkerboard half for the cheap pass.
_GRID = (np.arange(4, dtype=np.float32) + 0.5) / 4.0 - 0.5
_GX = np.tile(_GRID, 4)  # (16,)
_GY = np.repeat(_GRID, 4)  # (16,)
_CHECKER = ((np.arange(16) // 4 + np.arange(16) % 4) % 2 == 0)
_ALL, _HALF = np.arange(16), np.flatnonzero(_CHECKER)  # sample columns: 4x4 grid, checkerboard


class _Sampler:
    """Motion-compensated match costs of some rows of a frame batch.

    Whole-pixel sample positions: block grid offsets per block size; the
    displaced samples rounded to whole pixels. Arrays are laid out rows-first,
    (rows, candidates, samples), so that the samples of one block in one
    candidate plane are gathered together (they share cache lines).
    """

    def __init__(self, vectors: RawVectors, rows: np.ndarray, flat: np.ndarray, here_base: np.ndarray,
                 height: int, width: int, field_parity: np.ndarray | None = None) -> None:
        sizes_w, self.size_w = _distinct(vectors.w[rows])
        sizes_h, self.size_h = _distinct(vectors.h[rows])
        self.off_x = np.floor(sizes_w[:, None] * _GX[None, :]).astype(np.int32)  # (widths, 16)
        self.off_y = np.floor(sizes_h[:, None] * _GY[None, :]).astype(np.int32)  # (heights, 16)
        self.off_x4 = np.ascontiguousarray(self.off_x[:, :4])  # (widths, 4): _GX[:4] is the grid's columns
        self.off_y4 = np.ascontiguousarray(self.off_y[:, ::4])  # (heights, 4): _GY[::4] is its lines
        self.base_x, self.base_y = vectors.cx[rows], vectors.cy[rows]
        self.move_x, self.move_y = vectors.mx[rows], vectors.my[rows]  # float32, sub-pel
        # Rows sampled on one field: the reference rows are rounded onto that field's lines.
        self.field_parity = None if field_parity is None else field_parity[rows].astype(np.float32)
        self.no_field = np.zeros(0, np.float32)
        self.here_base = here_base  # (n,) flat offset of each row's own plane
        self.flat, self.height, self.width = flat, height, width
        self.plane_size = height * width

    def costs(self, sel: np.ndarray, table: np.ndarray, grid: np.ndarray = _ALL) -> np.ndarray:
        """Mean abs difference float32 (len(sel), C') of rows ``sel`` against the
        planes ``table`` (len(sel), C') (-1: no candidate, inf), on sample columns ``grid``."""
        height, width, flat = self.height, self.width, self.flat
        loop = kernels.match_costs()
        if loop is not None:  # the same sums in one compiled loop (compvid.kernels)
            out = np.empty(table.shape, np.float32)
            # The grid's 4 columns and 4 lines: sample s lies in column s % 4 and line s // 4 (_GX, _GY).
            loop(flat, height, width, np.asarray(sel, np.intp), np.asarray(table, np.intp),
                 self.off_x4, self.off_y4, grid % 4, grid // 4,
                 self.size_w, self.size_h, self.base_x, self.base_y, self.move_x, self.move_y,
                 self.no_field if self.field_parity is None else self.field_parity, self.here_base, out)
            return out
        x = self.off_x[:, grid][self.size_w[sel]] + self.base_x[sel][:, None]  # (s, S)
        y = self.off_y[:, grid][self.size_h[sel]] + self.base_y[sel][:, None]
        cur = np.clip(y, 0, height - 1) * width + np.clip(x, 0, width - 1)
        # Rounded per sample: a half-pel vector lands on both neighbours across
        # the block (round half to even), a cheap stand-in for interpolation.
        ref_y = y.astype(np.float32) + self.move_y[sel][:, None]
        if self.field_parity is None:
            ref_y = np.rint(ref_y).astype(np.int32)
        else:  # the nearest line of field q: 2 round((y - q) / 2) + q
            q = self.field_parity[sel][:, None]
            ref_y = (2 * np.rint((ref_y - q) / 2) + q).astype(np.int32)
        ref_x = np.rint(x.astype(np.float32) + self.move_x[sel][:, None]).astype(np.int32)
        ref = np.clip(ref_y, 0, height - 1) * width + np.clip(ref_x, 0, width - 1)
        here = flat.take(cur + self.here_base[sel][:, None], mode="wrap")  # (s, S) uint8; indices are in range
        planes = np.maximum(table, 0) * self.plane_size  # (s, C')
        there = flat.take(planes[:, :, None] + ref[:, None, :], mode="wrap")  # (s, C', S)
        here = here[:, None, :]
        diff = np.maximum(there, here)
        diff -= np.minimum(there, here)  # |a - b| in uint8
        total = diff.sum(axis=2, dtype=np.uint16)  # (s, C'); at most 16 * 255
        out = total.astype(np.float32) * np.float32(1.0 / grid.size)
        out[table < 0] = np.inf
        return out


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for small non-negative ints (block sizes), by a table."""
    present = np.zeros(int(values.max()) + 1 if values.size else 0, bool)
    present[values] = True
    position = np.cumsum(present) - 1
    return np.flatnonzero(present).astype(values.dtype), position[values]


def _best_two(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column of the minimum, minimum, second smallest value) of each row of ``costs`` (s, C);
    the second is inf where C = 1. The same values as argmin, min and ``np.partition(costs, 1)[:, 1]``."""
    loop = kernels.best_two()
    if loop is not None and costs.dtype == np.float32 and costs.shape[1] > 0:  # one pass per row, no copy
        best = np.empty(costs.shape[0], np.intp)
        low, second = np.empty(costs.shape[0], costs.dtype), np.empty(costs.shape[0], costs.dtype)
        loop(costs, best, low, second)
        return best, low, second
    best = costs.argmin(axis=1)
    rows = np.arange(costs.shape[0])
    low = costs[rows, best]
    rest = costs.copy()
    rest[rows, best] = np.inf
    return best, low, rest.min(axis=1) if costs.shape[1] > 1 else np.full(costs.shape[0], np.inf, costs.dtype)


def _compiled_matcher(vectors: RawVectors, *numbers: object):
    """compvid.matcher_loops where it runs and gives numpy's numbers: vectors of RawVectors' own dtypes
    (others promote differently in numpy) and Python numbers for the thresholds ``numbers`` (numpy
    computes with them in the float32 of the costs, NEP 50); else None."""
    if any(type(x) not in (int, float) for x in numbers):
        return None
    if any(column.dtype != t for column, t in zip(vectors.columns(), _VECTOR_DTYPES)):
        return None
    return kernels.matcher_loops()


def _same_uint8_planes(frames: np.ndarray | Sequence[np.ndarray]) -> bool:
    """Whether ``frames`` are uint8 luma planes of one size: (F, H, W), or F of (H, W)."""
    if isinstance(frames, np.ndarray):
        return frames.dtype == np.uint8 and frames.ndim == 3 and frames.shape[0] > 0
    return len(frames) > 0 and all(isinstance(p, np.ndarray) and p.dtype == np.uint8 and p.shape == frames[0].shape
                                   and p.ndim == 2 for p in frames)


def match_reference_distances(
    vectors: RawVectors,
    frames: np.ndarray,
    current: int,
    candidates: dict[int, int],
    *,
    min_gap: float = 1.0,
    sample_rows: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each vector's reference frame by motion compensation on the luma (one frame).

    ``frames``: uint8 (F, H, W) luma planes of the decoded window; ``current``:
    the row of the frame the vectors belong to; ``candidates``: signed display
    offset -> row of a candidate reference (o < 0 past, o > 0 future). See
    :func:`match_reference_distances_frames`, which does many frames at once.

    Returns ``distance`` int32 (N,) >= 1, ``unsure`` bool (N,), and the best
    match ``cost`` float32 (N,) in grey levels (inf where no candidate exists).
    """
    return match_reference_distances_frames(
        vectors, np.zeros(len(vectors), np.intp), frames, np.array([current], np.intp), [candidates],
        min_gap=min_gap, sample_rows=sample_rows)


def match_reference_distances_frames(
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
    of the decoded window, or a sequence of F uint8 (H, W) planes (views into the
    decoded frames: the compiled loops read them where they lie, numpy stacks
    them); ``current``: int (K,), the plane of each frame;
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
    moving_all = np.hypot(vectors.mx, vectors.my) >= 0.25
    loops = _compiled_matcher(vectors, min_gap) if _same_uint8_planes(frames) else None
    if loops is not None:
        # Where the planes lie: read there, no stacked copy (copies only for odd strides: kept alive here).
        addresses, line, keep_alive = loops.plane_addresses(frames)
        height, width = frames[0].shape
        parity = np.zeros(0, np.float32) if field_parity is None else np.asarray(field_parity).astype(np.float32)
    else:
        frames = frames if isinstance(frames, np.ndarray) else np.stack(frames)
        _, height, width = frames.shape
        plane_size = height * width
        flat = frames.reshape(-1)  # (F * H * W,)
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
        if loops is not None:  # the same steps, the same numbers, in one compiled loop over the rows
            loops.match_direction(direction, vectors.direction, vectors.mx, vectors.my, vectors.cx, vectors.cy,
                                  vectors.w, vectors.h, frame_of_row, moving_all, addresses, current, offsets, planes,
                                  count, parity, np.float32(min_gap), int(sample_rows), distance, unsure, best_cost,
                                  height, width, line)
            continue
        rows = np.flatnonzero((vectors.direction == direction) & (count[frame_of_row] > 0))
        if rows.size == 0:
            continue
        if np.any(np.diff(frame_of_row[rows]) < 0):  # group by frame (decode_clip passes them grouped)
            rows = rows[np.argsort(frame_of_row[rows], kind="stable")]
        fr = frame_of_row[rows]  # (n,)
        moving = moving_all[rows]

        costs = _Sampler(vectors, rows, flat, current[fr] * plane_size, height, width, field_parity).costs

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
            win1, low, second = _best_two(c1)
            if width_c > 1:
                gap1 = second - low
                voted = gap1 >= min_gap
                votes = np.bincount(fk[voted] * width_c + win1[voted], minlength=k * width_c).reshape(k, width_c)
                total = votes.sum(axis=1)
                usual = np.where(total[:, None] > 0, votes >= np.maximum(1.0, 0.1 * total)[:, None], usual)
            ranked = np.lexsort((low, fk))  # by frame, then cost
            has = n_k > 0
            typical[has] = low[ranked][(np.cumsum(n_k) - n_k)[has] + n_k[has] // 2]  # per-frame median
        # Step 2: every row against its frame's usual distances, on the cheap grid.
        n_usual = usual.sum(axis=1)
        # At least one column: where no frame elects a candidate (votes spread over more than ten),
        # rows score inf here, as beside a frame that elects some, and movers try every candidate.
        width_u = max(int(n_usual.max()), 1)
        slots = np.argsort(~usual, axis=1, kind="stable")[:, :width_u]  # (K, U) usual positions first
        slot_ok = np.take_along_axis(usual, slots, axis=1)
        usual_planes = np.where(slot_ok, np.take_along_axis(planes, slots, axis=1), -1)
        usual_offsets = np.take_along_axis(offsets, slots, axis=1)
        c2 = costs(np.arange(rows.size), usual_planes[fr], _HALF)  # (n, U)
        best, cost, second = _best_two(c2)
        chosen = np.abs(usual_offsets[fr, best]).astype(np.int32)
        gap = np.full(rows.size, np.inf, np.float32)
        if width_u > 1:
            gap = second - cost
        # Step 3: poor matches try every candidate on the full grid.
        poor = np.flatnonzero(moving & (cost > 2.0 * typical[fr] + 4.0) & (count[fr] > n_usual[fr]))
        if poor.size:
            cp = costs(poor, planes[fr[poor]])  # (p, C)
            bp, low_p, second_p = _best_two(cp)
            chosen[poor] = np.abs(offsets[fr[poor], bp])
            cost[poor] = low_p
            gap[poor] = (second_p - low_p) if width_c > 1 else np.inf
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


def match_field_readings(
    vectors: RawVectors,
    frame_of_row: np.ndarray,
    frames: np.ndarray,
    current: np.ndarray,
    candidates: Sequence[dict[int, int]],
    parity: np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Match field-predicted rows as predicted from the same field of their reference and from the other one.

    ``vectors``: rows laid out as frame blocks whose grid samples land on the
    lines of their own field, ``parity`` int (N,) (0 top, 1 bottom), with
    ``my`` in frame rows as if predicted from the same field. From the other
    field the rows are one lower (from the bottom field) or higher (from the
    top), and half a frame nearer or farther (top field first: the bottom field
    is half a frame later; current field time i + p/2, reference r + q/2).
    Displaced samples are rounded onto the reference field's lines.

    Returns, for (same field, other field): (my in frame rows, distance
    float32 (N,) in frames, unsure, cost) as :func:`match_reference_distances_frames`.
    """
    readings = []
    for other in (0, 1):
        shift = np.where(parity == 0, 1, -1) * other  # q - p in rows
        reading = RawVectors(vectors.direction, vectors.mx, (vectors.my + shift).astype(np.float32), vectors.cx,
                             vectors.cy, vectors.w, vectors.h)
        distance, unsure, cost = match_reference_distances_frames(
            reading, frame_of_row, frames, current, candidates, field_parity=(parity + other) % 2)
        # Past rows span (i - r) + (p - q)/2 frames, future ones (r - i) + (q - p)/2.
        readings.append((reading.my, (distance + 0.5 * vectors.direction * shift).astype(np.float32), unsure, cost))
    return readings


def match_with_field_hypothesis(
    vectors: RawVectors,
    frame_of_row: np.ndarray,
    frames: np.ndarray,
    current: np.ndarray,
    candidates: Sequence[dict[int, int]],
    field_rows: np.ndarray,
) -> tuple[RawVectors, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`match_reference_distances_frames`, where some rows may be MBAFF field macroblocks.

    FFmpeg's H.264 exporter leaves the vertical motion of field-coded 16x16
    and 8x8 partitions in field lines and says neither which blocks are field
    coded nor which field they predict from. A field macroblock pair covers 32
    frame rows: its top macroblock (even macroblock row) holds the top field
    lines, its bottom one the bottom field lines (top field first: the bottom
    field is half a frame later). Each row of ``field_rows`` (bool (N,)) is
    matched twice more, sampled on its own field lines: predicted from the
    same field of the reference frame (``my`` in frame rows = 2 my, distance
    in whole frames), and from the other field (2 my +- 1 rows, the distance
    half a frame shorter or longer). The better field reading wins where it
    matches clearly better (by a grey level) than the row as exported.

    Returns (vectors with ``my`` in frame rows, distance float32 (N,) in frames,
    halves for predictions from the other field, unsure, cost).
    """
    if not isinstance(frames, np.ndarray) and _compiled_matcher(vectors) is None:
        frames = np.stack(frames)  # numpy matches on one stack: stacked once for the readings below
    distance, unsure, cost = match_reference_distances_frames(vectors, frame_of_row, frames, current, candidates)
    distance = distance.astype(np.float32)
    extra = np.flatnonzero(field_rows)
    if extra.size == 0:
        return vectors, distance, unsure, cost
    rows_of = np.asarray(frame_of_row, np.intp)[extra]
    direction, mx, my = vectors.direction[extra], vectors.mx[extra], vectors.my[extra]
    cx, cy, w, h = vectors.cx[extra], vectors.cy[extra], vectors.w[extra], vectors.h[extra]
    mb_row = cy // 16
    parity = mb_row % 2  # 0: top field macroblock, 1: bottom
    within = cy % 16 - h // 2  # first field line of the block inside its macroblock (0 or 8)
    # The block's field lines are frame rows pair_top + parity + 2 (within + k), k < h: sampled as a
    # frame block of height 2h centred there, every sample lands on a row of that parity.
    centre = (mb_row - parity) * 16 + parity + 2 * within + h
    field = RawVectors(direction, mx, (2 * my).astype(np.float32), cx, centre.astype(np.int32), w,
                       (2 * h).astype(np.int32))
    (s_my, s_distance, s_unsure, s_cost), (o_my, o_distance, o_unsure, o_cost) = match_field_readings(
        field, rows_of, frames, current, candidates, parity)
    take = o_cost < s_cost  # the better of the two field readings
    best_cost, best_my = np.where(take, o_cost, s_cost), np.where(take, o_my, s_my)
    best_distance, best_unsure = np.where(take, o_distance, s_distance), np.where(take, o_unsure, s_unsure)
    # The exported reading's grid samples rows of one parity only (16x16: cy +- 2, 6), and in an
    # interlaced picture rows displaced by an odd amount land on the other field, half a frame
    # away: a field macroblock misread that way can match. Sampled one row lower as well (the
    # other parity), only a truly frame-coded block still matches.
    shifted = RawVectors(direction, mx, my, cx, (cy + 1).astype(np.int32), w, h)
    _, _, other_rows = match_reference_distances_frames(shifted, rows_of, frames, current, candidates)
    exported = np.maximum(cost[extra], other_rows)
    better = best_cost < exported - 1.0  # clearly better, by a grey level: ties stay as exported
    rows = extra[better]
    fixed_my = vectors.my.copy()
    fixed_my[rows] = best_my[better]
    fixed = RawVectors(vectors.direction, vectors.mx, fixed_my, vectors.cx, vectors.cy, vectors.w, vectors.h)
    distance, unsure, cost = distance.copy(), unsure.copy(), cost.copy()
    distance[rows], unsure[rows], cost[rows] = best_distance[better], best_unsure[better], best_cost[better]
    return fixed, distance, unsure, cost


def unused_list_rows(vectors: RawVectors, cost: np.ndarray, *, ratio: float = 2.0, margin: float = 4.0,
                     frame_of_row: np.ndarray | None = None) -> np.ndarray:
    """Rows of a bi-directional block that its prediction does not use; bool (N,).

    FFmpeg's H.264 exporter writes a row for both lists of every partition of
    a macroblock that uses both lists somewhere, so a partition predicted from
    one list also gets a zero row for the other. Such a row matches the
    picture far worse than its partner: when a block has one row per direction
    and one row's match cost (``cost`` from :func:`match_reference_distances`,
    grey levels) exceeds ``ratio`` times the other's plus ``margin``, it is
    dropped. Genuine bi-prediction matches well both ways and is kept.
    ``frame_of_row`` (N,) tells the frames apart when ``vectors`` holds several.
    """
    n = len(vectors)
    drop = np.zeros(n, bool)
    if n < 2:
        return drop
    frame = np.zeros(n, np.int64) if frame_of_row is None else np.asarray(frame_of_row, np.int64)
    loops = _compiled_matcher(vectors, ratio, margin) if cost.dtype == np.float32 else None
    if loops is not None:  # the same pairs found with a hash table instead of a sort
        loops.unused_list_rows(vectors.direction, vectors.cx, vectors.cy, vectors.w, vectors.h, frame, cost,
                               np.float32(ratio), np.float32(margin), drop)
        return drop
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


# ----------------------------------------------------------------------------
# Dense fields
# ----------------------------------------------------------------------------


def rasterize(
    motion: BlockMotion,
    *,
    frame_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Dense field of one frame; float32 (2, H_out, W_out). See :func:`rasterize_frames`."""
    return rasterize_frames([motion], frame_size=frame_size, out_size=out_size)[:, 0]


def rasterize_frames(
    motions: Sequence[BlockMotion],
    *,
    frame_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Paint the block vectors of T frames into dense fields; float32 (2, T, H_out, W_out).

    ``frame_size`` = (H, W) of the decoded frames in pixels; blocks are clipped
    to it (border blocks included, coded padding dropped). ``out_size`` (H', W')
    samples the fields at the output pixel centres (nearest) and scales the
    vectors by (W'/W, H'/H), so values are pixels of the output. Pixels covered
    by several rows (bi-prediction) get their mean; uncovered pixels (intra)
    are 0. See :func:`rasterize_rows`.
    """
    sizes = [len(m) for m in motions]
    t = len(motions)
    if t == 0 or sum(sizes) == 0:
        return rasterize_rows(BlockMotion.empty(), np.zeros(0, np.intp), t, frame_size=frame_size, out_size=out_size)
    joined = BlockMotion(*(np.concatenate([getattr(m, f) for m in motions])
                           for f in ("x0", "y0", "w", "h", "dx", "dy", "unsure")))
    return rasterize_rows(joined, np.repeat(np.arange(t), sizes), t, frame_size=frame_size, out_size=out_size)


def rasterize_rows(
    motion: BlockMotion,
    frame_of_row: np.ndarray,
    num_frames: int,
    *,
    frame_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
    copy_of: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`rasterize_frames` for the rows of ``num_frames`` frames held together.

    ``frame_of_row``: int (N,), the frame (0 .. num_frames - 1) of each row.
    ``copy_of``: None, or int (num_frames,): -1 where a frame is painted from its rows, else the
    frame (itself painted, -1 there) whose field it repeats; its own rows, if any, are not painted.
    Vectorised over all frames at once: blocks are painted on the grid of their
    common divisor (4 px for H.264, 8-16 px for MPEG, whatever the frame size)
    with 2-D difference arrays, O(N + cells), then gathered to the output; no
    loop per vector.
    """
    height, width = frame_size
    out_h, out_w = out_size if out_size is not None else frame_size
    t = int(num_frames)
    if copy_of is not None:
        copy_of = np.asarray(copy_of, np.intp)
        donors = copy_of[copy_of >= 0]
        if copy_of.shape != (t,) or donors.size and (donors.max() >= t or (copy_of[donors] >= 0).any()):
            raise ValueError(f"copy_of must name, for each of the {t} frames, -1 or a painted frame: {copy_of}")
        if not donors.size:
            copy_of = None
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
    # Cell size g: the largest power of two dividing every block edge inside the frame (the lowest
    # bit set in any): 4 px for H.264, 8-16 px for MPEG. Edges on the frame's right and bottom
    # border (clipped ones too) are left out, so a side such as 854 = 2 x 427 does not force 2-px
    # cells: the last column and row of cells may reach past the frame, where nothing is sampled.
    # (Left and top edges clip to 0, which sets no bit.)
    bits = int(np.bitwise_or.reduce(x0) | np.bitwise_or.reduce(np.where(x1 < width, x1, 0))
               | np.bitwise_or.reduce(y0) | np.bitwise_or.reduce(np.where(y1 < height, y1, 0)))
    g = bits & -bits if bits else 1 << max(width, height).bit_length()  # no inner edge: one cell
    gw, gh = -(-width // g), -(-height // g)
    cx0, cx1, cy0, cy1 = x0 // g, -(-x1 // g), y0 // g, -(-y1 // g)
    sx, sy = out_w / width, out_h / height
    # Output pixel centre -> source pixel -> cell.
    rows = np.minimum(((np.arange(out_h) + 0.5) / sy).astype(np.intp), height - 1) // g
    cols = np.minimum(((np.arange(out_w) + 0.5) / sx).astype(np.intp), width - 1) // g
    loop = kernels.paint_cells()
    if loop is not None:  # the same sums, in the same order, in one compiled loop (compvid.kernels)
        out = np.empty((2, t, out_h, out_w), np.float32)
        loop(cx0, cx1, cy0, cy1, frame, dx * sx, dy * sy, t, gh, gw, rows, cols,
             np.full(t, -1, np.intp) if copy_of is None else copy_of, out)
        return out
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
    # Columns first (a small gather), then whole output rows (contiguous copies).
    # Every index is in range; "wrap" skips numpy's bounds checks.
    wide = grid.reshape(2 * t, gh, gw).take(cols, axis=2, mode="wrap")  # (2T, gh, W_out)
    fields = wide.take(rows, axis=1, mode="wrap").reshape(2, t, out_h, out_w)  # (2, T, H_out, W_out)
    return _copy_frames(fields, copy_of)


def _copy_frames(fields: np.ndarray, copy_of: np.ndarray | None) -> np.ndarray:
    """``fields`` (2, T, H, W) with frame n replaced by frame ``copy_of[n]`` where that is >= 0."""
    if copy_of is not None:
        for n in np.flatnonzero(copy_of >= 0).tolist():
            fields[:, n] = fields[:, copy_of[n]]
    return fields
