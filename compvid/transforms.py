"""Paired, MV-aware clip transforms (README, "The motion-vector convention").

Layouts: RGB clips are ``float (3, T, H, W)`` in [0, 1] or ``uint8 (T, H, W, 3)``;
outputs are always ``float32 (3, T, h, w)`` in [0, 1]. MV clips are
``float32 (2, T, H', W')``: channel 0 = x (right +), channel 1 = y (down +), in
pixels of the grid they live on (usually ``H' = H, W' = W``; a coarser grid
is cropped at the same relative box).

Geometry keeps the meaning of the vectors: resizing a crop of ``w × h`` MV
cells to ``W × H`` multiplies ``(dx, dy)`` by ``(W / w, H / h)``; a horizontal
flip mirrors the field and negates x; cropping shifts nothing. Photometric
changes (colour jitter, grayscale, blur) touch RGB only. All random
parameters are drawn once per clip (so every frame gets the same crop, flip
and colours) from an explicit ``torch.Generator`` (or an int seed).

Geometry is ``torchvision.transforms.v2.functional``; the MV parts and the one-pass colour map
(:mod:`compvid.colour`: the jitter ops composed into one affine map, much cheaper than one
image pass per op) are ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms.v2 import InterpolationMode

from compvid.colour import apply_colour, colour_affine, gaussian_blur, planar
from compvid.errors import InvalidArgumentError

CropMode = Literal["center", "three", "ten"]
_JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


# --------------------------------------------------------------------------- layouts


def rgb_to_frames(rgb: torch.Tensor) -> torch.Tensor:
    """``float (3, T, H, W)`` or ``uint8 (T, H, W, 3)`` → ``float32 (T, 3, H, W)`` in [0, 1]."""
    if rgb.dtype == torch.uint8:
        return _uint8_frames(rgb).float().div_(255.0)
    if rgb.ndim != 4 or rgb.shape[0] != 3:
        raise InvalidArgumentError(f"float RGB clip must be (3, T, H, W), got {tuple(rgb.shape)}")
    return rgb.permute(1, 0, 2, 3).float()


def _uint8_frames(rgb: torch.Tensor) -> torch.Tensor:
    """``uint8 (T, H, W, 3)`` → ``uint8 (T, 3, H, W)`` view (channels-last strides), layout checked."""
    if rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise InvalidArgumentError(f"uint8 RGB clip must be (T, H, W, 3), got {tuple(rgb.shape)}")
    return rgb.permute(0, 3, 1, 2)


def frames_to_rgb(frames: torch.Tensor) -> torch.Tensor:
    """``(T, 3, H, W)`` → contiguous ``float32 (3, T, H, W)``."""
    return frames.permute(1, 0, 2, 3).contiguous()


def _check_mv(mv: torch.Tensor) -> None:
    if mv.ndim != 4 or mv.shape[0] != 2 or not mv.is_floating_point():
        raise InvalidArgumentError(f"MV clip must be float (2, T, H, W), got {mv.dtype} {tuple(mv.shape)}")


def _rgb_size(rgb: torch.Tensor) -> tuple[int, int]:
    return (rgb.shape[1], rgb.shape[2]) if rgb.dtype == torch.uint8 else (rgb.shape[2], rgb.shape[3])


# --------------------------------------------------------------------------- MV geometry


def hflip_mv(mv: torch.Tensor) -> torch.Tensor:
    """Mirror a ``(2, T, H, W)`` field left–right and negate its x channel."""
    _check_mv(mv)
    out = mv.flip(-1)  # a new tensor: negating its x channel in place touches nothing else
    out[0].neg_()
    return out


def resized_crop_mv(
    mv: torch.Tensor, top: int, left: int, height: int, width: int, size: tuple[int, int]
) -> torch.Tensor:
    """Crop ``[top, top+height) × [left, left+width)`` of ``mv`` and resize it to ``size = (h, w)``.

    Vectors are multiplied by the resize factors ``(w / width, h / height)``.
    """
    _check_mv(mv)
    out = F.resized_crop(mv, top, left, height, width, list(size), InterpolationMode.BILINEAR, antialias=True)
    scale = torch.tensor([size[1] / width, size[0] / height], dtype=out.dtype).view(2, 1, 1, 1)
    return out * scale


def resize_mv(mv: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a field to ``size = (h, w)``, scaling vectors by the resize factors."""
    return resized_crop_mv(mv, 0, 0, mv.shape[-2], mv.shape[-1], size)


@dataclass(frozen=True)
class Box:
    """A crop box in pixels of the RGB frame."""

    top: int
    left: int
    height: int
    width: int

    def on_grid(self, frame: tuple[int, int], grid: tuple[int, int]) -> "Box":
        """The same relative box on a grid of another size (an MV field coarser than RGB)."""
        if frame == grid:
            return self
        fy, fx = grid[0] / frame[0], grid[1] / frame[1]
        top, left = round(self.top * fy), round(self.left * fx)
        return Box(top, left, max(1, round(self.height * fy)), max(1, round(self.width * fx)))


