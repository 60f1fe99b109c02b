"""A stream whose first packet is no key frame (cut by stream copy at a P- or B-frame): its frames
are the pictures the decoder puts out, the same from the start and after a seek.

Ground truth: a texture panned 2 px per frame (every picture distinct), encoded with key frames
every 12 frames, then its first packets removed with PyAV (no re-encoding). The reference is PyAV's
sequential decode of the cut file: FFmpeg's H.264, HEVC and MPEG-2 decoders put out nothing before
the first key frame, its MPEG-4 Part 2 decoder puts those pictures out.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from compvid import CorruptVideoError, decode_clip, probe
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames

N, W, H, GOP = 48, 96, 64, 12
X264 = f"keyint={GOP}:min-keyint={GOP}:scenecut=0"
X265 = f"log-level=error:keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3"
CASES = {
    "h264-b0": ("libx264", {"x264-params": X264 + ":bframes=0"}, (".mkv", ".mp4", ".h264")),
    "h264-b3": ("libx264", {"x264-params": X264 + ":bframes=3"}, (".mkv", ".mp4", ".h264")),
    "h264-open": ("libx264", {"x264-params": X264 + ":bframes=3:open-gop=1"}, (".mkv", ".mp4", ".h264")),
    "hevc": ("libx265", {"x265-params": X265}, (".mkv", ".mp4")),
    "hevc-open": ("libx265", {"x265-params": X265 + ":open-gop=1"}, (".mkv",)),
    "mpeg2-b2": ("mpeg2video", {"g": str(GOP), "bf": "2"}, (".mpg",)),
    "mpeg2-b0": ("mpeg2video", {"g": str(GOP), "bf": "0"}, (".mkv",)),
    "mpeg4-b0": ("mpeg4", {"g": str(GOP), "bf": "0"}, (".mkv",)),
}
FORMATS = {".mpg": "mpeg", ".h264": "h264"}


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=2, dy=1, seed=5)
    return frames


def cut_head(src, dst, skip: int):
    """``src`` without its first ``skip`` packets, stream-copied into ``dst``."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format=FORMATS.get(dst.suffix)) as o:
        stream = i.streams.video[0]
        out = o.add_stream_from_template(stream)
        for n, packet in enumerate(p for p in i.demux(stream) if p.size):
            if n >= skip:
                packet.stream = out
                o.mux(packet)
    return dst


def sequential(path) -> tuple[np.ndarray, list[bool]]:
    with av.open(str(path)) as c:
        frames = [(f.to_ndarray(format="rgb24"), f.pict_type == av.video.frame.PictureType.I)
                  for f in c.decode(c.streams.video[0])]
    return np.stack([rgb for rgb, _ in frames]), [key for _, key in frames]


CUTS = [(name, suffix, skip) for name, (_, _, suffixes) in CASES.items() for suffix in suffixes for skip in (2, 5)]


@pytest.mark.parametrize("name,suffix,skip", CUTS, ids=[f"{n}{s}-cut{k}" for n, s, k in CUTS])
def test_a_stream_cut_past_its_key_frame_counts_what_the_decoder_puts_out(tmp_path, pictures, name, suffix, skip):
    codec, options, _ = CASES[name]
    full = encode_frames(pictures, tmp_path / f"full{suffix}", recipe=EncoderRecipe(
        codec, suffix, options, container_format=FORMATS.get(suffix)))
    path = cut_head(full, tmp_path / f"cut{suffix}", skip)
    rgb, keys = sequential(path)
    info = probe(path)
    assert info.num_frames == len(rgb), f"probe counts {info.num_frames}, the decoder puts out {len(rgb)}"
    assert list(info.keyframe_indices) == [i for i, key in enumerate(keys) if key]
    if len(rgb) < N - skip:  # pictures were left out: said so
        assert any("before its first key frame" in w for w in info.warnings), info.warnings
    assert not any("truncated" in w for w in info.warnings), info.warnings  # they are not missing packets
    whole = decode_clip(path, start=0, num_frames=info.num_frames, with_mv=False, info=info)
    assert not whole.padded
    np.testing.assert_array_equal(whole.rgb, rgb)
    starts = sorted({0, 1} | {s for k in info.keyframe_indices[1:] for s in (k - 1, k, k + 2)})
    for start in (s for s in starts if s + 4 <= info.num_frames):
        for kw in ({"info": info}, {}):
            clip = decode_clip(path, start=start, num_frames=4, **kw)
            np.testing.assert_array_equal(clip.rgb, rgb[start:start + 4], err_msg=f"start {start} {kw.keys()}")
            np.testing.assert_array_equal(clip.frame_indices, np.arange(start, start + 4))


def test_a_lead_in_it_cannot_place_is_a_warning(tmp_path, pictures):
    # MPEG-4 Part 2 with B-frames in AVI: the decoder leaves out one picture of the lead-in, and
    # AVI's timestamps (one per packet, not per picture) do not say which: never silent.
    full = encode_frames(pictures, tmp_path / "full.avi", recipe=EncoderRecipe("mpeg4", ".avi", {"g": "12", "bf": "2"}))
    path = cut_head(full, tmp_path / "cut.avi", 2)
    rgb, _ = sequential(path)
    info = probe(path)
    if info.num_frames != len(rgb):
        assert any("frame indices near the start may name later pictures" in w for w in info.warnings), info.warnings
    else:  # counted right: nothing to warn about (a later FFmpeg may stamp AVI pictures apart)
        assert not any("before its first key frame" in w and "may name" in w for w in info.warnings)


def test_a_stream_without_any_key_frame_is_one_clear_error(tmp_path, pictures):
    # every key frame removed: the H.264 decoder puts out nothing at all
    full = encode_frames(pictures, tmp_path / "full.mkv", recipe=EncoderRecipe("libx264", ".mkv", CASES["h264-b0"][1]))
    path = tmp_path / "no-keys.mkv"
    with av.open(str(full)) as i, av.open(str(path), "w") as o:
        stream = i.streams.video[0]
        out = o.add_stream_from_template(stream)
        for packet in i.demux(stream):
            if packet.size and not packet.is_keyframe:
                packet.stream = out
                o.mux(packet)
    for call in (lambda: probe(path), lambda: decode_clip(path, start=0, num_frames=4)):
        with pytest.raises(CorruptVideoError, match="puts out none of the stream's 44 pictures"):
            call()
