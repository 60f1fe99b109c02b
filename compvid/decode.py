"""``decode_clip``: RGB frames and dense motion-vector fields of one clip.

One pass of one decoder serves both views: it seeks to the key frame at or
before the first needed frame, decodes in display order until the last needed
frame (plus the few frames that hold its future references), converts only the
needed frames to RGB at the output size (compvid.rgb: swscale, scaled in YUV), and
turns the codec's motion vectors into per-frame-step dense fields
(compvid.motion) by the clip's motion-vector strategy (compvid.mv_strategy).
Codecs whose decoder exports no vectors get fields estimated from the decoded
frames (compvid.estimate).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import gc
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Sequence

import av
import numpy as np

from compvid.b_frame_runs import RUN_CODECS, BFrameRunFeed
from compvid.errors import ClipRangeError, CorruptVideoError, InvalidArgumentError
from compvid.frame_index import (
    STALE_PTS_AFTER_SEEK_FORMATS,
    FrameIndexer,
    Unplaceable,
    note_landing_key,
    seek,
    seek_points,
)
from compvid.frame_store import REFERENCE_TYPES, FrameStore, ReferenceOrder
from compvid.hevc_nal import top_sub_layer_pictures
from compvid.mv_gop import DIRECT_MODE_CODECS, GOP_CODECS, DirectModeFill, GopRule
from compvid.mv_matching import OneReference, ReferenceMatching
from compvid.mv_strategy import (
    MAX_REFERENCE_DISTANCE,
    EstimatedMotion,
    ExportedVectors,
    MotionStrategy,
    Needs,
)
from compvid.nal import max_num_ref_frames, nal_length_size, read_sps, scan_access_unit
from compvid.packet_feed import EXACT_PTS_FORMATS, PacketFeed
from compvid.probe import MvSource, VideoInfo, frame_rotation, probe, stream_codec_id_name
from compvid.rgb import RgbConverter
from compvid.source import VideoSource, open_video, source_name
from compvid.timeline import Timeline

if TYPE_CHECKING:
    from compvid.estimate import MotionEstimator

log = logging.getLogger(__name__)

# Fork safety. DataLoader workers are forked from a process that may hold
# cyclic garbage with PyAV frames whose swscale contexts own slice threads.
# Collected in the child, freeing those thread pools waits forever on threads
# that do not exist there (seen as a hung worker). Collect before every fork,
# in the parent, where the threads exist; compvid's own conversions use one
# swscale thread so they never create such pools.
os.register_at_fork(before=gc.collect)


# Stricter bitstream checks where they were measured to reveal damage and to flag nothing in clean
# files: H.264 CAVLC slices whose damaged data decodes to the picture's last macroblock with bits
# left over are flagged only with "aggressive" (tests/compvid/test_damage.py). CABAC slices have no
# such check in FFmpeg (it notices only reading past the data or an invalid value).
_ERROR_CHECKS: dict[str, dict[str, str]] = {"h264": {"err_detect": "aggressive"}}

# Block search of estimated fields (compvid.estimate). EPZS starts each block's search from the
# vectors found in the frame before (temporal predictors), so a field depends a little on where the
# estimator started: after a seek 0.01-0.04 % of pixels differ from the sequential decode, in
# the clip's first frames. The predictor-free searches ("esa", "umh") are seek-invariant to the pixel
# but cost 1.9-4.7x EPZS's clip time (README, "The motion-vector convention").
ESTIMATOR_METHOD = "epzs"

MvMode = Literal["normalized", "raw"]
MV_MODES: tuple[str, ...] = ("normalized", "raw")

# FFmpeg AVPictureType values -> letters.
_PICT = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}


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
    request = _Request(start, num_frames, frame_step, size, with_rgb, with_mv, mv_mode, threads)
    request.check(name)
    if info is None:
        info = probe(source)
    elif info.timeline is None:  # e.g. read from a shard record written before timelines
        info = dataclasses.replace(info, timeline=probe(source).timeline)
    container, stream = open_video(source)
    try:
        return _decode(container, stream, name, request, info)
    finally:
        container.close()


@dataclass(frozen=True)
class _Request:
    """decode_clip's keywords, as given (same names, same meanings), checked once by :meth:`check`."""

    start: int  # display index of the first frame
    num_frames: int  # T
    frame_step: int  # display frames between clip frames
    size: int | tuple[int, int] | Sequence[int] | None  # output size (output_size)
    with_rgb: bool
    with_mv: bool
    mv_mode: MvMode
    threads: int  # decoder slice threads (0: FFmpeg's choice)

    def check(self, name: str) -> None:
        """Refuse what no decode can serve, naming the source ``name`` (``size`` is checked once
        the picture size is known: _ClipPlan.decoded_size)."""
        if not isinstance(self.num_frames, (int, np.integer)) or self.num_frames <= 0:
            raise InvalidArgumentError(f"{name}: num_frames must be a positive int, got {self.num_frames!r}")
        if not isinstance(self.frame_step, (int, np.integer)) or self.frame_step <= 0:
            raise InvalidArgumentError(f"{name}: frame_step must be a positive int, got {self.frame_step!r}")
        if not isinstance(self.start, (int, np.integer)) or self.start < 0:
            raise InvalidArgumentError(f"{name}: start must be a frame index >= 0, got {self.start!r}")
        if self.mv_mode not in MV_MODES:
            raise InvalidArgumentError(f"{name}: mv_mode must be one of {MV_MODES}, got {self.mv_mode!r}")
        if not (self.with_rgb or self.with_mv):
            raise InvalidArgumentError(f"{name}: with_rgb and with_mv are both False; ask for at least one view")
        if not isinstance(self.threads, (int, np.integer)) or self.threads < 0:
            raise InvalidArgumentError(
                f"{name}: threads must be an int >= 0 (0: FFmpeg's choice), got {self.threads!r}")

    def asked(self) -> list[int]:
        """(T,) display index of each clip frame, before clamping to the video's end."""
        return [self.start + i * self.frame_step for i in range(self.num_frames)]


