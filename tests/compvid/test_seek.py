"""Seeking: a frame index names the same picture whether a clip is reached by a seek or not.

Frame ``i`` is the picture with the ``i``-th smallest timestamp (what probe counts), in every
container and whatever the timestamps look like: FFmpeg's raw MPEG-1 parser skips a frame
duration after the first picture, files start late or hold gaps, and MPEG-PS hands stale
timestamps to the first pictures after a seek. Each case renders a texture panned 2 px per frame
(every picture distinct), encodes it, and compares clips at starts past key frames with the
sequential decode from frame 0, which itself must show picture ``i`` at index ``i``.
MPEG-TS (H.264 with B-pyramid, MPEG-2, HEVC) is stamped from 1.4 s, as FFmpeg's command line
writes it, once with a gap. probe's key frames must be the I-frames decoding reports, raw open-GOP
streams (no timestamps, decode order != presentation order) included.
"""

from __future__ import annotations

import numpy as np
import pytest

from compvid import decode_clip, probe
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames
from compvid.timeline import Timeline, timeline_runs

N, W, H = 48, 96, 64
FPS = 25  # encode_frames' default rate
X264_GOP12 = {"x264-params": "keyint=12:min-keyint=12:scenecut=0"}
GAP = [0] + list(range(5, N + 4))  # four frame durations missing after the first picture
OFFSET = [t + 7 for t in range(N)]  # the first picture at 7 frame durations
# MPEG-TS as FFmpeg's command line writes it: the first picture at 1.4 s (35 frame durations at 25 fps).
LATE = [t + 35 for t in range(N)]
LATE_GAP = [t + 35 for t in GAP]
STAMPS = {"regular": None, "gap": GAP, "offset": OFFSET, "late": LATE, "late-gap": LATE_GAP}  # frame durations
X265_GOP12 = {"x265-params": "log-level=error:keyint=12:min-keyint=12:scenecut=0:bframes=3"}

# name -> (encoder, suffix, options, container format)
CODECS = {
    "m1v": ("mpeg1video", ".m1v", {"bf": "2", "g": "12"}, "mpeg1video"),
    "m2v": ("mpeg2video", ".m2v", {"bf": "2", "g": "12"}, "mpeg2video"),
    "h264-raw": ("libx264", ".h264", X264_GOP12, "h264"),
    # Open GOPs: the B-frames decoded after each non-IDR I-frame are shown before it.
    "h264-raw-open": ("libx264", ".h264", {"x264-params": X264_GOP12["x264-params"] + ":open-gop=1"}, "h264"),
    # Open GOPs: the B-frames decoded after each CRA picture are shown before it (RASL pictures).
    "hevc-raw": ("libx265", ".hevc", {"x265-params": X265_GOP12["x265-params"] + ":open-gop=1"}, "hevc"),
    "mpeg2-ps": ("mpeg2video", ".mpg", {"bf": "2", "g": "15"}, "mpeg"),  # as PyAV's encoder writes it
    "mpeg1-ps": ("mpeg1video", ".mpg", {"bf": "2", "g": "12"}, "mpeg"),
    "mpeg4-avi": ("mpeg4", ".avi", {"bf": "2", "g": "12"}, "avi"),
    "h264-mp4": ("libx264", ".mp4", X264_GOP12, "mp4"),
    "h264-mkv": ("libx264", ".mkv", X264_GOP12, "matroska"),
    "h264-ts": ("libx264", ".ts", X264_GOP12, "mpegts"),  # x264's default B-pyramid, 3 B-frames
    "mpeg2-ts": ("mpeg2video", ".ts", {"bf": "2", "g": "15"}, "mpegts"),
    "hevc-ts": ("libx265", ".ts", X265_GOP12, "mpegts"),
}
CASES = ([(c, "regular") for c in CODECS]
         + [(c, t) for c in ("mpeg2-ps", "mpeg4-avi", "h264-mp4", "h264-mkv") for t in ("gap", "offset")]
         + [(c, t) for c in ("h264-ts", "mpeg2-ts", "hevc-ts") for t in ("late", "late-gap")])


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=2, dy=1, seed=5)
    return frames


