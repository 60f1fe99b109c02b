"""compvid.visualize: MV colour maps, arrows and the PNG grid."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from PIL import Image

from compvid.errors import InvalidArgumentError
from compvid.visualize import (
    ARROW_COLOR,
    NO_MV_LABEL_COLOR,
    _row_label,
    colour_wheel,
    draw_arrows,
    mv_to_color,
    render_mv_picture,
    robust_max_magnitude,
    save_mv_png,
    video_title,
)


def const_field(dx: float, dy: float, h: int = 8, w: int = 8) -> np.ndarray:
    mv = np.zeros((2, h, w), np.float32)
    mv[0], mv[1] = dx, dy
    return mv


def hue_of(rgb_pixel) -> float:
    r, g, b = (float(c) / 255 for c in rgb_pixel)
    return colorsys.rgb_to_hsv(r, g, b)[0]


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


# ------------------------------------------------------------------ mv_to_color


def test_zero_field_is_white():
    img = mv_to_color(np.zeros((2, 12, 20), np.float32))
    assert img.dtype == np.uint8 and img.shape == (12, 20, 3)
    assert (img == 255).all()


def test_constant_field_is_uniform_and_coloured():
    img = mv_to_color(const_field(3, -2))
    assert (img == img[0, 0]).all()
    assert img[0, 0].min() < 200, "a moving field must not be white"


def test_direction_changes_hue():
    dirs = [(4, 0), (0, 4), (-4, 0), (0, -4)]
    hues = [hue_of(mv_to_color(const_field(*d))[0, 0]) for d in dirs]
    for i in range(4):
        for j in range(i + 1, 4):
            assert hue_distance(hues[i], hues[j]) > 0.08, (dirs[i], dirs[j], hues)


def test_scale_is_fixed_across_frames():
    # With flow_to_image's own normalisation, (2, 0) would turn fully saturated when
    # it is the largest vector of its frame; with a fixed scale it keeps its colour.
    alone = mv_to_color(const_field(2, 0), 8.0)
    for big in (6, 30):  # below and beyond max_magnitude
        mixed = const_field(2, 0)
        mixed[0, :, 4:] = big
        assert (alone[:, :4] == mv_to_color(mixed, 8.0)[:, :4]).all(), big
    # Longer vectors are more saturated (further from white), same hue.
    weak, strong = mv_to_color(const_field(2, 0), 8.0)[0, 0], mv_to_color(const_field(6, 0), 8.0)[0, 0]
    assert int(strong.astype(int).sum()) < int(weak.astype(int).sum())
    assert hue_distance(hue_of(weak), hue_of(strong)) < 0.03
    # Beyond max_magnitude: clipped, same colour as exactly max_magnitude.
    assert (mv_to_color(const_field(30, 0), 8.0) == mv_to_color(const_field(8, 0), 8.0)).all()


def test_mv_to_color_rejects_bad_input():
    with pytest.raises(InvalidArgumentError):
        mv_to_color(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(InvalidArgumentError):
        mv_to_color(np.zeros((2, 4, 4), np.float32), max_magnitude=0)


# -------------------------------------------------------------------- draw_arrows


def is_arrow(img: np.ndarray) -> np.ndarray:
    return (img == np.array(ARROW_COLOR, np.uint8)).all(axis=-1)


def test_arrows_only_where_motion_is():
    rgb = np.full((64, 96, 3), 90, np.uint8)
    mv = np.zeros((2, 64, 96), np.float32)
    mv[0, :, :48] = 6  # left half moves right
    out = draw_arrows(rgb, mv, step=16)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (rgb == 90).all(), "input must not be modified"
    changed = (out != rgb).any(axis=-1)
    assert changed[:, :48].sum() > 6 * 4 * 3, "an arrow per moving cell"
    assert not changed[:, 52:].any(), "no arrows where nothing moves"
    # Every moving cell has its arrow.
    for cy in range(8, 64, 16):
        for cx in range(8, 48, 16):
            assert is_arrow(out[cy - 8 : cy + 8, cx - 8 : cx + 8]).any()


@pytest.mark.parametrize("d, side", [((6, 0), "right"), ((-6, 0), "left"), ((0, 6), "down"), ((0, -6), "up")])
def test_arrow_points_along_displacement(d, side):
    rgb = np.zeros((16, 16, 3), np.uint8)
    out = draw_arrows(rgb, const_field(*d, 16, 16), step=16)
    ys, xs = np.nonzero(is_arrow(out))
    assert len(xs) >= 5
    c = 8.0
    if side == "right":
        assert xs.min() >= c - 1 and xs.max() >= c + 5
    elif side == "left":
        assert xs.max() <= c + 1 and xs.min() <= c - 5
    elif side == "down":
        assert ys.min() >= c - 1 and ys.max() >= c + 5
    else:
        assert ys.max() <= c + 1 and ys.min() <= c - 5


def test_arrow_scale():
    rgb = np.zeros((32, 32, 3), np.uint8)
    short = is_arrow(draw_arrows(rgb, const_field(2, 0, 32, 32), step=32, scale=1.0))
    long = is_arrow(draw_arrows(rgb, const_field(2, 0, 32, 32), step=32, scale=5.0))
    assert np.nonzero(long)[1].max() >= 16 + 9 > np.nonzero(short)[1].max()


def test_arrows_survive_absurd_vectors():
    rgb = np.zeros((32, 32, 3), np.uint8)
    mv = const_field(1e30, -1e30, 32, 32)
    mv[0, :16] = np.nan
    out = draw_arrows(rgb, mv, step=16)
    assert is_arrow(out[16:]).any()


def test_draw_arrows_rejects_mismatch():
    with pytest.raises(InvalidArgumentError):
        draw_arrows(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 8, 9), np.float32))


# -------------------------------------------------------------------- save_mv_png


def clip(t=4, h=48, w=64):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (t, h, w, 3), dtype=np.uint8)
    mv = np.zeros((2, t, h, w), np.float32)
    mv[0, 1:] = 3
    mv[1, 1:] = -2
    has_mv = np.array([False] + [True] * (t - 1))
    return rgb, mv, has_mv


def test_save_png_grid(tmp_path):
    rgb, mv, has_mv = clip()
    path = tmp_path / "grid.png"
    save_mv_png(path, rgb, mv, has_mv, frames=[0, 2], title="v_MoveRight_g01_c01.mp4   class MoveRight")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"], "no temporary file left behind"
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= 1000, "wide enough to read, whatever the frame size (here 64 px)"
        assert "v_MoveRight_g01_c01.mp4" in im.text["Title"]
        assert "saturation at 3.61 px/frame (99th percentile" in im.text["Description"]
        img = np.asarray(im.convert("RGB"))
    picture = render_mv_picture(rgb, mv, has_mv, frames=[0, 2])
    assert img.shape == (picture.image.height, picture.image.width, 3)

    def tile(row, column):
        left, top, right, bottom = picture.tiles[(row, column)]
        return img[top:bottom, left:right]

    # Tiles side by side, enlarged in proportion (64x48 frames).
    (l0, t0, r0, b0), (l1, t1, _, _) = picture.tiles[(0, "rgb")], picture.tiles[(0, "colour")]
    assert t0 == t1 and r0 < l1 and (r0 - l0) >= 300 and abs((b0 - t0) / (r0 - l0) - 48 / 64) < 0.01
    # Colour map: frame 0 (I-frame) is white, frame 2 coloured and uniform.
    assert (tile(0, "colour") == 255).all()
    colour = tile(1, "colour")
    assert (colour == colour[0, 0]).all() and colour[0, 0].min() < 200
    # Arrows only on the moving frame, and long enough to see (several picture pixels).
    assert not is_arrow(tile(0, "arrows")).any()
    ys, xs = np.nonzero(is_arrow(tile(1, "arrows")))
    assert len(xs) > 200


def test_row_labels_carry_frame_numbers_and_types(tmp_path):
    rgb, mv, has_mv = clip()
    rgb[:] = 90  # plain frames: the label colour cannot turn up in the noise
    picture = render_mv_picture(rgb, mv, has_mv, frame_numbers=[40, 41, 42, 43], frame_types="IBBP")
    img = np.asarray(picture.image)
    no_mv = (img == np.array(NO_MV_LABEL_COLOR, np.uint8)).all(axis=-1)
    # Only the I-frame's label (above its tiles) is in the "no motion vectors" colour.
    rows_with_red = np.nonzero(no_mv.any(axis=1))[0]
    first, second = picture.tiles[(0, "rgb")][1], picture.tiles[(1, "rgb")][1]
    assert len(rows_with_red) and first - 30 < rows_with_red.min() and rows_with_red.max() < first
    assert not no_mv[first:].any()
    assert second > first
    assert _row_label(42, "B", True) == "frame 42  (B-frame)"
    assert _row_label(40, "I", False) == "frame 40  (I-frame)  no motion vectors (key frame)"
    with pytest.raises(InvalidArgumentError):
        render_mv_picture(rgb, mv, has_mv, frame_numbers=[1, 2])


def test_scale_is_robust_and_stated(tmp_path):
    rgb, mv, has_mv = clip()
    mv[:, 3, :2, :2] = np.array([200.0, 0.0])[:, None, None]  # one outlier block
    picture = render_mv_picture(rgb, mv, has_mv)
    assert picture.max_magnitude == pytest.approx(np.hypot(3, 2), rel=0.01)
    assert "saturation at 3.61 px/frame (99th percentile" in picture.description
    fixed = render_mv_picture(rgb, mv, has_mv, max_magnitude=8.0)
    assert fixed.max_magnitude == 8.0 and "saturation at 8 px/frame (chosen)" in fixed.description


def test_source_size_states_vectors_in_video_pixels():
    rgb, mv, has_mv = clip()  # frames 64x48, decoded at half the video's size
    picture = render_mv_picture(rgb, mv, has_mv, source_size=(128, 96))
    assert picture.max_magnitude == pytest.approx(2 * np.hypot(3, 2), rel=0.01)
    assert "in pixels of the 128x96 video" in picture.description


def test_video_title_names_the_video_and_its_class_folder():
    assert video_title("/data/ucf101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi") == (
        "v_ApplyEyeMakeup_g08_c01.avi   class ApplyEyeMakeup")
    assert video_title("/data/hmdb51/brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0.avi").endswith(
        "class brush_hair")
    assert video_title("/work/shared/media/bikes.mp4") == "bikes.mp4   in folder media/"
    assert video_title("bikes.mp4") == "bikes.mp4"
    assert video_title(b"\x00\x00") == "video in memory"


def test_save_png_without_rgb_and_default_frames(tmp_path):
    _, mv, has_mv = clip(t=3, h=20, w=30)
    path = tmp_path / "mv.png"
    save_mv_png(str(path), None, mv, has_mv)
    picture = render_mv_picture(None, mv, has_mv)
    assert sorted(c for _, c in picture.tiles) == ["arrows"] * 3 + ["colour"] * 3
    with Image.open(path) as im:
        assert im.size == picture.image.size and im.width >= 1000


def test_save_png_overwrites_and_rejects_bad_input(tmp_path):
    rgb, mv, has_mv = clip()
    path = tmp_path / "x.png"
    path.write_bytes(b"old")
    save_mv_png(path, rgb, mv, has_mv, frames=[1])
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 1000
    with pytest.raises(InvalidArgumentError):
        save_mv_png(path, rgb, mv, has_mv, frames=[9])
    with pytest.raises(InvalidArgumentError):
        save_mv_png(path, rgb, mv, has_mv[:2])
    with pytest.raises(InvalidArgumentError):
        save_mv_png(path, rgb[:2], mv, has_mv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


# ------------------------------------------------------------ robust_max_magnitude


def test_robust_scale_ignores_a_single_huge_outlier():
    rng = np.random.default_rng(0)
    mv = rng.normal(0, 0.2, (2, 40, 60)).astype(np.float32)
    mv[0] += 2.0  # everything moves about 2 px right
    mv[:, 17, 23] = (200.0, 0.0)  # one outlier vector
    assert float(np.hypot(mv[0], mv[1]).max()) > 199
    scale = robust_max_magnitude(mv)
    assert 1.9 < scale < 3.0, scale


def test_robust_scale_uses_the_moving_part_over_all_frames():
    still = np.zeros((2, 32, 32), np.float32)
    small_object = still.copy()
    small_object[1, :4, :4] = -5.0  # 1.6 % of one frame moves 5 px up
    assert robust_max_magnitude([still, small_object]) == pytest.approx(5.0)
    assert robust_max_magnitude([still, still]) == 1.0, "nothing moves: the floor"
    assert robust_max_magnitude(np.full((2, 4, 4), 0.3, np.float32)) == 1.0, "floor of 1 px"
    with pytest.raises(InvalidArgumentError):
        robust_max_magnitude(still, percentile=0)


# -------------------------------------------------------------------- colour_wheel


@pytest.mark.parametrize("d, where", [((4, 0), "right"), ((0, 4), "bottom"), ((-4, 0), "left"), ((0, -4), "top")])
def test_key_direction_matches_the_mv_convention(d, where):
    # README convention: x right +, y down +. A field moving right must get the colour of the
    # key's right-hand side, one moving down the colour of its bottom (image rows grow downwards).
    wheel = colour_wheel(101, 4.0)
    c, r = 50, 45  # centre pixel, and a point near the rim
    key_pixel = {"right": wheel[c, c + r], "bottom": wheel[c + r, c], "left": wheel[c, c - r], "top": wheel[c - r, c]}
    field_colour = mv_to_color(const_field(*d), 4.0)[0, 0]
    assert hue_distance(hue_of(key_pixel[where]), hue_of(field_colour)) < 0.02
    # Same colour too, for the same length: the pixel lies r of the 50.5-px radius from the centre.
    same_length = mv_to_color(const_field(*(np.array(d) * r / 50.5)), 4.0)[0, 0]
    np.testing.assert_allclose(key_pixel[where].astype(int), same_length.astype(int), atol=3)
    others = [p for k, p in key_pixel.items() if k != where]
    assert all(hue_distance(hue_of(p), hue_of(field_colour)) > 0.08 for p in others)


def test_key_is_white_in_the_middle_and_outside():
    wheel = colour_wheel(61, 3.2, background=(250, 250, 250))
    assert wheel.shape == (61, 61, 3) and wheel.dtype == np.uint8
    assert (wheel[30, 30] >= 245).all(), "no motion is white"
    assert (wheel[0, 0] == 250).all() and (wheel[60, 60] == 250).all()


def test_mv_to_color_right_is_red_down_is_yellowish():
    # The Middlebury wheel: +x red, +y (down) orange/yellow, -x cyan-blue: pins the absolute hues.
    assert hue_distance(hue_of(mv_to_color(const_field(8, 0))[0, 0]), 0.0) < 0.03
    assert 0.05 < hue_of(mv_to_color(const_field(0, 8))[0, 0]) < 0.2
    assert 0.45 < hue_of(mv_to_color(const_field(-8, 0))[0, 0]) < 0.6
