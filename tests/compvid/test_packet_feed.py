"""The decoder gets no picture nothing needs: non-reference pictures before a clip are skipped and
the packets after it are not sent (compvid.packet_feed), and the clip is the same.

Ground truth: a texture panned 2 px per frame (every picture distinct), encoded with long GOPs and
B-frames (H.264, HEVC, MPEG-1/2/4 Part 2), in the containers whose timestamps name each picture
(MP4, MKV). Each clip's pictures must be those of PyAV's sequential decode at its indices, and
everything else in the Clip (fields, types, flags, warnings) what the decode that sends every
packet and decodes every picture gives; fewer pictures decoded shows the saving is taken. The
feed's rules are also checked packet by packet.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import av
import numpy as np
import pytest

from compvid import decode as decode_module
from compvid import decode_clip, probe
from compvid.frame_index import FrameIndexer
from compvid.hevc_nal import top_sub_layer_pictures
from compvid.packet_feed import PacketFeed
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames
from compvid.timeline import Timeline

N, W, H = 72, 96, 64
X264 = "keyint=36:min-keyint=36:scenecut=0"
CASES = {
    "h264-pyramid.mp4": EncoderRecipe("libx264", ".mp4", {"x264-params": X264 + ":bframes=3:b-pyramid=normal"}),
    "h264-pyramid.mkv": EncoderRecipe("libx264", ".mkv", {"x264-params": X264 + ":bframes=3:b-pyramid=normal"}),
    "h264-open-gop.mkv": EncoderRecipe("libx264", ".mkv", {"x264-params": X264 + ":bframes=3:open-gop=1"}),
    "h264-plain-b.mp4": EncoderRecipe("libx264", ".mp4", {"x264-params": X264 + ":bframes=2:b-pyramid=none"}),
    "mpeg4-b2.mp4": EncoderRecipe("mpeg4", ".mp4", {"bf": "2", "g": "36"}),
    "mpeg1-b2.mkv": EncoderRecipe("mpeg1video", ".mkv", {"bf": "2", "g": "36"}),
    "mpeg2-interlaced.mkv": EncoderRecipe("mpeg2video", ".mkv", {"bf": "2", "g": "36", "flags": "+ilme+ildct"}),
    "hevc-b3.mkv": EncoderRecipe("libx265", ".mkv", {"x265-params": "log-level=error:keyint=36:min-keyint=36:"
                                                                     "scenecut=0:bframes=3"}),
    "hevc-temporal-layers.mp4": EncoderRecipe("libx265", ".mp4", {
        "x265-params": "log-level=error:keyint=36:min-keyint=36:scenecut=0:bframes=7:b-pyramid=1:temporal-layers=3"}),
}
# (start, num_frames, frame_step): at a key frame, just past one, deep into a GOP, up to the end.
CLIPS = [(0, 8, 1), (36, 8, 1), (37, 6, 2), (20, 8, 1), (58, 8, 1), (64, 8, 1), (50, 5, 3)]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=2, dy=1, seed=11)
    folder = tmp_path_factory.mktemp("feed")
    out = {}
    for name, recipe in CASES.items():
        path = encode_frames(frames, folder / name, recipe=recipe)
        with av.open(str(path)) as c:
            sequential = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])
        out[name] = (path, sequential)
    return out


def every_packet_decoded(monkeypatch):
    """compvid.decode as before the feed: no container counts as naming pictures by timestamp."""
    monkeypatch.setattr(decode_module, "EXACT_PTS_FORMATS", frozenset())


@pytest.mark.parametrize("name", CASES)
def test_clips_are_the_same_with_fewer_pictures_decoded(videos, monkeypatch, name):
    path, sequential = videos[name]
    info = probe(path)
    assert info.num_frames == N
    saved = 0
    for start, num, step in CLIPS:
        for with_rgb, with_mv in ((True, True), (True, False), (False, True)):
            kw = dict(start=start, num_frames=num, frame_step=step, info=info, with_rgb=with_rgb, with_mv=with_mv)
            fed = decode_clip(path, **kw)
            with monkeypatch.context() as m:
                every_packet_decoded(m)
                full = decode_clip(path, **kw)
            wanted = [min(start + k * step, N - 1) for k in range(num)]
            assert list(fed.frame_indices) == wanted
            if with_rgb:
                np.testing.assert_array_equal(fed.rgb, sequential[wanted], err_msg=f"{name} {kw}")
            for f in dataclasses.fields(fed):
                if f.name != "frames_decoded":
                    a, b = getattr(fed, f.name), getattr(full, f.name)
                    same = np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
                    assert same, f"{name} {kw}: {f.name} differs"
            assert fed.frames_decoded <= full.frames_decoded
            saved += full.frames_decoded - fed.frames_decoded
    assert saved > 0, f"{name}: no picture was left undecoded"


def test_hevc_pictures_are_skipped_only_in_the_highest_temporal_sub_layer(videos):
    """A sub-layer non-reference picture below the top sub-layer may be a reference of higher ones:
    FFmpeg's NONREF would skip it by its type alone, so only packets of the top sub-layer qualify."""
    path, _ = videos["hevc-temporal-layers.mp4"]
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        extradata = bytes(stream.codec_context.extradata)
        layers = [(bytes(p)[4 + 1] & 7) - 1 for p in c.demux(stream) if p.size]  # TemporalId of the first NAL unit
    top_layer = top_sub_layer_pictures(extradata)
    assert top_layer is not None and max(layers) == 2
    with av.open(str(path)) as c:
        answers = [top_layer(memoryview(bytes(p))) for p in c.demux(c.streams.video[0]) if p.size]
    assert answers == [layer == 2 for layer in layers]

    def packet(nal_type: int, temporal_id: int) -> bytes:  # one length-prefixed NAL unit
        unit = bytes([nal_type << 1, temporal_id + 1]) + bytes(8)
        return len(unit).to_bytes(4, "big") + unit
    assert top_layer(packet(0, 2))  # TRAIL_N in the top sub-layer
    assert not top_layer(packet(0, 0))  # TRAIL_N below it: higher sub-layers may refer to it
    assert not top_layer(packet(0, 2) + packet(0, 1))  # a picture whose slices are not all on top
    assert top_sub_layer_pictures(None) is None and top_sub_layer_pictures(b"\x00\x00\x00\x01") is None