def _hflip_pair(rgb, mv):
    return (None if rgb is None else F.horizontal_flip(rgb)), (None if mv is None else hflip_mv(mv))


# --------------------------------------------------------------------------- random parameters


def _generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if isinstance(generator, int):
        return torch.Generator().manual_seed(generator)
    return generator


def _uniform(lo: float, hi: float, g: torch.Generator | None) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def _chance(p: float, g: torch.Generator | None) -> bool:
    return torch.rand((), generator=g).item() < p


def sample_crop_box(
    height: int,
    width: int,
    *,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | int | None = None,
) -> Box:
    """A random-resized-crop box: area share in ``scale``, aspect (w/h) in ``ratio``.

    Same algorithm as torchvision's RandomResizedCrop (ten tries, then a centre
    crop of the nearest allowed aspect), drawn from ``generator``.
    """
    g = _generator(generator)
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * _uniform(scale[0], scale[1], g)
        aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], g))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=g).item())
            left = int(torch.randint(0, width - w + 1, (1,), generator=g).item())
            return Box(top, left, h, w)
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return Box((height - h) // 2, (width - w) // 2, h, w)


@dataclass(frozen=True)
class ClipParams:
    """Everything random about one clip's augmentation, drawn once."""

    box: Box
    flip: bool
    jitter: tuple[tuple[str, float], ...]  # (operation, factor) in the order applied; () = none
    grayscale: bool
    blur_sigma: float | None


@dataclass(frozen=True)
class ClipAugment:
    """Training augmentation for a clip pair (RGB and/or MV), MoCo/MVCGC style.

    Random resized crop (area ``scale``, aspect ``ratio``) to ``size``; flip
    with ``flip_p`` (negates MV x); RGB only: colour jitter (brightness,
    contrast, saturation, hue) with ``jitter_p`` in random order, grayscale
    with ``grayscale_p``, Gaussian blur with ``blur_p`` (sigma in
    ``blur_sigma``, kernel about a tenth of the output side, odd).

    ``aug(rgb=..., mv=..., generator=g)`` returns ``(rgb, mv)``, each
    ``float32 (C, T, size, size)`` or None when not given. RGB and MV share the
    crop and the flip.
    """

    size: int | tuple[int, int] = 128
    scale: tuple[float, float] = (0.2, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)

    def __post_init__(self) -> None:
        if not (0 < self.scale[0] <= self.scale[1] <= 1):
            raise InvalidArgumentError(f"scale={self.scale}: need 0 < min <= max <= 1")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise InvalidArgumentError(f"ratio={self.ratio}: need 0 < min <= max")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise InvalidArgumentError(f"{name}={getattr(self, name)}: a probability in [0, 1]")

    @property
    def out_size(self) -> tuple[int, int]:
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)

    def sample(self, height: int, width: int, generator: torch.Generator | int | None = None) -> ClipParams:
        """Draw the parameters of one clip whose frames are ``height × width``."""
        g = _generator(generator)
        box = sample_crop_box(height, width, scale=self.scale, ratio=self.ratio, generator=g)
        flip = _chance(self.flip_p, g)
        jitter: tuple = ()
        if _chance(self.jitter_p, g):
            order = torch.randperm(4, generator=g).tolist()
            ops = []
            for i in order:
                amount = self.jitter[i]
                if amount <= 0:
                    continue
                if _JITTER_OPS[i] == "hue":
                    ops.append(("hue", _uniform(-amount, amount, g)))
                else:
                    ops.append((_JITTER_OPS[i], _uniform(max(0.0, 1 - amount), 1 + amount, g)))
            jitter = tuple(ops)
        grayscale = _chance(self.grayscale_p, g)
        sigma = _uniform(*self.blur_sigma, g) if _chance(self.blur_p, g) else None
        return ClipParams(box, flip, jitter, grayscale, sigma)

    def apply(
        self, params: ClipParams, rgb: torch.Tensor | None = None, mv: torch.Tensor | None = None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Apply drawn ``params`` to a clip pair (see the class docstring for layouts)."""
        frame = _rgb_size(rgb) if rgb is not None else None
        if mv is not None:
            _check_mv(mv)
            grid = (mv.shape[-2], mv.shape[-1])
            mv_box = params.box.on_grid(frame, grid) if frame is not None else params.box
            mv = resized_crop_mv(mv.float(), mv_box.top, mv_box.left, mv_box.height, mv_box.width, self.out_size)
            if params.flip:
                mv = hflip_mv(mv)
        return (self._rgb(rgb, params) if rgb is not None else None), mv

    def _rgb(self, rgb: torch.Tensor, params: ClipParams) -> torch.Tensor:
        """Crop, resize and flip in the input's dtype (uint8 stays uint8, channels last: torch's fast
        antialiased uint8 resize), then every colour op as one affine map (:mod:`compvid.colour`),
        then blur. Returns ``float32 (3, T, h, w)`` in [0, 1]."""
        if rgb.dtype == torch.uint8:
            frames, scale = _uint8_frames(rgb), 1 / 255
        else:
            frames, scale = rgb_to_frames(rgb), 1.0
        box = params.box
        frames = F.resized_crop(frames, box.top, box.left, box.height, box.width, list(self.out_size),
                                InterpolationMode.BILINEAR, antialias=True)  # (T, 3, h, w)
        if params.flip:
            frames = frames.flip(-1)
        x = planar(frames)  # float32 (3, T, h, w), the input's values
        M, b = torch.eye(3, dtype=torch.float64), torch.zeros(x.shape[1], 3, dtype=torch.float64)
        if params.jitter or params.grayscale:
            means = x.mean(dim=(2, 3)).T * scale  # (T, 3) in [0, 1]
            M, b = colour_affine(params.jitter, grayscale=params.grayscale, channel_means=means)
        out = apply_colour(x, M, b, scale=scale)  # float32 (3, T, h, w) in [0, 1], contiguous
        if params.blur_sigma is not None:
            kernel = max(3, int(0.1 * min(out.shape[-2:])) // 2 * 2 + 1)  # about a tenth of the side, odd
            gaussian_blur(out, kernel, params.blur_sigma, out=out, scratch=x)  # x is spent: no new memory
        return out

    def __call__(
        self,
        rgb: torch.Tensor | None = None,
        mv: torch.Tensor | None = None,
        *,
        generator: torch.Generator | int | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Draw parameters once for this clip and apply them to RGB and MV alike."""
        if rgb is None and mv is None:
            raise InvalidArgumentError("give rgb, mv or both")
        height, width = _rgb_size(rgb) if rgb is not None else tuple(mv.shape[-2:])
        return self.apply(self.sample(height, width, generator), rgb, mv)


