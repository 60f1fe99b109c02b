"""``probe``: what a video is, read from its container without decoding pictures."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import av

from compvid.errors import CorruptVideoError
from compvid.lead_in import MAX_PACKETS, LeadIn
from compvid.raw_order import RawKeyOrder
from compvid.source import VideoSource, open_video, source_name
from compvid.timeline import Run, timeline_runs

MvSource = Literal["bitstream", "estimated"]

# Codecs whose FFmpeg decoders export AVMotionVector side data with flags2=+export_mvs:
# H.264 and the MPEG-1/2 and H.263/MPEG-4 Part 2 family (mpegvideo based). Named by
# codec id (FFmpeg's descriptor name, see codec_id_name), not by decoder: the decoder
# of msmpeg4v3 is called "msmpeg4", that of flv1 "flv".
BITSTREAM_MV_CODECS = frozenset(
    {
        "h264",
        "mpeg1video",
        "mpeg2video",
        "mpeg4",
        "h263",
        "h263p",
        "h263i",
        "flv1",
        "msmpeg4v1",
        "msmpeg4v2",
        "msmpeg4v3",
        "wmv1",
        "wmv2",
    }
)


def codec_id_name(name: str) -> str:
    """FFmpeg's name of the codec id behind a decoder or codec name ("msmpeg4" -> "msmpeg4v3",
    "flv" -> "flv1", "libdav1d" -> "av1"); the name itself when FFmpeg knows no such decoder."""
    try:
        return av.codec.Codec(name, "r").canonical_name
    except (av.error.FFmpegError, ValueError, TypeError):
        return name


def stream_codec_id_name(stream: av.video.stream.VideoStream) -> str:
    """The codec id name of a stream: the one identity compvid compares codecs by."""
    cc = stream.codec_context
    return cc.codec.canonical_name if cc.codec is not None else codec_id_name(cc.name)


def mv_source_for_codec(codec: str) -> MvSource:
    """'bitstream' where FFmpeg's decoder exports vectors, else 'estimated'.

    ``codec``: a codec id name or a decoder name (both "msmpeg4v3" and "msmpeg4" work).
    """
    return "bitstream" if codec_id_name(codec) in BITSTREAM_MV_CODECS else "estimated"


@dataclass(frozen=True)
class VideoInfo:
    """Facts about the first video stream of a source.

    ``codec`` is FFmpeg's codec id name ("msmpeg4v3", "flv1"), not its decoder's
    ("msmpeg4", "flv"). Frame ``i`` is the ``i``-th picture in presentation order (counted from 0),
    whatever its time: ``num_frames`` counts pictures, not the frame slots of a container header.
    ``fps`` is the stream's average frame rate in frames per second as the container states it (for
    AVI the slot rate); ``variable_frame_rate``: the pictures are not evenly spaced (gaps, skipped
    slots, a varying rate), so frame ``i`` is not at ``start_seconds + i / fps``;
    ``frame_interval_seconds``: (min, median, max) time between consecutive pictures (None without
    timestamps); ``duration_seconds``: first picture to the end of the last, from the timestamps.
    ``rotation_degrees`` is the
    display rotation from the container's display matrix (counter-clockwise,
    one of 0, 90, 180, 270), which ``decode_clip`` applies. ``timeline``: the
    frames' presentation times as runs (compvid.timeline; empty when the packets
    carry no timestamps, None when not read), by which ``decode_clip`` tells
    which frame a seek landed on; ``keyframe_indices``: display indices of the key frames (in raw
    streams placed from the bitstream, compvid.raw_order); ``keyframe_sizes``: the packet size in bytes of
    each key frame, by which it tells the key frame a seek landed on in MPEG-PS
    and -TS, whose timestamps are stale there.
    """

    source: str
    container: str
    codec: str
    profile: str | None
    pix_fmt: str | None
    width: int
    height: int
    fps: float
    num_frames: int
    duration_seconds: float
    start_seconds: float
    keyframe_indices: tuple[int, ...]
    has_b_frames: bool
    mv_source: MvSource
    rotation_degrees: int = 0
    bit_rate: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    timeline: tuple[Run, ...] | None = None
    keyframe_sizes: tuple[int, ...] | None = None
    variable_frame_rate: bool = False
    frame_interval_seconds: tuple[float, float, float] | None = None  # (min, median, max)

    @property
    def max_gop(self) -> int:
        """Largest distance in frames between consecutive key frames (or to the end)."""
        bounds = list(self.keyframe_indices) + [self.num_frames]
        return max((b - a for a, b in zip(bounds, bounds[1:])), default=self.num_frames)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["keyframe_indices"] = list(self.keyframe_indices)
        d["warnings"] = list(self.warnings)
        d["timeline"] = None if self.timeline is None else [list(run) for run in self.timeline]
        d["keyframe_sizes"] = None if self.keyframe_sizes is None else list(self.keyframe_sizes)
        d["frame_interval_seconds"] = None if self.frame_interval_seconds is None else list(self.frame_interval_seconds)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def frame_rotation(frame: av.VideoFrame) -> int:
    """Display rotation of a decoded frame: 0, 90, 180 or 270 degrees counter-clockwise.

    From the frame's display matrix (containers store it per stream; FFmpeg
    hands it on with every frame). Other angles are rounded to quarter turns.
    """
    angle = getattr(frame, "rotation", 0) or 0
    return int(round(float(angle) / 90.0)) % 4 * 90


def probe(source: VideoSource) -> VideoInfo:
    """Read container and packet headers of ``source`` (path, bytes or binary file).

    Reads every packet header once (no picture decoding) to count frames and
    find key frames. Raises the errors of :func:`compvid.source.open_video`, and
    CorruptVideoError when the stream holds no packet at all.
    """
    name = source_name(source)
    container, stream = open_video(source)
    try:
        cc = stream.codec_context
        fps = _stream_fps(stream)
        # (presentation time in stream ticks, key?, bytes, duration in ticks or 0)
        stamps: list[tuple[int, bool, int, int]] = []
        reordered = False
        rotation = None  # read off the first decoded frame
        tried = 0
        last_pts = None
        timed = False  # some packet carries a timestamp (raw H.264 / HEVC streams carry none)
        warnings: list[str] = []
        # Untimed packets (raw .h264 / .hevc) come in decode order: what places their key frames; and
        # the H.264 / HEVC pictures the decoder drops, in any container.
        raw_order = RawKeyOrder(stream_codec_id_name(stream), cc.extradata)
        lead_in: LeadIn | None = None  # a stream whose first packet is no key frame: its lead-in decoded
        try:
            for n, packet in enumerate(container.demux(stream)):
                if packet.size == 0:
                    continue
                pts = packet.pts if packet.pts is not None else packet.dts
                timed = timed or pts is not None
                # HEVC: every packet (RASL pictures skipped, pictures discarded at a new sequence);
                # H.264: the first (whether the stream starts at an IDR picture) and untimed ones.
                if pts is None or raw_order.codec == "hevc" or not stamps:
                    raw_order.add(memoryview(packet), bool(packet.is_keyframe))
                if pts is None:
                    pts = n
                if last_pts is not None and pts < last_pts:
                    reordered = True
                last_pts = pts
                if not stamps and not packet.is_keyframe:
                    lead_in = LeadIn(cc)
                stamps.append((pts, bool(packet.is_keyframe), packet.size, int(packet.duration or 0)))
                if lead_in is not None:
                    lead_in.feed(packet, packet.pts)
                elif rotation is None and tried < 32:
                    # The display rotation travels with decoded frames: decode
                    # the first packets until one comes out.
                    tried += 1
                    try:
                        frames = packet.decode()
                    except av.error.FFmpegError:
                        frames = []
                    if frames:
                        rotation = frame_rotation(frames[0])

        except av.error.FFmpegError as e:
            warnings.append(f"demuxing stopped early after {len(stamps)} packets: {e}")
        if not stamps:
            raise CorruptVideoError(f"{name}: the video stream holds no packets; the file is truncated or empty")
        # Still in decode order: drop the pictures the decoder never puts out (compvid.raw_order: a
        # stream cut at an HEVC CRA or H.264 open-GOP I picture, an HEVC end of sequence); untimed
        # packets are numbered.
        dropped = raw_order.skipped(len(stamps), [pts for pts, _, _, _ in stamps] if timed else None)
        if lead_in is not None:  # and the pictures before the first key frame that never come out
            leading = (raw_order.leading_pictures_of(lead_in.first_key, len(stamps))
                       if lead_in.first_key is not None else None)
            dropped, problem = lead_in.dropped(dropped, leading)
            warnings.extend([problem] if problem else [])
            if lead_in.truncated:
                warnings.append(f"no key frame in the first {MAX_PACKETS} packets: pictures the decoder does not put "
                                "out before the first key frame are counted as frames")
            if lead_in.first_frame is not None:
                rotation = frame_rotation(lead_in.first_frame)
            if any(dropped):
                warnings.append(f"the stream starts {lead_in.first_key or 0} pictures before its first key frame; "
                                f"the decoder puts out {sum(not d for d in dropped[:len(lead_in.fed)])} of its first "
                                f"{len(lead_in.fed)} packets' pictures: frame 0 is the first picture it puts out")
        stamps = [st for st, skip in zip(stamps, dropped) if not skip]
        if not stamps:
            raise CorruptVideoError(
                f"{name}: the decoder puts out none of the stream's {len(dropped)} pictures (no key frame it can "
                "start from: the file was cut or damaged before its first key frame)")
        warnings.extend(raw_order.warnings)
        if not timed:
            stamps = [(n, key, size, dur) for n, (_, key, size, dur) in enumerate(stamps)]
        stamps.sort()
        tb = stream.time_base or Fraction(1, 1)
        listed = int(stream.frames or 0)  # the container's count holds the pictures the decoder drops, too
        if listed > _slots_read(stamps, tb, fps, timed) + sum(dropped):
            warnings.append(
                f"the container lists {listed} frames but only {len(stamps)} could be read: "
                "the file is truncated; clips past the readable part cannot be decoded"
            )
        key_packets = tuple(i for i, (_, key, _, _) in enumerate(stamps) if key)  # in timestamp order
        # Without timestamps the packets are in decode order: leading pictures are shown before their key.
        keyframes = key_packets if timed else raw_order.display_keys(key_packets, len(stamps), dropped)
        start = float(stamps[0][0] * tb)
        num_frames = len(stamps)
        codec = stream_codec_id_name(stream)
        times = [float(pts * tb) for pts, _, _, _ in stamps]
        intervals = _frame_intervals([pts for pts, _, _, _ in stamps], tb) if timed else None
        duration = _duration(stamps, tb, fps, intervals) if timed else (num_frames / fps if fps > 0 else 0.0)
        return VideoInfo(
            source=name,
            container=container.format.name,
            codec=codec,
            profile=cc.profile,
            pix_fmt=cc.pix_fmt,
            width=int(cc.width),
            height=int(cc.height),
            fps=fps,
            num_frames=num_frames,
            duration_seconds=duration,
            start_seconds=start,
            keyframe_indices=keyframes or (0,),
            has_b_frames=reordered,
            mv_source=mv_source_for_codec(codec),
            rotation_degrees=rotation or 0,
            bit_rate=int(cc.bit_rate) if cc.bit_rate else None,
            warnings=tuple(warnings),
            timeline=timeline_runs(times, fps, tick_seconds=float(tb)) if timed and fps > 0 else (),
            keyframe_sizes=tuple(stamps[k][2] for k in key_packets) if key_packets else None,
            variable_frame_rate=intervals is not None and _uneven(intervals, float(tb)),
            frame_interval_seconds=intervals,
        )
    finally:
        container.close()


def _slots_read(stamps: list[tuple[int, bool, int, int]], tb: Fraction, fps: float, timed: bool) -> int:
    """Frames the packets read account for, as a container header counts them: the packets, or
    the frame slots their timestamps span where that is more (AVI lists its empty slots, the
    null frames, in its frame count)."""
    if not timed or fps <= 0:
        return len(stamps)
    return max(len(stamps), round(float((stamps[-1][0] - stamps[0][0]) * tb) * fps) + 1)


def _frame_intervals(ticks: list[int], tb: Fraction) -> tuple[float, float, float] | None:
    """(min, median, max) seconds between consecutive pictures at sorted ``ticks``; None for one picture."""
    if len(ticks) < 2:
        return None
    gaps = sorted(b - a for a, b in zip(ticks, ticks[1:]))
    mid = len(gaps) // 2
    median = gaps[mid] if len(gaps) % 2 else Fraction(gaps[mid - 1] + gaps[mid], 2)
    return float(gaps[0] * tb), float(median * tb), float(gaps[-1] * tb)


def _uneven(intervals: tuple[float, float, float], tick: float) -> bool:
    """Whether the pictures are unevenly spaced: intervals differing by more than the rounding of
    timestamps to the time base (one tick) or 1 % of the median interval, the larger."""
    lo, median, hi = intervals
    return hi - lo > max(tick, 0.01 * median) + 1e-9


def _duration(stamps: list[tuple[int, bool, int, int]], tb: Fraction, fps: float,
              intervals: tuple[float, float, float] | None) -> float:
    """Seconds from the first picture to the end of the last: the last picture lasts its packet's
    duration, else one frame at ``fps``, else the median interval."""
    last_pts, _, _, last_ticks = stamps[-1]
    span = float((last_pts - stamps[0][0]) * tb)
    if last_ticks > 0:
        return span + float(last_ticks * tb)
    if fps > 0:
        return span + 1 / fps
    return span + (intervals[1] if intervals else 0.0)


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0
