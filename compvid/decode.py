"""``decode_clip``: RGB frames and dense motion-vector fields of one clip.

One pass of one decoder serves both views: it seeks to the key frame at or
before the first needed frame, decodes in display order until the last needed
frame (plus the few frames that hold its future references), converts only the
needed frames to RGB at the output size (compvid.rgb: swscale, scaled in YUV), and
turns the codec's motion vectors into per-frame-step dense fields
(compvid.motion). Codecs whose decoder exports no vectors get fields estimated
from the decoded frames (compvid.estimate).
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Sequence

import av
import numpy as np

from compvid.errors import ClipRangeError, CorruptVideoError, InvalidArgumentError
from compvid.motion import (
    BlockMotion,
    RawVectors,
    match_field_readings,
    match_reference_distances_frames,
    match_with_field_hypothesis,
    rasterize,
    rasterize_frames,
    rasterize_rows,
    unused_list_rows,
)
from compvid.nal import max_num_ref_frames, nal_length_size, scan_access_unit
from compvid.probe import MvSource, VideoInfo, frame_rotation, probe, stream_codec_id_name
from compvid.rgb import RgbConverter
from compvid.source import VideoSource, open_video, source_name
from compvid.timeline import Timeline

log = logging.getLogger(__name__)

# Fork safety. DataLoader workers are forked from a process that may hold
# cyclic garbage with PyAV frames whose swscale contexts own slice threads.
# Collected in the child, freeing those thread pools waits forever on threads
# that do not exist there (seen as a hung worker). Collect before every fork,
# in the parent, where the threads exist; compvid's own conversions use one
# swscale thread so they never create such pools.
os.register_at_fork(before=gc.collect)

MvMode = Literal["normalized", "raw"]
MV_MODES: tuple[str, ...] = ("normalized", "raw")

# FFmpeg AVPictureType values -> letters.
_PICT = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}
# Codecs (by codec id name, compvid.probe.codec_id_name) without reference B-frames: the reference of every vector follows
# from the GOP (past = previous I/P/S frame, future = next I/P/S frame).
_GOP_CODECS = frozenset(
    {"mpeg1video", "mpeg2video", "mpeg4", "h263", "h263p", "h263i", "flv1",
     "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "wmv1", "wmv2"}
)
# MPEG-4 Part 2 B-frames in direct mode export zero rows although the block
# moves: its motion is the co-located motion of the next reference frame.
_DIRECT_MODE_CODECS = frozenset({"mpeg4"})
_REFERENCE_TYPES = frozenset({"I", "P", "S"})
# GOP codecs whose field-predicted macroblocks FFmpeg exports as two 16x8 rows, one per field
# (compvid._gop_field_readings). MPEG-4 Part 2 interlaced vectors export otherwise: untouched.
_FIELD_READING_CODECS = frozenset({"mpeg1video", "mpeg2video"})
# Containers whose demuxer, after a seek, hands stale timestamps to the first pictures
# (PES timestamps re-attached where the parser lands): MPEG-PS and MPEG-TS.
_STALE_PTS_AFTER_SEEK_FORMATS = frozenset({"mpeg", "mpegts"})
# Farthest reference (display frames) considered by motion-compensated matching.
MAX_REFERENCE_DISTANCE = 16


@dataclass(frozen=True)
class Clip:
    """One clip of ``T`` frames.

    rgb: uint8 (T, H, W, 3) or None. mv: float32 (2, T, H, W) or None, forward
    displacement (channel 0 = x right +, 1 = y down +) in pixels of the output
    resolution per *source* frame step (normalized mode) or per reference
    (raw mode). has_mv: bool (T,), False where a frame has no vectors (key
    frames, all-intra frames); its field is 0. mv_filled: bool (T,), True where
    the field was filled from the next reference frame (MPEG-4 direct-mode
    B-frames). frame_indices: int64 (T,) display indices served (after padding):
    index i is the i-th decoded picture in presentation order, whatever its time.
    pts_seconds: float64 (T,) each frame's presentation time in seconds, as the
    stream stamps it (irregular in variable-rate files and AVIs with null frames).
    padded: some trailing frames repeat the last frame (only past the end).
    frames_decoded: pictures the decoder produced to serve this clip.
    unsure_fraction: share of moving vectors whose reference distance could
    not be told apart (they took their frame's most common distance).
    decode_errors: packets the decoder rejected while serving this clip (their
    pictures are missing; a frame served in a missing one's place repeats the
    one before it).
    concealed: bool (T,), True where the decoder flagged the frame's own picture
    as damaged (FFmpeg's decode error flags: it found corrupt data and
    concealed it). damaged: bool (T,), concealed or possibly predicted from a
    concealed picture: displayed after the reference frame before it and
    before the next key frame (for MPEG-1/2/4-style codecs a concealed B-frame
    is no reference: only itself). Such frames show concealment artefacts.
    Damage the decoder does not notice is not flagged (H.264 CABAC parses a
    good share of corrupt data without noticing).
    """

    source: str
    rgb: np.ndarray | None
    mv: np.ndarray | None
    has_mv: np.ndarray
    mv_filled: np.ndarray
    frame_indices: np.ndarray
    frame_types: tuple[str, ...]
    pts_seconds: np.ndarray
    mv_source: MvSource
    mv_mode: MvMode
    padded: bool
    num_padded: int
    frames_decoded: int
    unsure_fraction: float
    vector_counts: np.ndarray | None = None  # int32 (T,) block vectors behind each field
    decode_errors: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)
    concealed: np.ndarray | None = None  # bool (T,); None = none concealed
    damaged: np.ndarray | None = None  # bool (T,); None = none damaged

    def __post_init__(self) -> None:
        t = self.frame_indices.shape[0]
        for name in ("concealed", "damaged"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(t, bool))
            assert getattr(self, name).shape == (t,)
        assert self.has_mv.shape == (t,) and self.pts_seconds.shape == (t,)
        assert len(self.frame_types) == t
        if self.rgb is not None:
            assert self.rgb.dtype == np.uint8 and self.rgb.ndim == 4 and self.rgb.shape[0] == t
        if self.mv is not None:
            assert self.mv.dtype == np.float32 and self.mv.shape[:2] == (2, t)

    @property
    def num_frames(self) -> int:
        return int(self.frame_indices.shape[0])

    @property
    def num_damaged(self) -> int:
        """Served frames that are damaged (concealed or predicted from a concealed picture)."""
        return int(self.damaged.sum())


def output_size(
    width: int, height: int, size: int | tuple[int, int] | Sequence[int] | None
) -> tuple[int, int]:
    """(H', W') for ``size``: None = native, int = short side (aspect kept), (H, W) = exact."""
    if size is None:
        return height, width
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        if size <= 0:
            raise InvalidArgumentError(f"size must be a positive short side in pixels, got {size}")
        scale = size / min(width, height)
        return max(1, round(height * scale)), max(1, round(width * scale))
    try:
        h, w = (int(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"size must be None, a short side int or (H, W), got {size!r}") from e
    if h <= 0 or w <= 0:
        raise InvalidArgumentError(f"size (H, W) must be positive, got {(h, w)}")
    return h, w


def decode_clip(
    source: VideoSource,
    *,
    start: int,
    num_frames: int = 32,
    frame_step: int = 1,
    size: int | tuple[int, int] | None = None,
    with_rgb: bool = True,
    with_mv: bool = True,
    mv_mode: MvMode = "normalized",
    info: VideoInfo | None = None,
    threads: int = 1,
) -> Clip:
    """Decode ``num_frames`` frames every ``frame_step`` from display index ``start``
    (frame ``i``: the ``i``-th picture in presentation order, as :func:`compvid.probe` counts).

    ``source``: path, bytes or binary file. ``size``: None (native), short side
    int, or (H, W); RGB and MV share it. Indices past the end repeat the last
    frame (``padded``). ``info`` (from :func:`compvid.probe`) saves a probe: without
    it (or without its ``timeline``) the source is probed first, because frame
    indices are the probe's (compvid.timeline). ``threads``: decoder slice threads
    (frame threads would drop motion vectors; parallelism belongs to many decoders;
    with more than one, FFmpeg's H.264 error concealment is off and damaged
    pictures go unreported in ``Clip.damaged``).
    """
    name = source_name(source)
    _check_args(name, start=start, num_frames=num_frames, frame_step=frame_step, mv_mode=mv_mode,
                with_rgb=with_rgb, with_mv=with_mv, threads=threads)
    if info is None:
        info = probe(source)
    elif info.timeline is None:  # e.g. read from a shard record written before timelines
        info = dataclasses.replace(info, timeline=probe(source).timeline)
    container, stream = open_video(source)
    try:
        return _decode(container, stream, name, start=start, num_frames=num_frames,
                       frame_step=frame_step, size=size, with_rgb=with_rgb, with_mv=with_mv,
                       mv_mode=mv_mode, info=info, threads=threads)
    finally:
        container.close()


def _check_args(name: str, *, start, num_frames, frame_step, mv_mode, with_rgb, with_mv, threads) -> None:
    if not isinstance(num_frames, (int, np.integer)) or num_frames <= 0:
        raise InvalidArgumentError(f"{name}: num_frames must be a positive int, got {num_frames!r}")
    if not isinstance(frame_step, (int, np.integer)) or frame_step <= 0:
        raise InvalidArgumentError(f"{name}: frame_step must be a positive int, got {frame_step!r}")
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise InvalidArgumentError(f"{name}: start must be a frame index >= 0, got {start!r}")
    if mv_mode not in MV_MODES:
        raise InvalidArgumentError(f"{name}: mv_mode must be one of {MV_MODES}, got {mv_mode!r}")
    if not (with_rgb or with_mv):
        raise InvalidArgumentError(f"{name}: with_rgb and with_mv are both False; ask for at least one view")
    if threads < 0:
        raise InvalidArgumentError(f"{name}: threads must be >= 0, got {threads}")


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """Luma plane as uint8 (H, W), without colour conversion for 8-bit YUV/gray."""
    fmt = frame.format
    if fmt.name.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and fmt.components[0].bits == 8:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return rows[: frame.height, : frame.width]
    return frame.to_ndarray(format="gray", threads=1)  # no swscale threads (fork safety, below)


class _Window:
    """What the decode loop keeps per display index inside the clip's window."""

    def __init__(self, rotation: int | None) -> None:
        self.rotation = rotation  # display rotation, counter-clockwise degrees
        self.interlaced: set[int] = set()  # display indices of frames coded interlaced (field macroblocks possible)
        self.types: dict[int, str] = {}
        self.concealed: set[int] = set()  # display indices the decoder flagged as damaged (every frame decoded)
        self.pts: dict[int, float] = {}
        self.luma: dict[int, np.ndarray] = {}
        self.rows: dict[int, np.ndarray | None] = {}  # FFmpeg's side-data table per frame (structured)
        self.rgb: dict[int, np.ndarray] = {}
        self.estimated: dict[int, BlockMotion] = {}
        # H.264: packet pts -> (decode order, reference picture or None = unknown,
        # IDR pictures decoded so far), and per display index once the frame is out.
        self.packet_refs: dict[int, tuple[int, bool | None, int]] = {}
        self.decode_order: dict[int, int] = {}
        self.reference: dict[int, bool | None] = {}
        self.idr_epoch: dict[int, int] = {}
        self.max_refs: int | None = None  # H.264 SPS max_num_ref_frames (None: unknown)
        self._raw: dict[int, RawVectors | None] = {}

    def vectors(self, i: int) -> RawVectors | None:
        """Exported vectors of display frame ``i`` (None: no side data or no rows)."""
        if i not in self._raw:
            rows = self.rows.get(i)
            self._raw[i] = RawVectors.from_side_data(rows) if rows is not None else None
        return self._raw[i]

    def may_reference(self, ref: int, i: int) -> bool:
        """Whether frame ``ref`` can be a reference of frame ``i`` (unknown: yes):
        a reference picture, decoded before ``i`` and after the last IDR before ``i``."""
        if self.reference.get(ref) is False:
            return False
        a, b = self.decode_order.get(ref), self.decode_order.get(i)
        if a is None or b is None:
            return True
        return a < b and self.idr_epoch[ref] == self.idr_epoch[i]

    def luma_stack(self, indices: Sequence[int]) -> tuple[np.ndarray, dict[int, int]]:
        """Luma planes of ``indices`` as uint8 (F, H, W) and display index -> row."""
        order = sorted(set(indices))
        return np.stack([self.luma[i] for i in order]), {i: r for r, i in enumerate(order)}


def _decode(container, stream, name, *, start, num_frames, frame_step, size, with_rgb, with_mv,
            mv_mode, info, threads) -> Clip:
    cc = stream.codec_context
    codec = stream_codec_id_name(stream)  # codec id, as in the codec sets above
    mv_source: MvSource = info.mv_source
    win_rotation = info.rotation_degrees
    fps = info.fps
    if fps <= 0:
        raise CorruptVideoError(f"{name}: the stream declares no frame rate; cannot index frames")
    tb = float(stream.time_base)
    timeline = Timeline(info.timeline or (), fps, info.num_frames)
    total = info.num_frames
    if total > 0 and start >= total:
        raise ClipRangeError(f"{name}: start={start} is past the end (the video has {total} frames)")

    wanted = [start + i * frame_step for i in range(num_frames)]
    if total > 0:
        wanted = [min(i, total - 1) for i in wanted]
    first, last = wanted[0], max(wanted)
    need_set = set(wanted)

    bitstream = with_mv and mv_source == "bitstream"
    estimate = with_mv and mv_source == "estimated"
    matching = bitstream and mv_mode == "normalized" and codec not in _GOP_CODECS
    gop_rule = bitstream and mv_mode == "normalized" and codec in _GOP_CODECS
    lookback = MAX_REFERENCE_DISTANCE if (matching or gop_rule) else 0

    if bitstream:
        cc.options = {"flags2": "+export_mvs"}
    stream.thread_type = "SLICE"
    stream.codec_context.thread_count = threads

    def decoded_size(rotation: int) -> tuple[int, int]:
        """(H, W) to convert to in coded orientation, so that after the display
        rotation the picture has the requested size."""
        quarter_turn = rotation in (90, 270)
        disp_w, disp_h = (cc.height, cc.width) if quarter_turn else (cc.width, cc.height)
        try:
            out_h, out_w = output_size(disp_w, disp_h, size)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{name}: {e}") from None
        return (out_w, out_h) if quarter_turn else (out_h, out_w)

    decoded_size(0)  # validate ``size`` before decoding anything

    to_rgb = RgbConverter()  # keeps its swscale contexts for the whole clip
    decoded = 0
    errors = 0
    warnings: list[str] = []
    # Seek to the key frame at or before the first needed frame. Some
    # containers (MPEG-PS, AVI without index) land after the target: then seek
    # again from an earlier key frame until the first decoded frame is not past it.
    seek_points = _seek_points(first, info, timeline)
    if seek_points[0] == 0 and first > 0 and not timeline.has_timestamps:
        warnings.append(f"the stream carries no timestamps (a raw elementary stream): decoded from its first "
                        f"frame to reach frame {first}; remux it (e.g. to .mkv) for fast seeking")
    attempt = 0
    rewind = False  # an attempt read packets already: go back to the start before decoding from it
    while True:
        win = _Window(rotation=win_rotation)
        win.max_refs = max_num_ref_frames(cc.extradata) if matching and codec == "h264" else None
        estimator = None
        if estimate:
            from compvid.estimate import MotionEstimator  # deferred: builds a filter graph

            # 16-px blocks leave too few blocks on small frames (a 96x72 frame has 6x4).
            estimator = MotionEstimator(cc.width, cc.height, block_size=8 if min(cc.width, cc.height) < 240 else 16)
        seek_frame = seek_points[min(attempt, len(seek_points) - 1)]
        if seek_frame > 0 and not _seek(container, stream, timeline.time_of(seek_frame), tb):
            # The container cannot seek (raw streams, broken indexes): decode from the start.
            warnings.append(f"seeking failed; decoded from the first frame to reach frame {first}")
            attempt, seek_frame = len(seek_points) - 1, 0
        if seek_frame == 0 and rewind and not _seek(container, stream, 0.0, tb):
            raise CorruptVideoError(
                f"{name}: the container cannot seek back to its first frame to reach frame {first}; "
                "remux the file (e.g. ffmpeg -i IN -c copy OUT.mkv) or decode it from the start")
        rewind = True
        packets = container.demux(stream)
        indexer = _FrameIndexer(timeline, after_seek=seek_frame > 0)
        if seek_frame > 0 and container.format.name in _STALE_PTS_AFTER_SEEK_FORMATS and info.keyframe_sizes:
            packets = _note_landing_key(packets, indexer, info, timeline, tb)
        if matching and codec == "h264":
            window = (first - lookback - frame_step, last + MAX_REFERENCE_DISTANCE)
            packets = _track_references(packets, win, nal_length_size(cc.extradata), window=window, tb=tb,
                                        timeline=timeline)
        outcome = _run_decoder(
            packets, stream, name=name, indexer=indexer, timeline=timeline,
            first=first, last=last, frame_step=frame_step, lookback=lookback, need_set=need_set, win=win,
            matching=matching, bitstream=bitstream, with_rgb=with_rgb, estimator=estimator,
            decoded_size=decoded_size, to_rgb=to_rgb, wait_for_future=gop_rule or matching)
        decoded += outcome.decoded
        errors += outcome.errors
        warnings.extend(outcome.warnings)
        if outcome.unplaced:
            # No two frames after the seek agreed on where they lie: count from the start instead.
            warnings.append(f"the frames after seeking to frame {seek_frame} carry timestamps of no frame; "
                            f"decoded from the first frame")
            attempt = len(seek_points) - 1
        elif outcome.overshot:
            attempt += 1
        else:
            break
        cc.flush_buffers()

    # Serve only frames that hold what the clip returns (RGB of needed frames):
    # a frame the decoder did not put out is stood in for by the nearest one before it.
    servable = win.rgb if with_rgb else win.types
    available = sorted(i for i in servable if i >= first)
    if not available:
        raise ClipRangeError(
            f"{name}: no frame decoded at or after start={start}"
            + (f" (the video has {total} frames)" if total else "")
            + "; the clip lies past the end or the data is corrupt"
        )
    last_real = max(i for i in available if i <= last) if any(i <= last for i in available) else available[0]
    served = []
    for i in wanted:
        served.append(i if i in servable else _nearest_before(available, i, last_real))
    num_padded = sum(1 for a, b in zip(wanted, served) if a != b) + sum(
        1 for i in range(num_frames) if total > 0 and start + i * frame_step > total - 1
    )
    damaged_set, sources = _damaged_frames(served, win.concealed, win.types, info.keyframe_indices,
                                           b_frames_are_references=codec not in _GOP_CODECS)
    if damaged_set:
        warnings.append(f"damaged data: the decoder concealed errors in frame(s) {index_ranges(sources)}; served "
                        f"frame(s) {index_ranges(damaged_set)} show them or are predicted from them")

    if win.interlaced and bitstream:
        # FFmpeg's exporter (libavcodec/mpegutils.c) doubles the vertical
        # component of field-coded 16x8 and 8x16 partitions into frame rows but
        # not of 16x16 and 8x8 ones, and says neither which blocks are field
        # coded nor which field they predict from. Normalised H.264 vectors are
        # read as frame or field vectors by motion compensation
        # (motion.match_with_field_hypothesis); raw ones stay as exported.
        if matching:
            warnings.append("interlaced frames: field and frame macroblocks told apart by motion compensation")
        elif gop_rule and codec in _FIELD_READING_CODECS:
            warnings.append("interlaced frames: field-predicted macroblocks read as predicted from either field "
                            "by motion compensation")
        elif codec == "h264":
            warnings.append("interlaced frames: raw vectors of field-coded 16x16 and 8x8 blocks are in field "
                            "lines (half their height)")
        else:  # MPEG-4 Part 2 (or raw vectors): which field a field vector uses is not known
            warnings.append("interlaced frames: field-predicted blocks are taken as exported, in frame rows and "
                            "whole-frame reference distances; predictions from the other field (half a frame "
                            "away) are not corrected")
    rgb = None
    if with_rgb:
        rgb = np.stack([win.rgb[i] for i in served])  # (T, H, W, 3)
        rgb = _rotate_rgb(rgb, win.rotation or 0)

    mv = None
    vector_counts = None
    has_mv = np.zeros(num_frames, bool)
    filled = np.zeros(num_frames, bool)
    unsure_total = moving_total = 0
    if with_mv:
        unique = sorted(set(served))
        frame_size, out_size = (cc.height, cc.width), decoded_size(win.rotation or 0)
        if estimate:
            flags: dict[int, tuple[bool, bool]] = {}
            motions: list[BlockMotion] = []
            for i in unique:
                motion, present, was_filled, unsure, moving = _estimated_motion(i, win)
                unsure_total += unsure
                moving_total += moving
                motions.append(motion)
                flags[i] = (present, was_filled)
            fields = rasterize_frames(motions, frame_size=frame_size, out_size=out_size)  # (2, U, H, W)
            present_u = np.array([flags[i][0] for i in unique], bool)
            filled_u = np.array([flags[i][1] for i in unique], bool)
            counts_u = np.array([len(m) for m in motions], np.int32)
        else:
            joined, frame_of_row, present_u, filled_u, unsure_total, moving_total = _bitstream_motion(
                unique, win, codec=codec, mv_mode=mv_mode, gop_rule=gop_rule, matching=matching)
            fields = rasterize_rows(joined, frame_of_row, len(unique), frame_size=frame_size,
                                    out_size=out_size)  # (2, U, H, W)
            counts_u = np.bincount(frame_of_row, minlength=len(unique)).astype(np.int32)
        position = {i: n for n, i in enumerate(unique)}
        pick = [position[i] for i in served]
        mv = fields[:, pick] if unique != served else fields  # (2, T, H, W)
        mv = _rotate_mv(mv, win.rotation or 0)
        has_mv = present_u[pick]
        filled = filled_u[pick]
        vector_counts = counts_u[pick]

    return Clip(
        source=name,
        rgb=rgb,
        mv=mv,
        has_mv=has_mv,
        mv_filled=filled,
        frame_indices=np.asarray(served, np.int64),
        frame_types=tuple(win.types[i] for i in served),
        pts_seconds=np.asarray([win.pts[i] for i in served], np.float64),
        mv_source=mv_source,
        mv_mode=mv_mode,
        padded=num_padded > 0,
        num_padded=num_padded,
        frames_decoded=decoded,
        unsure_fraction=unsure_total / moving_total if moving_total else 0.0,
        vector_counts=vector_counts,
        decode_errors=errors,
        warnings=tuple(warnings),
        concealed=np.array([i in win.concealed for i in served], bool),
        damaged=np.array([i in damaged_set for i in served], bool),
    )


def _damaged_frames(served: Sequence[int], concealed: set[int], types: dict[int, str],
                    keyframes: Sequence[int], *, b_frames_are_references: bool) -> tuple[set[int], list[int]]:
    """(served frames that are damaged, the concealed frames that damage them).

    A concealed picture damages itself and every frame that may predict from
    it: those displayed after the last reference frame (I/P/S) before it (the
    B-frames that take it as their future reference, and everything after)
    and before the next key frame. Without the decode order this may include
    H.264 B-frames decoded before it. A concealed B-frame of a codec whose
    B-frames are never references (MPEG-1/2/4 Part 2 ...) damages only itself.
    """
    served_set = set(served)
    damaged: set[int] = set()
    sources: list[int] = []
    for c in sorted(concealed):
        if types.get(c) == "B" and not b_frames_are_references:
            reach = {c} & served_set
        else:
            earlier_refs = [i for i, t in types.items() if i < c and t in _REFERENCE_TYPES]
            lo = max(earlier_refs) + 1 if earlier_refs else c
            k = bisect.bisect_right(keyframes, c)
            hi = keyframes[k] - 1 if k < len(keyframes) else max(served_set | {c})
            reach = {i for i in served_set if lo <= i <= hi}
        if reach:
            damaged |= reach
            sources.append(c)
    return damaged, sources


def index_ranges(indices) -> str:
    """Sorted display indices as runs: ``3-5, 9``."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


@dataclass
class _Outcome:
    decoded: int = 0
    errors: int = 0
    overshot: bool = False  # the seek landed past the clip's first frame
    unplaced: bool = False  # the frames after the seek could not be placed (compvid._FrameIndexer)
    warnings: list[str] = field(default_factory=list)


def _run_decoder(packets, stream, *, name, indexer, timeline, first, last, frame_step, lookback, need_set,
                 win, matching, bitstream, with_rgb, estimator, decoded_size, to_rgb, wait_for_future) -> _Outcome:
    """Decode ``packets`` in display order into ``win`` until the clip is served.

    Keeps, per display index in the clip's window: picture type, pts, luma
    (for reference matching), exported vectors, RGB of needed frames, and the
    estimator's fields. Stops after the last needed frame once the next
    reference frame (which B-frames may point to) has arrived. After a seek,
    a first placed frame past ``first`` means the seek overshot (``overshot``).
    """
    out = _Outcome()
    future_ready = not wait_for_future
    last_seen = -1

    def serve(idx: int, frame: av.VideoFrame) -> bool:
        """Keep what the clip needs of display frame ``idx``; True once the clip is served."""
        nonlocal future_ready, last_seen
        if last_seen < 0 and idx > first and indexer.after_seek:
            out.overshot = True
            return True
        last_seen = idx
        if win.rotation is None:
            win.rotation = frame_rotation(frame)
        ptype = _PICT.get(int(frame.pict_type), "?")
        win.types[idx] = ptype  # every frame: the GOP rule looks back to the last reference
        if frame.is_corrupt:  # every frame: damage before the clip spreads into it (see damaged_frames)
            win.concealed.add(idx)
        if first - lookback - frame_step <= idx <= last + MAX_REFERENCE_DISTANCE:
            needed = idx in need_set
            seconds = timeline.time_of(idx)
            if seconds is None:  # no timestamps in the stream: the frame's own, or its index at the frame rate
                seconds = frame.time if frame.time is not None else idx / timeline.fps
            _keep(win, idx, frame, ptype, seconds=seconds,
                  matching=matching, vectors=bitstream and (needed or wait_for_future and not matching),
                  needed=needed, rgb=with_rgb and needed,
                  size=decoded_size(win.rotation) if with_rgb and needed else None,
                  to_rgb=to_rgb, field_luma=wait_for_future and not matching)
            if estimator is not None and idx >= first - 1:
                for j, motion in estimator.push(frame, idx):
                    win.estimated[j] = motion
        if idx > last and ptype in _REFERENCE_TYPES:
            future_ready = True
        return idx >= last and (future_ready or idx >= last + MAX_REFERENCE_DISTANCE)

    try:
        served = False
        for frame in _pictures(packets, stream, out, name):
            out.decoded += 1
            if any(serve(idx, placed) for idx, placed in indexer.place(frame)):
                served = True
                break
        if not served:
            any(serve(idx, placed) for idx, placed in indexer.finish())
    except _Unplaceable:
        out.unplaced = True
        return out
    except av.error.FFmpegError as e:
        out.errors += 1
        out.warnings.append(f"decoding stopped at display frame {last_seen + 1}: {e}")
    if out.overshot:
        return out
    if indexer.after_seek and last_seen < first and out.errors == 0:
        # The seek landed past every packet of the clip (MPEG-PS near the
        # end): retry from an earlier key frame.
        out.overshot = True
        return out
    if estimator is not None:
        for j, motion in estimator.flush():
            win.estimated[j] = motion
    if out.errors:
        out.warnings.append(f"{out.errors} corrupt packet(s) skipped")
    return out


def _pictures(packets, stream, out: _Outcome, name: str):
    """The frames the decoder puts out for ``packets``, then those it still holds.

    Empty packets are not sent: to the decoder an empty packet means end of stream
    (it would put out nothing more). PyAV ends every demux with one, and a demuxer
    may pass a null frame (an empty chunk, AVI's skipped slot) on as one; probe
    counts neither, and the decoder is drained once the packets run out.
    """
    for packet in packets:
        if not packet.size:
            continue
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as e:
            out.errors += 1
            log.debug("%s: corrupt packet skipped: %s", name, e)
            continue
        yield from frames
    # Drain the frames held for reordering (B-frames) or by delay; the empty packet carries the
    # time base the frames' times are read in.
    drain = av.Packet()
    drain.time_base = stream.time_base
    yield from stream.decode(drain)


class _Unplaceable(Exception):
    """The frames after a seek carry no timestamps that say where they lie."""


class _FrameIndexer:
    """Display indices of the frames a decoder puts out, in the probe's index space.

    Frames come out in display order: once the first is placed, the rest are
    counted, except that a timestamp naming a frame two or more ahead is
    followed (the decoder dropped frames of corrupt data; one ahead is not, as
    AVI with packed B-frames swaps neighbouring timestamps). The first frame is
    placed by looking its timestamp up in the timeline (compvid.timeline), never
    by ``t * fps``. After a seek the first timestamps can be wrong (MPEG-PS: the
    demuxer re-splits the stream where it lands and hands stale timestamps to
    the first pictures), so a seek's frames are held until two of them agree on
    where the first one lies. Decoding from the start, the first frame is placed
    at once: by its timestamp, or as frame 0 when it has none.
    """

    MAX_HELD = 2 * MAX_REFERENCE_DISTANCE  # frames to wait for agreement before giving up

    def __init__(self, timeline: Timeline, *, after_seek: bool) -> None:
        self.timeline = timeline
        self.after_seek = after_seek
        self.held: list[av.VideoFrame] = []  # frames waiting for a place
        self.votes: Counter[int] = Counter()  # index of the first held frame -> frames that say so
        self.next: int | None = None  # index of the next frame, once placed
        # MPEG-PS/TS after a seek: timestamps are not used at all; the key frame the
        # seek landed on (compvid._note_landing_key: None = not known) places the frames.
        self.stale_timestamps = False
        self.landed_key: int | None = None

    def place(self, frame: av.VideoFrame) -> list[tuple[int, av.VideoFrame]]:
        """(display index, frame) for each frame placed by this one (none while waiting)."""
        at = None if self.stale_timestamps else self.timeline.index_at(frame.time)
        if self.next is not None:
            idx = at if at is not None and at >= self.next + 2 else self.next
            self.next = idx + 1
            return [(idx, frame)]
        self.held.append(frame)
        if self.stale_timestamps:
            if not frame.key_frame:
                if len(self.held) >= self.MAX_HELD:
                    raise _Unplaceable
                return []
            if self.landed_key is None:
                raise _Unplaceable
            return self._release(self.landed_key - (len(self.held) - 1))
        first = at - (len(self.held) - 1) if at is not None else None
        if not self.after_seek:
            return self._release(first if first is not None and first >= 0 else 0)
        if first is not None and first >= 0:
            self.votes[first] += 1
            if self.votes[first] >= 2:
                return self._release(first)
        if len(self.held) >= self.MAX_HELD:
            raise _Unplaceable
        return []

    def finish(self) -> list[tuple[int, av.VideoFrame]]:
        """At the end of the packets: frames still held, placed by the landing key frame or the best vote."""
        if self.held and self.stale_timestamps:
            raise _Unplaceable
        return self._finish_by_votes()

    def _finish_by_votes(self) -> list[tuple[int, av.VideoFrame]]:
        if not self.held:
            return []
        if not self.votes:
            raise _Unplaceable
        return self._release(self.votes.most_common(1)[0][0])

    def _release(self, first: int) -> list[tuple[int, av.VideoFrame]]:
        placed = [(first + k, f) for k, f in enumerate(self.held)]
        self.held = []
        self.next = first + len(placed)
        return placed


def _keep(win, idx, frame, ptype, *, seconds, matching, vectors, needed, rgb, size, to_rgb,
          field_luma=False) -> None:
    """Keep what the clip needs of display frame ``idx``: type and pts always;
    the exported vectors (``vectors``: frames served, or every frame for the
    GOP rule, whose B-frames borrow from neighbours); luma of frames served and
    of possible references (matching), and of interlaced frames (``field_luma``:
    the GOP rule's field readings); RGB of frames served."""
    win.types[idx] = ptype
    interlaced = bool(getattr(frame, "interlaced_frame", False))
    if interlaced:
        win.interlaced.add(idx)
    win.pts[idx] = float(seconds)
    if win.packet_refs and frame.pts is not None:
        known = win.packet_refs.get(int(frame.pts))
        if known is not None:
            win.decode_order[idx], win.reference[idx], win.idr_epoch[idx] = known
    if matching and (needed or win.reference.get(idx) is not False) or field_luma and interlaced:
        win.luma[idx] = _luma(frame)  # a view into the frame's buffer; stacked (copied) once
    if vectors:
        side = frame.side_data.get("MOTION_VECTORS")
        rows = side.to_ndarray() if side is not None else None
        win.rows[idx] = rows if rows is not None and len(rows) else None
    if rgb:
        win.rgb[idx] = to_rgb(frame, *size)


def _seek_points(first: int, info: VideoInfo, timeline: Timeline) -> list[int]:
    """Display frames to seek to, best first: the key frame at or before ``first``,
    then earlier ones (for containers whose seeking overshoots), ending at 0.
    Streams without timestamps (raw H.264 / HEVC) cannot tell where a seek
    landed: they are decoded from the start."""
    if first <= 0 or not timeline.has_timestamps:
        return [0]
    keys = [k for k in info.keyframe_indices if k <= first]
    return [p for p in dict.fromkeys(keys[::-1][:3]) if p > 0] + [0]


def _note_landing_key(packets, indexer: _FrameIndexer, info: VideoInfo, timeline: Timeline, tb: float):
    """Pass ``packets`` through, telling ``indexer`` which key frame an MPEG-PS/TS seek landed on.

    The first key packet's timestamp is stale there (up to a few frames off), its
    bytes are not: the key frame of the same packet size nearest that timestamp.
    """
    indexer.stale_timestamps = True
    for packet in packets:
        if packet.is_keyframe and packet.size and indexer.landed_key is None and indexer.next is None:
            near = timeline.index_near(packet.pts * tb) if packet.pts is not None else 0
            same = [k for k, n in zip(info.keyframe_indices, info.keyframe_sizes) if n == packet.size]
            indexer.landed_key = min(same, key=lambda k: abs(k - near)) if same else None
        yield packet


def _seek(container, stream, seconds: float, tb: float) -> bool:
    """Seek to the key frame at or before ``seconds``; False where the container cannot seek."""
    try:
        container.seek(int(round(seconds / tb)), stream=stream, backward=True, any_frame=False)
    except (av.error.FFmpegError, OSError) as e:
        log.debug("seeking to %.3f s failed: %s", seconds, e)
        return False
    return True


def _nearest_before(available: list[int], i: int, fallback: int) -> int:
    before = [a for a in available if a <= i]
    return before[-1] if before else fallback


def _track_references(packets, win: _Window, length_size: int | None, *, window: tuple[int, int], tb: float,
                      timeline: Timeline):
    """Pass ``packets`` through, noting each H.264 packet's decode order and
    whether it holds a reference picture (``win.packet_refs``, keyed by pts;
    read only for packets whose timestamp lies near the display ``window``)."""
    order = epoch = 0
    lo, hi = window[0] - 2, window[1] + 2
    for packet in packets:
        if packet.pts is not None and packet.size:
            ref, idr = None, False  # far from the window: nothing in it refers across
            if lo <= timeline.index_near(packet.pts * tb) <= hi:
                try:
                    ref, idr = scan_access_unit(memoryview(packet), length_size)
                except (IndexError, ValueError, TypeError):
                    ref, idr = None, False
            epoch += idr
            win.packet_refs[int(packet.pts)] = (order, ref, epoch)
            order += 1
        yield packet


def _concat_rows(tables: list[np.ndarray]) -> np.ndarray:
    """Concatenate FFmpeg side-data tables (structured arrays) without numpy's
    per-field promotion: as bytes, when they share one dtype."""
    dtype = tables[0].dtype
    if len(tables) == 1:
        return tables[0]
    if all(t.dtype == dtype and t.flags.c_contiguous for t in tables):
        return np.concatenate([t.view(np.uint8).reshape(-1) for t in tables]).view(dtype)
    return np.concatenate(tables)


def _estimated_motion(i: int, win: _Window) -> tuple[BlockMotion, bool, bool, int, int]:
    """(motion, has vectors, filled, #unsure, #moving) of display frame ``i`` (estimated fields)."""
    motion = win.estimated.get(i)
    if motion is None:
        return BlockMotion.empty(), False, False, 0, 0
    return motion, len(motion) > 0, False, int(motion.unsure.sum()), len(motion)


def _bitstream_motion(unique: list[int], win: _Window, *, codec: str, mv_mode: str, gop_rule: bool,
                      matching: bool) -> tuple[BlockMotion, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Per-frame-step vectors of the display frames ``unique``, all frames at once.

    Returns (motion, frame_of_row: intp (N,) position in ``unique``, has vectors
    bool (U,), filled bool (U,), #unsure, #moving).
    """
    u = len(unique)
    present = np.zeros(u, bool)
    filled = np.zeros(u, bool)
    tables = [win.rows.get(i) for i in unique]
    with_rows = [n for n, tab in enumerate(tables) if tab is not None]
    if not with_rows:
        return BlockMotion.empty(), np.zeros(0, np.intp), present, filled, 0, 0
    present[with_rows] = True
    sizes = np.array([len(tables[n]) for n in with_rows], np.intp)
    member = np.repeat(np.arange(len(with_rows)), sizes)  # (N,) position in ``with_rows``
    frame_of_row = np.asarray(with_rows, np.intp)[member]  # (N,) position in ``unique``
    vectors = RawVectors.from_side_data(_concat_rows([tables[n] for n in with_rows]))
    if mv_mode == "raw":
        return vectors.raw(), frame_of_row, present, filled, 0, 0
    moving = int((np.hypot(vectors.mx, vectors.my) >= 0.25).sum())
    if matching:
        frames = [unique[n] for n in with_rows]
        if win.max_refs == 1 and not win.interlaced and (vectors.direction < 0).all():
            # One reference frame in the decoded picture buffer (SPS): every row
            # predicts from the reference picture decoded last. No matching needed.
            last = _last_references(frames, win)
            if last is not None:
                distance = (np.asarray(frames) - last)[member].astype(np.int32)
                return vectors.normalise(distance), frame_of_row, present, filled, 0, moving
        kept = sorted(win.luma)
        candidates: list[dict[int, int]] = []
        for i in frames:
            lo = bisect.bisect_left(kept, i - MAX_REFERENCE_DISTANCE)
            hi = bisect.bisect_right(kept, i + MAX_REFERENCE_DISTANCE)
            candidates.append({j - i: j for j in kept[lo:hi] if j != i and win.may_reference(j, i)})
        stack, plane_of = win.luma_stack(frames + [j for c in candidates for j in c.values()])
        candidates = [{o: plane_of[j] for o, j in c.items()} for c in candidates]
        current = np.array([plane_of[i] for i in frames], np.intp)
        interlaced = np.array([i in win.interlaced for i in frames], bool)
        if interlaced.any():  # 16x16 and 8x8 rows of interlaced frames: field or frame macroblock?
            square = ((vectors.w == 16) & (vectors.h == 16)) | ((vectors.w == 8) & (vectors.h == 8))
            vectors, distance, unsure, cost = match_with_field_hypothesis(
                vectors, member, stack, current, candidates, interlaced[member] & square)
        else:
            distance, unsure, cost = match_reference_distances_frames(vectors, member, stack, current, candidates)
        motion = vectors.normalise(distance, unsure)
        keep = ~unused_list_rows(vectors, cost, frame_of_row=member)
        if not keep.all():
            motion, frame_of_row = _subset(motion, keep), frame_of_row[keep]
        return motion, frame_of_row, present, filled, int(unsure.sum()), moving
    if not gop_rule:
        raise AssertionError("normalised bitstream vectors need matching or the GOP rule")
    # GOP rule: past reference = previous I/P/S frame, future = next one.
    past = np.array([_reference_distance(win, unique[n], -1) for n in with_rows], np.int32)
    future = np.array([_reference_distance(win, unique[n], +1) for n in with_rows], np.int32)
    distance = np.where(vectors.direction < 0, past[member], future[member]).astype(np.float32)
    if win.interlaced and codec in _FIELD_READING_CODECS:
        vectors, distance = _gop_field_readings(vectors, np.asarray([unique[n] for n in with_rows])[member],
                                                distance, win)
    motion = vectors.normalise(distance)
    direct = [m for m, n in enumerate(with_rows)
              if codec in _DIRECT_MODE_CODECS and win.types.get(unique[n]) == "B"]
    if not direct:
        return motion, frame_of_row, present, filled, 0, moving
    # Direct-mode B-frames: the other frames' rows stay as they are; these are
    # rebuilt one by one (a whole donor when every row is zero, as in FFmpeg 8).
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    direct_rows = np.zeros(len(with_rows), bool)
    direct_rows[direct] = True
    stay = ~direct_rows[member]
    parts: list[BlockMotion] = [_subset(motion, stay)]
    owners: list[np.ndarray] = [frame_of_row[stay]]
    # Served reference frames are normalised already (their rows all point to
    # the previous reference): they donate without reading their side data again.
    donors: dict[int, BlockMotion] = {
        unique[n]: _slice(motion, slice(bounds[m], bounds[m + 1]))
        for m, n in enumerate(with_rows) if not direct_rows[m] and win.types.get(unique[n]) in _REFERENCE_TYPES}
    for m in direct:
        n = with_rows[m]
        rows = slice(bounds[m], bounds[m + 1])
        own = _slice(motion, rows)
        raw = RawVectors(*(getattr(vectors, f)[rows] for f in ("direction", "mx", "my", "cx", "cy", "w", "h")))
        own, has, was_filled, _, _ = _fill_direct_mode(unique[n], raw, own, win, int(future[m]), int(past[m]), donors)
        present[n], filled[n] = has, was_filled
        parts.append(own)
        owners.append(np.full(len(own), n, np.intp))
    return _concat_all(parts), np.concatenate(owners), present, filled, 0, moving


def _last_references(frames: list[int], win: _Window) -> np.ndarray | None:
    """Per display frame of ``frames``, the reference picture decoded last before it (same
    IDR period), as display indices; None when the decode order of some frame is unknown."""
    refs = [(order, j) for j, order in win.decode_order.items() if win.reference.get(j)]
    out = []
    for i in frames:
        if i not in win.decode_order:
            return None
        before = [(order, j) for order, j in refs
                  if order < win.decode_order[i] and win.idr_epoch[j] == win.idr_epoch[i]]
        if not before or max(before)[1] >= i:
            return None
        out.append(max(before)[1])
    return np.asarray(out, np.int64)


def _gop_field_readings(vectors: RawVectors, frame_of: np.ndarray, distance: np.ndarray,
                        win: _Window) -> tuple[RawVectors, np.ndarray]:
    """MPEG-1/2 field prediction in interlaced frames: which field of the reference?

    FFmpeg exports a field-predicted macroblock as two 16x8 rows, the upper
    one for its top field lines and the lower one for its bottom field lines,
    with the vertical motion doubled to frame rows as if each predicted from
    the same field of the reference frame. Each such row is matched (on its
    own field lines, against the GOP rule's reference) both that way and as
    predicted from the other field: one row more or less, and half a frame
    nearer or farther (the bottom field is half a frame later). The other
    reading wins where it matches clearly better (by a grey level).

    ``frame_of``: display index of each row; ``distance``: float32 (N,) GOP-rule
    distances. Returns the vectors (``my`` in frame rows) and distances.
    """
    ref_of = frame_of + np.where(vectors.direction < 0, -distance, distance).astype(np.int64)
    rows = np.flatnonzero((vectors.w == 16) & (vectors.h == 8) & np.isin(frame_of, sorted(win.interlaced))
                          & np.isin(frame_of, sorted(win.luma)) & np.isin(ref_of, sorted(win.luma)))
    if rows.size == 0:
        return vectors, distance
    frames = sorted(set(frame_of[rows].tolist()))
    stack, plane_of = win.luma_stack(frames + ref_of[rows].tolist())
    k_of = {i: k for k, i in enumerate(frames)}
    candidates: list[dict[int, int]] = [{} for _ in frames]
    for i, r in zip(frame_of[rows].tolist(), ref_of[rows].tolist()):
        candidates[k_of[i]][r - i] = plane_of[r]
    member = np.array([k_of[i] for i in frame_of[rows].tolist()], np.intp)
    current = np.array([plane_of[i] for i in frames], np.intp)
    cy = vectors.cy[rows]
    parity = (cy % 16 >= 8).astype(np.int64)  # upper row: top field lines, lower row: bottom ones
    block = RawVectors(vectors.direction[rows], vectors.mx[rows], vectors.my[rows], vectors.cx[rows],
                       (cy // 16 * 16 + 8 + parity).astype(np.int32),  # the macroblock, sampled on one parity
                       np.full(rows.size, 16, np.int32), np.full(rows.size, 16, np.int32))
    same, (o_my, o_distance, _, o_cost) = match_field_readings(block, member, stack, current, candidates, parity)
    other = o_cost < same[3] - 1.0
    fixed_my, fixed_distance = vectors.my.copy(), distance.copy()
    fixed_my[rows[other]] = o_my[other]
    fixed_distance[rows[other]] = o_distance[other]
    fixed = RawVectors(vectors.direction, vectors.mx, fixed_my, vectors.cx, vectors.cy, vectors.w, vectors.h)
    return fixed, fixed_distance


def _reference_distance(win: _Window, i: int, direction: int) -> int:
    for step in range(1, MAX_REFERENCE_DISTANCE + 1):
        t = win.types.get(i + direction * step)
        if t in _REFERENCE_TYPES:
            return step
    return 1


def _fill_direct_mode(i, vectors, motion, win, future, past, donors=None):
    """MPEG-4 Part 2 B-frames: rows exported as zero carry no motion; fill them.

    FFmpeg exports zero rows for MPEG-4 B-frame blocks (direct mode and, in
    FFmpeg 8, every B block), whatever the content does. In direct mode a B
    block moves as the co-located block of the next reference frame, so that
    block's motion per frame step stands in for it; when the next reference is
    intra (no vectors), the previous reference's motion does.
    Returns (motion, has_mv, filled, unsure, moving) like ``_estimated_motion``.
    """
    zero = (vectors.mx == 0) & (vectors.my == 0)
    moving = int((~zero).sum())
    if not zero.any():
        return motion, True, False, 0, moving
    donor = None
    donors = {} if donors is None else donors  # display index -> normalised motion, shared by a clip
    for offset in (future, -past):
        j = i + offset
        if j in donors:
            donor = donors[j]
            break
        rows = win.vectors(j)
        if rows is not None and len(rows) and win.types.get(j) in _REFERENCE_TYPES:
            donor = donors[j] = rows.normalise(np.full(len(rows), _reference_distance(win, j, -1), np.int32))
            break
    if donor is None:
        # Nothing to fill from: say so instead of passing zeros off as motion.
        return _subset(motion, ~zero), moving > 0, False, 0, moving
    if zero.all():  # FFmpeg 8 exports only zero rows for MPEG-4 B-frames: take the donor whole
        return donor, True, True, 0, moving
    own = _subset(motion, ~zero)
    covered = _covers(donor, _subset(motion, zero))
    return _concat(own, _subset(donor, covered)), True, True, 0, moving


def _slice(m: BlockMotion, rows: slice) -> BlockMotion:
    """Rows ``rows`` of ``m`` as views."""
    return BlockMotion(m.x0[rows], m.y0[rows], m.w[rows], m.h[rows], m.dx[rows], m.dy[rows], m.unsure[rows])


def _subset(m: BlockMotion, mask: np.ndarray) -> BlockMotion:
    return BlockMotion(m.x0[mask], m.y0[mask], m.w[mask], m.h[mask], m.dx[mask], m.dy[mask], m.unsure[mask])


def _concat(a: BlockMotion, b: BlockMotion) -> BlockMotion:
    return BlockMotion(*(np.concatenate([getattr(a, f), getattr(b, f)])
                         for f in ("x0", "y0", "w", "h", "dx", "dy", "unsure")))


def _concat_all(parts: Sequence[BlockMotion]) -> BlockMotion:
    if not parts:
        return BlockMotion.empty()
    return BlockMotion(*(np.concatenate([getattr(p, f) for p in parts])
                         for f in ("x0", "y0", "w", "h", "dx", "dy", "unsure")))


def _covers(candidates: BlockMotion, blocks: BlockMotion) -> np.ndarray:
    """Rows of ``candidates`` whose centre lies inside one of ``blocks``; bool (N_candidates,)."""
    if len(blocks) == 0 or len(candidates) == 0:
        return np.zeros(len(candidates), bool)
    cx = candidates.x0 + candidates.w // 2
    cy = candidates.y0 + candidates.h // 2
    # Round up to the macroblock grid so rasterize paints 8-16 px cells, not pixels.
    height = -(-int(max(cy.max() + 1, (blocks.y0 + blocks.h).max())) // 16) * 16
    width = -(-int(max(cx.max() + 1, (blocks.x0 + blocks.w).max())) // 16) * 16
    ones = BlockMotion(blocks.x0, blocks.y0, blocks.w, blocks.h, np.ones(len(blocks), np.float32),
                       np.zeros(len(blocks), np.float32), blocks.unsure)
    mask = rasterize(ones, frame_size=(height, width))[0] > 0.5  # (H, W) covered by a zero block
    inside = (cx >= 0) & (cy >= 0)
    out = np.zeros(len(candidates), bool)
    out[inside] = mask[cy[inside], cx[inside]]
    return out


def _rotate_rgb(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation (counter-clockwise degrees) to (T, H, W, 3)."""
    k = rotation // 90
    return np.ascontiguousarray(np.rot90(rgb, k, axes=(1, 2))) if k else rgb


def _rotate_mv(mv: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an MV field (2, T, H, W) counter-clockwise and its vectors with it.

    In image coordinates (y down) a counter-clockwise quarter turn maps a
    displacement (dx, dy) to (dy, -dx).
    """
    k = rotation // 90
    if not k:
        return mv
    out = np.ascontiguousarray(np.rot90(mv, k, axes=(2, 3)))
    dx, dy = out[0].copy(), out[1].copy()
    for _ in range(k):
        dx, dy = dy, -dx
    out[0], out[1] = dx, dy
    return out
