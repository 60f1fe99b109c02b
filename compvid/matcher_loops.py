"""H.264 reference matching as compiled loops over block rows (numba), the numbers of compvid.motion's numpy code.

Imported by compvid.kernels only once numba loads (the ``[fast]`` extra); compvid.motion runs its numpy
code otherwise. :func:`match_direction` is ``motion.match_reference_distances_frames`` for the rows of one
prediction direction, its three steps and the bookkeeping between them in one call, and
:func:`unused_list_rows` is ``motion.unused_list_rows``. Costs are integer sums of uint8 differences times
float32(1 / samples), comparisons are float32 where numpy's are (NEP 50: Python floats take the array's
float32), so both paths give the same bytes (tests/compvid/test_motion_identity.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Sample offsets inside a block as fractions of its size, per grid column (and line): motion._GRID.
_GRID = np.array([-0.375, -0.125, 0.125, 0.375])
# Samples of the cheap pass: the 4x4 grid's checkerboard half (motion._HALF), sample s = 4 * line + column.
_HALF = np.array([0, 2, 5, 7, 8, 10, 13, 15])
_ALL = np.arange(16)


@njit(cache=True, nogil=True)
def _row_grid(height, width, w, h, cx, cy, mx, my, on_field, parity, grid):
    """Where the 4x4 grid samples of one block row lie, into ``grid`` int64 (4, 4): per grid line
    (``[0]``) its clipped line * width and per grid column (``[1]``) its clipped column in the row's
    own plane; ``[2]``, ``[3]`` the same displaced by (mx, my) px and rounded half to even (onto the
    lines of field ``parity`` when ``on_field``) in a candidate plane. As ``motion._Sampler.costs``:
    float32 displacement, numpy's rounding; sample s lies on line s // 4, column s % 4."""
    for k in range(4):
        y = np.int32(np.floor(np.float64(h) * _GRID[k])) + cy
        grid[0, k] = min(max(y, 0), height - 1) * width
        ry = np.float32(y) + my
        if on_field:
            ry = 2 * np.rint((ry - parity) / 2) + parity
        else:
            ry = np.rint(ry)
        grid[2, k] = min(max(int(ry), 0), height - 1) * width
        x = np.int32(np.floor(np.float64(w) * _GRID[k])) + cx
        grid[1, k] = min(max(x, 0), width - 1)
        grid[3, k] = min(max(int(np.rint(np.float32(x) + mx)), 0), width - 1)


@njit(cache=True, nogil=True)
def _costs(flat, own, plane_size, grid, samples, planes, here, ref, out):
    """Mean abs difference float32 of the ``samples`` (indices into the 4x4 grid ``grid`` of
    :func:`_row_grid`) of a row (own plane at flat offset ``own``) against each plane of ``planes``
    (C,) into ``out`` (C,); inf where the plane is -1 (no candidate). ``here``, ``ref``: scratch (16,)."""
    num = samples.shape[0]
    for k in range(num):
        line, col = samples[k] >> 2, samples[k] & 3
        here[k] = flat[own + grid[0, line] + grid[1, col]]
        ref[k] = grid[2, line] + grid[3, col]
    scale = np.float32(1.0 / num)
    for c in range(planes.shape[0]):
        plane = planes[c]
        if plane < 0:
            out[c] = np.inf
            continue
        base = plane * plane_size
        total = 0
        for k in range(num):
            total += abs(np.int32(flat[base + ref[k]]) - here[k])
        out[c] = np.float32(total) * scale


@njit(cache=True, nogil=True)
def _best_two(costs):
    """(first column of the minimum, minimum, smallest of the other columns: inf where none) of ``costs`` (C,)."""
    best = 0
    low = costs[0]
    for c in range(1, costs.shape[0]):
        if costs[c] < low:
            best = c
            low = costs[c]
    second = np.float32(np.inf)
    for c in range(costs.shape[0]):
        if c != best and costs[c] < second:
            second = costs[c]
    return best, low, second