@functools.lru_cache(maxsize=None)
def _luma_is_plane_0(format_name: str) -> bool:
    """Whether plane 0 of pixel format ``format_name`` is its 8-bit luma (asked once per format)."""
    fmt = av.VideoFormat(format_name)
    return format_name.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and fmt.components[0].bits == 8


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """Luma plane as uint8 (H, W), without colour conversion for 8-bit YUV/gray."""
    if _luma_is_plane_0(frame.format.name):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        return rows[: frame.height, : frame.width]
    return frame.to_ndarray(format="gray", threads=1)  # no swscale threads (fork safety, below)


def _strategy_for(codec: str, mv_source: MvSource, mv_mode: MvMode, extradata: bytes | None) -> MotionStrategy:
    """The one motion-vector strategy of a clip (compvid.mv_strategy), from the codec id name
    (compvid.probe.codec_id_name), where its vectors come from and the mode asked for."""
    if mv_source == "estimated":
        return EstimatedMotion()
    if mv_mode == "raw":
        return ExportedVectors(codec)
    if codec in GOP_CODECS:
        return DirectModeFill(codec) if codec in DIRECT_MODE_CODECS else GopRule(codec)
    if codec == "h264" and max_num_ref_frames(extradata) == 1:
        return OneReference()
    return ReferenceMatching(decode_order=codec == "h264")


