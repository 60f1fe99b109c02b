"""Pictures whose packets are there but which FFmpeg's decoder never puts out take no frame index.

Ground truth: a texture panned 2 px per frame (every picture distinct) encoded by libx265 /
libx264, then edited the way real streams come: an HEVC end of sequence NAL unit before an open-GOP
CRA picture (raw, and inside MKV / MP4 packets at either end), ``no_output_of_prior_pics_flag`` set
in an IDR / CRA slice header, an H.264 open-GOP stream cut at its second I-frame. The reference is
PyAV's sequential decode (no compvid): probe's frame count and key frames, and every clip, from the
start and after a seek, must be what it puts out.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from compvid import decode_clip, probe
from compvid.hevc_nal import extradata_nal_units, hevc_nal_units, sps_max_num_reorder_pics
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames

N, W, H = 48, 96, 64
GOP = 12
X265 = f"log-level=error:keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=3"
X265_OPEN = {"x265-params": X265 + ":open-gop=1:repeat-headers=1"}
X265_CLOSED = {"x265-params": X265 + ":open-gop=0:repeat-headers=1"}
X264_OPEN = {"x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=1"}
EOS = bytes([36 << 1, 1])  # end of sequence NAL unit: header only
CRA, BLA_W_LP, RASL_TYPES, VPS = 21, 16, (8, 9), 32


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=2, dy=1, seed=5)
    return frames


def nearest_pictures(decoded: np.ndarray, pictures: np.ndarray) -> list[int]:
    """Index of the source picture each decoded frame is closest to (lossy coding)."""
    err = np.abs(decoded[:, None].astype(np.int16) - pictures[None].astype(np.int16)).mean(axis=(2, 3, 4))
    return err.argmin(axis=1).tolist()


def sequential(path) -> tuple[np.ndarray, list[bool], int, int]:
    """PyAV's plain decode: (RGB frames, I-frame or not, packets, the decoder's reorder depth)."""
    with av.open(str(path)) as c:
        num_packets = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(f.to_ndarray(format="rgb24"), f.pict_type == av.video.frame.PictureType.I)
                  for f in c.decode(stream)]
        reorder = stream.codec_context.reorder_depth  # FFmpeg's has_b_frames, the int
    return np.stack([rgb for rgb, _ in frames]), [key for _, key in frames], num_packets, reorder


def check_index_space(path, pictures) -> list[int]:
    """probe and decode_clip against the sequential decode; the source pictures it shows."""
    rgb, keys, _, _ = sequential(path)
    shown = nearest_pictures(rgb, pictures)
    info = probe(path)
    assert info.num_frames == len(rgb), f"probe counts {info.num_frames}, the decoder puts out {len(rgb)}"
    assert list(info.keyframe_indices) == [i for i, key in enumerate(keys) if key]
    whole = decode_clip(path, start=0, num_frames=info.num_frames, with_mv=False, info=info)
    assert not whole.padded
    assert nearest_pictures(whole.rgb, pictures) == shown
    np.testing.assert_array_equal(whole.frame_indices, np.arange(info.num_frames))
    if path.suffix in (".hevc", ".h264"):  # no timestamps: numbered from the first picture put out
        assert info.timeline == () and info.start_seconds == 0
        np.testing.assert_allclose(whole.pts_seconds, np.arange(info.num_frames) / info.fps)
    inner = [k for k in info.keyframe_indices if 0 < k < info.num_frames - 4]
    starts = sorted({1} | {s for k in inner for s in (k - 1, k, k + 1, k + 3)} | {info.num_frames - 2})
    for start in starts:
        for kw in ({"info": info}, {}):
            label = f"start={start} {'with' if kw else 'without'} probe info"
            clip = decode_clip(path, start=start, num_frames=4, with_mv=False, **kw)
            stop = min(start + 4, info.num_frames)
            np.testing.assert_array_equal(clip.rgb[:stop - start], whole.rgb[start:stop], err_msg=label)
            np.testing.assert_array_equal(clip.frame_indices[:stop - start], np.arange(start, stop), err_msg=label)
            assert clip.frame_types[:stop - start] == whole.frame_types[start:stop], label
            np.testing.assert_allclose(clip.pts_seconds[:stop - start], whole.pts_seconds[start:stop], err_msg=label)
    return shown


def annex_b_units(data: bytes) -> list[tuple[int, int]]:
    """(offset of the start code, nal_unit_type) of each NAL unit of an Annex B HEVC stream."""
    out, pos = [], data.find(b"\x00\x00\x01")
    while pos >= 0:
        out.append((pos - 1 if pos and data[pos - 1] == 0 else pos, (data[pos + 3] >> 1) & 0x3F))
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return out


def first_irap_header(data: bytes, length_size: int | None) -> int:
    """Offset of the first IRAP slice's NAL unit header in a packet (Annex B or length-prefixed)."""
    if length_size is None:
        for offset, t in annex_b_units(data):
            if 16 <= t <= 23:
                return data.index(b"\x00\x00\x01", offset) + 3
    else:
        pos = 0
        while pos + length_size < len(data):
            if 16 <= (data[pos + length_size] >> 1) & 0x3F <= 23:
                return pos + length_size
            pos += length_size + int.from_bytes(data[pos:pos + length_size], "big")
    raise AssertionError("no IRAP slice in the packet")


