"""decode_clip: layout, resizing, seeking cost, padding, sources, sampling helpers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from compvid import ClipRangeError, InvalidArgumentError, decode_clip, probe
from compvid.decode import output_size
from compvid.sampling import clip_span, random_start, sliding_window_starts, two_clip_starts

DX, DY = 3, -2


def test_layout_and_metadata(moving_video):
    path = moving_video("h264", num_frames=32, width=256, height=192)
    clip = decode_clip(path, start=4, num_frames=8, frame_step=2)
    assert clip.rgb.shape == (8, 192, 256, 3) and clip.rgb.dtype == np.uint8
    assert clip.mv.shape == (2, 8, 192, 256) and clip.mv.dtype == np.float32
    assert clip.has_mv.dtype == bool and clip.has_mv.shape == (8,)
    np.testing.assert_array_equal(clip.frame_indices, np.arange(4, 20, 2))
    np.testing.assert_allclose(clip.pts_seconds, clip.frame_indices / 25.0, atol=1e-6)
    assert len(clip.frame_types) == 8 and not clip.padded


def test_rgb_matches_the_encoded_content(moving_video):
    # The decoded picture is the texture that was encoded (lossy: compare loosely).
    from compvid.synthetic import moving_frames

    path = moving_video("h264", num_frames=32, width=256, height=192)
    frames, _ = moving_frames(num_frames=32, width=256, height=192, dx=DX, dy=DY)
    clip = decode_clip(path, start=10, num_frames=3, with_mv=False)
    err = np.abs(clip.rgb.astype(int) - frames[10:13].astype(int)).mean()
    assert err < 12, err
    assert clip.mv is None


def test_resizing_scales_vectors(moving_video):
    path = moving_video("h264", num_frames=32, width=256, height=192)
    full = decode_clip(path, start=0, num_frames=16)
    small = decode_clip(path, start=0, num_frames=16, size=(96, 64))  # sx = 1/4, sy = 1/2
    assert small.rgb.shape == (16, 96, 64, 3) and small.mv.shape == (2, 16, 96, 64)
    for t in np.flatnonzero(full.has_mv):
        np.testing.assert_allclose(np.median(small.mv[0, t]), np.median(full.mv[0, t]) / 4, atol=0.1)
        np.testing.assert_allclose(np.median(small.mv[1, t]), np.median(full.mv[1, t]) / 2, atol=0.1)
    short = decode_clip(path, start=0, num_frames=2, size=128)
    assert short.rgb.shape[1:3] == (128, 171)


def test_mv_only_mode_matches_rgb_plus_mv(moving_video):
    path = moving_video("h264", num_frames=32, width=256, height=192)
    both = decode_clip(path, start=3, num_frames=10, size=96)
    mv_only = decode_clip(path, start=3, num_frames=10, size=96, with_rgb=False)
    assert mv_only.rgb is None
    np.testing.assert_array_equal(both.mv, mv_only.mv)


@pytest.mark.parametrize("recipe, with_info, gops", [("h264-shortgop", False, 1), ("mpeg2", True, 3)])
def test_seeking_cost_does_not_grow_with_video_length(moving_video, recipe, with_info, gops):
    # 300 frames, a key frame every 12: a clip near the end decodes at most
    # one GOP more than it needs (+ the next reference frame, which B-frames
    # point to), not the whole video. MPEG-PS has no index: FFmpeg seeks by
    # timestamp search and may land a GOP late, then compvid retries from an
    # earlier key frame, so allow a few GOPs there.
    path = moving_video(recipe, num_frames=300, width=64, height=48, dx=1, dy=0)
    info = probe(path)
    assert info.num_frames == 300 and info.max_gop == 12
    kw = {"info": info} if with_info else {}
    near_end = decode_clip(path, start=270, num_frames=16, **kw)
    np.testing.assert_array_equal(near_end.frame_indices, np.arange(270, 286))
    assert near_end.frames_decoded <= 16 + gops * info.max_gop + 4
    # The same pictures and fields as a decode from further back.
    wider = decode_clip(path, start=250, num_frames=36, **kw)
    np.testing.assert_array_equal(wider.rgb[20:], near_end.rgb)
    np.testing.assert_allclose(wider.mv[:, 20:], near_end.mv, atol=1e-6)


def test_short_video_is_padded_with_its_last_frame(moving_video):
    path = moving_video("h264", num_frames=10, width=64, height=48)
    clip = decode_clip(path, start=4, num_frames=8)
    assert clip.padded and clip.num_padded == 2
    np.testing.assert_array_equal(clip.frame_indices, [4, 5, 6, 7, 8, 9, 9, 9])
    np.testing.assert_array_equal(clip.rgb[-1], clip.rgb[-3])


def test_bytes_and_file_objects_give_the_same_clip(moving_video):
    path = moving_video("mpeg4", num_frames=32, width=128, height=96)
    data = path.read_bytes()
    a = decode_clip(path, start=5, num_frames=6, size=64)
    b = decode_clip(data, start=5, num_frames=6, size=64)
    c = decode_clip(io.BytesIO(data), start=5, num_frames=6, size=64)
    for other in (b, c):
        np.testing.assert_array_equal(a.rgb, other.rgb)
        np.testing.assert_array_equal(a.mv, other.mv)
    assert probe(data).num_frames == probe(path).num_frames == 32


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"start": 0, "num_frames": 0}, InvalidArgumentError),
        ({"start": 0, "num_frames": -3}, InvalidArgumentError),
        ({"start": -1}, InvalidArgumentError),
        ({"start": 0, "frame_step": 0}, InvalidArgumentError),
        ({"start": 0, "mv_mode": "bogus"}, InvalidArgumentError),
        ({"start": 0, "with_rgb": False, "with_mv": False}, InvalidArgumentError),
        ({"start": 0, "size": 0}, InvalidArgumentError),
        ({"start": 0, "threads": "2"}, InvalidArgumentError),
        ({"start": 0, "threads": -1}, InvalidArgumentError),
        ({"start": 32}, ClipRangeError),
        ({"start": 1000}, ClipRangeError),
    ],
)
def test_bad_arguments_raise_typed_errors_naming_the_file(moving_video, kwargs, error):
    path = moving_video("h264", num_frames=32, width=64, height=48)
    with pytest.raises(error) as e:
        decode_clip(path, **kwargs)
    assert str(path) in str(e.value)


def test_a_source_of_another_type_is_a_typed_error_and_a_type_error():
    from compvid.errors import InvalidSourceError

    for source in (12345, None, ["a.mp4"]):
        with pytest.raises(InvalidSourceError, match="path, bytes or a binary file object") as e:
            decode_clip(source, start=0)
        assert isinstance(e.value, TypeError)
        with pytest.raises(InvalidSourceError):
            probe(source)


def test_output_size():
    assert output_size(320, 240, None) == (240, 320)
    assert output_size(320, 240, 128) == (128, 171)
    assert output_size(240, 320, 128) == (171, 128)
    assert output_size(320, 240, (100, 50)) == (100, 50)
    with pytest.raises(InvalidArgumentError):
        output_size(320, 240, (0, 5))


def test_sampling_helpers():
    assert clip_span(32, 2) == 63
    assert sliding_window_starts(100, num_frames=32) == [0, 16, 32, 48, 64, 68]
    assert sliding_window_starts(20, num_frames=32) == [0]
    assert sliding_window_starts(64, num_frames=32, stride=32) == [0, 32]
    rng = np.random.default_rng(0)
    starts = [random_start(100, num_frames=32, rng=rng) for _ in range(500)]
    assert min(starts) == 0 and max(starts) == 68
    assert random_start(10, num_frames=32, rng=rng) == 0
    pairs = [two_clip_starts(100, num_frames=16, rng=rng) for _ in range(200)]
    assert any(a != b for a, b in pairs)
    with pytest.raises(InvalidArgumentError):
        sliding_window_starts(0, num_frames=8)


@pytest.mark.parametrize("recipe", ["h264", "mpeg4", "mpeg2"])
def test_the_last_frame_decodes_with_and_without_probe_info(moving_video, recipe):
    # MPEG-PS seeking near the end can land past every packet: compvid retries.
    path = moving_video(recipe, num_frames=24, width=64, height=48)
    info = probe(path)
    for kw in ({}, {"info": info}):
        clip = decode_clip(path, start=info.num_frames - 1, num_frames=1, **kw)
        assert clip.frame_indices.tolist() == [info.num_frames - 1] and not clip.padded


@pytest.mark.parametrize("recipe", ["h264", "mpeg4"])
def test_vector_tables_and_luma_are_what_pyav_hands_out(moving_video, monkeypatch, recipe):
    """The decode loop reads each frame's vector table with a dtype kept from the first one, and its
    luma straight from plane 0: the same arrays as PyAV's to_ndarray (every frame, the first
    included) and the Y plane as PyAV's own yuv420p array holds it."""
    import av

    import compvid.decode as decode_mod

    monkeypatch.setattr(decode_mod, "_VECTOR_DTYPE", [])  # start with no dtype kept
    path = moving_video(recipe, num_frames=12, width=96, height=64)
    tables = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in container.decode(stream):
            luma = decode_mod._luma(frame)
            assert frame.format.name == "yuv420p"
            assert np.array_equal(luma, frame.to_ndarray()[: frame.height])  # yuv420p arrays: Y rows first
            side = frame.side_data.get("MOTION_VECTORS")
            if side is None:
                continue
            want, got = side.to_ndarray(), decode_mod._vector_table(side)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            tables += 1
    assert tables >= 8 and len(decode_mod._VECTOR_DTYPE) == 1
