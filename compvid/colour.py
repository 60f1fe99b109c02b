"""Cheap photometric augmentation: colour jitter + grayscale as ONE affine colour map; blur as matmuls.

Brightness, contrast, saturation, grayscale and hue are each affine in RGB, so any sequence of them
is one 3×3 matrix ``M`` plus a per-frame offset ``b_t``: ``y = M x + b_t``. Applying that once
costs a few passes over the clip, where per-op image functions (torchvision's ``adjust_*``) cost
one or more passes per op and a hue shift through HSV costs dozens (it was most of the data loader's
time). Differences from applying torchvision's ops one after the other:

- hue is a rotation about the grey axis in YIQ space (the classic linear hue shift) rather than an
  HSV shift: the same idea (``factor`` = fraction of the hue circle), not the same pixels;
- values are clamped to [0, 1] once, at the end, instead of after every op.

Brightness, contrast, saturation and grayscale alone are exact (see the tests).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from compvid import banded
from compvid.errors import InvalidArgumentError

# torchvision's rgb_to_grayscale weights (ITU-R 601 luma)
GREY = torch.tensor([0.2989, 0.587, 0.114], dtype=torch.float64)
# RGB -> YIQ (NTSC); hue is the angle of (I, Q)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=torch.float64)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def hue_matrix(factor: float) -> torch.Tensor:
    """3×3 float64: rotate hue by ``factor`` of a full turn (``factor`` in [-0.5, 0.5]), keeping luma."""
    a = -2 * math.pi * factor  # sign: the same turning direction as an HSV hue increase (R -> G -> B)
    rot = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]],
                       dtype=torch.float64)
    return _YIQ_TO_RGB @ rot @ _RGB_TO_YIQ


def colour_affine(
    ops: Sequence[tuple[str, float]], *, grayscale: bool, channel_means: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose jitter ``ops`` (in order; then grayscale) into ``(M (3, 3), b (T, 3))``, float64.

    ``channel_means``: ``(T, 3)`` mean of each channel of each input frame; contrast blends towards
    the mean grey of the frame as it is at that point, which is affine in these means.
    """
    T = channel_means.shape[0]
    M = torch.eye(3, dtype=torch.float64)
    b = torch.zeros(T, 3, dtype=torch.float64)
    mu = channel_means.double()  # (T, 3)
    ones = torch.ones(3, 1, dtype=torch.float64)
    for op, f in ops:
        if op == "brightness":  # f x
            M, b = f * M, f * b
        elif op == "contrast":  # f x + (1 - f) * mean grey of the frame
            grey_mean = (mu @ M.T + b) @ GREY  # (T,)
            M, b = f * M, f * b + (1 - f) * grey_mean[:, None]
        elif op == "saturation":  # f x + (1 - f) * grey(x)
            S = f * torch.eye(3, dtype=torch.float64) + (1 - f) * ones @ GREY[None]
            M, b = S @ M, b @ S.T
        elif op == "hue":
            H = hue_matrix(f)
            M, b = H @ M, b @ H.T
        else:
            raise InvalidArgumentError(f"unknown colour op {op!r}: allowed brightness, contrast, saturation, hue")
    if grayscale:
        G = ones @ GREY[None]
        M, b = G @ M, b @ G.T
    return M, b


def planar(frames: torch.Tensor) -> torch.Tensor:
    """``frames (T, 3, H, W)`` (any dtype and strides, e.g. channels-last uint8) -> contiguous
    ``float32 (3, T, H, W)``, the same values: one strided pass."""
    T, C, H, W = frames.shape
    if C != 3:
        raise InvalidArgumentError(f"colour maps take (T, 3, H, W) frames, got {tuple(frames.shape)}")
    out = torch.empty((3, T, H, W), dtype=torch.float32)
    return out.copy_(frames.permute(1, 0, 2, 3))


def apply_colour(frames: torch.Tensor, M: torch.Tensor, b: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """Planar ``float32 (3, T, H, W)`` frames (:func:`planar`) -> a new contiguous ``float32
    (3, T, H, W)`` = clamp(M (scale x) + b_t, 0, 1), channels first as the encoders take clips.

    One (3, 3) @ (3, T*H*W) product: on interleaved (T, H*W, 3) pixels a batched product with 3
    output columns ran 5-8x slower (measured, one thread: 12-16 ms against 2.3 ms for a
    32x128x128 clip, the same numbers)."""
    _, T, H, W = frames.shape
    out = torch.mm((scale * M).float(), frames.reshape(3, -1)).view(3, T, H * W)
    out.add_(b.float().T[:, :, None])  # b_t of each frame
    return out.clamp_(0.0, 1.0).view(3, T, H, W)


def gaussian_blur(frames: torch.Tensor, kernel: int, sigma: float, *, out: torch.Tensor | None = None,
                  scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian blur of ``(..., H, W)`` float frames with reflect padding (the same numbers as
    torchvision's ``gaussian_blur``, to float rounding), as two products with banded blur matrices
    (:func:`compvid.banded.separable`): contiguous result of the same shape, written into ``out``
    where given (``frames`` itself may be passed); ``scratch``: a contiguous buffer of the same
    shape for the first product. Fresh memory is slow to fault in on some machines: the
    augmentation passes buffers the clip already holds."""
    H, W = frames.shape[-2:]
    along_h = banded.gaussian(H, kernel, sigma).to(frames.dtype)
    along_w = banded.gaussian(W, kernel, sigma).to(frames.dtype)
    return banded.separable(frames, along_h, along_w, out=out, scratch=scratch)