def encode_case(tmp_path, pictures, codec: str, timing: str):
    encoder, suffix, options, fmt = CODECS[codec]
    recipe = EncoderRecipe(encoder, suffix, options, container_format=fmt)
    stamps = STAMPS[timing]
    return encode_frames(pictures, tmp_path / f"{codec}-{timing}{suffix}", recipe=recipe, timestamps=stamps)


def nearest_pictures(decoded: np.ndarray, pictures: np.ndarray) -> list[int]:
    """Index of the source picture each decoded frame is closest to (lossy coding)."""
    err = np.abs(decoded[:, None].astype(np.int16) - pictures[None].astype(np.int16)).mean(axis=(2, 3, 4))
    return err.argmin(axis=1).tolist()


def starts_past_key_frames(info) -> list[int]:
    keys = [k for k in info.keyframe_indices if 0 < k < info.num_frames - 4]
    return sorted({s for k in keys[:3] for s in (k, k + 1, k + 4)} | {info.num_frames - 2})


@pytest.mark.parametrize("codec, timing", CASES)
def test_a_frame_index_names_the_same_picture_with_and_without_a_seek(tmp_path, pictures, codec, timing):
    path = encode_case(tmp_path, pictures, codec, timing)
    info = probe(path)
    assert info.num_frames == N
    whole = decode_clip(path, start=0, num_frames=N, with_mv=False, info=info)
    assert not whole.padded
    assert nearest_pictures(whole.rgb, pictures) == list(range(N)), "sequential decoding must count pictures"
    if timing.startswith("late"):  # the stream starts where it was stamped, gap included
        np.testing.assert_allclose(whole.pts_seconds, np.asarray(STAMPS[timing]) / FPS, atol=1e-4)
    assert [i for i, t in enumerate(whole.frame_types) if t == "I"] == list(info.keyframe_indices), (
        "probe's key frames are the I-frames, in presentation order")
    for start in starts_past_key_frames(info):
        for kw in ({"info": info}, {}):
            clip = decode_clip(path, start=start, num_frames=4, with_mv=False, **kw)
            stop = min(start + 4, N)
            label = f"start={start} {'with' if kw else 'without'} probe info"
            assert nearest_pictures(clip.rgb[: stop - start], pictures) == list(range(start, stop)), label
            np.testing.assert_array_equal(clip.rgb[: stop - start], whole.rgb[start:stop], err_msg=label)
            assert clip.frame_types[: stop - start] == whole.frame_types[start:stop], label
            np.testing.assert_allclose(clip.pts_seconds[: stop - start], whole.pts_seconds[start:stop], err_msg=label)


@pytest.mark.parametrize("codec, timing", [("mpeg2-ps", "regular"), ("h264-mp4", "regular"),
                                           ("h264-ts", "late-gap"), ("mpeg2-ts", "late-gap")])
def test_fields_after_a_seek_match_the_sequential_decode(tmp_path, pictures, codec, timing):
    path = encode_case(tmp_path, pictures, codec, timing)
    info = probe(path)
    whole = decode_clip(path, start=0, num_frames=N, info=info)
    for start in starts_past_key_frames(info)[:3]:
        clip = decode_clip(path, start=start, num_frames=4, info=info)
        np.testing.assert_allclose(clip.mv, whole.mv[:, start:start + 4], atol=1e-5, err_msg=f"start={start}")


ESTIMATED = {"hevc-mp4": ("libx265", ".mp4", X265_GOP12, None),
             "vp9-webm": ("libvpx-vp9", ".webm", {"deadline": "realtime", "cpu-used": "8", "g": "12"}, None)}


def estimated_case(tmp_path, pictures, codec: str):
    encoder, suffix, options, fmt = ESTIMATED[codec]
    return encode_frames(pictures, tmp_path / f"{codec}{suffix}", recipe=EncoderRecipe(encoder, suffix, options, fmt))


