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
from numba import carray, njit, types
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic

# Rows ahead whose sample lines are prefetched. The planes of a clip (80 x 174 KB at 640x272) were
# written by the decoder long before matching and sit in L3 or memory; a row's samples are loads
# of 4 lines in its own plane and in each candidate's, too few per row for the CPU to overlap the
# misses by itself. 32 rows measured best of 4-128 (bench/bench_decode.py's real H.264 clip).
AHEAD = 32
# The prefetch intrinsic's name, mangled on its pointer type: opaque ``ptr`` from LLVM 15 on, ``i8*``
# before (LLVM also re-mangles a name whose suffix does not fit, as its IR upgrader does).
_PREFETCH = "llvm.prefetch.p0" if llvm_binding.llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, array, index):
    """A read prefetch (into all cache levels) of ``array[index]``, 1-D: a hint, never a fault."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [args[1]], wraparound=False)
        byte_ptr, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]),
                                            _PREFETCH)
        # (address, 0 = read, 3 = keep in all levels, 1 = data cache)
        builder.call(fn, [builder.bitcast(ptr, byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def _pointer(typingctx, address):
    """An int64 memory address as a void pointer (for ``numba.carray``)."""
    if not isinstance(address, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


# Sample offsets inside a block: motion._GRID, the fractions (2k - 3) / 8 of its size for grid column
# (and line) k = 0..3, so floor(size * _GRID[k]) is (size * (2k - 3)) >> 3 in integers (_row_grid).
# Samples, s = 4 * line + column: all 16, and the half the cheap pass (motion._HALF, :func:`_cost_half`)
# leaves out, read for its poor matches.
_ALL = np.arange(16)
_OTHER_HALF = np.array([1, 3, 4, 6, 9, 11, 12, 14])


def plane_addresses(planes):
    """(addresses int64 (P,), line stride, copies): where the uint8 (H, W) luma planes ``planes`` lie,
    for :func:`match_direction`, which reads plane p's sample (y, x) at ``addresses[p] + line * y + x``.
    The planes themselves (views of the decoded frames, no copy) when all share one line stride and
    their columns are adjacent bytes, as decoded frames do; else contiguous copies (line stride W),
    returned in ``copies``: the caller keeps them (and ``planes``) alive while the matcher runs."""
    first = planes[0]
    line = first.strides[0]
    copies = []
    if not (line >= first.shape[1] and all(p.strides == (line, 1) and p.shape == first.shape for p in planes)):
        line = first.shape[1]
        planes = copies = [np.ascontiguousarray(p) for p in planes]
    addresses = np.fromiter((p.__array_interface__["data"][0] for p in planes), np.int64, len(planes))
    return addresses, line, copies


@njit(cache=True, nogil=True, inline="always")
def _plane(addresses, p, height, width, line):
    """Plane ``p`` as a 1-D uint8 array: its bytes from the first sample to the last, padding between
    lines included (:func:`plane_addresses`)."""
    return carray(_pointer(addresses[p]), (height - 1) * line + width, np.uint8)


@njit(cache=True, nogil=True)
def _row_grid(height, width, line, w, h, cx, cy, mx, my, on_field, parity, grid):
    """Where the 4x4 grid samples of one block row lie, into ``grid`` int64 (4, 4): per grid line
    (``[0]``) its clipped line times the line stride ``line`` and per grid column (``[1]``) its
    clipped column in the row's own plane; ``[2]``, ``[3]`` the same displaced by (mx, my) px and
    rounded half to even (onto the lines of field ``parity`` when ``on_field``) in a candidate
    plane: sample (a, b) lies at ``grid[0, a] + grid[1, b]`` in its own plane, ``grid[2, a] +
    grid[3, b]`` in a candidate's. As ``motion._Sampler.costs``: float32 displacement, numpy's
    rounding; sample s lies on line s // 4, column s % 4."""
    for k in range(4):
        y = np.int32((h * (2 * k - 3)) >> 3) + cy
        grid[0, k] = min(max(y, 0), height - 1) * line
        ry = np.float32(y) + my
        if on_field:
            ry = 2 * np.rint((ry - parity) / 2) + parity
        else:
            ry = np.rint(ry)
        grid[2, k] = min(max(int(ry), 0), height - 1) * line
        x = np.int32((w * (2 * k - 3)) >> 3) + cx
        grid[1, k] = min(max(x, 0), width - 1)
        grid[3, k] = min(max(int(np.rint(np.float32(x) + mx)), 0), width - 1)