@pytest.mark.parametrize("x264,expected", [("", None), (":interlaced=1", False), (":fake-interlaced=1", False)])
def test_h264_that_may_code_fields_skips_no_picture(tmp_path, x264, expected):
    """frame_mbs_only_flag 0: a frame may pair a reference field with a non-reference one."""
    frames, _ = moving_frames(num_frames=6, width=W, height=H, dx=2, dy=1, seed=1)
    recipe = EncoderRecipe("libx264", ".mp4", {"x264-params": "bframes=2" + x264})
    path = encode_frames(frames, tmp_path / "v.mp4", recipe=recipe)
    with av.open(str(path)) as c:
        extradata = bytes(c.streams.video[0].codec_context.extradata)
    assert decode_module._skippable_pictures("h264", extradata) is expected
    assert decode_module._skippable_pictures("mpeg2video", None) is None  # B-frames: never references
    assert decode_module._skippable_pictures("vp9", None) is False  # not checked: nothing skipped


# --- the rules, packet by packet --------------------------------------------------------------


class Packet(bytes):
    """A fake packet: its bytes are its pts written out (for ``skippable`` tests), with the
    attributes PacketFeed reads."""

    def __new__(cls, pts: int | None, is_keyframe: bool = False):
        self = super().__new__(cls, repr(pts).encode())
        self.pts, self.is_keyframe, self.size = pts, is_keyframe, 100
        return self


class Decoder:
    """Records the ``skip_frame`` each packet was sent under."""

    def __init__(self):
        self.skip_frame = "DEFAULT"


def feed(order, *, last, skip_before=None, placed_after=0, drain_early=True, keys=(0,), skippable=None):
    """Run a PacketFeed over packets whose pts are the display indices ``order`` (1 s a frame);
    the indexer counts as placed once ``placed_after`` packets were sent. Returns (indices sent,
    skip_frame each was sent under, the feed, the decoder)."""
    decoder, indexer = Decoder(), SimpleNamespace(next=None)
    packets = [Packet(i, is_keyframe=i in keys) if i is not None else Packet(None) for i in order]
    timeline = Timeline(((0, 0.0),), 1.0, 1000)
    the_feed = PacketFeed(packets, timeline, 1.0, decoder, indexer, skip_before=skip_before, last=last,
                          drain_early=drain_early, skippable=skippable)
    sent, modes = [], []
    for n, packet in enumerate(the_feed):
        sent.append(packet.pts)
        modes.append(decoder.skip_frame)
        if n + 1 >= placed_after:
            indexer.next = 0  # the indexer placed a picture
    return sent, modes, the_feed, decoder