@pytest.mark.parametrize("codec", ESTIMATED)
def test_estimated_fields_after_a_seek_match_the_sequential_decode(tmp_path, pictures, monkeypatch, codec):
    """With a block search that keeps no state from frame to frame (exhaustive search), a clip's
    estimated fields are the sequential decode's, first and last frame included: the estimator
    sees each served frame with the same neighbours before and after it, wherever the clip starts."""
    import compvid.decode

    monkeypatch.setattr(compvid.decode, "ESTIMATOR_METHOD", "esa")
    path = estimated_case(tmp_path, pictures, codec)
    info = probe(path)
    whole = decode_clip(path, start=0, num_frames=N, info=info)
    assert whole.mv_source == "estimated" and whole.has_mv[1:].all()
    for start in sorted(set(range(1, N - 8, 5)) | set(starts_past_key_frames(info))):
        clip = decode_clip(path, start=start, num_frames=8, info=info)
        stop = min(start + 8, N)
        np.testing.assert_array_equal(clip.mv[:, : stop - start], whole.mv[:, start:stop], err_msg=f"start={start}")
        np.testing.assert_array_equal(clip.has_mv[: stop - start], whole.has_mv[start:stop])


@pytest.mark.parametrize("codec", ESTIMATED)
def test_estimated_fields_with_epzs_after_a_seek_differ_only_by_its_predictors(tmp_path, pictures, codec):
    """compvid's default search (EPZS) starts from the vectors of the frame before: after a seek
    the first frames may differ a little from the sequential decode (measured 0.01-0.04 % of
    pixels; 1-1.6 % while a clip's last frame was estimated without the frame after it and a clip
    starting at a key frame without the frame before it)."""
    path = estimated_case(tmp_path, pictures, codec)
    info = probe(path)
    whole = decode_clip(path, start=0, num_frames=N, info=info)
    differing = []
    for start in range(1, N - 8, 3):
        clip = decode_clip(path, start=start, num_frames=8, info=info)
        differing.append((np.abs(clip.mv - whole.mv[:, start:start + 8]).max(axis=0) > 0.5).mean())
    assert np.mean(differing) <= 0.001, np.round(differing, 4)


def test_streams_without_timestamps_say_they_decode_from_the_start(tmp_path, pictures):
    path = encode_case(tmp_path, pictures, "h264-raw", "regular")
    assert probe(path).timeline == ()
    clip = decode_clip(path, start=30, num_frames=2, with_mv=False)
    assert clip.frames_decoded >= 31
    assert any("no timestamps" in w for w in clip.warnings), clip.warnings


def test_mpeg_ps_case_from_the_field(shared_cases):
    """PyAV's mpeg2video in MPEG-PS (B-frames 2, GOP 15, start 0.54 s): clips past the second key
    frame were served 3 frames early, and start=16 without probe info raised KeyError: 18."""
    path = shared_cases / "mpeg2ps_pyav_b2g15_160x120.mpg"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    info = probe(path)
    whole = decode_clip(path, start=0, num_frames=info.num_frames, with_mv=False, info=info)
    for kw in ({"info": info}, {}):
        clip = decode_clip(path, start=21, num_frames=8, with_mv=False, **kw)
        np.testing.assert_array_equal(clip.rgb, whole.rgb[21:29])
        np.testing.assert_array_equal(clip.frame_indices, np.arange(21, 29))
        two = decode_clip(path, start=16, num_frames=2, with_mv=False, **kw)
        np.testing.assert_array_equal(two.rgb, whole.rgb[16:18])


