"""One index space: frame ``i`` is the ``i``-th decoded picture in presentation order, whatever its time.

Files whose pictures are not ``1 / fps`` apart: AVIs with null frames (the muxer writes an empty
chunk for every skipped frame slot, as capture software does) and variable-frame-rate MP4 / MKV
(gaps of 1, 2, 3 ticks, and bursts of pictures one tick apart between long pauses, as screen
recorders write). Every picture is a texture panned by (2, 1) px, so each decoded picture can be
told from its neighbours and the motion per *picture* is known whatever the time between pictures.

The reference is PyAV's plain iteration over the decoded frames (index = output order, time =
``frame.time``); probe, samplers and ``decode_clip`` (with and without a seek) must agree with it.
"""

from __future__ import annotations

import json
import struct
import av
import numpy as np
import pytest

from compvid import decode_clip, probe
from compvid.sampling import random_start, sliding_window_starts
from compvid.shards import RECORD_FIELDS, ShardRecord
from compvid.synthetic import EncoderRecipe, encode_frames, moving_frames
from compvid.timeline import Timeline, timeline_runs

N, W, H, DX, DY = 40, 96, 64, 2, 1
CLIP = 6


def ticks_from_gaps(gaps: list[int], n: int = N) -> list[int]:
    """Presentation times in ticks: 0, then the gaps cycled."""
    ticks = [0]
    for k in range(n - 1):
        ticks.append(ticks[-1] + gaps[k % len(gaps)])
    return ticks


# The file: pictures at 0, 11, 17, 24 ... frame slots, the slots between them empty.
AVI_TICKS = ticks_from_gaps([11, 6, 7, 1, 2, 3])
AVI_FPS = 25
VFR_TICKS = {"steps": ticks_from_gaps([1, 2, 3]), "bursts": ticks_from_gaps([1] * 11 + [100])}
VFR_FPS = 30  # one tick = 1/30 s
AVI_RECIPES = {
    "mpeg4": EncoderRecipe("mpeg4", ".avi", {"g": "12"}),
    "mjpeg": EncoderRecipe("mjpeg", ".avi", pix_fmt="yuvj420p"),
    "cinepak": EncoderRecipe("cinepak", ".avi", pix_fmt="rgb24"),
}
PICTURE_TYPES = {1: "I", 2: "P", 3: "B", 4: "S"}  # FFmpeg's AVPictureType
X264 = {"x264-params": "keyint=12:min-keyint=12:scenecut=0"}  # default B-pyramid, a key frame every 12 pictures


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    frames, _ = moving_frames(num_frames=N, width=W, height=H, dx=DX, dy=DY, seed=11)
    return frames


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, pictures):
    """Factory: (codec, timing) -> (path, ticks, fps), encoded once per module."""
    root = tmp_path_factory.mktemp("index-space")
    cache: dict[tuple[str, str], tuple] = {}

    def make(codec: str, timing: str):
        if (codec, timing) not in cache:
            if codec in AVI_RECIPES:
                recipe, ticks, fps = AVI_RECIPES[codec], AVI_TICKS, AVI_FPS
            else:
                recipe, ticks, fps = EncoderRecipe("libx264", codec, X264), VFR_TICKS[timing], VFR_FPS
            path = encode_frames(pictures, root / f"{codec.strip('.')}-{timing}{recipe.suffix}", recipe=recipe,
                                 fps=fps, timestamps=ticks)
            cache[codec, timing] = (path, ticks, fps)
        return cache[codec, timing]

    return make


def decoded_by_pyav(path) -> tuple[int, np.ndarray, list[str], float]:
    """The reference: (pictures PyAV's iteration puts out, their times in seconds, picture types,
    the stream's tick in seconds)."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        tick = float(container.streams.video[0].time_base)
        return len(frames), np.array([f.time for f in frames]), [PICTURE_TYPES.get(int(f.pict_type), "?") for f in frames], tick


def avi_video_chunks(path) -> list[int]:
    """Sizes of the video chunks ('00dc' / '00db') in the AVI's 'movi' list, in file order (a plain RIFF walk)."""
    data = open(path, "rb").read()
    sizes: list[int] = []

    def walk(pos: int, end: int) -> None:
        while pos + 8 <= end:
            tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
            if tag in (b"RIFF", b"LIST"):
                walk(pos + 12, pos + 8 + size)
            elif tag in (b"00dc", b"00db"):
                sizes.append(size)
            pos += 8 + size + (size & 1)

    walk(0, len(data))
    return sizes


