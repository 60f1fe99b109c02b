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


def _extradata(params: str, tmp_path) -> bytes:
    frames, _ = moving_frames(num_frames=6, width=64, height=48, dx=DX, dy=DY)
    path = encode_frames(frames, tmp_path / "sps.mp4", recipe=EncoderRecipe("libx264", ".mp4", {"x264-params": params}))
    with av.open(str(path)) as c:
        return bytes(c.streams.video[0].codec_context.extradata)


@pytest.mark.parametrize("params,refs", [
    ("ref=1:bframes=0", 1),
    ("ref=1:bframes=0:cqm=jvt", 1),  # High profile with scaling matrices in the SPS
    ("ref=5:bframes=0:cabac=0", 5),
    ("ref=3:bframes=0:keyint=10", 3),
])
def test_max_num_ref_frames_read_from_the_sps(tmp_path, params, refs):
    from compvid.nal import max_num_ref_frames

    extradata = _extradata(params, tmp_path)
    assert max_num_ref_frames(extradata) == refs
    # The same SPS in Annex B form (as MPEG-TS extradata carries it).
    sps = extradata[8 : 8 + int.from_bytes(extradata[6:8], "big")]
    assert max_num_ref_frames(b"\x00\x00\x00\x01" + sps) == refs
    assert max_num_ref_frames(None) is None and max_num_ref_frames(b"\x01\x64\x00") is None


def test_one_reference_frame_skips_matching_with_the_same_result(moving_video, monkeypatch):
    import compvid.decode as decode_mod
    import compvid.mv_matching as matching_mod

    path = moving_video("h264-ref1", dx=DX, dy=DY, num_frames=40, width=128, height=96)
    calls = []
    matcher = matching_mod.match_reference_distances_frames
    monkeypatch.setattr(matching_mod, "match_reference_distances_frames",
                        lambda *a, **k: calls.append(1) or matcher(*a, **k))
    fast = decode_clip(path, start=8, num_frames=24)  # across the IDR at frame 20
    assert not calls and "I" in fast.frame_types
    monkeypatch.setattr(decode_mod, "max_num_ref_frames", lambda extradata: None)  # unknown: match
    matched = decode_clip(path, start=8, num_frames=24)
    assert calls
    np.testing.assert_array_equal(fast.mv, matched.mv)
    np.testing.assert_array_equal(fast.has_mv, matched.has_mv)


class _BitWriter:
    """Writes an H.264 RBSP bit by bit (u(n), ue(v), se(v)), the slow obvious way."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        code = bin(value + 1)[2:]
        self.bits += [0] * (len(code) - 1) + [int(c) for c in code]

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self) -> bytes:
        bits = self.bits + [1] + [0] * (-(len(self.bits) + 1) % 8)  # rbsp_trailing_bits
        rbsp = bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))
        out = bytearray([0x67])  # nal_unit_type 7 (SPS), nal_ref_idc 3
        zeros = 0
        for byte in rbsp:  # emulation prevention: 00 00 0x (x <= 3) -> 00 00 03 0x
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


@pytest.mark.parametrize("poc_type", [0, 1, 2])
def test_max_num_ref_frames_skips_scaling_lists_and_poc_cycles(poc_type):
    """A High-profile SPS with scaling matrices (which x264 never writes there) built by hand."""
    from compvid.nal import max_num_ref_frames

    rng = np.random.default_rng(poc_type)
    w = _BitWriter()
    w.u(8, 100), w.u(8, 0), w.u(8, 40), w.ue(0)  # High profile, constraints, level 4.0, sps id
    w.ue(1), w.ue(0), w.ue(0), w.u(1, 0)  # 4:2:0, 8-bit, no transform bypass
    w.u(1, 1)  # seq_scaling_matrix_present_flag
    for i in range(8):
        present = i in (0, 3, 6, 7)
        w.u(1, int(present))
        if present:
            size = 16 if i < 6 else 64
            stop = size if i != 3 else 5  # list 3: nextScale hits 0 after 5 entries (use the default list)
            last = 8
            for j in range(stop):
                target = 0 if (i == 3 and j == stop - 1) else int(rng.integers(1, 256))
                delta = (target - last + 128) % 256 - 128  # in [-128, 127]
                w.se(delta)
                last = target
    w.ue(2)  # log2_max_frame_num_minus4
    w.ue(poc_type)
    if poc_type == 0:
        w.ue(3)
    elif poc_type == 1:
        w.u(1, 0), w.se(-2), w.se(1), w.ue(3)
        for offset in (2, -1, 4):
            w.se(offset)
    w.ue(6)  # max_num_ref_frames
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag (and more fields follow; not read)
    sps = w.nal()
    avcc_extradata = bytes([1, 100, 0, 40, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps + b"\x01\x00\x04\x68\xEE\x3C\x80"
    assert max_num_ref_frames(avcc_extradata) == 6
    assert max_num_ref_frames(b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01\x68\xEE\x3C\x80") == 6
