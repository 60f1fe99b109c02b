"""Per-video work of the datasets: shard records, clip pairs, evaluation windows, error policy.

Nothing here iterates over a dataset (that is :mod:`compvid.datasets`); these
are the pieces each sample goes through:

- :func:`video_member`: the video bytes of a shard sample, beside its
  :class:`~compvid.shards.ShardRecord`.
- :class:`PairClips`: two clips (A, B) of one video at independent random
  starts, each augmented on its own (RGB and MV of one clip share crop and flip):
  ``rgb float32 (2, 3, T, S, S)``, ``mv float32 (2, 2, T, S, S)``.
- :class:`WindowClips`: the deterministic sliding windows × crops of evaluation:
  ``rgb float32 (N, 3, T, S, S)``, ``mv float32 (N, 2, T, S, S)`` per window.
- :func:`resolve_handler` / :class:`SkipLog`: the handler policy, in
  WebDataset's convention ``handler(exn) -> bool`` (True = go on); :func:`name_sample` /
  :func:`sample_of` carry the failing sample on the exception, :func:`failure_record` is what
  the window datasets yield instead of raising under handler 'report'.
- :func:`check_damage`: the damage policy. A clip with damaged frames or lost
  packets (``Clip.damaged``, ``Clip.decode_errors``) raises
  :class:`~compvid.errors.DamagedClipError` (``on_damage='error'``, default), which
  the handler policy then stops on or skips like any bad sample, or is served
  with a logged warning (``on_damage='keep'``).

MV values are pixels (of the output clip) per source frame step; RGB is
normalised by ``rgb_mean``/``rgb_std`` unless ``normalize=False`` (then [0, 1]).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
from dataclasses import dataclass
from typing import Any, Callable, Literal, Union

import numpy as np
import torch

from compvid.decode import Clip, decode_clip, index_ranges
from compvid.errors import CorruptVideoError, DamagedClipError, InvalidArgumentError
from compvid.probe import VideoInfo
from compvid.request import ClipRequest
from compvid.shards import ShardRecord
from compvid.sampling import sliding_window_starts, two_clip_starts
from compvid.source import VideoSource
from compvid.transforms import ClipAugment, CropMode, eval_crops

log = logging.getLogger(__name__)

CROP_MODES: tuple[str, ...] = ("center", "three", "ten")
HandlerPolicy = Union[Literal["raise", "skip"], Callable[[BaseException], bool]]
DamagePolicy = Literal["error", "keep"]
DAMAGE_POLICIES: tuple[str, ...] = ("error", "keep")

# Mean and std of Kinetics-400 RGB in [0, 1] (those of torchvision's video models).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
# Decode a little larger than the crop so random-resized-crop has pixels to choose from.
DECODE_MARGIN = 1.15
CROPS_PER_WINDOW = {"center": 1, "three": 3, "ten": 10}


# --------------------------------------------------------------------------- handler policy


class SharedInt:
    """An int in shared memory, shared with DataLoader workers (fork or spawn).

    Starting a worker process shares it: what the main process sets after the
    workers started (the epoch) reaches persistent workers, and what workers
    add (skipped samples) reaches the main process. Any other copy (pickle,
    deepcopy) gets its own int with the current value.
    """

    def __init__(self, value: int = 0) -> None:
        self._shared = multiprocessing.get_context("spawn").Value("q", int(value))

    @property
    def value(self) -> int:
        return int(self._shared.value)

    @value.setter
    def value(self, value: int) -> None:
        self._shared.value = int(value)

    def add(self, n: int = 1) -> int:
        """Add ``n`` atomically; returns the new value."""
        with self._shared.get_lock():
            self._shared.value += n
            return int(self._shared.value)

    def __getstate__(self) -> dict:
        if multiprocessing.context.get_spawning_popen() is not None:
            return {"shared": self._shared}  # starting a worker: share the memory
        return {"value": self.value}

    def __setstate__(self, state: dict) -> None:
        if "shared" in state:
            self._shared = state["shared"]
        else:
            self.__init__(state["value"])

    def __repr__(self) -> str:
        return f"SharedInt({self.value})"


class SkipLog:
    """Handler policy 'skip': log a warning naming the sample and the reason, count it, go on.

    The count is a :class:`SharedInt`: DataLoader workers add to the count the
    main process reads through :attr:`count`.
    """

    def __init__(self, start: int = 0) -> None:
        self._count = SharedInt(start)

    def __call__(self, exn: BaseException) -> bool:
        n = self._count.add(1)
        log.warning("skipped a bad sample (%d so far): %s", n, describe_error(exn))
        return True

    @property
    def count(self) -> int:
        return self._count.value

    def __repr__(self) -> str:
        return f"SkipLog(count={self.count})"


def _reraise(exn: BaseException) -> bool:
    raise exn


def resolve_handler(handler: HandlerPolicy) -> Callable[[BaseException], bool]:
    """'raise' (stop at the first bad sample), 'skip' (a fresh :class:`SkipLog`) or a callable
    ``handler(exn) -> bool`` as in WebDataset (True: skip the sample and go on; False: stop)."""
    if handler == "raise":
        return _reraise
    if handler == "skip":
        return SkipLog()
    if callable(handler):
        return handler
    raise InvalidArgumentError(f"handler={handler!r}: allowed values are 'raise', 'skip' or a callable(exn) -> bool")


def name_sample(exn: BaseException, where: str, *, key: str, video_index: int | None = None,
                window_index: int | None = None) -> None:
    """Name the sample ``exn`` came from: a note for people (``where``, shown by :func:`describe_error`)
    and :func:`sample_of` for code, so a handler can tell which video failed without reading text.

    The attribute lives on this exception object only: an exception re-raised out of a DataLoader
    worker is rebuilt from its type and message and loses it; datasets that must report failures
    across workers yield :func:`failure_record` items instead (handler 'report')."""
    exn.add_note(where)
    exn.compvid_sample = {"key": key, "video_index": video_index, "window_index": window_index}


def sample_of(exn: BaseException) -> dict[str, Any] | None:
    """``{"key", "video_index", "window_index"}`` of the sample ``exn`` came from (None: not named)."""
    return getattr(exn, "compvid_sample", None)


def failure_record(exn: BaseException, *, key: str, label: int, video_index: int,
                   window_index: int) -> dict[str, Any]:
    """What a window dataset yields for a failure under handler 'report', in place of raising:
    ``{"error": describe_error text, "error_type": class name, "key", "label", "video_index",
    "window_index"}`` (``window_index`` -1: the whole video failed; ``video_index`` -1: a failure
    tied to no video, e.g. an unreadable tar, ``key`` then names the shard). Plain str/int values,
    so the record crosses DataLoader workers and ``torch.save`` intact."""
    return {"error": describe_error(exn), "error_type": type(exn).__name__, "key": key, "label": label,
            "video_index": video_index, "window_index": window_index}


def describe_error(exn: BaseException) -> str:
    """``Type: message`` plus the notes that name the sample (added with ``add_note``)."""
    notes = "; ".join(getattr(exn, "__notes__", ()))
    return f"{type(exn).__name__}: {exn}" + (f" [{notes}]" if notes else "")


def skipped_count(handler: Callable[[BaseException], bool]) -> int | None:
    """Samples a :class:`SkipLog` handler skipped so far (None for other handlers)."""
    return handler.count if isinstance(handler, SkipLog) else None


def check_damage(clip: Clip, on_damage: DamagePolicy) -> None:
    """Raise :class:`DamagedClipError` for a clip with damaged frames or lost packets
    (``on_damage='error'``); with 'keep' log a warning and let it be served."""
    damage = describe_damage(clip)
    if damage is None:
        return
    if on_damage == "keep":
        log.warning("%s: serving a damaged clip (on_damage='keep'): %s", clip.source, damage)
        return
    raise DamagedClipError(f"{clip.source}: {damage}; replace or re-encode the video, or pass on_damage='keep' "
                           "to serve damaged clips")


def describe_damage(clip: Clip) -> str | None:
    """What is damaged in ``clip`` (None: nothing the decoder noticed)."""
    parts = []
    if clip.num_damaged:
        frames = clip.frame_indices[clip.damaged].tolist()
        parts.append(f"frame(s) {index_ranges(frames)} are damaged ({int(clip.concealed.sum())} concealed by the "
                     "decoder, the others predicted from concealed pictures)")
    if clip.decode_errors:
        parts.append(f"{clip.decode_errors} corrupt packet(s) were skipped (their pictures are missing)")
    if not parts:
        return None
    span = f"{int(clip.frame_indices[0])}-{int(clip.frame_indices[-1])}"
    return f"the clip of frames {span}: " + "; ".join(parts)


def _check_on_damage(on_damage: str) -> None:
    if on_damage not in DAMAGE_POLICIES:
        raise InvalidArgumentError(f"on_damage={on_damage!r}: allowed values are {', '.join(DAMAGE_POLICIES)}")


# --------------------------------------------------------------------------- records


def video_member(sample: dict[str, Any], record: ShardRecord) -> bytes:
    """The video bytes of a WebDataset sample (``<key>.<ext>`` beside ``<key>.json``)."""
    ext = record.ext.lower()
    if ext in sample:
        return sample[ext]
    others = [k for k in sample if not k.startswith("__") and k != "json"]
    if len(others) != 1:
        raise CorruptVideoError(
            f"{sample.get('__key__')}: expected one video member beside the JSON record, found {sorted(others)}"
        )
    return sample[others[0]]


# --------------------------------------------------------------------------- clip builders


def _check_request(request: Any) -> None:
    if not isinstance(request, ClipRequest):
        raise InvalidArgumentError(f"request={request!r}: pass a compvid.request.ClipRequest, e.g. "
                                   "ClipRequest(num_frames=16, crop_px=128, views='both')")


def _normalize(rgb: torch.Tensor, normalize: bool, mean, std, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """``(..., 3, T, H, W)`` in [0, 1] → ``(rgb - mean) / std`` per channel (or unchanged), into
    ``out`` where given (e.g. a clip's slot of the stacked batch: no temporary, no second copy)."""
    if not normalize:
        return rgb if out is None else out.copy_(rgb)
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1, 1)
    return torch.sub(rgb, m, out=out).div_(s)


