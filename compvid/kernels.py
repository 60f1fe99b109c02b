"""Compiled inner loops (numba), optional: without numba compvid runs numpy code that gives the same bytes.

The cost sums of H.264 reference matching, the choice of the best two candidates among them, the
painting of dense fields and the reading of FFmpeg's vector tables (compvid.motion). Where numba
runs, the whole reference matcher runs in compvid.matcher_loops (:func:`matcher_loops`); the cost
sums and best-two loops here then serve numpy's matcher only for inputs that module leaves to it
(vectors of other dtypes, numpy float64 thresholds).

numba is installed with ``pip install -e '.[fast]'`` (README, Install). ``COMPVID_NUMBA=0`` in the
environment turns the compiled loops off (tests compare both paths). numba is imported on first
use, not with compvid; compiled code is cached in ``__pycache__`` beside this file (numba's
``cache=True``), so the compilation (a few seconds of CPU: 2.9 s for all four loops, numba's
import included, measured on the loaded 2-core machine; 8 s was measured for two of them in
another session; compvid.matcher_loops: 6.8 s, an empty cache, the loaded 2-core machine) is paid
once per machine; a later process loads them in under a second (0.6 s for the matcher's loops).
"""

from __future__ import annotations

import importlib.util
import logging
import os

import numpy as np

log = logging.getLogger(__name__)

# Whether the compiled loops run: numba installed and not turned off (set to False at the first
# use if numba fails to import, e.g. a numba built for another numpy).
ENABLED = os.environ.get("COMPVID_NUMBA", "1") != "0" and importlib.util.find_spec("numba") is not None
_compiled: dict[str, object] = {}


def _match_costs(flat, height, width, sel, planes, off_x, off_y, grid_x, grid_y, size_w, size_h, base_x, base_y,
                 move_x, move_y, field_parity, here_base, out):
    """Mean abs differences of grid samples, the loop behind ``motion._Sampler.costs``.

    For each row ``r = sel[i]`` and candidate ``c``: ``out[i, c]`` = mean over the S samples of
    ``|current - reference|`` in grey levels, inf where ``planes[i, c] < 0``. Sample s of row r lies
    at ``(base_x[r] + off_x[size_w[r], grid_x[s]], base_y[r] + off_y[size_h[r], grid_y[s]])`` in its
    own plane (``here_base[r]``: flat offset) and, displaced by ``(move_x[r], move_y[r])`` and rounded
    half to even (onto the lines of field ``field_parity[r]`` when that array is not empty), in the
    candidate plane ``planes[i, c]`` (plane index); both clipped to the frame. The samples lie on a
    grid of G columns and G rows, so each row's G column and G line positions are worked out once,
    not once per sample. Shapes: flat (P*H*W,) uint8, sel (s,), planes (s, C), off_x (widths, G),
    off_y (heights, G), grid_x and grid_y (S,), per-row arrays (n,), out (s, C) float32.
    """
    num = grid_x.shape[0]
    side = off_x.shape[1]
    scale = np.float32(1.0 / num)
    plane_size = height * width
    on_field = field_parity.shape[0] > 0
    here_col = np.empty(side, np.int64)  # clipped column of each grid column in the row's own plane
    here_line = np.empty(side, np.int64)  # clipped line * width of each grid line
    ref_col = np.empty(side, np.int64)  # the same, displaced and rounded, in a candidate plane
    ref_line = np.empty(side, np.int64)
    here = np.empty(num, np.int32)
    ref = np.empty(num, np.int64)
    for i in range(sel.shape[0]):
        r = sel[i]
        for k in range(side):
            x = off_x[size_w[r], k] + base_x[r]
            y = off_y[size_h[r], k] + base_y[r]
            here_col[k] = min(max(x, 0), width - 1)
            here_line[k] = min(max(y, 0), height - 1) * width
            ry = np.float32(y) + move_y[r]
            if on_field:
                q = field_parity[r]
                ry = 2 * np.rint((ry - q) / 2) + q
            else:
                ry = np.rint(ry)
            rx = np.rint(np.float32(x) + move_x[r])
            ref_line[k] = min(max(int(ry), 0), height - 1) * width
            ref_col[k] = min(max(int(rx), 0), width - 1)
        own = here_base[r]
        for s in range(num):
            here[s] = flat[own + here_line[grid_y[s]] + here_col[grid_x[s]]]
            ref[s] = ref_line[grid_y[s]] + ref_col[grid_x[s]]
        for c in range(planes.shape[1]):
            plane = planes[i, c]
            if plane < 0:
                out[i, c] = np.inf
                continue
            base = plane * plane_size
            total = 0
            for s in range(num):
                total += abs(np.int32(flat[base + ref[s]]) - here[s])
            out[i, c] = np.float32(total) * scale