@dataclass(frozen=True)
class _ClipPlan:
    """What one clip asks of the decoder, fixed before the first packet."""

    name: str  # the source, for messages
    request: _Request
    wanted: tuple[int, ...]  # (T,) display index of each clip frame, clamped to the video's last
    needs: Needs  # what the motion strategy needs kept (nothing without motion)
    codec: str  # codec id name (compvid.probe.stream_codec_id_name)
    timeline: Timeline
    # Decoder context: its picture size is read when needed (the decoder may change it).
    codec_context: av.video.codeccontext.VideoCodecContext

    @property
    def first(self) -> int:
        return self.wanted[0]

    @property
    def last(self) -> int:
        return max(self.wanted)

    @functools.cached_property
    def need_set(self) -> frozenset[int]:
        return frozenset(self.wanted)

    @property
    def window(self) -> tuple[int, int]:
        """Display frames (first, last) whose pictures may matter: the clip's frames, the motion
        strategy's look-back before them, and possible future references after them."""
        return self.first - self.needs.lookback_frames - self.request.frame_step, self.last + MAX_REFERENCE_DISTANCE

    def decoded_size(self, rotation: int) -> tuple[int, int]:
        """(H, W) to convert to in coded orientation, so that after the display
        rotation (counter-clockwise degrees) the picture has the requested size."""
        cc = self.codec_context
        quarter_turn = rotation in (90, 270)
        disp_w, disp_h = (cc.height, cc.width) if quarter_turn else (cc.width, cc.height)
        try:
            out_h, out_w = output_size(disp_w, disp_h, self.request.size)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"{self.name}: {e}") from None
        return (out_w, out_h) if quarter_turn else (out_h, out_w)


# Codecs whose non-reference pictures (FFmpeg's skip_frame NONREF) nothing refers to: B-frames.
SKIP_NONREF_CODECS = frozenset({"mpeg1video", "mpeg2video", "mpeg4"})


def _decode(container, stream, name: str, request: _Request, info: VideoInfo) -> Clip:
    """decode_clip on an open container: plan the clip, choose its motion strategy, decode its
    window, then serve each wanted frame (or the nearest one before it) with its RGB and field."""
    cc = stream.codec_context
    if info.fps <= 0:
        raise CorruptVideoError(f"{name}: the stream declares no frame rate; cannot index frames")
    timeline = Timeline(info.timeline or (), info.fps, info.num_frames)
    total = info.num_frames
    if total > 0 and request.start >= total:
        raise ClipRangeError(f"{name}: start={request.start} is past the end (the video has {total} frames)")
    asked = request.asked()
    wanted = [min(i, total - 1) for i in asked] if total > 0 else asked

    codec = stream_codec_id_name(stream)  # codec id, as in compvid.mv_gop's codec sets
    strategy = _strategy_for(codec, info.mv_source, request.mv_mode, cc.extradata) if request.with_mv else None
    plan = _ClipPlan(name, request, tuple(wanted), strategy.needs if strategy else Needs(), codec, timeline, cc)
    _configure_decoder(stream, codec, plan.needs, request.threads)
    plan.decoded_size(0)  # validate ``size`` before decoding anything

    decoded = _decode_window(container, stream, plan, info)
    store, warnings = decoded.store, decoded.warnings
    served = _served_frames(store, plan, total)
    num_padded = sum(1 for a, b in zip(wanted, served) if a != b) + sum(1 for i in asked if total > 0 and i > total - 1)
    damaged_set, sources = _damaged_frames(served, store.concealed, store.types, info.keyframe_indices,
                                           b_frames_are_references=codec not in GOP_CODECS)
    if damaged_set:
        warnings.append(f"damaged data: the decoder concealed errors in frame(s) {index_ranges(sources)}; served "
                        f"frame(s) {index_ranges(damaged_set)} show them or are predicted from them")
    if store.interlaced and strategy is not None and strategy.interlaced_note:
        warnings.append(strategy.interlaced_note)
    rgb = None
    if request.with_rgb:
        rgb = _rotate_rgb(np.stack([store.rgb[i] for i in served]), store.rotation or 0)  # (T, H, W, 3)
    fields = (_motion_fields(strategy, store, served, plan) if strategy is not None
              else _Fields.none(request.num_frames))

    return Clip(
        source=name,
        rgb=rgb,
        mv=fields.mv,
        has_mv=fields.has_mv,
        mv_filled=fields.filled,
        frame_indices=np.asarray(served, np.int64),
        frame_types=tuple(store.types[i] for i in served),
        pts_seconds=np.asarray([store.pts[i] for i in served], np.float64),
        mv_source=info.mv_source,
        mv_mode=request.mv_mode,
        padded=num_padded > 0,
        num_padded=num_padded,
        frames_decoded=decoded.frames,
        unsure_fraction=fields.unsure_fraction,
        vector_counts=fields.vector_counts,
        decode_errors=decoded.errors,
        warnings=tuple(warnings),
        concealed=np.array([i in store.concealed for i in served], bool),
        damaged=np.array([i in damaged_set for i in served], bool),
    )


