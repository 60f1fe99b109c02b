"""Reference pictures of H.264 (compvid.nal) and the matcher's candidates."""

from __future__ import annotations

import av
import numpy as np
import pytest

from compvid import decode_clip
from compvid.nal import is_reference, nal_length_size
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames

DX, DY = 3, -2


def avcc(*nals: bytes, size: int = 4) -> bytes:
    return b"".join(len(n).to_bytes(size, "big") + n for n in nals)


def test_is_reference_reads_nal_ref_idc_of_slices():
    sei, sps = bytes([0x06, 5, 1, 0x80]), bytes([0x67, 0x64, 0, 13])
    ref_slice, nonref_slice, idr = bytes([0x41, 0x9A, 0x10]), bytes([0x01, 0x9E, 0x22]), bytes([0x65, 0x88, 0x84])
    assert is_reference(avcc(sei, ref_slice), 4) is True
    assert is_reference(avcc(sei, nonref_slice, nonref_slice), 4) is False
    assert is_reference(avcc(sps, idr, size=2), 2) is True
    assert is_reference(avcc(sei), 4) is None  # no slice: unknown
    assert is_reference(b"\x00\x00\x00\x01" + sei + b"\x00\x00\x01" + nonref_slice, None) is False
    assert is_reference(b"\x00\x00\x01" + ref_slice, None) is True
    assert nal_length_size(bytes([1, 0x64, 0, 13, 0xFF, 0xE1])) is None  # too short to be avcC
    assert nal_length_size(bytes([1, 0x64, 0, 13, 0xFF, 0xE1, 0])) == 4
    assert nal_length_size(b"\x00\x00\x00\x01\x67") is None  # Annex B


def test_b_pyramid_marks_only_the_middle_b_frames_as_references(moving_video):
    # x264 defaults: 3 B-frames with B-pyramid; P/I frames are references, so is
    # the middle B of each run, and the others are not.
    path = moving_video("h264", dx=DX, dy=DY, num_frames=32, width=256, height=192)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        size = nal_length_size(s.codec_context.extradata)
        flags = {p.pts: is_reference(memoryview(p), size) for p in c.demux(s) if p.size}
        c.seek(0)
        types = {f.pts: "?IPB"[int(f.pict_type)] if int(f.pict_type) < 4 else "?" for f in c.decode(s)}
    assert all(flags[pts] for pts, t in types.items() if t in ("I", "P"))
    b_flags = [flags[pts] for pts, t in types.items() if t == "B"]
    assert any(b_flags) and not all(b_flags)


@pytest.mark.parametrize("params", ["ref=1:bframes=0", "ref=5:bframes=3:b-pyramid=strict", "ref=4:bframes=0:keyint=8"])
def test_reference_distances_of_other_x264_structures(tmp_path, params):
    from tests.compvid.test_decode_groundtruth import check_recovers

    frames, _ = moving_frames(num_frames=32, width=256, height=192, dx=DX, dy=DY)
    path = encode_frames(frames, tmp_path / "clip.mp4", recipe=EncoderRecipe("libx264", ".mp4", {"x264-params": params}))
    clip = decode_clip(path, start=0, num_frames=32)
    check_recovers(clip, 0.5, "P")
    if "B" in clip.frame_types:
        check_recovers(clip, 0.5, "B")
    assert clip.unsure_fraction < 0.05
    # A window that starts mid-stream gets the same fields for the frames it shares.
    later = decode_clip(path, start=9, num_frames=16)
    np.testing.assert_allclose(later.mv, clip.mv[:, 9:25], atol=1e-6)