@njit(cache=True, nogil=True)
def _here(own, grid, samples, here):
    """Grey levels of the ``samples`` (indices s into the 4x4 grid of :func:`_row_grid`) in the
    row's own plane ``own`` into ``here[s]``."""
    for k in range(samples.shape[0]):
        s = samples[k]
        here[s] = own[grid[0, s >> 2] + grid[1, s & 3]]


@njit(cache=True, nogil=True, inline="always")
def _term(plane, grid, here, a, b):
    """|difference| of sample (line a, column b) between ``plane`` (displaced) and ``here``, int."""
    return abs(np.int32(plane[grid[2, a] + grid[3, b]]) - np.int32(here[4 * a + b]))


@njit(cache=True, nogil=True, inline="always")
def _cost_half(plane, grid, here):
    """Mean abs difference float32 between the row's ``here`` and its displaced samples in ``plane``
    on the 4x4 grid's checkerboard half (motion._HALF), unrolled: samples (line, column) (0,0) (0,2)
    (1,1) (1,3) (2,0) (2,2) (3,1) (3,3). An integer sum of grey levels times float32(1 / 8), as
    numpy sums uint16 and scales."""
    total = (_term(plane, grid, here, 0, 0) + _term(plane, grid, here, 0, 2) + _term(plane, grid, here, 1, 1)
             + _term(plane, grid, here, 1, 3) + _term(plane, grid, here, 2, 0) + _term(plane, grid, here, 2, 2)
             + _term(plane, grid, here, 3, 1) + _term(plane, grid, here, 3, 3))
    return np.float32(total) * np.float32(1.0 / 8)


@njit(cache=True, nogil=True, inline="always")
def _cost_all(plane, grid, here):
    """:func:`_cost_half` on all 16 samples: times float32(1 / 16)."""
    total = 0
    for a in range(4):
        for b in range(4):
            total += _term(plane, grid, here, a, b)
    return np.float32(total) * np.float32(1.0 / 16)


@njit(cache=True, nogil=True, inline="always")
def _here_half(own, grid, here):
    """:func:`_here` on the cheap pass's half (:func:`_cost_half`): on line a, columns a & 1 and (a & 1) + 2."""
    for a in range(4):
        la = grid[0, a]
        b = a & 1
        here[4 * a + b] = own[la + grid[1, b]]
        here[4 * a + b + 2] = own[la + grid[1, b + 2]]


@njit(cache=True, nogil=True, inline="always")
def _prefetch_lines(plane, grid, lines, columns):
    """Prefetch the 4 sample lines of a row in ``plane``: own (``lines, columns`` = 0, 1) or displaced
    (2, 3) positions of :func:`_row_grid`'s ``grid``; first and last column (a line's 4 samples span
    at most 12 px, one or two cache lines)."""
    for a in range(4):
        prefetch(plane, grid[lines, a] + grid[columns, 0])
        prefetch(plane, grid[lines, a] + grid[columns, 3])


