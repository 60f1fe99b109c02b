"""Separable linear maps of frames (the augmentation's blur) as banded matrix products.

A separable map of ``(..., H, W)`` frames is ``A_H @ x @ A_W^T`` with ``A_H`` (H', H) and ``A_W``
(W', W). Where each output line depends on a few input lines (a blur's taps), most of ``A`` is
zero: each tile of 32 output lines is multiplied only with the input
lines its non-zero weights reach. BLAS products on those tiles are faster than a full
product and than torch's per-channel convolution (measured, one thread: a 13-tap blur of
(3, 32, 128, 128) 19.6 -> 6.6 ms, conv2d 117 ms).
"""

from __future__ import annotations

import torch

from compvid.errors import InvalidArgumentError

# Output lines per product. 32 measured fastest of 16/32/64 (128 px, 13 taps, one thread).
TILE = 32


def tiles(matrix: torch.Tensor):
    """For each tile of output lines of ``matrix`` (n_out, n_in): (its rows restricted to the input
    lines with a non-zero weight, (lo, hi) output lines, (s0, s1) input lines)."""
    n = matrix.shape[0]
    for lo in range(0, n, TILE):
        hi = min(n, lo + TILE)
        used = torch.nonzero(matrix[lo:hi].abs().sum(dim=0)).flatten()
        s0, s1 = (int(used[0]), int(used[-1]) + 1) if used.numel() else (0, 0)  # all zero: no input lines
        yield matrix[lo:hi, s0:s1], (lo, hi), (s0, s1)


def separable(frames: torch.Tensor, along_h: torch.Tensor, along_w: torch.Tensor, *,
              out: torch.Tensor | None = None, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """``along_h @ x @ along_w^T`` for every ``(H, W)`` plane of float ``frames (..., H, W)``:
    contiguous ``(..., H', W')`` for ``along_h`` (H', H) and ``along_w`` (W', W) of the frames'
    dtype, written into ``out`` where given (``frames`` itself may be passed when the shape is
    kept: the second product no longer reads it). ``scratch``: a contiguous buffer of
    ``(..., H', W)`` for the first product (default: a new one). The lines of ``x`` are summed
    in BLAS's order, not one by one: results agree with a direct sum to float rounding."""
    *lead, H, W = frames.shape
    (out_h, in_h), (out_w, in_w) = along_h.shape, along_w.shape
    if (in_h, in_w) != (H, W):
        raise InvalidArgumentError(f"maps of {in_h}x{in_w} lines given for frames of {H}x{W}")
    planes = frames.reshape(-1, H, W)  # (N, H, W), contiguous (a copy only where the input is not)
    down = buffer(scratch, (*lead, out_h, W), frames.dtype, "scratch").view(-1, out_h, W)
    for lines, (lo, hi), (s0, s1) in tiles(along_h):
        torch.matmul(lines, planes[:, s0:s1, :], out=down[:, lo:hi, :])  # (hi-lo, s1-s0) @ (N, s1-s0, W)
    rows = down.view(-1, W)  # (N * H', W)
    result = buffer(out, (*lead, out_h, out_w), frames.dtype, "out")
    across = result.view(-1, out_w)
    for lines, (lo, hi), (s0, s1) in tiles(along_w):
        torch.mm(rows[:, s0:s1], lines.T, out=across[:, lo:hi])  # (N * H', s1-s0) @ (s1-s0, hi-lo)
    return result


def buffer(given: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype, name: str) -> torch.Tensor:
    """``given``, checked to be a contiguous ``dtype`` tensor of ``shape``, or a new one."""
    if given is None:
        return torch.empty(shape, dtype=dtype)
    if tuple(given.shape) != tuple(shape) or given.dtype != dtype or not given.is_contiguous():
        raise InvalidArgumentError(f"{name} must be a contiguous {dtype} tensor of shape {tuple(shape)}, "
                                   f"got {given.dtype} {tuple(given.shape)}")
    return given


def gaussian(n: int, kernel: int, sigma: float) -> torch.Tensor:
    """float32 (n, n): a 1-D Gaussian of ``kernel`` taps (odd) and ``sigma``, reflect-padded, as
    torchvision's ``gaussian_blur`` weighs it; row i is centred on i, taps past an edge reflected back."""
    half = (kernel - 1) * 0.5
    k1 = torch.softmax(-0.5 * (torch.linspace(-half, half, kernel) / sigma) ** 2, dim=0)  # (k,), sums to 1
    if n <= kernel // 2:
        raise InvalidArgumentError(f"blur kernel of {kernel} taps needs frames larger than {kernel // 2} pixels, "
                                   f"got {n}")
    rows = torch.arange(n)[:, None].expand(n, kernel)
    src = rows + torch.arange(kernel)[None] - kernel // 2  # (n, k) source index of each tap
    src = torch.where(src < 0, -src, src)
    src = torch.where(src >= n, 2 * (n - 1) - src, src)
    m = torch.zeros(n, n, dtype=k1.dtype)
    return m.index_put_((rows, src), k1.expand(n, kernel), accumulate=True)