@dataclass(frozen=True)
class PairClips:
    """Pretraining pairs: clips A and B at independent random starts, augmented independently.

    ``request`` (a :class:`~compvid.request.ClipRequest`) says what each clip is: its frames, frame
    step, views and side; it is decoded at short side ``request.decode_short_side_px`` (default
    ``round(1.15 * crop_px)``), then ``augment`` (default ``ClipAugment(crop_px)``: random resized
    crop, flip negating MV x, RGB-only colour changes) draws its parameters once for the clip. Only
    the views asked for are decoded. ``clips_per_video=1`` decodes clip A alone (a classifier needs
    one clip): it is the clip A of the pair, from the same random draws. ``on_damage``: a damaged
    clip raises :class:`DamagedClipError` ('error') or is served ('keep'); see :func:`check_damage`.

    ``pairs(source, info, rng)`` → ``{"rgb": float32 (P, 3, T, S, S), "mv": float32 (P, 2, T, S, S)}``
    with P = ``clips_per_video`` (a view not asked for is absent).
    """

    request: ClipRequest
    augment: ClipAugment | None = None
    normalize: bool = True
    rgb_mean: tuple[float, float, float] = KINETICS_MEAN
    rgb_std: tuple[float, float, float] = KINETICS_STD
    on_damage: DamagePolicy = "error"
    clips_per_video: int = 2

    def __post_init__(self) -> None:
        _check_request(self.request)
        _check_on_damage(self.on_damage)
        if self.clips_per_video not in (1, 2):
            raise InvalidArgumentError(f"clips_per_video={self.clips_per_video!r}: 1 (clip A) or 2 (A and B)")
        if self.augment is None:
            object.__setattr__(self, "augment", ClipAugment(size=self.request.crop_px))

    @property
    def short_side(self) -> int:
        side = self.request.crop_px
        return self.request.decode_short_side_px or max(side, round(DECODE_MARGIN * side))

    def __call__(self, source: VideoSource, info: VideoInfo, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        r = self.request
        # both starts are drawn even for clip A alone, so that it is the pair's clip A
        starts = two_clip_starts(info.num_frames, num_frames=r.num_frames, frame_step=r.frame_step, rng=rng)
        rgbs, mvs = [], []
        for start in starts[: self.clips_per_video]:
            clip = decode_clip(source, start=start, num_frames=r.num_frames, frame_step=r.frame_step,
                               size=self.short_side, with_rgb=r.with_rgb, with_mv=r.with_mv, info=info)
            check_damage(clip, self.on_damage)
            g = torch.Generator().manual_seed(int(rng.integers(2**63)))
            rgb, mv = self.augment(rgb=torch.from_numpy(clip.rgb) if r.with_rgb else None,
                                   mv=torch.from_numpy(clip.mv) if r.with_mv else None, generator=g)
            if rgb is not None:
                rgbs.append(rgb)  # (3, T, S, S) in [0, 1]
            if mv is not None:
                mvs.append(mv)  # (2, T, S, S)
        out = {}
        if rgbs:  # (P, 3, T, S, S): each clip normalised straight into its slot
            out["rgb"] = torch.empty((len(rgbs), *rgbs[0].shape), dtype=torch.float32)
            for slot, rgb in zip(out["rgb"], rgbs):
                _normalize(rgb, self.normalize, self.rgb_mean, self.rgb_std, out=slot)
        if mvs:
            out["mv"] = torch.stack(mvs)  # (P, 2, T, S, S)
        return out


@dataclass(frozen=True)
class WindowClips:
    """Evaluation windows: every sliding window × deterministic crops of a video.

    ``request`` (a :class:`~compvid.request.ClipRequest`) says what each window is: its frames,
    frame step, views and crop side. Windows start every ``stride`` source frames (default half a
    clip's span, ``num_frames // 2`` at frame_step 1; the last one is aligned to the end, see
    :func:`compvid.sampling.sliding_window_starts`). Each window is decoded at short side
    ``request.decode_short_side_px`` (default ``crop_px``) and cut into ``crops``: 'center' (1),
    'three' (3) or 'ten' (10: 4 corners + centre, then the same flipped with MV x negated).
    ``on_damage``: a damaged window raises :class:`DamagedClipError` ('error') or is served ('keep').

    ``windows(info)`` → list of starts; ``clips(source, info, start)`` →
    ``{"rgb": float32 (N, 3, T, S, S), "mv": float32 (N, 2, T, S, S)}``.
    """

    request: ClipRequest
    crops: CropMode = "center"
    stride: int | None = None
    normalize: bool = True
    rgb_mean: tuple[float, float, float] = KINETICS_MEAN
    rgb_std: tuple[float, float, float] = KINETICS_STD
    on_damage: DamagePolicy = "error"

    def __post_init__(self) -> None:
        _check_request(self.request)
        _check_on_damage(self.on_damage)
        if self.crops not in CROP_MODES:
            raise InvalidArgumentError(f"crops={self.crops!r}: allowed values are {', '.join(CROP_MODES)}")
        if self.stride is not None and self.stride < 1:
            raise InvalidArgumentError(f"stride={self.stride!r}: must be a positive int")
        if self.short_side < self.request.crop_px:
            raise InvalidArgumentError(f"decode_short_side_px={self.short_side} is smaller than the crop side "
                                       f"{self.request.crop_px}; decode at least at the crop side")

    @property
    def short_side(self) -> int:
        """Short side the windows are decoded at, in pixels."""
        return self.request.decode_short_side_px or self.request.crop_px

    @property
    def num_crops(self) -> int:
        return CROPS_PER_WINDOW[self.crops]

    def windows(self, info: VideoInfo) -> list[int]:
        return sliding_window_starts(info.num_frames, num_frames=self.request.num_frames,
                                     frame_step=self.request.frame_step, stride=self.stride)

    def __call__(self, source: VideoSource, info: VideoInfo, start: int) -> dict[str, torch.Tensor]:
        return self.crop(self.decode(source, info, start))

    def decode(self, source: VideoSource, info: VideoInfo, start: int) -> dict[str, torch.Tensor]:
        """The window as decoded at the short side: ``{"rgb": uint8 (T, H, W, 3), "mv": float32 (2, T, H, W)}``
        (the views asked for), before any crop -- what a decode-once cache keeps."""
        r = self.request
        clip = decode_clip(source, start=start, num_frames=r.num_frames, frame_step=r.frame_step,
                           size=self.short_side, with_rgb=r.with_rgb, with_mv=r.with_mv, info=info)
        check_damage(clip, self.on_damage)
        out = {}
        if r.with_rgb:
            out["rgb"] = torch.from_numpy(clip.rgb)
        if r.with_mv:
            out["mv"] = torch.from_numpy(clip.mv)
        return out

    def crop(self, decoded: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A :meth:`decode` result cut into ``crops`` and normalised:
        ``{"rgb": float32 (N, 3, T, S, S), "mv": float32 (N, 2, T, S, S)}``."""
        rgb, mv = eval_crops(rgb=decoded.get("rgb"), mv=decoded.get("mv"), size=self.request.crop_px,
                             resize=self.short_side, mode=self.crops)
        out = {}
        if rgb is not None:
            out["rgb"] = _normalize(rgb, self.normalize, self.rgb_mean, self.rgb_std)  # (N, 3, T, S, S)
        if mv is not None:
            out["mv"] = mv  # (N, 2, T, S, S)
        return out
