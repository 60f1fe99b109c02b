"""compvid.banded against torch's own resize and plain matrix products (the slow, obvious references)."""

import pytest
import torch
import torch.nn.functional as Fn
import torchvision.transforms.v2.functional as F
from torchvision.transforms.v2 import InterpolationMode

from compvid import banded
from compvid.errors import InvalidArgumentError
from compvid.transforms import resized_crop_mv


def torch_weights(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32: torch's antialiased bilinear resize of each unit impulse along H."""
    impulses = torch.eye(n_in).view(1, n_in, n_in, 1).expand(1, n_in, n_in, 3).contiguous()  # channel j: e_j
    return Fn.interpolate(impulses, size=(n_out, 3), mode="bilinear", antialias=True,
                          align_corners=False)[0, :, :, 0].T


@pytest.mark.parametrize("n_in,n_out", [(196, 171), (147, 128), (190, 112), (40, 128), (128, 128), (7, 3), (300, 64)])
def test_antialiased_weights_are_torchs(n_in, n_out):
    mine = banded.antialiased_linear(n_in, n_out)
    assert mine.dtype == torch.float32 and mine.shape == (n_out, n_in)
    assert torch.allclose(mine, torch_weights(n_in, n_out), atol=1e-6, rtol=0)
    assert torch.allclose(mine.sum(dim=1), torch.ones(n_out), atol=1e-6)
    if n_in == n_out:
        assert torch.equal(mine, torch.eye(n_in))


@pytest.mark.parametrize("shape,size", [((2, 5, 147, 196), (128, 128)), ((3, 2, 40, 50), (128, 96)),
                                        ((1, 70, 33), (70, 33)), ((2, 3, 64, 64), (16, 100))])
def test_separable_equals_the_full_products(shape, size):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g)
    along_h = banded.antialiased_linear(shape[-2], size[0])
    along_w = banded.antialiased_linear(shape[-1], size[1])
    want = (along_h.double() @ x.double() @ along_w.double().T).float()
    got = banded.separable(x, along_h, along_w)
    assert got.shape == (*shape[:-2], *size) and got.is_contiguous()
    assert torch.allclose(got, want, atol=2e-6, rtol=1e-6)
    # tiles restrict each tile of rows to the columns holding all of its non-zero weights
    rebuilt = torch.zeros_like(along_h)
    for lines, (lo, hi), (s0, s1) in banded.tiles(along_h):
        rebuilt[lo:hi, s0:s1] = lines
    assert torch.equal(rebuilt, along_h)


def test_separable_checks_its_buffers_and_sizes():
    x = torch.zeros(2, 10, 12)
    eye_h, eye_w = torch.eye(10), torch.eye(12)
    with pytest.raises(InvalidArgumentError, match="maps of 12x12 lines given for frames of 10x12"):
        banded.separable(x, eye_w, eye_w)
    with pytest.raises(InvalidArgumentError, match=r"out must be a contiguous torch.float32 tensor of shape \(2, 10, 12\)"):
        banded.separable(x, eye_h, eye_w, out=torch.zeros(2, 10, 11))


@pytest.mark.parametrize("box,size", [((10, 20, 120, 150), (128, 128)), ((0, 0, 147, 196), (128, 171)),
                                      ((5, 7, 40, 50), (112, 112)), ((60, 90, 87, 106), (32, 20)),
                                      ((-4, 180, 60, 40), (64, 64))])  # the last one reaches past two borders
def test_motion_crop_resize_is_torchvisions_antialiased_resize(box, size):
    g = torch.Generator().manual_seed(2)
    mv = torch.randn(2, 4, 147, 196, generator=g)
    top, left, height, width = box
    want = F.resized_crop(mv, top, left, height, width, list(size), InterpolationMode.BILINEAR, antialias=True)
    want = want * torch.tensor([size[1] / width, size[0] / height]).view(2, 1, 1, 1)
    got = resized_crop_mv(mv, top, left, height, width, size)
    assert got.shape == (2, 4, *size)
    assert torch.allclose(got, want, atol=3e-6, rtol=1e-6)