def _configure_decoder(stream, codec: str, needs: Needs, threads: int) -> None:
    """Decoder options before the first packet: stricter error checks where measured useful,
    exported vectors when the motion strategy reads them, ``threads`` slice threads."""
    cc = stream.codec_context
    options = dict(_ERROR_CHECKS.get(codec, {}))
    if needs.export_vectors:
        options["flags2"] = "+export_mvs"
    if options:
        cc.options = options
    stream.thread_type = "SLICE"
    cc.thread_count = threads


def _served_frames(store: FrameStore, plan: _ClipPlan, total: int) -> list[int]:
    """(T,) display index served for each wanted frame: itself when it holds what the clip returns
    (RGB of needed frames), else the nearest kept frame before it. Only frames inside the window
    were kept whole (pts ...): a decoder that skipped past it serves nothing."""
    servable = store.rgb if plan.request.with_rgb else store.types
    available = sorted(i for i in servable if plan.first <= i <= plan.window[1])
    if not available:
        raise ClipRangeError(
            f"{plan.name}: no frame decoded at or after start={plan.request.start}"
            + (f" (the video has {total} frames)" if total else "")
            + "; the clip lies past the end or the data is corrupt"
        )
    last = plan.last
    last_real = max(i for i in available if i <= last) if any(i <= last for i in available) else available[0]
    return [i if i in servable else _nearest_before(available, i, last_real) for i in plan.wanted]


@dataclass(frozen=True)
class _Decoded:
    """What decoding a clip's window left: the frames kept, counts and warnings so far."""

    store: FrameStore
    frames: int  # pictures the decoder put out, over every attempt
    errors: int  # packets the decoder rejected
    warnings: list[str]


