"""compvid.estimate: motion estimated with FFmpeg's mestimate, checked against known motion.

Ground truth recipe: a smooth random texture (white noise low-passed with a
Gaussian of sigma 0.04 cycles/pixel, seed 0), frame t = the texture shifted so
that content moves by +d = (dx, dy) pixels per frame. Encoded at 160x128,
24 frames, 25 fps, yuv420p with libx265 (defaults, mp4), libvpx-vp9
(deadline=realtime, cpu-used=8, webm) and libsvtav1 (preset 10, mp4), decoded
with PyAV (one thread), pushed through MotionEstimator in display order.
"""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from compvid.errors import CompvidError, InvalidArgumentError, UnsupportedVideoError
from compvid.estimate import METHODS, MotionEstimator
from compvid.motion import BlockMotion

H, W, T = 128, 160, 24
D = (3, -2)


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((h, w))
    f = np.fft.rfft2(noise)
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    f *= np.exp(-(kx**2 + ky**2) / (2 * 0.04**2))
    s = np.fft.irfft2(f, s=(h, w))
    s = (s - s.min()) / (s.max() - s.min())
    return (s * 255).astype(np.uint8)


def moving_frames(t: int, h: int, w: int, d: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """RGB frames whose content moves by +d pixels per frame."""
    m = max(abs(d[0]), abs(d[1])) * t + 8
    tex = texture(h + 2 * m, w + 2 * m, seed)
    out = []
    for i in range(t):
        x, y = m - i * d[0], m - i * d[1]  # window moves by -d, so content moves by +d
        g = tex[y : y + h, x : x + w]
        out.append(np.stack([g, np.roll(g, 5, axis=1), 255 - g], axis=-1))
    return out


def dense(bm: BlockMotion, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Test-local rasteriser: average of the vectors covering each pixel, and the coverage count."""
    acc = np.zeros((2, h, w), np.float64)
    cnt = np.zeros((h, w), np.int32)
    for x0, y0, bw, bh, dx, dy in zip(bm.x0, bm.y0, bm.w, bm.h, bm.dx, bm.dy):
        xs, ys = slice(max(x0, 0), min(x0 + bw, w)), slice(max(y0, 0), min(y0 + bh, h))
        acc[0, ys, xs] += dx
        acc[1, ys, xs] += dy
        cnt[ys, xs] += 1
    return acc / np.maximum(cnt, 1), cnt


def check_results(results, indices, d, tol, h=H, w=W):
    assert [i for i, _ in results] == list(indices), "one result per frame, in display order"
    for i, bm in results:
        assert isinstance(bm, BlockMotion)
        assert len(bm) > 0, f"frame {i} has no vectors"
        assert bm.dx.dtype == np.float32 and bm.dy.dtype == np.float32
        assert bm.x0.dtype == np.int32 and bm.w.dtype == np.int32
        assert not bm.unsure.any()
        field, cnt = dense(bm, h, w)
        assert (cnt > 0).all(), f"frame {i}: some pixels have no block"
        inner = field[:, 16:-16, 16:-16]  # the whole picture moves; skip the border where content enters
        mx, my = np.median(inner[0]), np.median(inner[1])
        assert abs(mx - d[0]) <= tol and abs(my - d[1]) <= tol, f"frame {i}: median ({mx}, {my}) != {d}"
        good = np.mean(np.hypot(inner[0] - d[0], inner[1] - d[1]) <= 1.0)
        assert good >= 0.8, f"frame {i}: only {good:.0%} of the interior within 1 px of {d}"


def to_frames(rgbs, fmt="yuv420p"):
    return [av.VideoFrame.from_ndarray(r, format="rgb24").reformat(format=fmt) for r in rgbs]


# --------------------------------------------------------------------------- direct


@pytest.mark.parametrize("d", [(3, -2), (-2, 4)])
@pytest.mark.parametrize("fmt", ["yuv420p", "gray", "rgb24"])
def test_direct_frames_exact(d, fmt):
    frames = to_frames(moving_frames(12, H, W, d), fmt)
    est = MotionEstimator(W, H, fmt)
    results = []
    for i, f in enumerate(frames):
        got = est.push(f, i)
        assert [j for j, _ in got] == ([] if i == 0 else [i - 1]), "results lag by exactly one frame"
        results += got
    results += est.flush()
    check_results(results, range(12), d, tol=0.0)


def test_first_and_last_frame_and_both_directions():
    frames = to_frames(moving_frames(6, H, W, D))
    n_blocks = (W // 16) * (H // 16)
    res = dict(MotionEstimator(W, H).estimate(frames))
    # First frame: only its future vectors (its self-matched "past" rows are dropped).
    assert len(res[0]) == n_blocks
    # Middle frames: a past and a future row per block, both normalised to +d, except
    # at the border where content enters: there one reference lacks it, and the row
    # matched in it is dropped.
    for i in range(1, 5):
        assert n_blocks < len(res[i]) < 2 * n_blocks
    # Last frame: only its past vectors (flush's stand-in future is dropped).
    assert len(res[5]) == n_blocks
    for i, bm in res.items():
        inner = (bm.x0 >= 16) & (bm.x0 + bm.w <= W - 16) & (bm.y0 >= 16) & (bm.y0 + bm.h <= H - 16)
        assert np.all(bm.dx[inner] == D[0]) and np.all(bm.dy[inner] == D[1]), f"frame {i}"


def test_border_blocks_keep_the_reference_that_holds_the_content():
    h, w = 96, 128
    frames = to_frames(moving_frames(5, h, w, D))
    est = MotionEstimator(w, h)
    res = est.estimate(frames)
    assert est.dropped_rows > 0
    for i, bm in res[1:-1]:
        field, _ = dense(bm, h, w)
        good = np.mean(np.hypot(field[0] - D[0], field[1] - D[1]) <= 1.0)
        # Two corner blocks lose the content in both references (here top-left and
        # bottom-right): nothing can fix them; everything else must be right.
        assert good >= 0.9, f"frame {i}: {good:.0%} of all pixels within 1 px"


def test_caller_frame_is_untouched_and_estimator_reusable():
    frames = to_frames(moving_frames(5, H, W, D))
    for k, f in enumerate(frames):
        f.pts = 1000 + 7 * k
    est = MotionEstimator(W, H)
    first = [r for k, f in enumerate(frames) for r in est.push(f, 100 + k)] + est.flush()
    assert [f.pts for f in frames] == [1000 + 7 * k for k in range(5)]
    assert [i for i, _ in first] == [100, 101, 102, 103, 104]
    # After flush a new segment starts: its first frame is again future-only.
    second = est.estimate(frames[2:], indices=[10, 11, 12])
    assert [i for i, _ in second] == [10, 11, 12]
    check_results(second, [10, 11, 12], D, tol=0.0)
    assert len(second[0][1]) == (W // 16) * (H // 16)


def test_index_gap_gives_per_step_displacement():
    frames = to_frames(moving_frames(9, H, W, (1, -1)))[::2]  # indices 0, 2, 4, 6, 8: 2 frame steps apart
    results = MotionEstimator(W, H).estimate(frames, indices=[0, 2, 4, 6, 8])
    check_results(results, [0, 2, 4, 6, 8], (1, -1), tol=0.0)


def test_single_frame_has_no_motion():
    frames = to_frames(moving_frames(1, H, W, D))
    results = MotionEstimator(W, H).estimate(frames)
    assert len(results) == 1 and results[0][0] == 0
    assert len(results[0][1]) == 0, "one frame: no motion known (has_mv False), never zeros"
    assert MotionEstimator(W, H).flush() == []


def test_odd_size_border_blocks_cover_the_frame():
    h, w = 143, 175
    frames = [f.reformat(width=w, height=h, format="yuv420p") for f in to_frames(moving_frames(4, h, w, D), "rgb24")]
    results = MotionEstimator(w, h).estimate(frames)
    for _, bm in results:
        _, cnt = dense(bm, h, w)
        assert (cnt > 0).all()
        assert bm.x0.min() == 0 and (bm.x0 + bm.w).max() == w
        assert bm.y0.min() == 0 and (bm.y0 + bm.h).max() == h
    check_results(results, range(4), D, tol=0.0, h=h, w=w)


@pytest.mark.parametrize("method", ["hexbs", "umh", "ds"])
def test_other_methods(method):
    frames = to_frames(moving_frames(5, H, W, D))
    check_results(MotionEstimator(W, H, method=method).estimate(frames), range(5), D, tol=0.0)


def test_block_size_8_and_tiny_frame():
    frames = to_frames(moving_frames(4, H, W, D))
    res = MotionEstimator(W, H, block_size=8).estimate(frames)
    assert set(res[1][1].w.tolist()) == {8}
    check_results(res, range(4), D, tol=0.0)
    small = MotionEstimator(12, 12, block_size=16)
    assert small.block_size == 8


def test_bad_arguments_raise_typed_errors():
    assert "epzs" in METHODS
    with pytest.raises(InvalidArgumentError):
        MotionEstimator(W, H, method="nope")
    with pytest.raises(InvalidArgumentError):
        MotionEstimator(W, H, block_size=12)
    with pytest.raises(UnsupportedVideoError):
        MotionEstimator(4, 4)
    with pytest.raises(UnsupportedVideoError):
        MotionEstimator(W, H, "not_a_pix_fmt")
    est = MotionEstimator(W, H)
    frames = to_frames(moving_frames(2, H, W, D))
    est.push(frames[0], 5)
    with pytest.raises(InvalidArgumentError):
        est.push(frames[1], 5)
    with pytest.raises(InvalidArgumentError):
        est.push(to_frames(moving_frames(1, 64, 64, D))[0], 6)
    with pytest.raises(CompvidError):
        est.push(np.zeros((H, W, 3), np.uint8), 7)


# -------------------------------------------------------------------------- encoded

CODECS = {
    "libx265": ("mp4", {"x265-params": "log-level=none"}),
    "libvpx-vp9": ("webm", {"deadline": "realtime", "cpu-used": "8"}),
    "libsvtav1": ("mp4", {"preset": "10"}),
}


def encode(rgbs, codec: str) -> bytes:
    fmt, opts = CODECS[codec]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = opts
        for r in rgbs:
            out.mux(s.encode(av.VideoFrame.from_ndarray(r, format="rgb24")))
        out.mux(s.encode())
    return buf.getvalue()


@pytest.fixture(scope="module")
def truth_frames():
    return moving_frames(T, H, W, D)


@pytest.mark.parametrize("codec", list(CODECS))
def test_encoded_ground_truth(codec, truth_frames):
    data = encode(truth_frames, codec)
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "NONE"
        est = MotionEstimator(stream.codec_context.width, stream.codec_context.height, stream.codec_context.pix_fmt)
        results = []
        n = 0
        for n, frame in enumerate(c.decode(stream), start=1):
            results += est.push(frame, n - 1)
        results += est.flush()
    assert n == T, f"{codec}: decoded {n} frames"
    check_results(results, range(T), D, tol=1.0)
