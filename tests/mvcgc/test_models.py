"""Every registry entry: forward and backward with 3 and 2 input channels on small inputs."""

import pytest
import torch

from mvcgc.heads import ProjectionHead
from mvcgc.models import create_encoder, list_encoders

# The smallest clips each backbone accepts (S3D downsamples 32x in space, 8x in time).
SMALL = {"s3d": (8, 32, 32), "r3d_18": (4, 16, 16), "r2plus1d_18": (4, 16, 16), "tiny": (4, 16, 16)}


def test_registry_lists_the_issue_entries():
    assert set(list_encoders()) >= {"s3d", "r3d_18", "r2plus1d_18", "tiny"}
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
    first_conv = next(m for m in enc.backbone.modules() if isinstance(m, torch.nn.Conv3d))
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