def _decode_window(container, stream, plan: _ClipPlan, info: VideoInfo) -> _Decoded:
    """Seek to the key frame at or before the clip's first frame and decode its window into a
    FrameStore. Some containers (MPEG-PS, AVI without index) land after the target: then seek
    again from an earlier key frame until the first decoded frame is not past it."""
    cc, name, first, needs, timeline = stream.codec_context, plan.name, plan.first, plan.needs, plan.timeline
    tb = float(stream.time_base)
    to_rgb = RgbConverter()  # keeps its swscale contexts for the whole clip
    decoded = errors = 0
    warnings: list[str] = []
    # The estimator matches each frame with the frames beside it: a clip starting at a key frame
    # needs the frame before it decoded too (from the key frame before), as in sequential decoding.
    points = seek_points(max(first - 1, 0) if needs.estimates else first, info, timeline)
    if points[0] == 0 and first > 0 and not timeline.has_timestamps:
        warnings.append(f"the stream carries no timestamps (a raw elementary stream): decoded from its first "
                        f"frame to reach frame {first}; remux it (e.g. to .mkv) for fast seeking")
    attempt = 0
    rewind = False  # an attempt read packets already: go back to the start before decoding from it
    while True:
        store = FrameStore(info.rotation_degrees,
                           ReferenceOrder(max_num_ref_frames(cc.extradata) if needs.decode_order else None))
        estimator = _estimator(cc) if needs.estimates else None
        seek_frame = points[min(attempt, len(points) - 1)]
        if seek_frame > 0 and not seek(container, stream, timeline.time_of(seek_frame), tb):
            # The container cannot seek (raw streams, broken indexes): decode from the start.
            warnings.append(f"seeking failed; decoded from the first frame to reach frame {first}")
            attempt, seek_frame = len(points) - 1, 0
        if seek_frame == 0 and rewind and not seek(container, stream, 0.0, tb):
            raise CorruptVideoError(
                f"{name}: the container cannot seek back to its first frame to reach frame {first}; "
                "remux the file (e.g. ffmpeg -i IN -c copy OUT.mkv) or decode it from the start")
        rewind = True
        packets = container.demux(stream)
        indexer = FrameIndexer(timeline, after_seek=seek_frame > 0)
        if seek_frame > 0 and container.format.name in STALE_PTS_AFTER_SEEK_FORMATS and info.keyframe_sizes:
            packets = note_landing_key(packets, indexer, info, timeline, tb)
        if needs.decode_order:
            packets = _track_references(packets, store.references, plan, tb)
        exact = container.format.name in EXACT_PTS_FORMATS
        indexer.exact_timestamps = exact
        if not exact and plan.codec in RUN_CODECS:  # AVI, MPEG-PS/TS: skipped pictures are counted
            feed = BFrameRunFeed(packets, timeline, tb, cc, indexer, codec=plan.codec, skip_before=first - 1)
        else:
            skippable = _skippable_pictures(plan.codec, cc.extradata) if exact else False
            feed = PacketFeed(packets, timeline, tb, cc, indexer,
                              skip_before=first - 1 if skippable is not False else None,
                              last=plan.last, drain_early=exact and _may_drain_early(plan),
                              skippable=skippable or None)
        try:
            outcome = _run_decoder(feed, stream, plan, _Attempt(indexer, store, estimator, to_rgb))
        finally:
            feed.decode_every_picture()  # the decoder may be used again (the next attempt)
        decoded += outcome.decoded
        errors += outcome.errors
        warnings.extend(outcome.warnings)
        if outcome.unplaced:
            # No two frames after the seek agreed on where they lie: count from the start instead.
            warnings.append(f"the frames after seeking to frame {seek_frame} carry timestamps of no frame; "
                            f"decoded from the first frame")
            attempt = len(points) - 1
        elif outcome.overshot:
            attempt += 1
        else:
            return _Decoded(store, decoded, errors, warnings)
        cc.flush_buffers()


def _skippable_pictures(codec: str, extradata: bytes | None):
    """Which packets' non-reference pictures the decoder may skip before a clip (compvid.packet_feed):
    None for every packet (MPEG-1/2/4 Part 2: B-frames; H.264 coded as frames only: nal_ref_idc 0),
    a test of packets (HEVC: those in its highest temporal sub-layer), False for none.

    H.264 that may code fields (frame_mbs_only_flag 0) skips nothing: a frame may pair a reference
    field with a non-reference one, whose skipped half would then stand in a reference picture
    that reference matching reads. Other codecs are not checked: nothing skipped."""
    if codec in SKIP_NONREF_CODECS:
        return None
    if codec == "h264":
        sps = read_sps(extradata)
        return None if sps is not None and sps.frame_mbs_only else False
    if codec == "hevc":
        return top_sub_layer_pictures(extradata) or False
    return False


def _may_drain_early(plan: _ClipPlan) -> bool:
    """Whether the decode may stop sending packets once those sent hold the clip (compvid.packet_feed).

    Not where the motion estimator matches the last frame with the next one, nor for vectors of
    MPEG-1/2/4 Part 2 and H.263: FFmpeg's MPEG decoders put the reference they hold out on draining
    without its vectors (H.264's drained pictures keep theirs)."""
    needs = plan.needs
    return not needs.estimates and (not needs.export_vectors or plan.codec == "h264")


def _estimator(cc) -> MotionEstimator:
    """A fresh block-motion estimator for the decoder's picture size (one per decode attempt)."""
    from compvid.estimate import MotionEstimator  # deferred: builds a filter graph

    # 16-px blocks leave too few blocks on small frames (a 96x72 frame has 6x4).
    return MotionEstimator(cc.width, cc.height, block_size=8 if min(cc.width, cc.height) < 240 else 16,
                           method=ESTIMATOR_METHOD)