@njit(cache=True, nogil=True)
def _best_two(costs):
    """(first column of the minimum, minimum, smallest of the other columns: inf where none) of ``costs`` (C,);
    (0, inf, inf) without columns, as numpy's argmin over columns that are all inf."""
    if costs.shape[0] == 0:
        return 0, np.float32(np.inf), np.float32(np.inf)
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
def match_direction(wanted, direction, mx, my, cx, cy, w, h, frame_of_row, moving_all, addresses, current,
                    offsets, planes, count, field_parity, min_gap, sample_rows, distance, unsure, best_cost,
                    height, width, line):
    """Reference distances of the rows of direction ``wanted`` (-1 past, +1 future): the three steps of
    ``motion.match_reference_distances_frames`` with its numbers, written into ``distance`` int32,
    ``unsure`` bool and ``best_cost`` float32 (N,) at those rows.

    Rows (N,): ``direction`` int8, ``mx, my`` float32 px (FFmpeg sense), ``cx, cy, w, h`` int32,
    ``frame_of_row`` intp (0 .. K-1), ``moving_all`` bool (at least a quarter pixel). ``addresses``:
    int64 (P,) where the uint8 luma planes of ``height`` x ``width`` px lie, lines ``line`` bytes
    apart (:func:`plane_addresses`); ``current`` intp (K,) the plane of
    each frame. Per frame, its candidates of this direction nearest first: ``offsets`` int64 (K, C)
    signed display offsets, ``planes`` intp (K, C) (-1: none), ``count`` intp (K,). ``field_parity``
    float32 (N,) or empty (whole frames). ``min_gap`` float32 grey levels.

    Frame by frame, candidate plane by candidate plane (each plane is read while it is in cache), the
    sample lines of the row ``AHEAD`` rows on prefetched.
    numpy's steps mix frames only in the last one, whose "any doubtful row and any confident row"
    comes to the same as a frame's own tally being non-empty.
    """
    n_all = direction.shape[0]
    k_frames = current.shape[0]
    width_c = planes.shape[1]
    on_field = field_parity.shape[0] > 0
    # The rows, grouped by frame in their order (a stable counting sort).
    start = np.zeros(k_frames + 1, np.int64)
    for i in range(n_all):
        if direction[i] == wanted and count[frame_of_row[i]] > 0:
            start[frame_of_row[i] + 1] += 1
    most = 0
    for f in range(k_frames):
        most = max(most, start[f + 1])
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
    # Scratch of one frame's rows: sample positions (_row_grid) and grey levels in their own plane.
    grid = np.empty((most, 4, 4), np.int64)
    here = np.empty((most, 16), np.uint8)

    costs_u = np.empty((most, width_c), np.float32)
    costs_c = np.empty((most, width_c), np.float32)
    usual = np.empty(width_c, np.bool_)
    usual_planes = np.empty(width_c, np.int64)
    usual_offsets = np.empty(width_c, np.int64)
    poor = np.empty(most, np.int64)
    chosen = np.empty(most, np.int32)
    cost = np.empty(most, np.float32)
    gap = np.empty(most, np.float32)
    poor_factor, poor_margin = np.float32(2.0), np.float32(4.0)
    for f in range(k_frames):
        first, nf = start[f], start[f + 1] - start[f]
        if nf == 0:
            continue
        own = _plane(addresses, current[f], height, width, line)
        # Step 1: up to sample_rows moving rows, spread evenly, try every candidate; votes of clear
        # winners elect the frame's usual candidates; the median best cost is its typical cost.
        typical = _elect(rows[first:first + nf], moving_all, w, h, cx, cy, mx, my, field_parity, on_field, addresses,
                         height, width, line, own, planes[f], count[f], min_gap, sample_rows, usual)
        # The usual candidates first (their planes and offsets); numpy's further columns, past the
        # usual ones of this frame, hold no plane: they change no minimum and no runner-up.
        n_usual = 0
        for c in range(width_c):
            if usual[c]:
                usual_planes[n_usual] = planes[f, c]
                usual_offsets[n_usual] = offsets[f, c]
                n_usual += 1
        if n_usual == 0:  # votes too spread to elect any (over ten candidates): numpy's rows score inf
            usual_offsets[0] = offsets[f, 0]  # and take its first column, until step 3
        for q in range(nf):
            r = rows[first + q]
            _row_grid(height, width, line, w[r], h[r], cx[r], cy[r], mx[r], my[r], on_field,
                      field_parity[r] if on_field else np.float32(0), grid[q])
        for q in range(nf):  # grey levels of the rows in their own plane, AHEAD rows' lines prefetched
            if q + AHEAD < nf:
                _prefetch_lines(own, grid[q + AHEAD], 0, 1)
            _here_half(own, grid[q], here[q])
        # Step 2: every row against the frame's usual candidates, on the checkerboard half of the grid.
        for u in range(n_usual):
            plane = _plane(addresses, usual_planes[u], height, width, line)
            for q in range(nf):
                if q + AHEAD < nf:
                    _prefetch_lines(plane, grid[q + AHEAD], 2, 3)
                costs_u[q, u] = _cost_half(plane, grid[q], here[q])
        n_poor = 0
        for q in range(nf):
            r = rows[first + q]
            best, low, second = _best_two(costs_u[q, :n_usual])
            chosen[q] = abs(usual_offsets[best])
            cost[q] = low
            gap[q] = second - low
            if moving_all[r] and low > poor_factor * typical + poor_margin and count[f] > n_usual:
                poor[n_poor] = q
                n_poor += 1
        # Step 3: poor matches try every candidate on the full grid.
        if n_poor:
            for k in range(n_poor):
                q = poor[k]
                _here(own, grid[q], _OTHER_HALF, here[q])
            for c in range(width_c):
                if planes[f, c] < 0:
                    costs_c[:n_poor, c] = np.inf
                    continue
                plane = _plane(addresses, planes[f, c], height, width, line)
                for k in range(n_poor):
                    if k + AHEAD < n_poor:
                        _prefetch_lines(plane, grid[poor[k + AHEAD]], 2, 3)
                    q = poor[k]
                    costs_c[k, c] = _cost_all(plane, grid[q], here[q])
            for k in range(n_poor):
                q = poor[k]
                best, low, second = _best_two(costs_c[k])
                chosen[q] = abs(offsets[f, best])
                cost[q] = low
                gap[q] = second - low
        # Rows whose best two candidates are closer than min_gap take the frame's most common
        # confident distance, where it has confident rows.
        span = 0
        for q in range(nf):
            span = max(span, chosen[q] + 1)
        tally = np.zeros(span, np.int64)
        for q in range(nf):
            if moving_all[rows[first + q]] and not gap[q] < min_gap:
                tally[chosen[q]] += 1
        common = np.argmax(tally) if tally.sum() > 0 else -1
        for q in range(nf):
            r = rows[first + q]
            doubt = moving_all[r] and gap[q] < min_gap
            distance[r] = common if doubt and common >= 0 else chosen[q]
            unsure[r] = doubt
            best_cost[r] = cost[q]