def nearest_pictures(decoded: np.ndarray, pictures: np.ndarray) -> list[int]:
    """Index of the source picture each decoded frame is closest to (lossy coding)."""
    err = np.abs(decoded[:, None].astype(np.int16) - pictures[None].astype(np.int16)).mean(axis=(2, 3, 4))
    return err.argmin(axis=1).tolist()


def clip_starts(info) -> list[int]:
    """0, key frames and the frames after them, and starts whose clip runs past the end."""
    keys = [k for k in info.keyframe_indices if 0 < k < info.num_frames - CLIP]
    return sorted({0, 3} | {s for k in keys[:2] for s in (k, k + 1)} | {info.num_frames - CLIP,
                                                                        info.num_frames - 2})


def check_same_index_space(path, pictures, ticks, fps, *, with_mv: bool) -> None:
    count, times, types, tick = decoded_by_pyav(path)
    info = probe(path)
    assert info.num_frames == count == N, "probe counts the decoded pictures"
    whole = decode_clip(path, start=0, num_frames=N, info=info, with_mv=with_mv)
    assert nearest_pictures(whole.rgb, pictures) == list(range(N)), "frame i is the i-th picture"
    assert not whole.padded and whole.num_padded == 0
    np.testing.assert_array_equal(whole.frame_indices, np.arange(N))
    # Each frame's presentation time, as the stream stamps it, to its tick (MKV keeps milliseconds).
    np.testing.assert_allclose(whole.pts_seconds, times, atol=tick + 1e-9)
    np.testing.assert_allclose(whole.pts_seconds, np.asarray(ticks) / fps, atol=5e-4 + 1e-9)
    assert list(whole.frame_types) == types
    for start in clip_starts(info):
        for kw in ({"info": info}, {}):
            label = f"start={start} {'with' if kw else 'without'} probe info"
            clip = decode_clip(path, start=start, num_frames=CLIP, with_mv=with_mv, **kw)
            stop = min(start + CLIP, N)
            real = stop - start
            assert clip.num_padded == CLIP - real and clip.padded == (real < CLIP), label + ": pads only past the end"
            np.testing.assert_array_equal(clip.rgb[:real], whole.rgb[start:stop], err_msg=label)
            np.testing.assert_array_equal(clip.rgb[real:], np.repeat(whole.rgb[N - 1:], CLIP - real, 0),
                                          err_msg=label)
            np.testing.assert_array_equal(clip.pts_seconds[:real], whole.pts_seconds[start:stop], err_msg=label)
            if with_mv:
                np.testing.assert_allclose(clip.mv[:, :real], whole.mv[:, start:stop], atol=1e-5, err_msg=label)


def check_motion_per_picture(path) -> None:
    """The field of frame i relates picture i to its reference picture: (DX, DY) px per picture step,
    whether the pictures are one tick or a hundred apart."""
    clip = decode_clip(path, start=0, num_frames=N)
    inner = clip.mv[:, :, 16:-16, 16:-16]
    medians = np.median(inner.reshape(2, N, -1), axis=2)  # (2, T)
    moving = np.flatnonzero(clip.has_mv)
    assert len(moving) >= N // 2, clip.frame_types
    for i in moving:
        assert abs(medians[0, i] - DX) <= 0.5 and abs(medians[1, i] - DY) <= 0.5, (
            f"frame {i} ({clip.frame_types[i]}, {clip.pts_seconds[i]:.3f} s): median {medians[:, i]}")