PYRAMID = [0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11, 16, 14, 13, 15]  # x264 B-pyramid decode order


@pytest.mark.parametrize("last,through", [(0, 1), (3, 5), (4, 5), (5, 9), (7, 9), (8, 9), (11, 13)])
def test_the_feed_ends_once_the_packets_sent_hold_every_picture_through_the_clip(last, through):
    sent, _, the_feed, _ = feed(PYRAMID, last=last)
    assert sent == PYRAMID[:through]  # every index up to the largest sent, none missing, past last
    assert the_feed.ended_early


def test_a_hole_below_the_largest_index_sent_keeps_the_feed_going():
    # After 0 4 2 1 3 8 6 5 the indices 0..6 are there, but 7 is not though 8 was sent: 8 would be
    # put out where 7 belongs, so 7 must be sent too.
    sent, _, _, _ = feed(PYRAMID, last=5)
    assert 7 in sent


@pytest.mark.parametrize("order,keys", [
    ([0, 2, 1, 2, 3, 4, 5, 6], (0,)),  # two packets name one picture
    ([0, 2, None, 1, 3, 4, 5, 6], (0,)),  # a packet without a time
    ([2, 1, 3, 4, 5, 6], (4,)),  # the first packet is no key frame (a cut stream's lead-in)
])
def test_where_timestamps_are_unsure_every_packet_is_sent(order, keys):
    sent, _, the_feed, _ = feed(order, last=5, keys=keys)
    assert sent == order and not the_feed.ended_early


def test_drain_early_false_sends_every_packet():
    sent, _, the_feed, _ = feed(PYRAMID, last=3, drain_early=False)
    assert sent == PYRAMID and not the_feed.ended_early


def test_non_reference_pictures_are_skipped_only_before_the_clip_and_once_a_picture_is_placed():
    sent, modes, the_feed, decoder = feed(PYRAMID, last=16, skip_before=9, placed_after=3)
    expected = ["NONREF" if n >= 3 and i < 9 else "DEFAULT" for n, i in enumerate(sent)]
    assert modes == expected
    assert the_feed.skipped == expected.count("NONREF") > 0
    assert decoder.skip_frame == "DEFAULT"  # left decoding every picture


def test_only_packets_the_codec_allows_are_skipped():
    odd = set(PYRAMID[1::2])
    sent, modes, _, _ = feed(PYRAMID, last=16, skip_before=9, placed_after=0,
                             skippable=lambda data: int(bytes(data)) in odd)
    assert modes == ["NONREF" if i < 9 and i in odd else "DEFAULT" for i in sent]


def test_a_consumer_that_stops_early_leaves_the_decoder_decoding_every_picture():
    decoder, indexer = Decoder(), SimpleNamespace(next=0)
    the_feed = PacketFeed([Packet(i, is_keyframe=i == 0) for i in PYRAMID], Timeline(((0, 0.0),), 1.0, 100), 1.0,
                          decoder, indexer, skip_before=12, last=16, drain_early=True)
    for packet in the_feed:
        if packet.pts == 3:
            assert decoder.skip_frame == "NONREF"
            break
    the_feed.decode_every_picture()  # what compvid.decode does after each attempt
    assert decoder.skip_frame == "DEFAULT"


def test_without_timestamps_nothing_is_skipped_or_cut():
    decoder, indexer = Decoder(), SimpleNamespace(next=0)
    packets = [Packet(i, is_keyframe=i == 0) for i in PYRAMID]
    the_feed = PacketFeed(packets, Timeline((), 25.0, 100), 1.0, decoder, indexer, skip_before=12, last=3,
                          drain_early=True)
    modes = []
    for _ in the_feed:
        modes.append(decoder.skip_frame)
    assert len(modes) == len(PYRAMID) and set(modes) == {"DEFAULT"}


@pytest.mark.parametrize("exact,expected", [(True, [0, 1, 3, 4]), (False, [0, 1, 2, 3])])
def test_the_indexer_follows_a_one_frame_jump_only_where_timestamps_are_exact(exact, expected):
    indexer = FrameIndexer(Timeline(((0, 0.0),), 1.0, 10), after_seek=False)
    indexer.exact_timestamps = exact
    placed = [idx for t in (0.0, 1.0, 3.0, 4.0) for idx, _ in indexer.place(SimpleNamespace(time=t))]
    assert placed == expected