def test_timeline_looks_timestamps_up_instead_of_multiplying():
    fps = 25.0
    # MPEG-1 elementary stream as FFmpeg parses it: 0, then 2, 3, 4 ... frame durations.
    times = [0.0] + [(k + 1) / fps for k in range(1, 10)]
    timeline = Timeline(timeline_runs(times, fps), fps, len(times))
    assert timeline.runs == ((0, 0.0), (1, 2 / fps))
    assert [timeline.index_at(t) for t in times] == list(range(10))
    assert timeline.index_at(1 / fps) is None  # no frame lies there
    assert timeline.time_of(5) == pytest.approx(6 / fps)
    assert Timeline(timeline_runs([0.28 + k / fps for k in range(5)], fps), fps, 5).runs == ((0, 0.28),)


@pytest.mark.parametrize("gop, leading, log2_max_poc_lsb", [(12, 3, 6), (30, 2, 4), (30, 0, 4)])
def test_raw_h264_key_frames_from_wrapping_order_counts(gop, leading, log2_max_poc_lsb):
    """Key frames of an untimed open-GOP H.264 stream placed from ``pic_order_cnt_lsb`` alone, as
    probe reads it, against sorting the full order counts (the reference). GOPs longer than half the
    LSB range make the LSBs wrap inside a GOP; only the leading pictures right after a key count."""
    from compvid.raw_order import h264_leading_pictures, keys_in_display_order

    num = 3 * gop
    # Decode order: the key (display g * gop), its `leading` B-frames (displayed just before it),
    # then P-frames up to the next GOP's leading pictures; the first key is an IDR, the others
    # open-GOP I-frames.
    pocs, keys = [], []
    for g in range(3):
        key, next_leading = g * gop, num if g == 2 else (g + 1) * gop - leading
        keys.append(len(pocs))
        shown = [key] + (list(range(key - leading, key)) if g else []) + list(range(key + 1, next_leading))
        pocs += [2 * d for d in shown]
    assert sorted(pocs) == list(range(0, 2 * num, 2)), "every picture once"
    display = {poc: i for i, poc in enumerate(sorted(pocs))}  # reference: presentation order by full POC
    expected = tuple(display[pocs[k]] for k in keys)
    lsbs = [p % (1 << log2_max_poc_lsb) for p in pocs]
    idr = [k == 0 for k in range(len(pocs))]
    got = keys_in_display_order(tuple(keys), h264_leading_pictures(keys, lsbs, log2_max_poc_lsb, idr))
    assert got == expected


def hevc_nal_units(data: bytes) -> list[tuple[int, int]]:
    """(offset of the start code, nal_unit_type) of each NAL unit of an Annex B HEVC stream."""
    out, pos = [], data.find(b"\x00\x00\x01")
    while pos >= 0:
        out.append((pos - 1 if pos and data[pos - 1] == 0 else pos, (data[pos + 3] >> 1) & 0x3F))
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return out


def cut_at_second_cra(tmp_path, pictures, suffix: str):
    """An open-GOP HEVC stream cut right before its second CRA picture: raw (bytes from the
    parameter sets repeated before it) or remuxed into MP4 / MKV (packets from it on, timestamps
    kept). The RASL pictures decoded after it predict from pictures the cut removed."""
    options = {"x265-params": X265_GOP12["x265-params"] + ":open-gop=1:repeat-headers=1"}
    full = encode_frames(pictures, tmp_path / f"full{suffix}", recipe=EncoderRecipe("libx265", suffix, options))
    cut = tmp_path / f"cut{suffix}"
    if suffix == ".hevc":
        data = full.read_bytes()
        nals = hevc_nal_units(data)
        cra = [n for n, (_, t) in enumerate(nals) if t == 21]  # CRA_NUT
        assert len(cra) >= 2, [t for _, t in nals]
        after = [t for _, t in nals[cra[1] + 1:] if t < 32][:3]
        assert after and set(after) <= {8, 9}, "RASL pictures follow the CRA picture"
        vps = max(n for n in range(cra[1]) if nals[n][1] == 32)  # the parameter sets repeated before it
        cut.write_bytes(data[nals[vps][0]:])
        return cut
    import av

    with av.open(str(full)) as src, av.open(str(cut), "w") as dst:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]  # decode order
        keys = [n for n, p in enumerate(packets) if p.is_keyframe]
        out = dst.add_stream_from_template(stream)
        for packet in packets[keys[1]:]:
            packet.stream = out
            dst.mux(packet)
    return cut


