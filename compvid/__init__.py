"""compvid: RGB frames and codec motion vectors decoded on the fly from compressed video.

Public API::

    info = compvid.probe("video.mp4")              # VideoInfo
    clip = compvid.decode_clip("video.mp4", start=0, num_frames=32, size=128)
    clip.rgb   # uint8 (T, H, W, 3)
    clip.mv    # float32 (2, T, H, W), forward displacement in output pixels per frame step
"""

from compvid.decode import Clip, decode_clip
from compvid.errors import (
    ClipRangeError,
    CompvidError,
    CorruptVideoError,
    DamagedClipError,
    EmptyFileError,
    InvalidArgumentError,
    InvalidSourceError,
    NotAFileError,
    NothingDecodedError,
    NoVideoStreamError,
    UnsupportedVideoError,
    VideoNotFoundError,
)
from compvid.probe import VideoInfo, probe

__version__ = "0.1.0"

__all__ = [
    "Clip",
    "ClipRangeError",
    "CompvidError",
    "CorruptVideoError",
    "DamagedClipError",
    "EmptyFileError",
    "InvalidArgumentError",
    "InvalidSourceError",
    "NoVideoStreamError",
    "NotAFileError",
    "NothingDecodedError",
    "UnsupportedVideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "decode_clip",
    "probe",
]