@dataclass(frozen=True)
class _Fields:
    """The motion view of a clip: dense fields and per-frame flags (T frames)."""

    mv: np.ndarray | None  # float32 (2, T, H, W)
    has_mv: np.ndarray  # bool (T,)
    filled: np.ndarray  # bool (T,)
    vector_counts: np.ndarray | None  # int32 (T,) block vectors behind each field
    unsure_fraction: float  # share of moving vectors whose reference distance was unsure

    @staticmethod
    def none(num_frames: int) -> _Fields:
        return _Fields(None, np.zeros(num_frames, bool), np.zeros(num_frames, bool), None, 0.0)


def _motion_fields(strategy: MotionStrategy, store: FrameStore, served: list[int], plan: _ClipPlan) -> _Fields:
    """Dense fields of the served frames: each distinct frame's block motion painted once, at the
    output size, in display orientation."""
    unique = sorted(set(served))
    cc = plan.codec_context
    frame_size, out_size = (cc.height, cc.width), plan.decoded_size(store.rotation or 0)
    found = strategy.motion(unique, store)
    fields, counts = found.fields_and_counts(frame_size, out_size)  # (2, U, H, W), (U,)
    position = {i: n for n, i in enumerate(unique)}
    pick = [position[i] for i in served]
    mv = fields[:, pick] if unique != served else fields  # (2, T, H, W)
    return _Fields(_rotate_mv(mv, store.rotation or 0), found.has_mv[pick], found.filled[pick], counts[pick],
                   found.unsure / found.moving if found.moving else 0.0)


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
            earlier_refs = [i for i, t in types.items() if i < c and t in REFERENCE_TYPES]
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
    unplaced: bool = False  # the frames after the seek could not be placed (compvid.frame_index.FrameIndexer)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Attempt:
    """One decode from one seek point: where its frames go."""

    indexer: FrameIndexer  # places each picture in display index space
    store: FrameStore  # what is kept of them
    estimator: MotionEstimator | None  # estimates motion between consecutive pictures (EstimatedMotion)
    to_rgb: RgbConverter


def _run_decoder(packets, stream, plan: _ClipPlan, attempt: _Attempt) -> _Outcome:
    """Decode ``packets`` in display order into ``attempt.store`` until the clip is served.

    Keeps, per display index in the clip's window: picture type, pts, and what
    the motion strategy needs (``plan.needs``: luma, exported vectors, the
    estimator's motion), RGB of needed frames. Stops after the last needed frame
    once the next reference frame (which B-frames may point to) has arrived.
    After a seek, a first placed frame past ``plan.first`` means the seek
    overshot (``overshot``).
    """
    out = _Outcome()
    first, last, needs, store, indexer = plan.first, plan.last, plan.needs, attempt.store, attempt.indexer
    lo, hi = plan.window
    future_ready = not needs.wait_for_future
    last_seen = -1

    def serve(idx: int, frame: av.VideoFrame) -> bool:
        """Keep what the clip needs of display frame ``idx``; True once the clip is served."""
        nonlocal future_ready, last_seen
        if last_seen < 0 and idx > first and indexer.after_seek:
            out.overshot = True
            return True
        last_seen = idx
        if store.rotation is None:
            store.rotation = frame_rotation(frame)
        ptype = _PICT.get(int(frame.pict_type), "?")
        store.types[idx] = ptype  # every frame: the GOP rule looks back to the last reference
        if frame.is_corrupt:  # every frame: damage before the clip spreads into it (see _damaged_frames)
            store.concealed.add(idx)
        if lo <= idx <= hi:
            seconds = plan.timeline.time_of(idx)
            if seconds is None:  # no timestamps in the stream: the frame's own, or its index at the frame rate
                seconds = frame.time if frame.time is not None else idx / plan.timeline.fps
            _keep(plan, attempt, idx, frame, ptype, seconds)
            if attempt.estimator is not None and idx >= first - 1:
                for j, motion in attempt.estimator.push(frame, idx):
                    store.estimated[j] = motion
        if idx > last and ptype in REFERENCE_TYPES:
            future_ready = True
        if attempt.estimator is not None and idx == last:
            return False  # the estimator matches the last frame against the next one too, as sequentially
        return idx >= last and (future_ready or idx >= last + MAX_REFERENCE_DISTANCE)

    try:
        served = False
        for frame in _pictures(packets, stream, out, plan.name):
            out.decoded += 1
            if any(serve(idx, placed) for idx, placed in indexer.place(frame)):
                served = True
                break
        if not served:
            any(serve(idx, placed) for idx, placed in indexer.finish())
    except Unplaceable:
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
    if attempt.estimator is not None:
        for j, motion in attempt.estimator.flush():
            store.estimated[j] = motion
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