@pytest.mark.parametrize("suffix", [".hevc", ".mkv", ".mp4"])
def test_hevc_cut_at_a_cra_picture_counts_the_pictures_the_decoder_shows(tmp_path, pictures, suffix):
    """A stream that starts at a CRA picture: the decoder skips the RASL pictures after it. probe
    counts frames and places key frames as sequential decoding shows them (raw: by decode order;
    MP4/MKV: the skipped pictures' timestamps name no frame), and clips past key frames are the
    sequential decode's frames."""
    cut = cut_at_second_cra(tmp_path, pictures, suffix)

    # Reference: PyAV's sequential decode (no compvid), pictures and types as the decoder puts them out.
    import av

    with av.open(str(cut)) as c:
        num_packets = sum(1 for p in c.demux(c.streams.video[0]) if p.size)
    with av.open(str(cut)) as c:
        decoded = [(f.to_ndarray(format="rgb24"), f.pict_type == av.video.frame.PictureType.I)
                   for f in c.decode(c.streams.video[0])]
    assert len(decoded) < num_packets, "the decoder skips pictures: the case means something"
    shown = nearest_pictures(np.stack([rgb for rgb, _ in decoded]), pictures)
    first = shown[0]
    assert shown == list(range(first, N)) and first > 0, "the decoder shows every picture from the CRA on"

    info = probe(cut)
    assert info.num_frames == len(decoded)
    assert list(info.keyframe_indices) == [i for i, (_, key) in enumerate(decoded) if key]
    whole = decode_clip(cut, start=0, num_frames=info.num_frames, with_mv=False, info=info)
    assert not whole.padded
    assert nearest_pictures(whole.rgb, pictures) == shown
    for start in starts_past_key_frames(info):
        clip = decode_clip(cut, start=start, num_frames=4, with_mv=False, info=info)
        stop = min(start + 4, info.num_frames)
        np.testing.assert_array_equal(clip.rgb[: stop - start], whole.rgb[start:stop], err_msg=f"start={start}")
        np.testing.assert_array_equal(clip.frame_indices[: stop - start], np.arange(start, stop))


def test_raw_hevc_rasl_pictures_the_decoder_skips():
    """H.265 §8.1.3: RASL pictures are skipped after an IRAP picture with NoRaslOutputFlag (the
    stream's first, a BLA, the first after an end of sequence), kept after a CRA inside the
    stream; RADL pictures are always shown. Packets built from NAL unit headers alone."""
    from compvid.raw_order import RawKeyOrder

    def unit(*types: int) -> bytes:
        return b"".join(b"\x00\x00\x01" + bytes([t << 1, 1]) + b"\xaa" for t in types)

    CRA, RASL, RADL, TRAIL, BLA, EOS, VPS = 21, 8, 6, 1, 16, 36, 32
    stream = [(unit(VPS, CRA), False), (unit(RASL), True), (unit(RADL), False), (unit(TRAIL), False),
              (unit(CRA), False), (unit(RASL), False), (unit(TRAIL), False),
              (unit(EOS, VPS, CRA), False), (unit(RASL), True), (unit(TRAIL), False),
              (unit(BLA), False), (unit(RASL), True), (unit(RADL), False)]
    order = RawKeyOrder("hevc", None)
    for packet, _ in stream:
        order.add(packet)
    assert order.skipped(len(stream)) == [skip for _, skip in stream]
    # Key pictures at their decode positions among the 10 shown pictures: CRA 0 (its RADL picture
    # is shown before it), CRA 3 (its kept RASL picture too), CRA 6, BLA 8 (its RADL picture).
    assert order.display_keys((0, 3, 6, 8), 10) == (1, 4, 6, 9)
