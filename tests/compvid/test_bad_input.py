"""Bad input: each case gives correct output or one typed error naming the file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from compvid import (
    ClipRangeError,
    CorruptVideoError,
    EmptyFileError,
    NotAFileError,
    NoVideoStreamError,
    VideoNotFoundError,
    decode_clip,
    probe,
)
from compvid.synthetic import encode_frames, moving_frames, write_moving_video


def both(path, **kw):
    """probe and decode_clip must fail the same way."""
    return [lambda: probe(path), lambda: decode_clip(path, start=0, num_frames=4, **kw)]


def assert_error(path, error, *, builtin):
    for call in both(path):
        with pytest.raises(error) as e:
            call()
        assert isinstance(e.value, builtin)
        assert str(path) in str(e.value)


def test_missing_path(tmp_path):
    assert_error(tmp_path / "nope.mp4", VideoNotFoundError, builtin=FileNotFoundError)


def test_directory(tmp_path):
    assert_error(tmp_path, NotAFileError, builtin=OSError)


def test_zero_byte_file(tmp_path):
    p = tmp_path / "empty.mp4"
    p.write_bytes(b"")
    assert_error(p, EmptyFileError, builtin=ValueError)
    with pytest.raises(EmptyFileError):
        probe(b"")


@pytest.mark.parametrize("content", [np.random.default_rng(0).bytes(5000), b"just some text\n" * 40])
def test_random_bytes_and_text_named_mp4(tmp_path, content):
    p = tmp_path / "fake.mp4"
    p.write_bytes(content)
    assert_error(p, CorruptVideoError, builtin=ValueError)


def test_audio_only(tmp_path):
    p = tmp_path / "tone.m4a"
    # AAC mono 16 kHz, 10 frames of silence.
    with av.open(str(p), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i * 1024
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    assert_error(p, NoVideoStreamError, builtin=LookupError)


def test_mp4_whose_index_is_cut_off(tmp_path):
    # PyAV's MP4 muxer writes the index (moov) at the end: cut it.
    data = write_moving_video(tmp_path / "full.mp4", num_frames=16, width=64, height=48).read_bytes()
    p = tmp_path / "no_moov.mp4"
    p.write_bytes(data[: len(data) - 300])
    assert_error(p, CorruptVideoError, builtin=ValueError)


def faststart_mp4(path, num_frames=32):
    # libx264 defaults, 128x96, index (moov) at the front so the media data can be cut.
    frames, _ = moving_frames(num_frames=num_frames, width=128, height=96, dx=2, dy=1)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(s.encode(None))
    return path


def test_mp4_truncated_inside_media_data(tmp_path):
    data = faststart_mp4(tmp_path / "fast.mp4").read_bytes()
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) * 2 // 3])
    info = probe(p)
    assert 0 < info.num_frames < 32
    assert any("truncated" in w for w in info.warnings)
    clip = decode_clip(p, start=0, num_frames=32)
    assert clip.rgb.shape[0] == 32 and clip.padded and clip.warnings
    # Past the readable part: a clear error, not an empty clip.
    with pytest.raises(ClipRangeError) as e:
        decode_clip(p, start=30, num_frames=2, info=info)
    assert str(p) in str(e.value)


def test_corrupt_frames_inside_a_valid_file_are_skipped_and_flagged(tmp_path):
    data = bytearray(faststart_mp4(tmp_path / "fast.mp4").read_bytes())
    for k in range(len(data) // 2, len(data) // 2 + 3000, 7):
        data[k] ^= 0xFF
    p = tmp_path / "damaged.mp4"
    p.write_bytes(bytes(data))
    clip = decode_clip(p, start=0, num_frames=32)
    assert clip.decode_errors > 0 and clip.warnings
    assert clip.rgb.shape == (32, 96, 128, 3)


def test_pictures_placed_far_past_the_clip_give_one_typed_error(tmp_path, monkeypatch):
    """A decoder that drops many pictures (the next timestamp names a frame far past the clip)
    leaves no frame of the clip to serve: one typed error naming the file, never a KeyError."""
    import compvid.decode as decode_module
    from compvid.frame_index import FrameIndexer

    class Skipping(FrameIndexer):  # frames 5 and on come out 40 frames later
        def place(self, frame):
            return [(idx if idx < 5 else idx + 40, f) for idx, f in super().place(frame)]

    path = write_moving_video(tmp_path / "v.mp4", num_frames=80, width=64, height=48)
    monkeypatch.setattr(decode_module, "FrameIndexer", Skipping)
    for with_rgb in (False, True):
        with pytest.raises(ClipRangeError, match="no frame decoded at or after start=5") as e:
            decode_clip(path, start=5, num_frames=4, with_rgb=with_rgb)
        assert str(path) in str(e.value)


def test_odd_dimensions(tmp_path):
    # 4:4:4 allows odd sizes; the field covers every pixel including the border blocks.
    p = write_moving_video(tmp_path / "odd.mkv", recipe="h264-444", num_frames=8, width=175, height=143)
    info = probe(p)
    assert (info.width, info.height) == (175, 143)
    clip = decode_clip(p, start=0, num_frames=8)
    assert clip.rgb.shape == (8, 143, 175, 3) and clip.mv.shape == (2, 8, 143, 175)
    moving = [t for t in range(8) if clip.has_mv[t]]
    assert moving
    for t in moving:
        # Right and bottom border blocks (partly outside the frame) are painted too.
        assert np.median(clip.mv[0, t, :, -3:]) == pytest.approx(3, abs=0.5)
        assert np.median(clip.mv[1, t, -3:, :]) == pytest.approx(-2, abs=0.5)


def test_one_frame_video(tmp_path):
    p = write_moving_video(tmp_path / "one.mp4", num_frames=1, width=64, height=48)
    assert probe(p).num_frames == 1
    clip = decode_clip(p, start=0, num_frames=4)
    assert clip.padded and clip.num_padded == 3 and not clip.has_mv.any()
    np.testing.assert_array_equal(clip.frame_indices, [0, 0, 0, 0])
    with pytest.raises(ClipRangeError):
        decode_clip(p, start=1, num_frames=1)


def test_rotation_metadata_is_applied_to_pictures_and_vectors(tmp_path):
    # Stored 128x96, displayed rotated 90 degrees counter-clockwise (96x128).
    # A counter-clockwise quarter turn maps the displacement (dx, dy) to (dy, -dx).
    frames, mask = moving_frames(num_frames=12, width=128, height=96, dx=3, dy=-2, motion="object")
    p = encode_frames(frames, tmp_path / "rot.mp4", recipe="h264", rotation_degrees=90)
    assert probe(p).rotation_degrees == 90
    clip = decode_clip(p, start=0, num_frames=12)
    assert clip.rgb.shape == (12, 128, 96, 3) and clip.mv.shape == (2, 12, 128, 96)
    err = np.abs(clip.rgb[3].astype(int) - np.rot90(frames[3], 1).astype(int)).mean()
    assert err < 12
    for t in np.flatnonzero(clip.has_mv):
        m = np.rot90(mask[t], 1)
        np.testing.assert_allclose(np.median(clip.mv[:, t][:, m], axis=1), [-2, -3], atol=0.5)
    small = decode_clip(p, start=0, num_frames=2, size=48)
    assert small.rgb.shape == (2, 64, 48, 3)


def test_ten_bit_source_decodes_to_8_bit_rgb(tmp_path):
    p = write_moving_video(tmp_path / "hi10.mkv", recipe="h264-high10", num_frames=8, width=64, height=48)
    assert probe(p).pix_fmt == "yuv420p10le"
    clip = decode_clip(p, start=0, num_frames=8)
    assert clip.rgb.dtype == np.uint8 and clip.rgb.std() > 10