def _keep(plan: _ClipPlan, attempt: _Attempt, idx: int, frame: av.VideoFrame, ptype: str, seconds: float) -> None:
    """Keep what the clip needs of display frame ``idx`` (inside its window): type and pts
    always; what the motion strategy needs: exported vectors (of frames served, or of every
    frame for the GOP rule, whose B-frames borrow from neighbours), luma of frames served and of
    possible references (reference matching) or of interlaced frames (field readings); RGB of
    frames served."""
    needs, store = plan.needs, attempt.store
    needed = idx in plan.need_set
    store.types[idx] = ptype
    interlaced = bool(getattr(frame, "interlaced_frame", False))
    if interlaced:
        store.interlaced.add(idx)
    store.pts[idx] = float(seconds)
    store.references.note_frame(idx, frame.pts)
    if (needs.luma_of_references and (needed or store.references.reference.get(idx) is not False)
            or needs.luma_of_interlaced and interlaced):
        store.luma[idx] = _luma(frame)  # a view into the frame's buffer; stacked (copied) once
    if needs.export_vectors and (needed or needs.vectors_of_window):
        side = frame.side_data.get("MOTION_VECTORS")
        store.rows[idx] = _vector_table(side) if side is not None and len(side) else None
    if plan.request.with_rgb and needed:
        store.rgb[idx] = attempt.to_rgb(frame, *plan.decoded_size(store.rotation))



_VECTOR_DTYPE: list[np.dtype] = []  # PyAV's structured dtype of AVMotionVector, taken from its first table


def _vector_table(side) -> np.ndarray:
    """``side.to_ndarray()`` of MOTION_VECTORS side data: the same view of its buffer, without
    building PyAV's structured dtype anew for every frame (that took most of the call)."""
    if not _VECTOR_DTYPE:
        table = side.to_ndarray()
        _VECTOR_DTYPE.append(table.dtype)
        return table
    return np.frombuffer(side, dtype=_VECTOR_DTYPE[0])


def _nearest_before(available: list[int], i: int, fallback: int) -> int:
    before = [a for a in available if a <= i]
    return before[-1] if before else fallback



def _track_references(packets, references: ReferenceOrder, plan: _ClipPlan, tb: float):
    """Pass ``packets`` through, noting each H.264 packet's decode order,
    whether it holds a reference picture (``references.packets``, keyed by pts;
    read only for packets whose timestamp (``tb``: seconds per tick) lies near
    the clip's display window) and the key picture decoded last before it."""
    length_size = nal_length_size(plan.codec_context.extradata)
    timeline = plan.timeline
    order = epoch = 0
    key_pts = None  # pts of the last key (random access) picture decoded so far
    lo, hi = plan.window[0] - 2, plan.window[1] + 2
    for packet in packets:
        if packet.pts is not None and packet.size:
            ref, idr = None, False  # far from the window: nothing in it refers across
            if lo <= timeline.index_near(packet.pts * tb) <= hi:
                try:
                    ref, idr = scan_access_unit(memoryview(packet), length_size)
                except (IndexError, ValueError, TypeError):
                    ref, idr = None, False
            epoch += idr
            if packet.is_keyframe:
                key_pts = int(packet.pts)
            references.packets[int(packet.pts)] = (order, ref, epoch, key_pts)
            order += 1
        yield packet



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

