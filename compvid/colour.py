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


def apply_colour(frames: torch.Tensor, M: torch.Tensor, b: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """``frames (T, H, W, 3)`` (any dtype) -> ``float32 (T, H, W, 3)`` = clamp(M (scale x) + b_t, 0, 1)."""
    T = frames.shape[0]
    x = frames.reshape(T, -1, 3).float()  # (T, HW, 3)
    out = torch.baddbmm(b.float()[:, None, :], x, (scale * M).float().T.expand(T, 3, 3))  # (T, HW, 3)
    return out.clamp_(0.0, 1.0).reshape(frames.shape)


def gaussian_blur(frames: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(..., H, W)`` float frames with reflect padding (the same numbers as
    torchvision's ``gaussian_blur``), as two matrix products ``B_H @ x @ B_W^T`` with banded
    blur matrices: BLAS does these several times faster than a single-channel convolution."""
    half = (kernel - 1) * 0.5
    k1 = torch.softmax(-0.5 * (torch.linspace(-half, half, kernel) / sigma) ** 2, dim=0)  # (k,), sums to 1
    H, W = frames.shape[-2:]
    return _blur_matrix(H, k1).to(frames.dtype) @ frames @ _blur_matrix(W, k1).to(frames.dtype).T


def _blur_matrix(n: int, k1: torch.Tensor) -> torch.Tensor:
    """``(n, n)``: row i holds the 1-D kernel ``k1`` centred on i, taps beyond an edge reflected back."""
    k = len(k1)
    if n <= k // 2:
        raise InvalidArgumentError(f"blur kernel of {k} taps needs frames larger than {k // 2} pixels, got {n}")
    rows = torch.arange(n)[:, None].expand(n, k)
    src = rows + torch.arange(k)[None] - k // 2  # (n, k) source index of each tap
    src = torch.where(src < 0, -src, src)
    src = torch.where(src >= n, 2 * (n - 1) - src, src)
    m = torch.zeros(n, n, dtype=k1.dtype)
    return m.index_put_((rows, src), k1.expand(n, k), accumulate=True)
