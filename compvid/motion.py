"""Motion vectors of one frame: extraction, reference distance, dense fields.

Convention (DESIGN §3.1): every vector compvid hands out is the *forward
displacement per frame step* in pixels, d = (dx, dy), x right +, y down +:
content at p in frame t-1 sits at p + d in frame t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


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

    @staticmethod
    def from_side_data(rows: np.ndarray) -> "RawVectors":
        """From ``frame.side_data['MOTION_VECTORS'].to_ndarray()`` (structured array)."""
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

    def normalise(self, distance: np.ndarray, unsure: np.ndarray | None = None) -> BlockMotion:
        """Forward displacement per frame step, given each row's reference distance.

        ``distance``: (N,) positive display-order distance in frames to each row's
        reference. Past reference: d = -m / distance; future: d = +m / distance.
        """
        dist = np.maximum(distance.astype(np.float32), 1.0)
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
_GX8, _GY8 = _GX[_CHECKER], _GY[_CHECKER]  # (8,)


def _sample_indices(vectors: RawVectors, rows: np.ndarray, gx: np.ndarray, gy: np.ndarray,
                    height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of the grid samples of ``rows`` in the current frame and,
    displaced by each row's vector, in its reference; both intp (n, S)."""
    px = vectors.cx[rows, None] + gx[None, :] * vectors.w[rows, None]  # (n, S) pixels
    py = vectors.cy[rows, None] + gy[None, :] * vectors.h[rows, None]  # (n, S)
    cur = (np.clip(np.rint(py), 0, height - 1).astype(np.intp) * width
           + np.clip(np.rint(px), 0, width - 1).astype(np.intp))
    ref = (np.clip(np.rint(py + vectors.my[rows, None]), 0, height - 1).astype(np.intp) * width
           + np.clip(np.rint(px + vectors.mx[rows, None]), 0, width - 1).astype(np.intp))
    return cur, ref


