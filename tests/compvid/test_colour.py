"""compvid.colour against torchvision's per-op functions (the slow, obvious reference)."""

import pytest
import torch
import torchvision.transforms.v2.functional as F

from compvid.colour import apply_colour, colour_affine, gaussian_blur, hue_matrix, planar
from compvid.errors import InvalidArgumentError


def frames(seed=0, T=3):
    g = torch.Generator().manual_seed(seed)
    # mid-range values so that no intermediate step of the reference clips (ours clamps once)
    return 0.3 + 0.4 * torch.rand(T, 3, 24, 32, generator=g)


def ours(x, ops, grayscale=False):
    M, b = colour_affine(ops, grayscale=grayscale, channel_means=x.mean(dim=(2, 3)))
    return apply_colour(planar(x), M, b).permute(1, 0, 2, 3)  # (3, T, H, W) -> (T, 3, H, W)


def reference(x, ops, grayscale=False):
    fn = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast, "saturation": F.adjust_saturation,
          "hue": F.adjust_hue}
    for op, f in ops:
        x = fn[op](x, f)
    return F.rgb_to_grayscale(x, num_output_channels=3) if grayscale else x


@pytest.mark.parametrize("ops,grayscale", [
    ([("brightness", 1.3)], False),
    ([("contrast", 0.7)], False),
    ([("saturation", 1.4)], False),
    ([], True),
    ([("saturation", 0.6), ("brightness", 0.9), ("contrast", 1.3)], False),
    ([("contrast", 1.2), ("saturation", 1.3), ("brightness", 1.1)], True),
])
def test_linear_ops_in_any_order_equal_torchvision(ops, grayscale):
    x = frames()
    assert torch.allclose(ours(x, ops, grayscale), reference(x, ops, grayscale), atol=1e-5)


def test_contrast_uses_each_frames_own_mean_grey():
    x = frames(T=2)
    x[1] *= 0.5  # a darker second frame: a clip-wide mean would be wrong for both
    assert torch.allclose(ours(x, [("contrast", 0.5)]), F.adjust_contrast(x, 0.5), atol=1e-5)


def test_hue_rotation_keeps_grey_and_luma_inverts_and_turns_like_torchvision():
    assert torch.allclose(hue_matrix(0.0), torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(hue_matrix(0.1) @ hue_matrix(-0.1), torch.eye(3, dtype=torch.float64), atol=1e-12)
    grey = torch.full((3,), 0.4, dtype=torch.float64)
    assert torch.allclose(hue_matrix(0.23) @ grey, grey, atol=1e-12)  # greys have no hue
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
    c = torch.tensor([0.7, 0.4, 0.2], dtype=torch.float64)
    assert torch.dot(luma, hue_matrix(0.3) @ c) == pytest.approx(torch.dot(luma, c).item(), abs=1e-9)
    # same direction and about the same amount as torchvision's HSV shift for small turns
    x = frames(3)
    for h in (0.05, -0.08):
        err_same = (ours(x, [("hue", h)]) - F.adjust_hue(x, h)).abs().mean()
        err_opposite = (ours(x, [("hue", h)]) - F.adjust_hue(x, -h)).abs().mean()
        assert err_same < 0.6 * err_opposite


def test_output_is_clamped_and_uint8_scale_is_applied():
    u8 = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 3, 1, 1)  # (T, 3, H, W)
    M, b = colour_affine([("brightness", 2.0)], grayscale=False, channel_means=torch.zeros(1, 3))
    out = apply_colour(planar(u8), M, b, scale=1 / 255)
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 256 / 255, 1.0]).clamp(0, 1))


def test_colour_map_of_channels_last_uint8_frames_equals_a_per_pixel_reference():
    """What the augmentation passes: uint8 (T, 3, H, W) with channels-last strides, per-frame offsets;
    out: contiguous float32 (3, T, H, W), each pixel M (x / 255) + b_t, clamped."""
    g = torch.Generator().manual_seed(3)
    hwc = torch.randint(0, 256, (4, 9, 11, 3), dtype=torch.uint8, generator=g)
    M = torch.tensor([[1.1, 0.2, -0.1], [0.0, 0.9, 0.3], [-0.2, 0.1, 1.2]], dtype=torch.float64)
    b = torch.rand(4, 3, generator=g, dtype=torch.float64) - 0.5
    out = apply_colour(planar(hwc.permute(0, 3, 1, 2)), M, b, scale=1 / 255)
    assert out.dtype == torch.float32 and out.shape == (3, 4, 9, 11) and out.is_contiguous()
    for t in range(4):
        for y in range(0, 9, 4):
            for x in range(0, 11, 5):
                want = (M @ (hwc[t, y, x].double() / 255) + b[t]).clamp(0, 1)
                assert torch.allclose(out[:, t, y, x].double(), want, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 3, 40, 52), (2, 3, 150, 97), (3, 2, 128, 128)])
def test_separable_blur_equals_torchvision_gaussian_blur(shape):
    """Frames of one tile and of several (the last one partial); narrow kernels whose outer taps are 0."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    for k, sigma in ((3, 0.5), (13, 1.7), (13, 0.1), (11, 2.0)):
        got = gaussian_blur(x, k, sigma)
        assert got.shape == x.shape and got.is_contiguous()
        assert torch.allclose(got, F.gaussian_blur(x, [k, k], [sigma, sigma]), atol=1e-5)
    strided = x.transpose(-1, -2)  # not contiguous: blurred as it reads
    want = F.gaussian_blur(strided.contiguous(), [13, 13], [1.7, 1.7])
    assert torch.allclose(gaussian_blur(strided, 13, 1.7), want, atol=1e-5)


def test_unknown_op_is_an_error():
    with pytest.raises(InvalidArgumentError, match="allowed brightness") as e:
        colour_affine([("gamma", 1.0)], grayscale=False, channel_means=torch.zeros(1, 3))
    assert isinstance(e.value, ValueError)


def test_blur_wider_than_the_frame_is_an_error():
    with pytest.raises(InvalidArgumentError, match="13 taps needs frames larger than 6 pixels, got 5"):
        gaussian_blur(torch.zeros(1, 3, 5, 40), 13, 1.7)


def test_blur_into_its_own_input_with_a_scratch_buffer_gives_the_same_numbers():
    x = torch.rand(3, 4, 70, 66, generator=torch.Generator().manual_seed(2))
    want = gaussian_blur(x, 7, 1.1)
    work, scratch = x.clone(), torch.full_like(x, float("nan"))
    got = gaussian_blur(work, 7, 1.1, out=work, scratch=scratch)
    assert got.data_ptr() == work.data_ptr() and torch.equal(got, want)
    with pytest.raises(InvalidArgumentError, match="scratch must be a contiguous torch.float32 tensor of shape"):
        gaussian_blur(x, 7, 1.1, scratch=torch.empty(3, 4, 70, 65))
    with pytest.raises(InvalidArgumentError, match="out must be a contiguous"):
        gaussian_blur(x, 7, 1.1, out=x.transpose(-1, -2))


def test_planar_takes_three_channels():
    with pytest.raises(InvalidArgumentError, match=r"\(T, 3, H, W\) frames, got \(2, 4, 5, 5\)"):
        planar(torch.zeros(2, 4, 5, 5))
