"""Flow read-out and affine flow pooling against slow references and fields of known motion."""

import math

import numpy as np
import pytest
import torch

from mvcgc.flow_pooling import LucasKanadeFlow, affine_flow_fit, relative_to_background


def _positions(h, w):
    ys = np.linspace(-1, 1, h)[:, None].repeat(w, 1)
    xs = np.linspace(-1, 1, w)[None, :].repeat(h, 0)
    return xs, ys


def test_affine_fit_matches_weighted_least_squares():
    """Against numpy's weighted least squares of v ~ v0' + A p, per head and frame, on a noisy field."""
    rng = np.random.default_rng(0)
    b, k, t, h, w = 2, 3, 2, 6, 7
    flow = rng.normal(size=(b, 2, t, h, w))
    logits = rng.normal(size=(b, k, t, h, w))
    got = affine_flow_fit(torch.from_numpy(flow), torch.from_numpy(logits), eps=0.0).numpy()  # (B, K, 6, T)
    xs, ys = _positions(h, w)
    design = np.stack([np.ones(h * w), xs.ravel(), ys.ravel()], 1)  # (HW, 3)
    for bi in range(b):
        for ki in range(k):
            for ti in range(t):
                wgt = np.exp(logits[bi, ki, ti].ravel())
                wgt /= wgt.sum()
                sw = np.sqrt(wgt)[:, None]
                coef = [np.linalg.lstsq(design * sw, flow[bi, c, ti].ravel() * sw[:, 0], rcond=None)[0] for c in (0, 1)]
                a00, a01, a10, a11 = coef[0][1], coef[0][2], coef[1][1], coef[1][2]
                v0 = [(wgt * flow[bi, c, ti].ravel()).sum() for c in (0, 1)]  # weighted mean flow
                want = [v0[0], v0[1], a00 + a11, a10 - a01, a00 - a11, a01 + a10]
                np.testing.assert_allclose(got[bi, ki, :, ti], want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("omega,growth", [(0.3, 0.0), (-0.3, 0.0), (0.0, 0.2), (0.0, -0.2)])
def test_affine_fit_reads_spin_and_growth_of_an_object_on_a_drifting_background(omega, growth):
    """A disk spinning (omega, rad per frame, + = clockwise on screen with y down) or growing
    (relative rate per frame) on a background drifting by (0.4, -0.1): weights that follow the
    relative speed give curl = 2 omega and divergence = 2 growth; uniform weights dilute them with the background."""
    h = w = 33
    xs, ys = _positions(h, w)
    cx, cy, radius = 0.25, -0.2, 0.35
    inside = ((xs - cx) ** 2 + (ys - cy) ** 2 < radius**2).astype(float)
    vx = (-omega * (ys - cy) + growth * (xs - cx)) * inside + 0.4
    vy = (omega * (xs - cx) + growth * (ys - cy)) * inside - 0.1
    flow = torch.tensor(np.stack([vx, vy]))[None, :, None]  # (1, 2, 1, H, W)
    rel = relative_to_background(flow)
    torch.testing.assert_close(rel[0, :, 0, 0, 0], torch.zeros(2, dtype=torch.float64))  # background now still
    focused = 8.0 * torch.log(rel.norm(dim=1, keepdim=True) + 1e-3)  # weight ~ speed^8: the moving disk
    _, _, div, curl, stretch, shear = affine_flow_fit(rel, focused, eps=0.0)[0, 0, :, 0].tolist()
    assert curl == pytest.approx(2 * omega, abs=0.02 * max(abs(omega), 0.1))
    assert div == pytest.approx(2 * growth, abs=0.02 * max(abs(growth), 0.1))
    assert abs(stretch) < 0.01 and abs(shear) < 0.01
    # the same field fitted with uniform weights: diluted by the still background, same sign
    uniform = affine_flow_fit(rel, torch.zeros_like(focused), eps=0.0)[0, 0, :, 0]
    assert abs(uniform[3].item() - 2 * omega) > 0.1 * abs(2 * omega) or omega == 0
    assert math.copysign(1, uniform[3].item()) == math.copysign(1, omega) or omega == 0


def _waves(h, w, t, shift):
    """(1, 3, T, H, W) frames of a smooth pattern (a sum of plane waves) moved by ``shift`` (dx, dy) px per frame."""
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    frames = []
    for ti in range(t):
        x, y = xs - shift[0] * ti, ys - shift[1] * ti
        img = sum(np.sin(kx * x + ky * y + p) for kx, ky, p in rng.uniform([-0.4, -0.4, 0], [0.4, 0.4, 6.3], (6, 3)))
        frames.append(img)
        rng = np.random.default_rng(1)  # the same waves every frame
    grey = torch.tensor(np.stack(frames), dtype=torch.float32)
    return grey.expand(1, 3, t, h, w).contiguous()


@pytest.mark.parametrize("shift", [(0.4, -0.3), (-0.7, 0.2), (0.0, 0.0)])
def test_lucas_kanade_flow_recovers_a_sub_pixel_shift(shift):
    flow = LucasKanadeFlow(damping=1e-6)(_waves(40, 48, 3, shift))  # (1, 2, 3, H, W)
    inside = flow[0, :, :, 8:-8, 8:-8]  # away from the borders (Sobel and window padding)
    assert inside[0].mean().item() == pytest.approx(shift[0], abs=0.05)
    assert inside[1].mean().item() == pytest.approx(shift[1], abs=0.05)
    assert (inside[0] - shift[0]).abs().quantile(0.9).item() < 0.15
    torch.testing.assert_close(flow[:, :, -1], flow[:, :, -2])  # the last frame repeats the last pair


def test_lucas_kanade_flow_checks_its_arguments():
    with pytest.raises(ValueError, match="window must be odd"):
        LucasKanadeFlow(window=4)
    with pytest.raises(ValueError, match="at least 2 frames"):
        LucasKanadeFlow()(torch.zeros(1, 3, 1, 8, 8))


def _spinning_disk(degrees_per_frame, frames=6, size=48):
    """(1, 3, T, S, S): a textured disk turning in place on a still textured background (y down)."""
    g = torch.Generator().manual_seed(0)
    tex = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 4 * size, 4 * size, generator=g), 9, 1, 4)  # smooth
    lin = torch.linspace(-1, 1, size)
    ys, xs = torch.meshgrid(lin, lin, indexing="ij")
    inside = (xs**2 + ys**2 < 0.45**2).float()
    out = []
    for t in range(frames):
        a = math.radians(degrees_per_frame * t)  # content at angle θ moves to θ + a (clockwise on screen)
        u = math.cos(a) * xs + math.sin(a) * ys  # rotate sample positions back by a
        v = -math.sin(a) * xs + math.cos(a) * ys
        disk = torch.nn.functional.grid_sample(tex, torch.stack([u, v], -1)[None] * 0.5, align_corners=True)[0, 0]
        bg = torch.nn.functional.grid_sample(tex, torch.stack([xs, ys], -1)[None] * 0.5 + 0.5, align_corners=True)[0, 0]
        out.append(inside * disk + (1 - inside) * bg)
    return torch.stack(out).expand(1, 3, frames, size, size).contiguous() * 4  # contrast of a normalised clip


def test_untrained_motion_encoder_reads_the_turning_direction_off_its_curl_features():
    """The RGB `motion_affine` encoder, untrained: its affine heads that follow what moves (beta > 0) give a
    curl of one sign for a clockwise disk and the opposite sign, same size, for the counter-clockwise one."""
    from mvcgc.flow_pooling import AFFINE_FEATURES
    from mvcgc.models import create_encoder

    torch.manual_seed(0)
    enc = create_encoder("motion_affine", 3).eval()  # BatchNorms at their initial statistics: identity
    with torch.no_grad():
        cw, ccw = (enc.forward_features(_spinning_disk(d))[0, 128:].view(4, 6) for d in (4.0, -4.0))
    curl = AFFINE_FEATURES.index("curl")
    assert (cw[1:, curl] > 0).all() and (ccw[1:, curl] < 0).all()  # clockwise: + with y down
    torch.testing.assert_close(cw[1:, curl], -ccw[1:, curl], rtol=0.25, atol=0.0)