@pytest.mark.parametrize("codec", sorted(AVI_RECIPES))
def test_avi_with_null_frames_counts_pictures_not_slots(encoded, pictures, codec):
    path, ticks, fps = encoded(codec, "null")
    chunks = avi_video_chunks(path)
    slots = ticks[-1] + 1
    # The file really holds the empty slots: one chunk per slot, N of them coded.
    assert len(chunks) == slots and sum(1 for s in chunks if s > 0) == N
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == slots  # the header counts slots
    check_same_index_space(path, pictures, ticks, fps, with_mv=codec == "mpeg4")


def test_avi_with_null_frames_is_probed_as_variable_rate(encoded):
    path, ticks, fps = encoded("mpeg4", "null")
    info = probe(path)
    gaps = np.diff(ticks) / fps
    assert info.variable_frame_rate
    assert info.frame_interval_seconds == pytest.approx((gaps.min(), float(np.median(gaps)), gaps.max()))
    assert info.duration_seconds == pytest.approx((ticks[-1] + 1) / fps)  # the slots the file spans
    assert not [w for w in info.warnings if "truncated" in w], "empty slots are no truncation"


def test_avi_with_null_frames_motion_per_picture(encoded):
    check_motion_per_picture(encoded("mpeg4", "null")[0])


@pytest.mark.parametrize("container", [".mp4", ".mkv"])
@pytest.mark.parametrize("timing", sorted(VFR_TICKS))
def test_variable_frame_rate_counts_pictures(encoded, pictures, container, timing):
    path, ticks, fps = encoded(container, timing)
    check_same_index_space(path, pictures, ticks, fps, with_mv=True)
    info = probe(path)
    gaps = np.diff(ticks) / fps
    assert info.variable_frame_rate
    lo, median, hi = info.frame_interval_seconds
    assert (lo, median, hi) == pytest.approx((gaps.min(), float(np.median(gaps)), gaps.max()), abs=1e-3)
    # First picture to the end of the last: the timestamps' span and one more picture's interval.
    assert ticks[-1] / fps < info.duration_seconds <= ticks[-1] / fps + gaps.max() + 1e-3


@pytest.mark.parametrize("container", [".mp4", ".mkv"])
@pytest.mark.parametrize("timing", sorted(VFR_TICKS))
def test_variable_frame_rate_motion_per_picture(encoded, container, timing):
    check_motion_per_picture(encoded(container, timing)[0])


def test_shard_records_keep_the_timing(encoded):
    path = encoded(".mkv", "bursts")[0]
    info = probe(path)
    facts = info.to_dict()
    record = json.loads(json.dumps({name: facts[name] for name in RECORD_FIELDS if name in facts}))
    got = ShardRecord.from_dict(record).video_info()
    for name in ("num_frames", "duration_seconds", "variable_frame_rate", "frame_interval_seconds", "timeline"):
        assert getattr(got, name) == getattr(info, name), name


@pytest.mark.parametrize("codec, timing", [("mpeg4", "null"), (".mkv", "bursts")])
def test_samplers_stay_inside_the_pictures(encoded, pictures, codec, timing):
    path = encoded(codec, timing)[0]
    info = probe(path)
    rng = np.random.default_rng(0)
    starts = sliding_window_starts(info.num_frames, num_frames=8, frame_step=2)
    starts += [random_start(info.num_frames, num_frames=8, frame_step=2, rng=rng) for _ in range(4)]
    for start in starts:
        clip = decode_clip(path, start=start, num_frames=8, frame_step=2, with_mv=False, info=info)
        assert not clip.padded, f"start={start}"
        assert nearest_pictures(clip.rgb, pictures) == list(range(start, start + 16, 2))


def test_constant_rate_is_not_flagged(moving_video):
    path = moving_video("h264", num_frames=16, width=64, height=48)
    info = probe(path)
    assert not info.variable_frame_rate
    assert info.frame_interval_seconds == pytest.approx((1 / 25, 1 / 25, 1 / 25))
    assert info.duration_seconds == pytest.approx(16 / 25)