@njit(cache=True, nogil=True)
def match_direction(wanted, direction, mx, my, cx, cy, w, h, frame_of_row, moving_all, flat, height, width, current,
                    offsets, planes, count, field_parity, min_gap, sample_rows, distance, unsure, best_cost):
    """Reference distances of the rows of direction ``wanted`` (-1 past, +1 future): the three steps of
    ``motion.match_reference_distances_frames`` with its numbers, written into ``distance`` int32,
    ``unsure`` bool and ``best_cost`` float32 (N,) at those rows.

    Rows (N,): ``direction`` int8, ``mx, my`` float32 px (FFmpeg sense), ``cx, cy, w, h`` int32,
    ``frame_of_row`` intp (0 .. K-1), ``moving_all`` bool (at least a quarter pixel). ``flat`` uint8
    (P*H*W,): the luma planes; ``current`` intp (K,) the plane of each frame. Per frame, its candidates
    of this direction nearest first: ``offsets`` int64 (K, C) signed display offsets, ``planes`` intp
    (K, C) (-1: none), ``count`` intp (K,). ``field_parity`` float32 (N,) or empty (whole frames).
    ``min_gap`` float32 grey levels.
    """
    n_all = direction.shape[0]
    k_frames = current.shape[0]
    width_c = planes.shape[1]
    plane_size = height * width
    on_field = field_parity.shape[0] > 0
    # The rows, grouped by frame in their order (a stable counting sort).
    start = np.zeros(k_frames + 1, np.int64)
    for i in range(n_all):
        if direction[i] == wanted and count[frame_of_row[i]] > 0:
            start[frame_of_row[i] + 1] += 1
    for f in range(k_frames):
        start[f + 1] += start[f]
    n = start[k_frames]
    if n == 0:
        return
    rows = np.empty(n, np.int64)
    fill = start[:k_frames].copy()
    for i in range(n_all):
        if direction[i] == wanted and count[frame_of_row[i]] > 0:
            f = frame_of_row[i]
            rows[fill[f]] = i
            fill[f] += 1
    grid = np.empty((4, 4), np.int64)  # sample positions of the row at hand (_row_grid)
    here = np.empty(16, np.int32)  # scratch of _costs
    ref = np.empty(16, np.int64)

    # Step 1: up to sample_rows moving rows of each frame, spread evenly, try every candidate; votes
    # of clear winners elect the frame's usual candidates; the median best cost is its typical cost.
    usual = np.zeros((k_frames, width_c), np.bool_)
    usual[:, 0] = True
    typical = np.full(k_frames, np.inf, np.float32)
    costs = np.empty(width_c, np.float32)
    for f in range(k_frames):
        movers = np.empty(start[f + 1] - start[f], np.int64)
        m = 0
        for p in range(start[f], start[f + 1]):
            if moving_all[rows[p]]:
                movers[m] = p
                m += 1
        taken = min(m, sample_rows) if count[f] > 1 else 0
        if taken == 0:
            continue
        votes = np.zeros(width_c, np.int64)
        lows = np.empty(taken, np.float32)
        for j in range(taken):
            r = rows[movers[j * (m - 1) // max(taken - 1, 1)]]
            _row_grid(height, width, w[r], h[r], cx[r], cy[r], mx[r], my[r], on_field,
                      field_parity[r] if on_field else np.float32(0), grid)
            _costs(flat, current[f] * plane_size, plane_size, grid, _ALL, planes[f], here, ref, costs)
            best, low, second = _best_two(costs)
            lows[j] = low
            if width_c > 1 and second - low >= min_gap:
                votes[best] += 1
        total = votes.sum()
        if width_c > 1 and total > 0:
            for c in range(width_c):
                usual[f, c] = votes[c] >= max(1.0, 0.1 * total)
        typical[f] = np.sort(lows)[taken // 2]

    # Step 2: every row against its frame's usual candidates, on the checkerboard half of the grid.
    n_usual = usual.sum(axis=1)
    width_u = n_usual.max()
    usual_planes = np.full((k_frames, width_u), -1, np.int64)
    usual_offsets = np.zeros((k_frames, width_u), np.int64)
    for f in range(k_frames):
        u = 0
        for c in range(width_c):  # the usual candidates first, then the others (offsets only)
            if usual[f, c] and u < width_u:
                usual_planes[f, u] = planes[f, c]
                usual_offsets[f, u] = offsets[f, c]
                u += 1
        for c in range(width_c):
            if not usual[f, c] and u < width_u:
                usual_offsets[f, u] = offsets[f, c]
                u += 1
    chosen = np.empty(n, np.int32)
    cost = np.empty(n, np.float32)
    gap = np.empty(n, np.float32)
    costs_u = np.empty(width_u, np.float32)
    poor_factor, poor_margin = np.float32(2.0), np.float32(4.0)
    for p in range(n):
        r = rows[p]
        f = frame_of_row[r]
        own = current[f] * plane_size
        _row_grid(height, width, w[r], h[r], cx[r], cy[r], mx[r], my[r], on_field,
                  field_parity[r] if on_field else np.float32(0), grid)
        _costs(flat, own, plane_size, grid, _HALF, usual_planes[f], here, ref, costs_u)
        best, low, second = _best_two(costs_u)
        chosen[p] = abs(usual_offsets[f, best])
        cost[p] = low
        gap[p] = second - low if width_u > 1 else np.float32(np.inf)
        # Step 3: a poor match tries every candidate on the full grid.
        if moving_all[r] and low > poor_factor * typical[f] + poor_margin and count[f] > n_usual[f]:
            _costs(flat, own, plane_size, grid, _ALL, planes[f], here, ref, costs)
            best, low, second = _best_two(costs)
            chosen[p] = abs(offsets[f, best])
            cost[p] = low
            gap[p] = second - low if width_c > 1 else np.float32(np.inf)

    # Rows whose best two candidates are closer than min_gap take their frame's most common confident distance.
    any_doubt = False
    any_confident = False
    span = 0
    for p in range(n):
        if moving_all[rows[p]]:
            if gap[p] < min_gap:
                any_doubt = True
            else:
                any_confident = True
        span = max(span, chosen[p] + 1)
    if any_doubt and any_confident:
        tally = np.zeros((k_frames, span), np.int64)
        for p in range(n):
            r = rows[p]
            if moving_all[r] and not gap[p] < min_gap:
                tally[frame_of_row[r], chosen[p]] += 1
        for p in range(n):
            r = rows[p]
            f = frame_of_row[r]
            if moving_all[r] and gap[p] < min_gap and tally[f].sum() > 0:
                chosen[p] = np.argmax(tally[f])
    for p in range(n):
        r = rows[p]
        distance[r] = chosen[p]
        unsure[r] = moving_all[r] and gap[p] < min_gap
        best_cost[r] = cost[p]


@njit(cache=True, nogil=True)
def unused_list_rows(direction, cx, cy, w, h, frame, cost, ratio, margin, drop):
    """``motion.unused_list_rows`` in one pass: ``drop`` bool (N,) set where a block's row for one list
    matches more than ``ratio`` (float32) times worse, plus ``margin`` (float32), than its partner's.

    numpy sorts the rows by (block, future?) stably and pairs a past row with the future row right
    after it: per block, its last row that is not future (when past) with its first future row. Those
    two are found here with a hash table of block keys (numpy's keys: frame, centre, size), O(N).
    Inputs (N,): ``direction`` int8, ``cx, cy, w, h`` int32, ``frame`` int64, ``cost`` float32.
    """
    n = direction.shape[0]
    size = 1
    while size < 2 * n:
        size *= 2
    keys = np.empty(size, np.int64)
    used = np.zeros(size, np.bool_)
    last_other = np.full(size, -1, np.int64)  # per block: its last row that is not future
    first_future = np.full(size, -1, np.int64)  # per block: its first future row
    for i in range(n):
        key = ((((frame[i] << 16) | (np.int64(cx[i]) & 0xFFFF)) << 16 | (np.int64(cy[i]) & 0xFFFF)) << 16
               | ((np.int64(w[i]) & 0xFF) << 8) | (np.int64(h[i]) & 0xFF))
        slot = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & (size - 1)
        while used[slot] and keys[slot] != key:
            slot = (slot + 1) & (size - 1)
        used[slot] = True
        keys[slot] = key
        if direction[i] > 0:
            if first_future[slot] < 0:
                first_future[slot] = i
        else:
            last_other[slot] = i
    for slot in range(size):
        a, b = last_other[slot], first_future[slot]
        if a >= 0 and b >= 0 and direction[a] < 0:
            if cost[a] > ratio * cost[b] + margin:
                drop[a] = True
            if cost[b] > ratio * cost[a] + margin:
                drop[b] = True
