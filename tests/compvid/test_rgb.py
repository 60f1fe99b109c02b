"""RgbConverter: the two-pass (scale in YUV 4:4:4, then convert) path gives what
swscale's one-pass scaled conversion gives: same colours (matrix and range kept),
same sharpness against an area-averaged float reference."""

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import VideoReformatter

from compvid.rgb import RgbConverter

OUT_H, OUT_W = 128, 171  # 320x240 at a 128-px short side (odd width, as in training)


def _texture() -> np.ndarray:
    """Smooth, saturated RGB texture (240, 320, 3): colour errors show in the means."""
    y, x = np.mgrid[0:240, 0:320].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.sin(y / 7.0 + x / 13.0),
                    128 + 100 * np.cos((x + y) / 11.0)], -1)
    return img.astype(np.uint8)


def _frame(fmt: str, colorspace: str, color_range: str) -> av.VideoFrame:
    src = av.VideoFrame.from_ndarray(_texture(), format="rgb24")
    return src.reformat(format=fmt, dst_colorspace=colorspace, dst_color_range=color_range)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


CASES = [("yuv420p", "ITU601", "MPEG"), ("yuv420p", "ITU709", "MPEG"), ("yuvj420p", "ITU601", "JPEG"),
         ("yuv422p", "ITU709", "MPEG"), ("yuv444p", "ITU709", "MPEG"), ("yuv420p10le", "ITU709", "MPEG")]


@pytest.mark.parametrize("fmt,colorspace,color_range", CASES)
def test_scaled_output_matches_one_pass_swscale(fmt, colorspace, color_range):
    frame = _frame(fmt, colorspace, color_range)
    one = VideoReformatter().reformat(frame, width=OUT_W, height=OUT_H, format="rgb24",
                                      interpolation="AREA", threads=1).to_ndarray()
    got = RgbConverter()(frame, OUT_H, OUT_W)
    assert got.dtype == np.uint8 and got.shape == (OUT_H, OUT_W, 3)
    # Same matrix and range: a BT.601/709 or limited/full mix-up moves the
    # channel means of this saturated texture by several grey levels.
    mean_shift = got.reshape(-1, 3).mean(0) - one.reshape(-1, 3).mean(0)
    assert np.abs(mean_shift).max() < 0.5, mean_shift
    assert np.abs(got.astype(np.int16) - one).mean() < 1.0
    # Same sharpness: against RGB converted at full size and area-averaged in float.
    native = torch.from_numpy(VideoReformatter().reformat(frame, format="rgb24", threads=1).to_ndarray())
    reference = torch.nn.functional.interpolate(native.permute(2, 0, 1)[None].float(), size=(OUT_H, OUT_W),
                                                mode="area")[0].permute(1, 2, 0).numpy()
    assert _psnr(got, reference) > _psnr(one, reference) - 0.5


def test_native_size_is_the_plain_conversion():
    frame = _frame("yuv420p", "ITU709", "MPEG")
    want = VideoReformatter().reformat(frame, format="rgb24", threads=1).to_ndarray()
    np.testing.assert_array_equal(RgbConverter()(frame, 240, 320), want)
