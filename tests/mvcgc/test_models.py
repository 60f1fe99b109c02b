"""Every registry entry: forward and backward with 3 and 2 input channels on small inputs."""

import pytest
import torch

from mvcgc.heads import ProjectionHead
from mvcgc.models import create_encoder, list_encoders

# The smallest clips each backbone accepts (S3D downsamples 32x in space, 8x in time).
SMALL = {"s3d": (8, 32, 32), "r3d_18": (4, 16, 16), "r2plus1d_18": (4, 16, 16), "tiny": (4, 16, 16),
         "motion": (4, 16, 16), "motion_affine": (4, 16, 16)}


def test_registry_lists_the_issue_entries():
    assert set(list_encoders()) >= {"s3d", "r3d_18", "r2plus1d_18", "tiny", "motion"}
    assert set(SMALL) == set(list_encoders())


@pytest.mark.parametrize("in_channels", [3, 2])
@pytest.mark.parametrize("name", list_encoders())
def test_forward_backward(name, in_channels):
    torch.manual_seed(0)
    enc = create_encoder(name, in_channels)
    x = torch.randn(2, in_channels, *SMALL[name])
    h = enc.forward_features(x)
    assert h.shape == (2, enc.feature_dim)
    head = ProjectionHead(enc.feature_dim)
    head(h).pow(2).sum().backward()
    first_conv = next(m for m in enc.backbone.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    assert first_conv.in_channels == in_channels
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_feature_dims():
    assert create_encoder("tiny", 3).feature_dim == 128
    assert ProjectionHead(1024).mlp[0].out_features == 1024 and ProjectionHead(1024).mlp[2].out_features == 128


def test_mv_input_scale_is_learnt_in_the_model():
    # Motion vectors stay in pixels; the input BatchNorm makes the features blind to their scale.
    torch.manual_seed(0)
    enc = create_encoder("tiny", 2)
    x = torch.randn(4, 2, 4, 16, 16)
    torch.testing.assert_close(enc(x), enc(10.0 * x), rtol=1e-3, atol=1e-4)
    assert create_encoder("tiny", 3).input_norm == "none"


def test_bad_arguments():
    with pytest.raises(ValueError, match="allowed: .*s3d.*tiny"):
        create_encoder("resnet50", 3)
    with pytest.raises(ValueError, match="in_channels"):
        create_encoder("tiny", 0)
    with pytest.raises(ValueError, match="batchnorm, none"):
        create_encoder("tiny", 2, input_norm="layernorm")
    with pytest.raises(ValueError, match=r"\(B, 2, T, H, W\)"):
        create_encoder("tiny", 2)(torch.randn(2, 3, 4, 16, 16))


def slow_correlation(f, radius, gap=1):
    """Loop reference: cosine similarity of f[:, :, t, y, x] with f[:, :, t+gap, y+dy, x+dx] (0 off-frame)."""
    b, c, t, h, w = f.shape
    d = 2 * radius + 1
    out = torch.zeros(b, d * d, t, h, w, dtype=f.dtype)
    n = torch.nn.functional.normalize(f, dim=1)
    for ti in range(t - gap):
        for y in range(h):
            for x in range(w):
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        if 0 <= y + dy < h and 0 <= x + dx < w:
                            sim = (n[:, :, ti, y, x] * n[:, :, ti + gap, y + dy, x + dx]).sum(1)
                            out[:, (dy + radius) * d + dx + radius, ti, y, x] = sim
    out[:, :, t - gap :] = out[:, :, t - gap - 1 : t - gap]  # the last frames repeat the last pair
    return out


def test_frame_correlation_matches_loop_reference():
    from mvcgc.models import FrameCorrelation

    f = torch.randn(2, 3, 5, 5, 6, dtype=torch.float64)
    torch.testing.assert_close(FrameCorrelation(2)(f), slow_correlation(f, 2))
    torch.testing.assert_close(FrameCorrelation(1, gap=3)(f), slow_correlation(f, 1, gap=3))
    # a clip no longer than the gap compares its first and last frames
    torch.testing.assert_close(FrameCorrelation(1, gap=9)(f), slow_correlation(f, 1, gap=4))
    with pytest.raises(ValueError, match="at least 2 frames"):
        FrameCorrelation(1)(f[:, :, :1])


def test_frame_correlation_peaks_at_the_true_displacement():
    from mvcgc.models import FrameCorrelation

    # A random texture moved by (dx, dy) = (+2, -1) cells per frame: inside, the best match is that shift.
    g = torch.Generator().manual_seed(0)
    big = torch.randn(4, 24, 24, generator=g)
    frames = torch.stack([big[:, 8 + t: 8 + t + 12, 8 - 2 * t: 8 - 2 * t + 12] for t in range(3)], dim=1)  # y up 1, x right 2
    volume = FrameCorrelation(2)(frames[None])  # (1, 25, 3, 12, 12)
    best = volume[0, :, :2, 3:-3, 3:-3].argmax(0)  # interior, both frame pairs
    dy, dx = best // 5 - 2, best % 5 - 2
    assert bool((dx == 2).all()) and bool((dy == -1).all())


def test_motion_encoder_tells_opposite_motions_apart_untrained():
    """With random weights, one texture moving right and the same frames played backwards (moving
    left) get different features: the stem's match scores carry the direction."""
    torch.manual_seed(0)
    enc = create_encoder("motion", 3).eval()
    g = torch.Generator().manual_seed(1)
    big = torch.rand(3, 40, 80, generator=g)
    right = torch.stack([big[:, 4:36, 20 - 2 * t: 52 - 2 * t] for t in range(6)], dim=1)[None]  # moves right
    left = right.flip(2)  # the same frames in reverse order: moves left
    with torch.no_grad():
        a, b = enc.forward_features(right), enc.forward_features(left)
    assert not torch.allclose(a, b, atol=1e-3)
    # a plain per-frame statistic cannot tell them apart: the frame sets are identical
    torch.testing.assert_close(right.mean(dim=(2, 3, 4)), left.mean(dim=(2, 3, 4)))