# --------------------------------------------------------------------------- evaluation crops


def _short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    if height <= width:
        return short, max(short, int(round(width * short / height)))
    return max(short, int(round(height * short / width))), short


def eval_crop_boxes(height: int, width: int, size: int, mode: CropMode) -> list[Box]:
    """Crop boxes of side ``size`` on a ``height × width`` frame (already resized).

    'center': one; 'three': start, centre and end of the long side;
    'ten': the five of 4 corners + centre (their flips are added by :func:`eval_crops`).
    """
    if size > height or size > width:
        raise InvalidArgumentError(f"crop {size} is larger than the {height}×{width} frame")
    cy, cx = (height - size) // 2, (width - size) // 2
    if mode == "center":
        return [Box(cy, cx, size, size)]
    if mode == "three":
        if width >= height:
            return [Box(cy, left, size, size) for left in (0, cx, width - size)]
        return [Box(top, cx, size, size) for top in (0, cy, height - size)]
    if mode == "ten":
        b, r = height - size, width - size
        return [Box(0, 0, size, size), Box(0, r, size, size), Box(b, 0, size, size), Box(b, r, size, size),
                Box(cy, cx, size, size)]  # fmt: skip
    raise InvalidArgumentError(f"mode={mode!r}: allowed values are center, three, ten")


def eval_crops(
    rgb: torch.Tensor | None = None,
    mv: torch.Tensor | None = None,
    *,
    size: int = 128,
    resize: int | None = None,
    mode: CropMode = "center",
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Deterministic test-time crops of a clip pair.

    The short side is resized to ``resize`` (default ``size``; MVs scaled),
    then crops of ``size × size`` are cut: 1 ('center'), 3 ('three') or 10
    ('ten' = 4 corners + centre, then the same five flipped, MV x negated).
    Returns ``rgb (N, 3, T, size, size)`` and ``mv (N, 2, T, size, size)``
    (None for a missing input), crop n of both from the same box.
    """
    if rgb is None and mv is None:
        raise InvalidArgumentError("give rgb, mv or both")
    if mode not in ("center", "three", "ten"):
        raise InvalidArgumentError(f"mode={mode!r}: allowed values are center, three, ten")
    frame = _rgb_size(rgb) if rgb is not None else tuple(mv.shape[-2:])
    target = _short_side_size(frame[0], frame[1], resize or size)
    frames = None
    if rgb is not None:
        frames = F.resize(rgb_to_frames(rgb), list(target), InterpolationMode.BILINEAR, antialias=True).clamp_(0, 1)
    if mv is not None:
        _check_mv(mv)
        mv = resize_mv(mv.float(), target)
    boxes = eval_crop_boxes(target[0], target[1], size, mode)
    rgb_out, mv_out = [], []
    for flip in (False, True) if mode == "ten" else (False,):
        for box in boxes:
            r = None if frames is None else F.crop(frames, box.top, box.left, box.height, box.width)
            m = None if mv is None else mv[..., box.top : box.top + box.height, box.left : box.left + box.width]
            if flip:
                r, m = _hflip_pair(r, m)
            if r is not None:
                rgb_out.append(frames_to_rgb(r))
            if m is not None:
                mv_out.append(m.contiguous())
    return (torch.stack(rgb_out) if rgb_out else None), (torch.stack(mv_out) if mv_out else None)