def _paint_cells(cx0, cx1, cy0, cy1, frame, vx, vy, num_frames, cells_h, cells_w, rows, cols, copy_of, out):
    """Mean vector per cell of blocks given in cells, sampled to the output: the loop behind
    ``motion.rasterize_rows``, with numpy's additions in numpy's order, so the same bytes.

    Blocks cover cells ``[cx0, cx1) x [cy0, cy1)`` of frame ``frame`` (int (N,) each) with the
    vector ``(vx, vy)`` (float32 (N,), output pixels). Corners of every block go into a 2-D
    difference table (count, x, y) corner by corner, block by block (``np.bincount``'s order),
    prefix sums run down the rows, then along them (``np.cumsum``), and each cell's sums times
    1 / count (0 where none) become float32. ``out`` float32 (2, T, H_out, W_out) gets the cell
    ``(rows[i], cols[j])`` at output pixel (i, j).

    One frame at a time, in one table of (3, cells_h + 1, cells_w + 1) float64 reused for every
    frame: each cell still gets its own frame's additions in the same order, and the table stays in
    cache, where one for all T frames (megabytes) was new memory, page-faulted in, on every call.
    Blocks not grouped by frame are put in frame order first (a stable counting sort). Frames without
    blocks are written as zeros (+0.0, the bytes their painting gave) without running the sums.
    ``copy_of`` int (num_frames,): -1, or the frame whose output this frame repeats (written once the
    frames are painted, instead of painting it: MPEG-4 B-frames that take a served donor's rows whole).
    """
    n = cx0.shape[0]
    start = np.zeros(num_frames + 1, np.int64)  # blocks of frame f: order[start[f]:start[f + 1]]
    for i in range(n):
        start[frame[i] + 1] += 1
    for f in range(num_frames):
        start[f + 1] += start[f]
    grouped = True  # already in frame order (not so: MPEG-4 direct-mode fills come last)
    for i in range(1, n):
        if frame[i] < frame[i - 1]:
            grouped = False
            break
    order = np.empty(0, np.int64) if grouped else np.empty(n, np.int64)
    if not grouped:
        fill = start[:num_frames].copy()
        for i in range(n):
            order[fill[frame[i]]] = i
            fill[frame[i]] += 1
    acc = np.empty((3, cells_h + 1, cells_w + 1))
    grid = np.empty((2, cells_h, cells_w), np.float32)
    for f in range(num_frames):
        if copy_of[f] >= 0:  # repeats another frame's output: copied below, not written twice
            continue
        if start[f] == start[f + 1]:  # no blocks (intra): what painting gives, zeros
            out[:, f] = 0.0
            continue
        acc[:] = 0.0
        for corner in range(4):
            sign = 1.0 if corner < 2 else -1.0
            for k in range(start[f], start[f + 1]):
                i = k if grouped else order[k]
                y = cy0[i] if corner == 0 or corner == 2 else cy1[i]
                x = cx0[i] if corner == 0 or corner == 3 else cx1[i]
                acc[0, y, x] += sign
                acc[1, y, x] += sign * np.float64(vx[i])
                acc[2, y, x] += sign * np.float64(vy[i])
        for p in range(3):
            for y in range(1, cells_h + 1):
                for x in range(cells_w + 1):
                    acc[p, y, x] += acc[p, y - 1, x]
            for y in range(cells_h + 1):
                for x in range(1, cells_w + 1):
                    acc[p, y, x] += acc[p, y, x - 1]
        for y in range(cells_h):
            for x in range(cells_w):
                inv = np.rint(acc[0, y, x])
                if inv > 0:
                    inv = 1.0 / inv
                grid[0, y, x] = np.float32(acc[1, y, x] * inv)
                grid[1, y, x] = np.float32(acc[2, y, x] * inv)
        for c in range(2):
            for i in range(rows.shape[0]):
                y = rows[i]
                if i > 0 and y == rows[i - 1]:  # the row above samples the same cells: copy it
                    for j in range(cols.shape[0]):  # an explicit loop: a third faster than a slice copy
                        out[c, f, i, j] = out[c, f, i - 1, j]
                    continue
                for j in range(cols.shape[0]):
                    out[c, f, i, j] = grid[c, y, cols[j]]
    for f in range(num_frames):
        d = copy_of[f]
        if d >= 0:
            for c in range(2):
                out[c, f] = out[c, d]