def match_reference_distances(
    vectors: RawVectors,
    frames: np.ndarray,
    current: int,
    candidates: dict[int, int],
    *,
    min_gap: float = 1.0,
    sample_rows: int = 32,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find each vector's reference frame by motion compensation on the luma.

    ``frames``: uint8 (F, H, W) luma planes of the decoded window; ``current``:
    the row of the frame the vectors belong to; ``candidates``: signed display
    offset -> row of a candidate reference (o < 0 past, o > 0 future). A vector
    (FFmpeg sense, src = dst + m) points into its reference; the candidate at
    offset ``o`` (same sign as the row's direction) is scored by the mean
    absolute difference between grid samples of the block in the current frame
    and the samples displaced by m in the candidate (whole-pixel rounding).

    Three steps keep it cheap: up to ``sample_rows`` moving rows try every
    candidate on a 4x4 grid and elect the frame's usual distances; every row
    tries those on an 8-point grid; moving rows that match none of them well
    try every candidate on the 4x4 grid. Rows shorter than a quarter pixel
    need no distance. Rows whose best two candidates differ by less than
    ``min_gap`` grey levels are *unsure* and take the frame's most common
    confident distance.

    Returns ``distance`` int32 (N,) >= 1, ``unsure`` bool (N,), and the best
    match ``cost`` float32 (N,) in grey levels (inf where no candidate exists).
    """
    n = len(vectors)
    distance = np.ones(n, np.int32)
    unsure = np.zeros(n, bool)
    best_cost = np.full(n, np.inf, np.float32)
    if n == 0:
        return distance, unsure, best_cost
    _, height, width = frames.shape
    flat = frames.reshape(frames.shape[0], -1)  # (F, H*W)
    here = flat[current]  # (H*W,)
    moving_all = np.hypot(vectors.mx, vectors.my) >= 0.25
    for direction in (-1, 1):
        offsets = np.array(sorted((o for o in candidates if np.sign(o) == direction), key=abs), np.int64)
        rows = np.flatnonzero(vectors.direction == direction)
        if rows.size == 0 or offsets.size == 0:
            continue
        planes = np.array([candidates[o] for o in offsets], np.intp)  # (C,) rows of ``frames``
        moving = moving_all[rows]  # (n,)

        def costs(sel: np.ndarray, which: np.ndarray, gx=_GX, gy=_GY) -> np.ndarray:  # (C', len(sel))
            cur_idx, ref_idx = _sample_indices(vectors, rows[sel], gx, gy, height, width)
            ref = flat[which[:, None, None], ref_idx[None]]  # (C', s, S) uint8
            return np.abs(ref.astype(np.int16) - here[cur_idx].astype(np.int16)[None]).mean(axis=2)

        # Step 1: a spread sample of moving rows against every candidate.
        movers = np.flatnonzero(moving)
        usual, typical = np.arange(1), np.inf  # positions in ``offsets``
        if movers.size:
            sample = movers[np.linspace(0, movers.size - 1, min(sample_rows, movers.size)).astype(np.intp)]
            c1 = costs(sample, planes)  # (C, s)
            low = c1.min(axis=0)  # (s,)
            if offsets.size > 1:
                gap1 = np.partition(c1, 1, axis=0)[1] - low
                votes = np.bincount(c1.argmin(axis=0)[gap1 >= min_gap], minlength=offsets.size)
                if votes.sum():
                    usual = np.flatnonzero(votes >= max(1, 0.1 * votes.sum()))
            typical = float(np.partition(low, low.size // 2)[low.size // 2])
        # Step 2: every row against the usual distances, on the cheap grid.
        c2 = costs(np.arange(rows.size), planes[usual], _GX8, _GY8)  # (U, n)
        chosen = np.abs(offsets[usual][c2.argmin(axis=0)])
        cost = c2.min(axis=0)
        gap = np.full(rows.size, np.inf)
        if usual.size > 1:
            gap = np.partition(c2, 1, axis=0)[1] - cost
        # Step 3: poor matches try every candidate on the full grid.
        poor = np.flatnonzero(moving & (cost > 2.0 * typical + 4.0))
        if poor.size and offsets.size > usual.size:
            cp = costs(poor, planes)  # (C, p)
            chosen[poor] = np.abs(offsets[cp.argmin(axis=0)])
            cost[poor] = cp.min(axis=0)
            gap[poor] = np.partition(cp, 1, axis=0)[1] - cp.min(axis=0)
        doubt = moving & (gap < min_gap)
        confident = chosen[moving & ~doubt]
        if confident.size and doubt.any():
            chosen[doubt] = np.bincount(confident).argmax()
        distance[rows] = chosen
        unsure[rows] = doubt
        best_cost[rows] = cost
    return distance, unsure, best_cost


def unused_list_rows(vectors: RawVectors, cost: np.ndarray, *, ratio: float = 2.0, margin: float = 4.0) -> np.ndarray:
    """Rows of a bi-directional block that its prediction does not use; bool (N,).

    FFmpeg's H.264 exporter writes a row for both lists of every partition of
    a macroblock that uses both lists somewhere, so a partition predicted from
    one list also gets a zero row for the other. Such a row matches the
    picture far worse than its partner: when a block has one row per direction
    and one row's match cost (``cost`` from :func:`match_reference_distances`,
    grey levels) exceeds ``ratio`` times the other's plus ``margin``, it is
    dropped. Genuine bi-prediction matches well both ways and is kept.
    """
    n = len(vectors)
    drop = np.zeros(n, bool)
    if n < 2:
        return drop
    key = ((vectors.cx.astype(np.int64) * 65536 + vectors.cy) * 1024 + vectors.w) * 1024 + vectors.h
    order = np.lexsort((vectors.direction, key))
    k, d, c = key[order], vectors.direction[order], cost[order]
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
    are 0. Vectorised over all frames at once: blocks are painted on the grid
    of their common divisor (4 px for H.264, 8-16 px for MPEG) with 2-D
    difference arrays, O(N + cells), then gathered to the output; no loop per
    vector.
    """
    height, width = frame_size
    out_h, out_w = out_size if out_size is not None else frame_size
    t = len(motions)
    field = np.zeros((2, t, out_h, out_w), np.float32)
    sizes = [len(m) for m in motions]
    if t == 0 or sum(sizes) == 0:
        return field
    frame = np.repeat(np.arange(t), sizes)  # (N,) frame of each row

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(m, name) for m in motions])

    x0, w, y0, h = cat("x0"), cat("w"), cat("y0"), cat("h")
    x1, y1 = np.clip(x0 + w, 0, width), np.clip(y0 + h, 0, height)
    x0, y0 = np.clip(x0, 0, width), np.clip(y0, 0, height)
    keep = (x1 > x0) & (y1 > y0)
    x0, x1, y0, y1, frame = x0[keep], x1[keep], y0[keep], y1[keep], frame[keep]
    # Cell size: the largest grid every clipped block edge lies on.
    g = max(int(np.gcd.reduce(np.concatenate([x0, x1, y0, y1, [width, height]]).astype(np.int64))), 1)
    gw, gh = -(-width // g), -(-height // g)
    cx0, cx1, cy0, cy1 = x0 // g, -(-x1 // g), y0 // g, -(-y1 // g)
    stride, plane = gw + 1, (gh + 1) * (gw + 1)
    base = frame * plane
    # +1 at (y0,x0) and (y1,x1), -1 at (y0,x1) and (y1,x0): cumsum over both
    # axes turns the corners into the rectangle's indicator.
    corners = np.concatenate([base + cy0 * stride + cx0, base + cy1 * stride + cx1,
                              base + cy0 * stride + cx1, base + cy1 * stride + cx0])
    k = x0.size
    sign = np.concatenate([np.ones(2 * k), -np.ones(2 * k)])
    sx, sy = out_w / width, out_h / height

    def paint(values: np.ndarray) -> np.ndarray:  # (T, gh, gw) float64
        diff = np.bincount(corners, weights=np.tile(values, 4) * sign, minlength=t * plane)
        return diff.reshape(t, gh + 1, stride).cumsum(1).cumsum(2)[:, :gh, :gw]

    count = np.rint(paint(np.ones(k)))
    inv = np.divide(1.0, count, out=np.zeros_like(count), where=count > 0)
    grid = np.stack([paint(cat("dx")[keep] * sx) * inv, paint(cat("dy")[keep] * sy) * inv])  # (2, T, gh, gw)
    # Output pixel centre -> source pixel -> cell.
    rows = np.minimum(((np.arange(out_h) + 0.5) / sy).astype(np.intp), height - 1) // g
    cols = np.minimum(((np.arange(out_w) + 0.5) / sx).astype(np.intp), width - 1) // g
    cells = (rows[:, None] * gw + cols[None, :]).ravel()  # (H_out * W_out,) cell of each output pixel
    grid = grid.astype(np.float32).reshape(2, t, gh * gw)
    return grid.take(cells, axis=2).reshape(2, t, out_h, out_w)  # (2, T, H_out, W_out)
