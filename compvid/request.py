"""What clip to decode: one frozen, validated record passed unchanged to the clip builders.

A :class:`ClipRequest` says how many frames, how far apart, at which size and which views; the
clip builders (:class:`compvid.pipeline.PairClips`, :class:`compvid.pipeline.WindowClips`) alone turn
it into :func:`compvid.decode_clip` arguments. It is built once (from command-line flags, a preset
or a checkpoint: :meth:`ClipRequest.from_dict`) and written where a run is recorded
(:meth:`ClipRequest.to_dict`).

Clips are square: ``crop_px`` is their side. A size given as ``"HxW"`` must have H == W
(:func:`parse_crop_px` is the one parser of such text).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Union

from compvid.errors import InvalidArgumentError

RGB, MV = "rgb", "mv"
ALL_VIEWS: frozenset[str] = frozenset({RGB, MV})
# How older APIs and files spell a set of views.
_VIEW_NAMES = {"rgb": frozenset({RGB}), "mv": frozenset({MV}), "both": ALL_VIEWS}
ViewsLike = Union[str, Iterable[str]]


def parse_views(value: ViewsLike, *, where: str = "views") -> frozenset[str]:
    """``"rgb"``, ``"mv"``, ``"both"`` or a non-empty collection of ``"rgb"`` / ``"mv"`` -> a frozenset."""
    if isinstance(value, str):
        if value in _VIEW_NAMES:
            return _VIEW_NAMES[value]
        raise InvalidArgumentError(f"{where}={value!r}: allowed values are rgb, mv, both (or a set of rgb, mv)")
    try:
        views = frozenset(value)
    except TypeError:
        views = frozenset({value})  # type: ignore[arg-type] - reported below as not a view
    if not views or not views <= ALL_VIEWS:
        raise InvalidArgumentError(f"{where}={sorted(map(str, views))}: must be a non-empty subset of rgb, mv")
    return views


def views_name(views: frozenset[str]) -> str:
    """``"rgb"``, ``"mv"`` or ``"both"``: the spelling of cache keys and result files."""
    return "both" if views == ALL_VIEWS else next(iter(views))


def parse_crop_px(value: Any, *, where: str = "size") -> int:
    """The side of a square clip, in pixels, from ``128``, ``"128"``, ``"128x128"`` or ``[128, 128]``.

    Clips are square: ``"96x128"`` is refused here, where the text is read, with what to pass instead."""
    if isinstance(value, str):
        parts: list[Any] = value.lower().split("x")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    try:
        sides = [_positive_int(p) for p in parts]
    except (TypeError, ValueError):
        sides = []
    if len(sides) not in (1, 2):
        raise InvalidArgumentError(f"{where}={value!r}: expected a positive number of pixels, e.g. 128")
    if len(set(sides)) > 1:
        raise InvalidArgumentError(f"{where}={value!r}: clips are square (H = W); pass one side, e.g. {max(sides)}")
    return sides[0]


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    number = int(value)
    if number != value and not isinstance(value, str) or number < 1:
        raise ValueError(value)
    return number


@dataclass(frozen=True)
class ClipRequest:
    """One clip's decoding settings, each with its unit.

    - ``num_frames``: frames per clip (a count);
    - ``crop_px``: side of the square clip handed out, in output pixels (the random resized crop's
      output in pretraining; each deterministic crop in evaluation);
    - ``frame_step``: decoded frames from one sampled frame to the next (1: every frame);
    - ``decode_short_side_px``: short side the video is decoded at before cropping, in pixels; None
      lets the builder choose (pretraining: 1.15 × ``crop_px``, room for random crops; evaluation:
      ``crop_px``);
    - ``views``: which of ``"rgb"`` / ``"mv"`` to decode (a non-empty frozenset; ``"both"`` and
      other spellings are accepted and normalised).

    Invalid values raise :class:`~compvid.errors.InvalidArgumentError` naming the field and the fix.
    """

    num_frames: int
    crop_px: int
    frame_step: int = 1
    decode_short_side_px: int | None = None
    views: frozenset[str] = ALL_VIEWS

    def __post_init__(self) -> None:
        for name in ("num_frames", "crop_px", "frame_step", "decode_short_side_px"):
            value = getattr(self, name)
            if value is not None or name != "decode_short_side_px":
                _check_positive(name, value)
                object.__setattr__(self, name, int(value))  # numpy ints become plain ints (JSON)
        object.__setattr__(self, "views", parse_views(self.views))

    @property
    def with_rgb(self) -> bool:
        return RGB in self.views

    @property
    def with_mv(self) -> bool:
        return MV in self.views

    @property
    def views_name(self) -> str:
        """``"rgb"``, ``"mv"`` or ``"both"``."""
        return views_name(self.views)

    def replace(self, **changes: Any) -> "ClipRequest":
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: views as a sorted list."""
        return {"num_frames": self.num_frames, "crop_px": self.crop_px, "frame_step": self.frame_step,
                "decode_short_side_px": self.decode_short_side_px, "views": sorted(self.views)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "clip request") -> "ClipRequest":
        """The inverse of :meth:`to_dict`; unknown or missing keys are refused, naming ``where``."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"{where}: expected a mapping of clip settings, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        missing = {"num_frames", "crop_px"} - set(data)
        if unknown or missing:
            raise InvalidArgumentError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}; "
                                       f"a clip request has {sorted(fields)}")
        return cls(**dict(data))


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) and not _is_numpy_int(value) or value < 1:
        raise InvalidArgumentError(f"{name}={value!r}: must be a positive whole number")


def _is_numpy_int(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.integer)
