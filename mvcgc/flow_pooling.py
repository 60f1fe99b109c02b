"""Flow fields inside an encoder: estimated from frames (Lucas-Kanade) and pooled by an affine motion fit.

Why: a rotating or growing object moves its pixels one way on one side and the other way on the
other side. Averaged over the frame, such a field sums to nothing, and a CNN that ends in global
average pooling must first learn to find the object's edge to tell clockwise from
counter-clockwise. A least-squares fit of ``v(p) ≈ v0 + A (p - c)`` over the moving region instead
reads rotation and scaling straight off ``A``: its curl ``A10 - A01`` is twice the angular
velocity, its divergence ``A00 + A11`` twice the relative growth rate (the first-order
differential invariants of a flow field). Which region is "moving" is learnt (attention heads).

Shapes: flow ``(B, 2, T, H, W)``, channel 0 = x (right +), 1 = y (down +), in cells per frame
gap; attention logits ``(B, K, T, H, W)``. Positions ``p`` run over [-1, 1] along each side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mvcgc.errors import InvalidArgumentError

AFFINE_FEATURES = ("v0_x", "v0_y", "divergence", "curl", "stretch", "shear")


class LucasKanadeFlow(nn.Module):
    """Sub-pixel flow between frames t and t + ``gap`` by the Lucas-Kanade least-squares step.

    ``(B, 3, T, H, W)`` pixels -> ``(B, 2, T, H, W)`` flow in pixels per ``gap`` frames (x right,
    y down; the last ``gap`` frames repeat the last pair's flow). Per pixel it solves
    ``(M + lambda I) v = -b`` with ``M = Σ [Ix Ix, Ix Iy; Ix Iy, Iy Iy]`` and ``b = Σ [Ix It, Iy It]``
    summed over a ``window`` x ``window`` box, on one learnt grey channel (initialised to luma;
    Sobel gradients of the pair's mean, ``It`` their difference). ``lambda`` (learnt, in log
    space) damps flat regions towards zero. Exact for a smooth texture moved by under a pixel; the
    correlation stem handles larger motions. No other parameters: the flow is a fixed function
    of the pixels, not a learnt estimator.
    """

    def __init__(self, *, window: int = 9, gap: int = 1, damping: float = 2e-3) -> None:
        super().__init__()
        if window < 1 or window % 2 == 0 or gap < 1:
            raise InvalidArgumentError(f"window must be odd and >= 1 and gap >= 1, got {window}, {gap}")
        self.window, self.gap = window, gap
        self.grey = nn.Conv3d(3, 1, 1, bias=False)
        with torch.no_grad():
            self.grey.weight.copy_(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1, 1))
        self.log_damping = nn.Parameter(torch.tensor(math.log(damping)))
        sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8  # d/dx, per pixel
        self.register_buffer("ddx", sobel.view(1, 1, 3, 3), persistent=False)
        self.register_buffer("ddy", sobel.t().contiguous().view(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.grey(x)[:, 0]  # (B, T, H, W)
        b, t, h, w = g.shape
        if t < 2:
            raise InvalidArgumentError(f"Lucas-Kanade flow needs clips of at least 2 frames (num_frames >= 2), got {t}")
        gap = min(self.gap, t - 1)
        now, later = g[:, :-gap], g[:, gap:]  # (B, T-gap, H, W)
        mid = ((now + later) / 2).reshape(-1, 1, h, w)
        ix = nn.functional.conv2d(mid, self.ddx, padding=1)  # (B*(T-gap), 1, H, W)
        iy = nn.functional.conv2d(mid, self.ddy, padding=1)
        it = (later - now).reshape(-1, 1, h, w)

        def box(a: torch.Tensor) -> torch.Tensor:  # window sum / count (mean), borders by the pixels inside
            return nn.functional.avg_pool2d(a, self.window, 1, self.window // 2, count_include_pad=False)

        damping = self.log_damping.exp()
        sxx, sxy, syy = box(ix * ix) + damping, box(ix * iy), box(iy * iy) + damping
        sxt, syt = box(ix * it), box(iy * it)
        det = sxx * syy - sxy * sxy
        flow = torch.cat([sxy * syt - syy * sxt, sxy * sxt - sxx * syt], 1) / det  # (B*(T-gap), 2, H, W)
        flow = flow.view(b, t - gap, 2, h, w).transpose(1, 2)
        return torch.cat([flow] + [flow[:, :, -1:]] * gap, 2)  # (B, 2, T, H, W)


def relative_to_background(flow: torch.Tensor) -> torch.Tensor:
    """Flow minus its per-frame spatial median (the camera's motion when the background dominates)."""
    return flow - flow.flatten(3).median(3).values[..., None, None]


def affine_flow_fit(flow: torch.Tensor, logits: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Weighted least-squares affine fit of ``flow`` under each head's spatial softmax of ``logits``.

    ``flow`` ``(B, 2, T, H, W)``, ``logits`` ``(B, K, T, H, W)`` -> ``(B, K, 6, T)``:
    :data:`AFFINE_FEATURES` per head and frame. ``v0`` is the weighted mean flow, ``c`` the
    weighted mean position, ``A = C S^-1`` with ``C = Σ w v (p-c)^T`` and ``S = Σ w (p-c)(p-c)^T + eps I``
    (``eps`` keeps a head focused on one cell finite). Units: cells per frame gap, and cells per
    frame gap per half side for ``A``'s invariants.
    """
    b, _, t, h, w = flow.shape
    weight = logits.flatten(3).softmax(3).view_as(logits)  # (B, K, T, H, W), sums to 1 per frame
    ys = torch.linspace(-1.0, 1.0, h, dtype=flow.dtype, device=flow.device).view(h, 1).expand(h, w)
    xs = torch.linspace(-1.0, 1.0, w, dtype=flow.dtype, device=flow.device).view(1, w).expand(h, w)

    def mean(a: torch.Tensor) -> torch.Tensor:  # weighted mean over the frame -> (B, K, T)
        return (weight * a).sum((3, 4))

    px, py = xs - mean(xs)[..., None, None], ys - mean(ys)[..., None, None]  # (B, K, T, H, W)
    sxx, sxy, syy = mean(px * px) + eps, mean(px * py), mean(py * py) + eps
    vx, vy = flow[:, :1], flow[:, 1:]  # (B, 1, T, H, W), broadcast over heads
    cxx, cxy, cyx, cyy = mean(vx * px), mean(vx * py), mean(vy * px), mean(vy * py)
    det = sxx * syy - sxy * sxy
    a00, a01 = (cxx * syy - cxy * sxy) / det, (cxy * sxx - cxx * sxy) / det
    a10, a11 = (cyx * syy - cyy * sxy) / det, (cyy * sxx - cyx * sxy) / det
    return torch.stack([mean(vx.expand_as(weight)), mean(vy.expand_as(weight)),
                        a00 + a11, a10 - a01, a00 - a11, a01 + a10], 2)  # fmt: skip


class AffineFlowPool(nn.Module):
    """Flow + context features -> ``(B, K * 6)``: the affine invariants of K learnt regions, averaged over time.

    Head k's attention logits are ``beta_k * log(speed / mean speed)`` plus a small learnt
    function of the context features and the speed (relative to the background). The first term
    weights cells by a power of their speed, so at initialisation the heads already look at what
    moves, at four sharpnesses (``beta`` = 0: the whole frame, then 1, 2, 4; all learnt); the
    second starts at zero. The output is batch-normalised (curls and divergences are a few
    hundredths of a cell per frame).
    """

    def __init__(self, context_channels: int, heads: int = 4, hidden: int = 16) -> None:
        super().__init__()
        self.heads = heads
        self.attention = nn.Sequential(
            nn.BatchNorm3d(context_channels + 1),
            nn.Conv3d(context_channels + 1, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, heads, 1),
        )
        nn.init.zeros_(self.attention[-1].weight)
        nn.init.zeros_(self.attention[-1].bias)
        self.beta = nn.Parameter(torch.tensor([0.0] + [2.0**k for k in range(heads - 1)]))
        self.norm = nn.BatchNorm1d(heads * len(AFFINE_FEATURES))

    @property
    def out_features(self) -> int:
        return self.heads * len(AFFINE_FEATURES)

    def forward(self, flow: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``flow`` ``(B, 2, T, H, W)``, ``context`` ``(B, C, T, H, W)`` -> ``(B, K * 6)``."""
        rel = relative_to_background(flow)  # (B, 2, T, H, W)
        speed = rel.norm(dim=1, keepdim=True)  # (B, 1, T, H, W)
        relative_speed = speed / (speed.mean((3, 4), keepdim=True) + 1e-6)
        logits = self.beta.view(1, -1, 1, 1, 1) * torch.log(relative_speed + 1e-3)
        logits = logits + self.attention(torch.cat([context, speed], 1))  # (B, K, T, H, W)
        return self.norm(affine_flow_fit(rel, logits).mean(3).flatten(1))  # (B, K * 6)