@njit(cache=True, nogil=True)
def _elect(rows, moving_all, w, h, cx, cy, mx, my, field_parity, on_field, addresses, height, width, line, own, planes,
           count, min_gap, sample_rows, usual):
    """Step 1 of one frame: its usual candidates into ``usual`` bool (C,) and its typical cost (the
    median best cost of the sample; inf without one). ``rows``: the frame's rows; ``planes`` (C,)
    and ``count``: its candidates (-1: none)."""
    width_c = planes.shape[0]
    usual[:] = False
    usual[0] = True  # no sample: the nearest candidate
    movers = np.empty(rows.shape[0], np.int64)
    m = 0
    for r in rows:
        if moving_all[r]:
            movers[m] = r
            m += 1
    taken = min(m, sample_rows) if count > 1 else 0
    if taken == 0:
        return np.float32(np.inf)
    sample_grid = np.empty((taken, 4, 4), np.int64)
    sample_here = np.empty((taken, 16), np.uint8)
    for j in range(taken):
        r = movers[j * (m - 1) // max(taken - 1, 1)]
        _row_grid(height, width, line, w[r], h[r], cx[r], cy[r], mx[r], my[r], on_field,
                  field_parity[r] if on_field else np.float32(0), sample_grid[j])
        _prefetch_lines(own, sample_grid[j], 0, 1)
    # The sample's lines in every candidate plane asked for at once (32 rows x C planes x 4 lines,
    # far apart: nearly all misses), then read.
    for c in range(width_c):
        if planes[c] >= 0:
            plane = _plane(addresses, planes[c], height, width, line)
            for j in range(taken):
                _prefetch_lines(plane, sample_grid[j], 2, 3)
    for j in range(taken):
        _here(own, sample_grid[j], _ALL, sample_here[j])
    costs = np.full((taken, width_c), np.inf, np.float32)
    for c in range(width_c):
        if planes[c] >= 0:
            plane = _plane(addresses, planes[c], height, width, line)
            for j in range(taken):
                costs[j, c] = _cost_all(plane, sample_grid[j], sample_here[j])
    votes = np.zeros(width_c, np.int64)
    lows = np.empty(taken, np.float32)
    for j in range(taken):
        best, low, second = _best_two(costs[j])
        lows[j] = low
        if second - low >= min_gap:
            votes[best] += 1
    total = votes.sum()
    if total > 0:
        for c in range(width_c):
            usual[c] = votes[c] >= max(1.0, 0.1 * total)
    return np.sort(lows)[taken // 2]


@njit(cache=True, nogil=True)
def _block_key(frame, cx, cy, w, h):
    """numpy's int64 key of a block (``motion.unused_list_rows``): frame, centre (FFmpeg's int16), size (uint8)."""
    return ((((frame << 16) | (np.int64(cx) & 0xFFFF)) << 16 | (np.int64(cy) & 0xFFFF)) << 16
            | ((np.int64(w) & 0xFF) << 8) | (np.int64(h) & 0xFF))


@njit(cache=True, nogil=True)
def _slot(keys, used, key, size):
    """The slot of ``key`` in an open-addressing table of ``size`` (a power of two) slots: where it
    is, or the first unused slot along its probe sequence."""
    slot = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & (size - 1)
    while used[slot] and keys[slot] != key:
        slot = (slot + 1) & (size - 1)
    return slot


@njit(cache=True, nogil=True)
def unused_list_rows(direction, cx, cy, w, h, frame, cost, ratio, margin, drop):
    """``motion.unused_list_rows`` in one pass: ``drop`` bool (N,) set where a block's row for one list
    matches more than ``ratio`` (float32) times worse, plus ``margin`` (float32), than its partner's.

    numpy sorts the rows by (block, future?) stably and pairs a past row with the future row right
    after it: per block, its last row that is not future (when past) with its first future row. Those
    two are found here with a hash table of block keys (numpy's keys), O(N). Rows grouped by frame
    (as decode_clip passes them) go one frame at a time through a small table that stays in cache;
    otherwise all at once. Inputs (N,): ``direction`` int8, ``cx, cy, w, h`` int32, ``frame``
    int64, ``cost`` float32.
    """
    n = direction.shape[0]
    grouped = True
    longest, run = 0, 0
    for i in range(n):
        run = run + 1 if i > 0 and frame[i] == frame[i - 1] else 1
        longest = max(longest, run)
        if i > 0 and frame[i] < frame[i - 1]:
            grouped = False
    if not grouped:
        longest = n
    size = 1
    while size < 2 * longest:
        size *= 2
    keys = np.empty(size, np.int64)
    used = np.zeros(size, np.bool_)
    last_other = np.empty(size, np.int64)  # per block: its last row that is not future (-1: none)
    first_future = np.empty(size, np.int64)  # per block: its first future row (-1: none)
    slot_of = np.empty(longest, np.int64)  # slot of each row of the frame at hand
    begin = 0
    while begin < n:
        end = begin + 1
        while end < n and (not grouped or frame[end] == frame[begin]):
            end += 1
        for i in range(begin, end):
            key = _block_key(frame[i], cx[i], cy[i], w[i], h[i])
            slot = slot_of[i - begin] = _slot(keys, used, key, size)
            if not used[slot]:
                used[slot] = True
                keys[slot] = key
                last_other[slot] = -1
                first_future[slot] = -1
            if direction[i] > 0:
                if first_future[slot] < 0:
                    first_future[slot] = i
            else:
                last_other[slot] = i
        for i in range(begin, end):
            slot = slot_of[i - begin]
            a, b = last_other[slot], first_future[slot]
            if b == i and a >= 0 and direction[a] < 0:  # each pair once, at its future row
                if cost[a] > ratio * cost[b] + margin:
                    drop[a] = True
                if cost[b] > ratio * cost[a] + margin:
                    drop[b] = True
        for i in range(begin, end):  # an empty table for the next frame
            used[slot_of[i - begin]] = False
        begin = end