def test_timeline_names_the_nearest_picture_in_bursts():
    """Pictures 1 ms apart between pauses of a second: the mean interval (fps) is far larger than the
    gaps inside a burst, so a quarter of it reaches the neighbours; the nearest time must win."""
    times = [b + k / 1000 for b in (0.0, 1.0, 2.0) for k in range(10)]
    fps = len(times) / 3.0
    timeline = Timeline(timeline_runs(times, fps, tick_seconds=1e-3), fps, len(times))
    assert [timeline.index_at(t) for t in times] == list(range(len(times)))
    assert [timeline.index_near(t + 2e-4) for t in times] == list(range(len(times)))
    assert timeline.index_at(0.5) is None
    assert [timeline.time_of(i) for i in range(len(times))] == pytest.approx(times, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_timeline_lookups_equal_a_search_over_every_frame_time(seed):
    """index_near is the frame of nearest time and index_at that frame within a quarter frame, as
    a search over every frame's time says, on timelines of one run and of many (gaps, bursts,
    skipped slots), for times before, between and after the frames."""
    rng = np.random.default_rng(seed)
    fps = 25.0
    steps = rng.choice([1, 1, 1, 2, 5], size=60) / fps if seed else np.full(60, 1 / fps)  # seed 0: one run
    steps[rng.integers(0, 60, 3)] = rng.uniform(1e-3, 2.0, 3) if seed else 1 / fps
    times = (0.3 + np.concatenate([[0.0], np.cumsum(steps[:-1])])).tolist()
    timeline = Timeline(timeline_runs(times, fps, tick_seconds=1e-4), fps, len(times))
    assert (len(timeline.runs) == 1) == (seed == 0)
    grid = np.asarray([timeline.time_of(i) for i in range(len(times))])
    assert grid == pytest.approx(times, abs=1e-9)
    for t in rng.uniform(-0.5, times[-1] + 1.0, 400).tolist() + times:
        want = int(np.argmin(np.abs(grid - t)))
        assert timeline.index_near(t) == want, t
        near = abs(grid[want] - t) <= 0.25 / fps
        assert timeline.index_at(t) == (want if near else None), t


def test_timeline_keeps_times_to_the_tick():
    """A run may absorb a time only as far off its grid as the stream's tick: times are served as stamped."""
    fps, tick = 15.0, 1 / 30
    ticks = ticks_from_gaps([1, 2, 3], 12)
    times = [k * tick for k in ticks]
    timeline = Timeline(timeline_runs(times, fps, tick_seconds=tick), fps, len(times))
    assert [timeline.time_of(i) for i in range(len(times))] == pytest.approx(times, abs=1e-9)
    assert Timeline(timeline_runs([k / 25 for k in range(50)], 25.0, tick_seconds=1 / 25), 25.0, 50).runs == ((0, 0.0),)


def test_empty_packets_inside_the_stream_do_not_end_decoding(tmp_path, pictures, monkeypatch):
    """An empty packet is what a demuxer hands out for a null frame; sent to the decoder it would
    mean end of stream, and every picture after it would be lost. probe skips them, so must decoding."""
    import compvid.decode as decode_module

    path = encode_frames(pictures, tmp_path / "plain.mkv", recipe=EncoderRecipe("mpeg4", ".mkv", {"g": "12"}))
    whole = decode_clip(path, start=0, num_frames=N, with_mv=False)
    real_open = decode_module.open_video

    class WithEmptyPackets:
        def __init__(self, container):
            self._container = container

        def __getattr__(self, name):
            return getattr(self._container, name)

        def demux(self, stream):
            for n, packet in enumerate(self._container.demux(stream)):
                if n % 5 == 3:
                    empty = av.Packet(0)
                    empty.stream, empty.time_base = stream, stream.time_base
                    yield empty
                yield packet

    def open_with_empty_packets(source):
        container, stream = real_open(source)
        return WithEmptyPackets(container), stream

    monkeypatch.setattr(decode_module, "open_video", open_with_empty_packets)
    clip = decode_clip(path, start=0, num_frames=N, with_mv=False)
    assert not clip.padded and not clip.warnings, clip.warnings
    np.testing.assert_array_equal(clip.rgb, whole.rgb)
    tail = decode_clip(path, start=N - 4, num_frames=4, with_mv=False)
    np.testing.assert_array_equal(tail.rgb, whole.rgb[N - 4:])

