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


def shifted_planes(rng, height, width, shifts):
    """Luma planes: one texture, plane f shifted by shifts[f] = (sx, sy) (content moves +s)."""
    big = rng.integers(0, 256, (height + 64, width + 64), dtype=np.uint8)
    big = ((big.astype(np.int32) + np.roll(big, 1, 0) + np.roll(big, 1, 1)) // 3).astype(np.uint8)
    return np.stack([big[32 - sy: 32 - sy + height, 32 - sx: 32 - sx + width] for sx, sy in shifts])


def test_matcher_finds_the_reference_distance_per_row():
    # Content moves (+2, -1) px per frame; plane f holds display frame f. The
    # current frame is 6; rows point 1, 2 or 3 frames back or 1 ahead.
    from compvid.motion import match_reference_distances

    rng = np.random.default_rng(7)
    planes = shifted_planes(rng, 96, 128, [(2 * f, -f) for f in range(8)])
    n = 48
    cx = np.tile(np.arange(24, 120, 16), 8)[:n].astype(np.int32)
    cy = np.repeat(np.arange(24, 88, 8), 6)[:n].astype(np.int32)
    offset = rng.choice([-1, -2, -3, 1], n, p=[0.6, 0.2, 0.1, 0.1])  # signed offset of each row's reference
    direction = np.sign(offset).astype(np.int8)
    # FFmpeg sense, src = dst + m: the content at dst sat at dst - (2, -1) * d
    # in a reference d frames back, and will be at dst + (2, -1) * d one ahead.
    mx, my = (2.0 * offset).astype(np.float32), (-1.0 * offset).astype(np.float32)
    v = RawVectors(direction=direction, mx=mx, my=my, cx=cx, cy=cy, w=np.full(n, 16, np.int32),
                   h=np.full(n, 16, np.int32))
    candidates = {o: 6 + o for o in (-6, -5, -4, -3, -2, -1, 1)}
    distance, unsure, cost = match_reference_distances(v, planes, 6, candidates)
    np.testing.assert_array_equal(distance, np.abs(offset))
    assert not unsure.any() and np.all(cost < 1.0)


def test_matcher_over_many_frames_equals_one_frame_at_a_time():
    from compvid.motion import match_reference_distances, match_reference_distances_frames

    rng = np.random.default_rng(11)
    planes = shifted_planes(rng, 64, 96, [(f, f) for f in range(10)])
    frames, batch, owner = [], [], []
    for k, current in enumerate((3, 5, 8)):
        n = 30 + 7 * k
        d = rng.integers(1, 4, n) * rng.choice([-1, 1], n, p=[0.7, 0.3])
        v = RawVectors(direction=np.sign(d).astype(np.int8),
                       mx=(-np.abs(d) * np.sign(d)).astype(np.float32) * (np.sign(d) < 0)
                       + (np.abs(d) * (np.sign(d) > 0)).astype(np.float32),
                       my=rng.normal(0, 2, n).astype(np.float32),
                       cx=rng.integers(0, 96, n).astype(np.int32), cy=rng.integers(0, 64, n).astype(np.int32),
                       w=rng.choice([8, 16], n).astype(np.int32), h=rng.choice([8, 16], n).astype(np.int32))
        cands = {o: current + o for o in range(-3, 3) if o and 0 <= current + o < 10}
        frames.append((v, current, cands))
        batch.append(v)
        owner.append(np.full(n, k))
    joined = RawVectors(*(np.concatenate([getattr(b, f) for b in batch])
                          for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
    got = match_reference_distances_frames(joined, np.concatenate(owner), planes,
                                           np.array([c for _, c, _ in frames]), [c for _, _, c in frames])
    want = [np.concatenate(x) for x in zip(*(match_reference_distances(v, planes, c, cd) for v, c, cd in frames))]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_unused_list_rows_keeps_frames_apart():
    # The same block position in two frames is not a pair.
    v = RawVectors(
        direction=np.array([-1, 1], np.int8), mx=np.zeros(2, np.float32), my=np.zeros(2, np.float32),
        cx=np.full(2, 8, np.int32), cy=np.full(2, 8, np.int32), w=np.full(2, 16, np.int32), h=np.full(2, 16, np.int32),
    )
    cost = np.array([2.0, 40.0], np.float32)
    assert unused_list_rows(v, cost).tolist() == [False, True]
    assert not unused_list_rows(v, cost, frame_of_row=np.array([0, 1])).any()


def test_field_hypothesis_doubles_the_vertical_motion_of_field_rows_only():
    # Content moves (+2, -4) px per frame; frame 6's rows point 1 or 2 frames back. Half of the
    # rows are "field macroblocks" exported with my in field lines (half the frame rows).
    from compvid.motion import match_reference_distances_frames, match_with_field_hypothesis

    rng = np.random.default_rng(3)
    planes = shifted_planes(rng, 176, 160, [(2 * f, -4 * f) for f in range(8)])  # field samples span 32 rows
    n = 40
    cx = np.tile(np.arange(24, 152, 16), 5)[:n].astype(np.int32)
    cy = np.repeat(np.arange(40, 120, 16), 8)[:n].astype(np.int32)
    d = rng.choice([1, 2], n)
    field = np.arange(n) % 2 == 1
    mx = (-2.0 * d).astype(np.float32)
    my = (4.0 * d / np.where(field, 2, 1)).astype(np.float32)  # FFmpeg sense, src = dst + m
    v = RawVectors(direction=np.full(n, -1, np.int8), mx=mx, my=my, cx=cx, cy=cy,
                   w=np.full(n, 16, np.int32), h=np.full(n, 16, np.int32))
    candidates = [{o: 6 + o for o in (-3, -2, -1)}]
    frame_of_row = np.zeros(n, np.intp)
    fixed, distance, unsure, cost = match_with_field_hypothesis(
        v, frame_of_row, planes, np.array([6]), candidates, np.ones(n, bool))  # every row may be a field row
    np.testing.assert_array_equal(fixed.my, 4.0 * d)  # field rows doubled, frame rows kept
    np.testing.assert_array_equal(distance, d)
    assert np.all(cost < 1.0)
    # No field rows: exactly the plain matcher.
    got = match_with_field_hypothesis(v, frame_of_row, planes, np.array([6]), candidates, np.zeros(n, bool))
    for g, w in zip(got[1:], match_reference_distances_frames(v, frame_of_row, planes, np.array([6]), candidates)):
        np.testing.assert_array_equal(g, w)
    assert got[0] is v


def test_field_hypothesis_reads_predictions_from_either_field():
    # Interlaced planes, top field first: content moves (0, -6) px per frame, -3 rows per field.
    # Frame 3's field macroblocks predict from frame 2's fields; FFmpeg exports my in field lines.
    # Top MB (time 3) from the bottom field (time 2.5): 3 rows in half a frame, my = (3 - 1) / 2;
    # from the top field (time 2): 6 rows, my = 3. Bottom MB (time 3.5) from the top field (2):
    # 9 rows in 1.5 frames, my = (9 + 1) / 2; from the bottom field: my = 3. Every one is -6 px/frame.
    from compvid.motion import match_with_field_hypothesis

    rng = np.random.default_rng(5)
    fields = shifted_planes(rng, 192, 128, [(0, -3 * k) for k in range(8)])  # one texture per field time
    planes = fields[0::2].copy()
    planes[:, 1::2] = fields[1::2, 1::2]  # bottom field half a frame later
    cases = [  # (macroblock row, exported my, frame rows, distance)
        (4, 1.0, 3.0, 0.5), (4, 3.0, 6.0, 1.0), (5, 5.0, 9.0, 1.5), (5, 3.0, 6.0, 1.0)]
    n = 6 * len(cases)
    mb_row = np.repeat([c[0] for c in cases], 6)
    my = np.repeat([c[1] for c in cases], 6).astype(np.float32)
    cx = np.tile(np.arange(16, 112, 16) + 8, len(cases)).astype(np.int32)
    v = RawVectors(direction=np.full(n, -1, np.int8), mx=np.zeros(n, np.float32), my=my, cx=cx,
                   cy=(mb_row * 16 + 8).astype(np.int32), w=np.full(n, 16, np.int32), h=np.full(n, 16, np.int32))
    fixed, distance, unsure, cost = match_with_field_hypothesis(
        v, np.zeros(n, np.intp), planes, np.array([3]), [{o: 3 + o for o in (-3, -2, -1)}], np.ones(n, bool))
    np.testing.assert_array_equal(fixed.my, np.repeat([c[2] for c in cases], 6))
    np.testing.assert_array_equal(distance, np.repeat([c[3] for c in cases], 6))
    motion = fixed.normalise(distance, unsure)
    np.testing.assert_allclose(motion.dy, -6.0)  # forward displacement per frame step
    assert np.all(cost < 1.0)


def random_vector_table(rng, n):
    """A structured array with PyAV's AVMotionVector dtype: random signs, sizes, centres, motion and scales
    (a tenth of the vertical motion beyond float32's 24 bits)."""
    dtype = np.dtype([("source", "int32"), ("w", "uint8"), ("h", "uint8"), ("src_x", "int16"), ("src_y", "int16"),
                      ("dst_x", "int16"), ("dst_y", "int16"), ("flags", "uint64"), ("motion_x", "int32"),
                      ("motion_y", "int32"), ("motion_scale", "uint16")], align=True)  # PyAV's AVMotionVector
    rows = np.zeros(n, dtype)
    rows["source"] = rng.integers(-3, 4, n)
    rows["w"], rows["h"] = rng.choice([4, 8, 16], n), rng.choice([4, 8, 16], n)
    rows["dst_x"], rows["dst_y"] = rng.integers(-40, 2000, n), rng.integers(-40, 2000, n)
    rows["motion_x"] = rng.integers(-600, 600, n)
    rows["motion_y"] = np.where(rng.random(n) < 0.1, rng.integers(-2**31, 2**31 - 1, n), rng.integers(-600, 600, n))
    rows["motion_scale"] = rng.choice([0, 1, 2, 4, 8], n)
    return rows


@pytest.mark.parametrize("compiled", [False, True])
def test_several_vector_tables_read_as_the_joined_table(monkeypatch, compiled):
    """RawVectors.from_tables (each table read into its stretch of the columns) gives the bytes of
    from_side_data on the joined table, numpy's reading of it the reference; read-only tables as
    decode_clip gets them from PyAV (np.frombuffer), empty ones and one of another dtype too."""
    from compvid import kernels
    from compvid.block_rows import join_tables

    if compiled and not kernels.ENABLED:
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    rng = np.random.default_rng(5)
    tables = [random_vector_table(rng, n) for n in (300, 0, 1, 57, 1000)]
    read_only = [np.frombuffer(t.tobytes(), t.dtype) for t in tables]
    aligned = tables[3].dtype
    packed = np.zeros(len(tables[3]), [(f, aligned.fields[f][0]) for f in aligned.names])  # no alignment padding
    for f in aligned.names:
        packed[f] = tables[3][f]
    fields = ("direction", "mx", "my", "cx", "cy", "w", "h")
    for case in (tables, read_only, [tables[0]], tables[:3] + [packed]):
        monkeypatch.setattr(kernels, "ENABLED", False)
        want = RawVectors.from_side_data(np.concatenate([np.asarray(t.tolist(), tables[0].dtype) for t in case]))
        assert want.mx.tobytes() == RawVectors.from_side_data(join_tables(list(case))).mx.tobytes()
        monkeypatch.setattr(kernels, "ENABLED", compiled)
        got = RawVectors.from_tables(case)
        for field in fields:
            assert getattr(got, field).dtype == getattr(want, field).dtype
            assert getattr(got, field).tobytes() == getattr(want, field).tobytes(), field


@pytest.mark.parametrize("compiled", [False, True])
def test_vector_tables_read_the_same_compiled_and_in_numpy(monkeypatch, compiled):
    """RawVectors.from_side_data: the compiled one-pass reading gives numpy's casts bit for bit
    (motion beyond float32's 24 bits rounds alike, scale 0 reads as 1, source sign), and both are
    the obvious per-row reading."""
    from compvid import kernels

    if compiled and not kernels.ENABLED:
        pytest.skip("numba is not installed (pip install -e '.[fast]')")
    monkeypatch.setattr(kernels, "ENABLED", compiled)
    n = 500
    rows = random_vector_table(np.random.default_rng(3), n)
    got = RawVectors.from_side_data(rows)
    for i in range(n):
        scale = np.float32(rows["motion_scale"][i] or 1)
        assert got.direction[i] == np.sign(rows["source"][i])
        assert got.mx[i] == np.float32(rows["motion_x"][i]) / scale
        assert got.my[i] == np.float32(rows["motion_y"][i]) / scale
        assert (got.cx[i], got.cy[i], got.w[i], got.h[i]) == tuple(rows[f][i] for f in ("dst_x", "dst_y", "w", "h"))
    for field, dtype_want in zip(("direction", "mx", "my", "cx", "cy", "w", "h"),
                                 (np.int8, np.float32, np.float32, np.int32, np.int32, np.int32, np.int32)):
        assert getattr(got, field).dtype == dtype_want
    monkeypatch.setattr(kernels, "ENABLED", False)
    numpy_reading = RawVectors.from_side_data(rows)
    for field in ("direction", "mx", "my", "cx", "cy", "w", "h"):
        assert getattr(got, field).tobytes() == getattr(numpy_reading, field).tobytes()
