"""compvid.banded against plain matrix products (the slow, obvious reference)."""

import pytest
import torch

from compvid import banded
from compvid.errors import InvalidArgumentError


def banded_matrix(n_out: int, n_in: int, width: int, seed: int) -> torch.Tensor:
    """(n_out, n_in) float32 with random weights on a band of ``width`` columns around the diagonal
    (scaled to the shapes), zeros elsewhere: a resize-like map when n_out != n_in."""
    g = torch.Generator().manual_seed(seed)
    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        c = int((i + 0.5) * n_in / n_out)
        lo, hi = max(c - width, 0), min(c + width + 1, n_in)
        m[i, lo:hi] = torch.rand(hi - lo, generator=g) + 0.1
    return m


@pytest.mark.parametrize("shape,size", [((2, 5, 147, 196), (128, 128)), ((3, 2, 40, 50), (128, 96)),
                                        ((1, 70, 33), (70, 33)), ((2, 3, 64, 64), (16, 100))])
def test_separable_equals_the_full_products(shape, size):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g)
    along_h = banded_matrix(size[0], shape[-2], 3, 2)
    along_w = banded_matrix(size[1], shape[-1], 5, 3)
    want = (along_h.double() @ x.double() @ along_w.double().T).float()
    got = banded.separable(x, along_h, along_w)
    assert got.shape == (*shape[:-2], *size) and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    # tiles restrict each tile of rows to the columns holding all of its non-zero weights
    rebuilt = torch.zeros_like(along_h)
    for lines, (lo, hi), (s0, s1) in banded.tiles(along_h):
        assert hi - lo <= banded.TILE
        assert lines[:, 0].any() and lines[:, -1].any()  # no input line more than the weights reach
        rebuilt[lo:hi, s0:s1] = lines
    assert torch.equal(rebuilt, along_h)


def test_a_tile_of_zero_rows_gives_zero_lines():
    x = torch.randn(2, 80, 20, generator=torch.Generator().manual_seed(4))
    along_h = banded_matrix(96, 80, 2, 5)
    along_h[32:64] = 0  # the second tile weighs nothing
    got = banded.separable(x, along_h, torch.eye(20), out=torch.full((2, 96, 20), float("nan")))
    assert torch.equal(got[:, 32:64], torch.zeros(2, 32, 20))
    assert torch.allclose(got, (along_h.double() @ x.double()).float(), atol=1e-5)


def test_gaussian_rows_are_a_reflected_kernel_summing_to_one():
    m = banded.gaussian(20, 5, 1.2)
    assert m.shape == (20, 20) and torch.allclose(m.sum(dim=1), torch.ones(20), atol=1e-6)
    assert torch.allclose(m[10, 8:13], m[10, 8:13].flip(0))  # symmetric inside the frame
    # row 0: the taps left of the edge fold back onto the ones right of it
    assert m[0, 1] == pytest.approx(2 * float(m[10, 9])) and m[0, 2] == pytest.approx(2 * float(m[10, 8]))
    assert (m[10, :8] == 0).all() and (m[10, 13:] == 0).all()


def test_separable_checks_its_buffers_and_sizes():
    x = torch.zeros(2, 10, 12)
    eye_h, eye_w = torch.eye(10), torch.eye(12)
    with pytest.raises(InvalidArgumentError, match="maps of 12x12 lines given for frames of 10x12"):
        banded.separable(x, eye_w, eye_w)
    with pytest.raises(InvalidArgumentError, match=r"out must be a contiguous torch.float32 tensor of shape \(2, 10, 12\)"):
        banded.separable(x, eye_h, eye_w, out=torch.zeros(2, 10, 11))
