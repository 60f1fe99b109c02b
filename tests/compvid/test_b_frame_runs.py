"""MPEG-4 Part 2 in AVI, MPEG-1/2 in MPEG-PS/TS: B-frames before a clip are skipped run by run and
counted where they lie (compvid.b_frame_runs); every clip is the same as when every picture is decoded.

Ground truth: a texture panned 2 px per frame (every picture distinct), encoded by FFmpeg's MPEG-4
Part 2 encoder with 2 B-frames and 60-frame GOPs into AVI, and the same stream rewritten with
Xvid's packed B-frames (each P-VOP packed with the B-VOP after it in decode order, a not-coded
placeholder VOP filling the slot, "DivX503b1393p" in the VOL's user data, which makes FFmpeg
decode a packed B-VOP with the next packet). Each clip's pictures must be those of PyAV's
sequential decode at its indices and everything else in the Clip what the decode without skipping
gives; fewer pictures decoded shows the skipping is taken. The same for MPEG-1 and MPEG-2 (frame and
interlaced) in MPEG-PS and MPEG-2 in MPEG-TS, whose timestamps are stale after a seek.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from compvid import decode as decode_module
from compvid import decode_clip, probe
from compvid.b_frame_runs import PICTURE_START, VOP_START, BFrameRunFeed, picture_types, vop_types
from compvid.frame_index import FrameIndexer
from compvid.nal import BitReader
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames
from compvid.timeline import Timeline

N, W, H, GOP = 120, 96, 64, 60
MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
MEGAMIND = MEDIA / "mpeg4asp_xvid_bframes_megamind_720x528.avi"
XINE = MEDIA / "mpeg2_xine_logo_600x450.mpg"
CASE = MEDIA.parent / "cases" / "mpeg2ps_pyav_b2g15_160x120.mpg"
PROGRAM_STREAMS = {
    "mpeg2.mpg": EncoderRecipe("mpeg2video", ".mpg", {"bf": "2", "g": str(GOP)}, container_format="mpeg"),
    "mpeg2-interlaced.mpg": EncoderRecipe("mpeg2video", ".mpg", {"bf": "2", "g": str(GOP), "flags": "+ilme+ildct"},
                                          container_format="mpeg"),
    "mpeg1.mpg": EncoderRecipe("mpeg1video", ".mpg", {"bf": "2", "g": str(GOP)}, container_format="mpeg"),
    "mpeg2.ts": EncoderRecipe("mpeg2video", ".ts", {"bf": "2", "g": str(GOP)}, container_format="mpegts"),
}


def time_increment_bits(vol: bytes) -> int:
    """Bits of vop_time_increment: from vop_time_increment_resolution in an MPEG-4 VOL header
    (ISO/IEC 14496-2 6.2.3), given the bytes after its start code 00 00 01 2x."""
    bits = BitReader(vol[:32])
    bits.u(1), bits.u(8)  # random_accessible_vol, video_object_type_indication
    if bits.u(1):  # is_object_layer_identifier
        bits.u(4), bits.u(3)
    if bits.u(4) == 15:  # aspect_ratio_info: extended PAR
        bits.u(8), bits.u(8)
    if bits.u(1):  # vol_control_parameters
        bits.u(2), bits.u(1)
        if bits.u(1):  # vbv_parameters
            for n in (15, 1, 15, 1, 15, 1, 3, 11, 1, 15, 1):
                bits.u(n)
    assert bits.u(2) == 0, "rectangular shape expected"
    assert bits.u(1) == 1  # marker
    resolution = bits.u(16)
    return max(1, (resolution - 1).bit_length())


def not_coded_vop(increment_bits: int) -> bytes:
    """A not-coded P-VOP (vop_coded = 0): Xvid's placeholder for the slot after a packed pair."""
    # type P, modulo_time_base, marker, vop_time_increment, marker, vop_coded
    fields = "01" + "0" + "1" + "0" * increment_bits + "1" + "0"
    fields += "0" + "1" * (-(len(fields) + 1) % 8)  # next_start_code stuffing
    return VOP_START + int(fields, 2).to_bytes(len(fields) // 8, "big")


def pack_b_frames(src: Path, dst: Path) -> Path:
    """Rewrite an MPEG-4 Part 2 AVI with Xvid's packed B-frames, one packet per slot."""
    with av.open(str(src)) as i:
        stream = i.streams.video[0]
        extradata = bytes(stream.codec_context.extradata)
        vol = extradata[extradata.index(b"\x00\x00\x01\x20") + 4:]
        nvop = not_coded_vop(time_increment_bits(vol))
        decode_order = [bytes(p) for p in i.demux(stream) if p.size]
        rate, time_base = stream.average_rate, stream.time_base
    slots: list[bytes] = []
    k = 0
    while k < len(decode_order):
        data, types = decode_order[k], vop_types(decode_order[k])
        run = 0
        while k + 1 + run < len(decode_order) and vop_types(decode_order[k + 1 + run]) == "B":
            run += 1
        if types in ("P", "S") and run:  # P + its first B in one packet, the other Bs, a placeholder
            slots.append(data + decode_order[k + 1])
            slots.extend(decode_order[k + 2:k + 1 + run])
            slots.append(nvop)
        else:
            slots.extend(decode_order[k:k + 1 + run])
        k += 1 + run
    packed_extradata = extradata + b"\x00\x00\x01\xb2DivX503b1393p"
    with av.open(str(dst), "w", format="avi") as o:
        out = o.add_stream("mpeg4", rate=rate)
        out.width, out.height, out.pix_fmt = W, H, "yuv420p"
        out.codec_context.extradata = packed_extradata
        out.time_base = time_base
        for n, data in enumerate(slots):
            packet = av.Packet(data)
            packet.stream, packet.pts, packet.dts = out, n, n
            packet.time_base = out.time_base
            packet.is_keyframe = vop_types(data)[:1] == "I"
            o.mux(packet)
    return dst


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=2, dy=1, seed=21)
    folder = tmp_path_factory.mktemp("runs")
    plain = encode_frames(frames, folder / "plain.avi", recipe=EncoderRecipe("mpeg4", ".avi", {"bf": "2",
                                                                                               "g": str(GOP)}))
    packed = pack_b_frames(plain, folder / "packed.avi")
    out = {"plain": plain, "packed": packed}
    for name, recipe in PROGRAM_STREAMS.items():
        out[name] = encode_frames(frames, folder / name, recipe=recipe)
    return out


