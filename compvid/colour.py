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


# Output lines per product of the banded blur: each tile of lines reads only the lines its taps
# reach (tile + kernel - 1). 32 measured fastest of 16/32/64 (128 px, 13 taps, one thread).
_BLUR_TILE = 32


def gaussian_blur(frames: torch.Tensor, kernel: int, sigma: float, *, out: torch.Tensor | None = None,
                  scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Gaussian blur of ``(..., H, W)`` float frames with reflect padding (the same numbers as
    torchvision's ``gaussian_blur``), as two products with banded blur matrices, ``B_H @ x`` then
    ``@ B_W^T``, on the contiguous planes; contiguous result of the same shape, written into
    ``out`` where given (``frames`` itself may be passed: the second product no longer reads it).
    ``scratch``: a contiguous buffer of the same shape and dtype for the first product (default:
    a new one). Fresh memory is slow to fault in on some machines: the augmentation reuses its own.

    A full product costs n multiply-adds per output sample where only ``kernel`` are not zero; each
    tile of 32 output lines is multiplied with just the (32 + kernel - 1) input lines its taps
    reach: 19.6 -> 6.6 ms for a (3, 32, 128, 128) clip, 13 taps (one thread), the same sums (a
    BLAS product is several times faster than torch's single-channel convolution, 117 ms here)."""
    half = (kernel - 1) * 0.5
    k1 = torch.softmax(-0.5 * (torch.linspace(-half, half, kernel) / sigma) ** 2, dim=0)  # (k,), sums to 1
    shape, (H, W) = frames.shape, frames.shape[-2:]
    planes = frames.reshape(-1, H, W)  # (N, H, W), contiguous (a copy only where the input is not)
    down = _buffer(scratch, frames, "scratch").view(planes.shape)
    for lines, (lo, hi), (s0, s1) in _tiles(_blur_matrix(H, k1).to(frames.dtype)):
        torch.matmul(lines, planes[:, s0:s1, :], out=down[:, lo:hi, :])  # (hi-lo, s1-s0) @ (N, s1-s0, W)
    rows = down.view(-1, W)  # (N*H, W)
    result = _buffer(out, frames, "out")
    across = result.view(rows.shape)
    for lines, (lo, hi), (s0, s1) in _tiles(_blur_matrix(W, k1).to(frames.dtype)):
        torch.mm(rows[:, s0:s1], lines.T, out=across[:, lo:hi])  # (N*H, s1-s0) @ (s1-s0, hi-lo)
    return result


def _buffer(given: torch.Tensor | None, like: torch.Tensor, name: str) -> torch.Tensor:
    """``given``, checked to hold ``like``'s shape and dtype contiguously, or a new buffer."""
    if given is None:
        return torch.empty(like.shape, dtype=like.dtype)
    if given.shape != like.shape or given.dtype != like.dtype or not given.is_contiguous():
        raise InvalidArgumentError(f"{name} must be a contiguous {like.dtype} tensor of shape {tuple(like.shape)}, "
                                   f"got {given.dtype} {tuple(given.shape)}")
    return given


def _tiles(blur: torch.Tensor):
    """(rows of ``blur`` (n, n) for one tile of output lines restricted to the input lines with a
    non-zero tap, (lo, hi) output lines, (s0, s1) input lines), tile by tile."""
    n = blur.shape[0]
    for lo in range(0, n, _BLUR_TILE):
        hi = min(n, lo + _BLUR_TILE)
        used = torch.nonzero(blur[lo:hi].abs().sum(dim=0)).flatten()
        s0, s1 = int(used[0]), int(used[-1]) + 1
        yield blur[lo:hi, s0:s1], (lo, hi), (s0, s1)


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
