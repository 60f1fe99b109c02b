"""MV-aware paired transforms: the vectors keep their meaning through crop, resize and flip."""

from __future__ import annotations

import math

import pytest
import torch

from compvid.errors import InvalidArgumentError
from compvid.transforms import (
    Box,
    ClipAugment,
    eval_crops,
    hflip_mv,
    resized_crop_mv,
    sample_crop_box,
)

GEOMETRY_ONLY = dict(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)


def moving_square(T=6, H=96, W=120, side=16, start=(20, 30), d=(5.0, 3.0)):
    """A bright square on black moving d = (dx, dy) px per frame, and its MV clip.

    rgb float (3, T, H, W); mv (2, T, H, W) holds d where the square is in frame t
    (the displacement from t-1 to t, living at the destination), 0 elsewhere and in frame 0.
    """
    rgb = torch.zeros(3, T, H, W)
    mv = torch.zeros(2, T, H, W)
    for t in range(T):
        y, x = int(start[0] + t * d[1]), int(start[1] + t * d[0])
        rgb[:, t, y : y + side, x : x + side] = 1.0
        if t:
            mv[0, t, y : y + side, x : x + side] = d[0]
            mv[1, t, y : y + side, x : x + side] = d[1]
    return rgb, mv


def centroid(mask: torch.Tensor) -> torch.Tensor:
    """(y, x) centre of mass of a 2-D boolean mask."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack((ys.float().mean(), xs.float().mean()))


def test_hflip_mirrors_the_field_and_negates_x():
    mv = torch.randn(2, 3, 5, 7)
    given = mv.clone()
    out = hflip_mv(mv)
    assert torch.equal(mv, given)  # the input is left as it was
    assert torch.equal(out[0], -mv[0].flip(-1))
    assert torch.equal(out[1], mv[1].flip(-1))
    assert torch.equal(hflip_mv(out), mv)


def test_crop_and_resize_scale_vectors_by_the_resize_factors():
    mv = torch.empty(2, 2, 60, 80)
    mv[0], mv[1] = 3.0, -2.0
    out = resized_crop_mv(mv, 10, 20, 30, 40, (120, 20))  # sx = 20/40, sy = 120/30
    assert out.shape == (2, 2, 120, 20)
    assert torch.allclose(out[0], torch.full_like(out[0], 3.0 * 0.5))
    assert torch.allclose(out[1], torch.full_like(out[1], -2.0 * 4.0))


def test_crop_shifts_nothing_and_the_field_follows_the_box():
    mv = torch.zeros(2, 1, 40, 40)
    mv[0, 0, 10:20, 24:30] = 1.0  # a patch of motion; crop a box holding it, no resize
    out = resized_crop_mv(mv, 5, 20, 20, 20, (20, 20))
    assert torch.equal(out[0, 0], mv[0, 0, 5:25, 20:40]) and torch.equal(out[1], torch.zeros(1, 20, 20))


@pytest.mark.parametrize("seed", range(6))
def test_moving_region_in_mv_sits_on_the_moving_object_after_crop_and_flip(seed):
    rgb, mv = moving_square()
    aug = ClipAugment(size=128, scale=(0.5, 1.0), **GEOMETRY_ONLY)
    params = aug.sample(96, 120, seed)
    out_rgb, out_mv = aug.apply(params, rgb, mv)
    sx, sy = 128 / params.box.width, 128 / params.box.height
    expected = torch.tensor([5.0 * sx * (-1 if params.flip else 1), 3.0 * sy])
    for t in range(1, rgb.shape[1]):
        bright = out_rgb[0, t] > 0.5
        moving = out_mv[:, t].abs().sum(0) > 0.5 * expected.abs().min()
        if bright.sum() < 20 or moving.sum() < 20:
            continue  # the square left the crop
        # same place: the MV region is where the object is
        assert torch.allclose(centroid(moving), centroid(bright), atol=1.5)
        inner = bright & (out_mv[:, t].abs().sum(0) > 0.9 * expected.abs().sum())
        value = out_mv[:, t][:, inner].mean(1)
        assert torch.allclose(value, expected, rtol=0.02)
        # and the vector is the displacement of the object between frames, in output pixels
        prev = out_rgb[0, t - 1] > 0.5
        if prev.sum() == bright.sum():  # fully inside the crop in both frames
            dy, dx = (centroid(bright) - centroid(prev)).tolist()
            assert (dx, dy) == pytest.approx(tuple(expected.tolist()), abs=0.75)


def test_flip_happens_and_is_shared_across_seeds():
    aug = ClipAugment(**GEOMETRY_ONLY)
    flips = {aug.sample(96, 120, seed).flip for seed in range(20)}
    assert flips == {True, False}


def test_photometric_changes_touch_rgb_only_and_are_the_same_for_every_frame():
    frame = torch.rand(3, 1, 64, 80)
    rgb = frame.expand(3, 5, 64, 80).contiguous()  # five identical frames
    mv = torch.randn(2, 5, 64, 80)
    plain = ClipAugment(flip_p=0.5, **GEOMETRY_ONLY)
    loud = ClipAugment(flip_p=0.5, jitter_p=1.0, grayscale_p=1.0, blur_p=1.0)
    rgb_plain, mv_plain = plain(rgb, mv, generator=3)
    rgb_loud, mv_loud = loud(rgb, mv, generator=3)
    assert torch.equal(mv_plain, mv_loud)  # crop and flip are drawn first, photometry never reaches MVs
    assert not torch.allclose(rgb_plain, rgb_loud)
    for t in range(1, 5):  # one draw per clip: identical frames stay identical
        assert torch.allclose(rgb_loud[:, t], rgb_loud[:, 0])
    assert torch.allclose(rgb_loud[0], rgb_loud[1]) and torch.allclose(rgb_loud[1], rgb_loud[2])  # grayscale


def test_uint8_thwc_and_float_cthw_inputs_agree_and_seeds_repeat():
    u8 = torch.randint(0, 256, (4, 50, 70, 3), dtype=torch.uint8)
    f = u8.permute(3, 0, 1, 2).float() / 255
    aug = ClipAugment(size=32)
    a, _ = aug(u8, generator=11)
    b, _ = aug(f, generator=11)
    c, _ = aug(f, generator=torch.Generator().manual_seed(11))
    assert a.shape == (3, 4, 32, 32) and a.dtype == torch.float32
    # uint8 clips are resized in uint8 (rounded to whole grey levels), float clips in float
    assert torch.allclose(a, b, atol=2 / 255) and torch.equal(b, c)
    _, mv_only = aug(mv=torch.zeros(2, 4, 50, 70), generator=11)
    assert mv_only.shape == (2, 4, 32, 32)
    with pytest.raises(InvalidArgumentError):
        aug(torch.zeros(4, 50, 70, 3))  # float in the uint8 layout


def test_crop_boxes_respect_area_and_aspect():
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        box = sample_crop_box(240, 320, generator=g)
        area = box.height * box.width / (240 * 320)
        assert 0.2 * 0.97 <= area <= 1.0
        assert 3 / 4 * 0.97 <= box.width / box.height <= 4 / 3 * 1.03
        assert 0 <= box.top <= 240 - box.height and 0 <= box.left <= 320 - box.width
    assert sample_crop_box(240, 320, generator=5) == sample_crop_box(240, 320, generator=5)


def test_coarser_mv_grid_uses_the_same_relative_box():
    rgb, mv = moving_square(H=96, W=120)
    coarse = mv[:, :, ::4, ::4] / 4  # a quarter-resolution field, in its own pixels
    aug = ClipAugment(size=64, **GEOMETRY_ONLY)
    params = aug.sample(96, 120, 1)
    _, fine_out = aug.apply(params, rgb, mv)
    _, coarse_out = aug.apply(params, rgb, coarse)
    box = params.box.on_grid((96, 120), (24, 30))
    b = params.box
    assert box == Box(round(b.top / 4), round(b.left / 4), max(1, round(b.height / 4)), max(1, round(b.width / 4)))
    inside = fine_out.abs().sum(0) > 0
    # both express the motion in output pixels: same magnitudes where they overlap
    assert math.isclose(fine_out[0][inside].abs().max().item(), coarse_out[0].abs().max().item(), rel_tol=0.15)


def test_ten_crop_corners_centre_and_flips():
    rgb, mv = moving_square(T=3, H=48, W=64, side=8, start=(4, 4), d=(2.0, 1.0))
    r, m = eval_crops(rgb, mv, size=32, resize=48, mode="ten")
    assert r.shape == (10, 3, 3, 32, 32) and m.shape == (10, 2, 3, 32, 32)
    assert torch.equal(r[0], rgb[:, :, :32, :32]) and torch.equal(r[3], rgb[:, :, 16:, 32:])
    assert torch.equal(r[4], rgb[:, :, 8:40, 16:48])
    for i in range(5):
        assert torch.equal(r[5 + i], r[i].flip(-1))
        assert torch.equal(m[5 + i][0], -m[i][0].flip(-1)) and torch.equal(m[5 + i][1], m[i][1].flip(-1))
    # the moving square sits in the top-left crop; its MV region follows it into the flipped crop
    bright = r[5, 0, 2] > 0.5
    assert torch.equal(bright, m[5, 0, 2] < 0) and m[5, 0, 2][bright].unique().tolist() == [-2.0]


def test_three_and_centre_crops_resize_the_short_side_and_scale_vectors():
    rgb, mv = moving_square(T=2, H=96, W=120)
    r, m = eval_crops(rgb, mv, size=48, mode="three")  # short side 96 -> 48: factor 1/2 both ways
    assert r.shape == (3, 3, 2, 48, 48) and m.shape == (3, 2, 2, 48, 48)
    assert m[:, 0].max().item() == pytest.approx(2.5) and m[:, 1].max().item() == pytest.approx(1.5)
    ramp = torch.linspace(0, 1, 120).expand(3, 2, 96, 120)  # brightness = column position
    rr, _ = eval_crops(ramp, None, size=48, mode="three")  # resized to 48 × 60: lefts 0, 6, 12
    firsts = [rr[i, 0, 0, 24, 0].item() for i in range(3)]
    assert firsts[0] < 0.02 and firsts[1] == pytest.approx(0.1, abs=0.02) and firsts[2] == pytest.approx(0.2, abs=0.02)
    c, cm = eval_crops(rgb, None, size=48, mode="center")
    assert c.shape == (1, 3, 2, 48, 48) and cm is None
    with pytest.raises(InvalidArgumentError, match="allowed values"):
        eval_crops(rgb, mv, mode="five")  # type: ignore[arg-type]