def every_picture_decoded(monkeypatch):
    """compvid.decode as before the run skipping: every packet decoded."""
    class PassThrough:
        def __init__(self, packets, *args, **kwargs):
            self.packets = packets

        def __iter__(self):
            return iter(self.packets)

        def decode_every_picture(self):
            pass

    monkeypatch.setattr(decode_module, "BFrameRunFeed", PassThrough)


def sequential(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def assert_same_clips(path, monkeypatch, starts, num_frames, steps=(1,), *, saves=True):
    """Every clip as without skipping, its pictures those of the sequential decode; pictures saved
    (``saves``) or none."""
    rgb = sequential(path)
    info = probe(path)
    assert info.num_frames == len(rgb)
    saved = 0
    for start in starts:
        for step in steps:
            for kw in (dict(with_mv=False), dict(size=64), dict(with_rgb=False, mv_mode="raw")):
                kw.update(start=start, num_frames=num_frames, frame_step=step, info=info)
                fed = decode_clip(path, **kw)
                with monkeypatch.context() as m:
                    every_picture_decoded(m)
                    full = decode_clip(path, **kw)
                for f in dataclasses.fields(fed):
                    if f.name != "frames_decoded":
                        a, b = getattr(fed, f.name), getattr(full, f.name)
                        same = np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                        assert same, f"{path.name} {kw}: {f.name} differs"
                if "size" not in kw and fed.rgb is not None:
                    np.testing.assert_array_equal(fed.rgb, rgb[fed.frame_indices], err_msg=f"{path.name} {kw}")
                saved += full.frames_decoded - fed.frames_decoded
    assert saved > 0 if saves else saved == 0, f"{saved} pictures left undecoded"


@pytest.mark.parametrize("name", ["plain", "packed"])
def test_clips_deep_in_a_gop_are_the_same_with_the_b_frames_before_them_skipped(videos, monkeypatch, name):
    path = videos[name]
    if name == "packed":  # the rewrite is what it should be: pairs, placeholders, every picture decoded
        with av.open(str(path)) as c:
            kinds = [vop_types(bytes(p)) for p in c.demux(c.streams.video[0]) if p.size]
        assert "PB" in kinds and kinds.count("P") >= kinds.count("PB")  # a placeholder after each pair
        np.testing.assert_array_equal(sequential(path), sequential(videos["plain"]))  # the same pictures
    assert_same_clips(path, monkeypatch, starts=[0, 13, 29, 44, 58, 60, 61, 75, 101, 112], num_frames=8,
                      steps=(1, 3))


@pytest.mark.parametrize("name", PROGRAM_STREAMS)
def test_mpeg_1_2_program_and_transport_streams(videos, monkeypatch, name):
    assert_same_clips(videos[name], monkeypatch, starts=[0, 29, 44, 61, 75, 101, 112], num_frames=8, steps=(1, 3))


@pytest.mark.media
@pytest.mark.skipif(not MEGAMIND.is_file(), reason="../shared/media not present")
def test_xvid_packed_b_frames_megamind(monkeypatch):
    assert_same_clips(MEGAMIND, monkeypatch, starts=[0, 30, 60, 97, 120, 150, 199, 230], num_frames=16)


@pytest.mark.media
@pytest.mark.skipif(not XINE.is_file(), reason="../shared/media not present")
def test_mpeg2_program_stream_xine(monkeypatch):
    info = probe(XINE)
    # 25 frames, I and P only: nothing to skip, and nothing may change
    assert_same_clips(XINE, monkeypatch, starts=range(0, info.num_frames - 4, 3), num_frames=4, saves=False)


@pytest.mark.skipif(not CASE.is_file(), reason="../shared/cases not present")
def test_the_mpeg2_program_stream_that_was_served_early(monkeypatch):
    assert_same_clips(CASE, monkeypatch, starts=[16, 21, 30, 33, 38], num_frames=8)


def test_picture_types_reads_each_mpeg_picture_header():
    def header(kind):  # temporal_reference 5, picture_coding_type, vbv_delay's first bits
        return PICTURE_START + bytes([5 >> 2, ((5 & 3) << 6) | (kind << 3) | 7, 0xFF])
    assert picture_types(b"\x00\x00\x01\xb3" + bytes(8) + header(1)) == "I"
    assert picture_types(header(3) + bytes(30) + header(3)) == "BB"  # a B-frame as two field pictures
    assert picture_types(header(2)) == "P"


def test_vop_types_reads_each_vop_start_code():
    assert vop_types(VOP_START + b"\x40\x00" + VOP_START + b"\x80\x11") == "PB"
    assert vop_types(b"\x00\x00\x01\xb0\x01" + VOP_START + b"\x00") == "I"
    assert vop_types(b"\x00\x00\x01\xb2DivX") == ""


class FakePacket(bytes):
    """A packet's bytes with the attributes BFrameRunFeed reads (size, dts, pts: its slot)."""

    def __new__(cls, data: bytes, slot: int):
        self = super().__new__(cls, data)
        self.size, self.dts, self.pts = len(data), slot, slot
        return self


def test_skipped_b_vops_are_counted_once_the_pictures_of_their_packet_are_out():
    decoder = SimpleNamespace(skip_frame="DEFAULT")
    indexer = FrameIndexer(Timeline(((0, 0.0),), 1.0, 100), after_seek=False)
    indexer.next = 1  # a picture is placed
    slots = [VOP_START + b"\x40" + bytes(40) + VOP_START + b"\x80" + bytes(20),  # P + packed B: a run starts
             VOP_START + b"\x80" + bytes(40),  # B
             VOP_START + b"\x40" + bytes(2),  # a not-coded placeholder: small, starts no run
             VOP_START + b"\x40" + bytes(40)]  # the next P
    feed = BFrameRunFeed([FakePacket(d, n) for n, d in enumerate(slots)], Timeline(((0, 0.0),), 1.0, 100), 1.0,
                         decoder, indexer, codec="mpeg4", skip_before=100)
    seen = [(indexer.next, decoder.skip_frame) for _ in feed]
    # count when each packet is sent: +1 once the pair's pictures are out, +1 after the lone B
    assert seen == [(1, "NONREF"), (2, "NONREF"), (3, "NONREF"), (3, "NONREF")]
    assert feed.skipped == 2 and decoder.skip_frame == "DEFAULT"


def test_a_run_near_the_clip_is_decoded():
    decoder = SimpleNamespace(skip_frame="DEFAULT")
    indexer = FrameIndexer(Timeline(((0, 0.0),), 1.0, 100), after_seek=False)
    indexer.next = 1
    slots = [VOP_START + b"\x40" + bytes(40), VOP_START + b"\x80" + bytes(40)] * 10  # P B P B ...
    feed = BFrameRunFeed([FakePacket(d, n) for n, d in enumerate(slots)], Timeline(((0, 0.0),), 1.0, 100), 1.0,
                         decoder, indexer, codec="mpeg4", skip_before=18)  # runs whose P lies before 18 - 8 = 10
    modes = [decoder.skip_frame for _ in feed]
    assert modes == ["NONREF"] * 10 + ["DEFAULT"] * 10
    assert indexer.next == 1 + 5 and feed.skipped == 5


def test_pictures_cannot_be_skipped_before_one_is_placed():
    indexer = FrameIndexer(Timeline(((0, 0.0),), 1.0, 10), after_seek=True)
    with pytest.raises(RuntimeError):
        indexer.skipped(1)