def rewrite_packets(src_path: Path, dst_path: Path, edit) -> Path:
    """Copy a file's video packets into a new file of the same kind, ``edit(n, data) -> data`` on each
    packet in decode order (timestamps, key flags kept)."""
    with av.open(str(src_path)) as src, av.open(str(dst_path), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for n, packet in enumerate(p for p in src.demux(stream) if p.size):
            copy = av.Packet(edit(n, bytes(packet)))
            copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
            copy.duration, copy.is_keyframe = packet.duration, packet.is_keyframe
            copy.stream = out
            dst.mux(copy)
    return dst_path


def key_packets(path) -> list[int]:
    with av.open(str(path)) as c:
        return [n for n, p in enumerate(p for p in c.demux(c.streams.video[0]) if p.size) if p.is_keyframe]


def with_eos_before_keys(tmp_path, pictures, suffix: str, where: str, options=X265_OPEN, keys=(1,)) -> Path:
    """An end of sequence NAL unit right before the access unit of each key picture numbered ``keys``
    (0: the first): raw (before its repeated VPS), or inside MP4 / MKV packets: at the end of the
    packet before (``where="end"``, where H.265 puts it) or at the start of the key picture's packet
    (``"start"``, where FFmpeg's raw parser puts it)."""
    full = encode_frames(pictures, tmp_path / f"full{suffix}", recipe=EncoderRecipe("libx265", suffix, options))
    out = tmp_path / f"eos-{where}{suffix}"
    if suffix == ".hevc":
        data = full.read_bytes()
        vps = [offset for offset, t in annex_b_units(data) if t == VPS]
        for k in sorted(keys, reverse=True):
            data = data[:vps[k]] + b"\x00\x00\x01" + EOS + data[vps[k]:]
        out.write_bytes(data)
        return out
    at = {key_packets(full)[k] for k in keys}
    eos = len(EOS).to_bytes(4, "big") + EOS  # x265 in MP4 / MKV: 4-byte NAL unit lengths

    def edit(n: int, data: bytes) -> bytes:
        if where == "end" and n + 1 in at:
            return data + eos
        return eos + data if where == "start" and n in at else data

    return rewrite_packets(full, out, edit)


def rasl_after_key(path, k: int = 1) -> int:
    """RASL pictures decoded right after key (IRAP) picture ``k`` (0: the first)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        length = 4 if (stream.codec_context.extradata or b"\0")[0] == 1 else None
        types = [next(t for t, _ in hevc_nal_units(bytes(p), length) if t < 32)
                 for p in c.demux(stream) if p.size]
    key = [n for n, t in enumerate(types) if 16 <= t <= 23][k]
    count = 0
    while types[key + 1 + count] in RASL_TYPES:
        count += 1
    return count


@pytest.mark.parametrize("suffix, where", [(".hevc", "raw"), (".mkv", "end"), (".mkv", "start"),
                                           (".mp4", "end"), (".mp4", "start")])
def test_hevc_end_of_sequence_before_a_cra_picture(tmp_path, pictures, suffix, where):
    """After an end of sequence the CRA picture starts a new coded video sequence: its RASL pictures
    are skipped (NoRaslOutputFlag), and the pictures of the previous sequence still waiting for
    output are discarded (NoOutputOfPriorPicsFlag is 1 for a CRA picture there): the last
    ``sps_max_num_reorder_pics`` of them in presentation order."""
    path = with_eos_before_keys(tmp_path, pictures, suffix, where)
    rasl = rasl_after_key(path)
    _, _, num_packets, reorder = sequential(path)
    assert rasl > 0 and reorder > 0, "the case means something: RASL pictures and pictures waiting for output"
    shown = check_index_space(path, pictures)
    # The CRA picture is picture GOP; before it: its RASL pictures, before those the waiting pictures.
    assert shown == [i for i in range(N) if i < GOP - rasl - reorder or i >= GOP]
    assert len(shown) == num_packets - rasl - reorder


@pytest.mark.parametrize("suffix, where", [(".hevc", "raw"), (".mkv", "end")])
def test_hevc_ends_of_sequence_before_two_cra_pictures(tmp_path, pictures, suffix, where):
    """Each end of sequence discards the waiting pictures of the sequence it ends, counted from the
    sequence's own start."""
    path = with_eos_before_keys(tmp_path, pictures, suffix, where, keys=(1, 2))
    _, _, _, reorder = sequential(path)
    dropped = {i for k in (1, 2) for i in range(k * GOP - rasl_after_key(path, k) - reorder, k * GOP)}
    assert len(dropped) > 2 * reorder
    assert check_index_space(path, pictures) == [i for i in range(N) if i not in dropped]


@pytest.mark.parametrize("suffix", [".hevc", ".mkv"])
def test_hevc_end_of_sequence_before_an_idr_picture_discards_nothing(tmp_path, pictures, suffix):
    """An IDR picture after an end of sequence, ``no_output_of_prior_pics_flag`` 0 (as x265 writes
    it): the waiting pictures are output, every picture is a frame."""
    path = with_eos_before_keys(tmp_path, pictures, suffix, "raw" if suffix == ".hevc" else "start",
                                      options=X265_CLOSED)
    assert check_index_space(path, pictures) == list(range(N))


def edit_second_key(tmp_path, pictures, suffix: str, options, *, bla: bool, no_output: bool) -> Path:
    """The second key picture's slice NAL unit edited: its type made BLA_W_LP (a CRA picture's slice
    header reads the same) and / or ``no_output_of_prior_pics_flag`` set (the bit after
    ``first_slice_segment_in_pic_flag``; no entropy-coded data changes)."""
    full = encode_frames(pictures, tmp_path / f"full{suffix}", recipe=EncoderRecipe("libx265", suffix, options))
    out = tmp_path / f"edited{suffix}"

    def edit(data: bytes, length: int | None) -> bytes:
        header = first_irap_header(data, length)
        first, second, flags = data[header:header + 3]
        if bla:
            assert (first >> 1) & 0x3F == CRA
            first = (BLA_W_LP << 1) | (first & 1)
        if no_output:
            flags |= 0x40
        return data[:header] + bytes([first, second, flags]) + data[header + 3:]

    if suffix == ".hevc":
        data = full.read_bytes()
        second = [offset for offset, t in annex_b_units(data) if 16 <= t <= 23][1]
        out.write_bytes(data[:second] + edit(data[second:], None))
        return out
    key = key_packets(full)[1]
    return rewrite_packets(full, out, lambda n, data: edit(data, 4) if n == key else data)


# (GOP structure, second key made BLA, no_output_of_prior_pics_flag) -> (RASL skipped, waiting discarded)
KEY_RULES = {
    "idr, no_output_of_prior_pics": (X265_CLOSED, False, True, False, True),
    "cra, no_output_of_prior_pics": (X265_OPEN, False, True, False, False),  # inside a sequence: no effect
    "bla": (X265_OPEN, True, False, True, False),
    "bla, no_output_of_prior_pics": (X265_OPEN, True, True, True, True),
}


@pytest.mark.parametrize("suffix", [".hevc", ".mkv"])
@pytest.mark.parametrize("case", list(KEY_RULES))
def test_hevc_key_picture_rules(tmp_path, pictures, suffix, case):
    """A new coded video sequence starts at an IDR or BLA picture, not at a CRA picture inside one:
    there a BLA picture's RASL pictures are skipped, and ``no_output_of_prior_pics_flag`` discards
    the pictures of the previous sequence still waiting for output (H.265 §8.1.3, §C.5.2.2)."""
    options, bla, no_output, rasl_skipped, discarded = KEY_RULES[case]
    path = edit_second_key(tmp_path, pictures, suffix, options, bla=bla, no_output=no_output)
    _, _, num_packets, reorder = sequential(path)
    rasl = rasl_after_key(path) if rasl_skipped else 0
    assert num_packets == N and reorder > 0 and (rasl > 0 or not rasl_skipped)
    waiting = reorder if discarded else 0
    assert check_index_space(path, pictures) == [i for i in range(N) if i < GOP - rasl - waiting or i >= GOP]


def cut_h264_at_second_key(tmp_path, pictures, suffix: str) -> Path:
    """An open-GOP x264 stream cut at its second key packet (a non-IDR I-frame, a recovery point):
    raw (the packets' bytes from there, parameter sets taken from the first packet) or its packets
    from there copied into MKV / MP4 / MPEG-TS (timestamps kept)."""
    recipe = EncoderRecipe("libx264", suffix, X264_OPEN, container_format="mpegts" if suffix == ".ts" else None)
    full = encode_frames(pictures, tmp_path / f"h264{suffix}", recipe=recipe)
    cut = tmp_path / f"cut{suffix}"
    with av.open(str(full)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        keys = [n for n, p in enumerate(packets) if p.is_keyframe]
        if suffix == ".h264":
            first = bytes(packets[0])
            headers = first[:first.find(b"\x00\x00\x01\x06")]  # SPS, PPS (before x264's SEI)
            cut.write_bytes(headers + b"".join(bytes(p) for p in packets[keys[1]:]))
            return cut
        with av.open(str(cut), "w") as dst:
            out = dst.add_stream_from_template(stream)
            for packet in packets[keys[1]:]:
                packet.stream = out
                dst.mux(packet)
    return cut


@pytest.mark.parametrize("suffix", [".h264", ".mkv", ".mp4", ".ts"])
def test_h264_cut_at_an_open_gop_i_frame(tmp_path, pictures, suffix):
    """The B-frames decoded after the first I-frame but shown before it predict from the GOP the cut
    removed: FFmpeg does not output them (they precede the first recovery point), so they are no frames."""
    cut = cut_h264_at_second_key(tmp_path, pictures, suffix)
    _, _, num_packets, _ = sequential(cut)
    shown = check_index_space(cut, pictures)
    assert shown[0] == GOP and shown == list(range(GOP, N)), "every picture from the I-frame on"
    assert num_packets > len(shown), "the case means something: leading B-frames were dropped"


@pytest.mark.parametrize("params", ["bframes=0", "bframes=3", "bframes=4:b-pyramid=0", "bframes=8"])
def test_hevc_sps_reorder_depth_is_the_decoders(tmp_path, pictures, params):
    """sps_max_num_reorder_pics as read off the SPS is what FFmpeg's decoder reorders by."""
    options = {"x265-params": f"log-level=error:keyint={GOP}:{params}"}
    path = encode_frames(pictures[:16], tmp_path / "s.mkv", recipe=EncoderRecipe("libx265", ".mkv", options))
    with av.open(str(path)) as c:
        extradata = c.streams.video[0].codec_context.extradata
    _, _, _, reorder = sequential(path)
    read = [sps_max_num_reorder_pics(unit) for t, unit in extradata_nal_units(extradata) if t == 33]
    assert read == [reorder]
