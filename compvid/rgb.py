"""Decoded frame -> uint8 RGB at the output size, through swscale.

Measured here (320x240 yuv420p -> 171x128, one thread, FFmpeg 8): swscale's
one-pass scaled YUV -> packed RGB path costs about 0.5 ms a frame, while
scaling in YUV to planar 4:4:4 at the output size and then converting without
scaling takes its SIMD fast path, about 20-25 % cheaper, with the same result
against an area-averaged float reference (within 0.3 dB PSNR on the real clips
of ../shared/media and on synthetic textures). Scaling to 4:2:0 instead would
be 3x cheaper but halves the chroma resolution (up to 7 dB worse on colourful
content), so it is not used.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import VideoReformatter

# 8-bit planar YUV sources -> the 4:4:4 format of the same range
# (yuvj* = full range; keeping the j keeps swscale's range handling as in one pass).
_PLANAR_444 = {
    "yuv420p": "yuv444p", "yuv422p": "yuv444p", "yuv411p": "yuv444p", "yuv410p": "yuv444p", "yuv440p": "yuv444p",
    "yuv444p": "yuv444p",
    "yuvj420p": "yuvj444p", "yuvj422p": "yuvj444p", "yuvj440p": "yuvj444p", "yuvj444p": "yuvj444p",
}


class RgbConverter:
    """Converts the frames of one clip; keeps its swscale contexts between frames."""

    def __init__(self) -> None:
        self._scale = VideoReformatter()  # source format -> 4:4:4 at the output size
        self._convert = VideoReformatter()  # 4:4:4 -> rgb24, unscaled

    def __call__(self, frame: av.VideoFrame, height: int, width: int) -> np.ndarray:
        """uint8 (height, width, 3). AREA averages source pixels when shrinking (no aliasing).

        One swscale thread: DataLoader workers are forked, and swscale thread
        pools do not survive a fork (see compvid.decode)."""
        if (height, width) == (frame.height, frame.width):
            return self._convert.reformat(frame, format="rgb24", threads=1).to_ndarray()
        mid = _PLANAR_444.get(frame.format.name)
        if mid is None:  # 10-bit, packed, NV12...: the general one-pass path
            return self._scale.reformat(frame, width=width, height=height, format="rgb24",
                                        interpolation="AREA", threads=1).to_ndarray()
        scaled = self._scale.reformat(frame, width=width, height=height, format=mid, interpolation="AREA", threads=1)
        return self._convert.reformat(scaled, format="rgb24", threads=1).to_ndarray()