def _best_two(costs, best, low, second):
    """Per row of ``costs`` float32 (s, C), C >= 1, no NaN: the column of its minimum (the first, as
    ``argmin``), that minimum and the smallest value in the other columns (inf where C = 1), into
    ``best`` intp (s,), ``low`` and ``second`` float32 (s,); the loop behind ``motion._best_two``."""
    for i in range(costs.shape[0]):
        b = 0
        lo = costs[i, 0]
        for c in range(1, costs.shape[1]):
            if costs[i, c] < lo:
                b = c
                lo = costs[i, c]
        nxt = np.float32(np.inf)
        for c in range(costs.shape[1]):
            if c != b and costs[i, c] < nxt:
                nxt = costs[i, c]
        best[i] = b
        low[i] = lo
        second[i] = nxt


def _vector_columns(rows, direction, mx, my, cx, cy, w, h):
    """FFmpeg's exported vector table (PyAV's structured AVMotionVector array, (N,)) in one pass,
    the loop behind ``motion.RawVectors.from_side_data``, with its numbers: ``direction`` int8 sign
    of ``source``; ``mx, my`` float32 ``motion / motion_scale`` (scale 0 read as 1) in float32;
    ``cx, cy, w, h`` int32 ``dst_x, dst_y, w, h``. Outputs (N,) each."""
    for i in range(rows.shape[0]):
        row = rows[i]
        scale = np.float32(row.motion_scale)
        if scale == 0:
            scale = np.float32(1.0)
        source = row.source
        direction[i] = 1 if source > 0 else (-1 if source < 0 else 0)
        mx[i] = np.float32(row.motion_x) / scale
        my[i] = np.float32(row.motion_y) / scale
        cx[i] = row.dst_x
        cy[i] = row.dst_y
        w[i] = row.w
        h[i] = row.h


def _njit():
    """numba's ``njit``, or None where the compiled loops do not run (turned off, or numba fails to load)."""
    global ENABLED
    if not ENABLED:
        return None
    try:
        from numba import njit
    except Exception as e:  # noqa: BLE001 - any failure to load numba leaves the numpy path
        log.warning("numba does not load (%s): compvid runs its numpy code instead", e)
        ENABLED = False
        return None
    return njit


def _load(name, function):
    """The compiled ``function``, or None where the compiled loops do not run."""
    loop = _compiled.get(name) if ENABLED else None
    if loop is None:
        njit = _njit()
        if njit is None:
            return None
        loop = _compiled[name] = njit(cache=True, nogil=True)(function)
    return loop


def matcher_loops():
    """The module compvid.matcher_loops (H.264 reference matching, compiled on first call of each
    loop), or None where the compiled loops do not run."""
    if _njit() is None:
        return None
    from compvid import matcher_loops

    return matcher_loops


def paint_cells():
    """The compiled :func:`_paint_cells`, or None where the compiled loops do not run."""
    return _load("paint_cells", _paint_cells)


def best_two():
    """The compiled :func:`_best_two`, or None where the compiled loops do not run."""
    return _load("best_two", _best_two)


def vector_columns():
    """The compiled :func:`_vector_columns`, or None where the compiled loops do not run."""
    return _load("vector_columns", _vector_columns)


def match_costs():
    """The compiled :func:`_match_costs`, or None where the compiled loops do not run."""
    return _load("match_costs", _match_costs)
