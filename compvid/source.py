"""Open a video source (path, bytes or binary file object) as a PyAV container.

All PyAV/FFmpeg failures at open time become typed compvid errors that name the
source, so callers never see a bare ``av.error`` without context.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import av

from compvid.errors import (
    CorruptVideoError,
    EmptyFileError,
    InvalidSourceError,
    NotAFileError,
    NoVideoStreamError,
    VideoNotFoundError,
)

VideoSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


def source_name(source: VideoSource) -> str:
    """A short human name for error messages: the path, or '<N bytes>'."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes in memory>"
    name = getattr(source, "name", None)
    return str(name) if isinstance(name, str) else f"<{type(source).__name__}>"


def _as_input(source: VideoSource):
    """Check the source exists and is non-empty; return what ``av.open`` takes."""
    name = source_name(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise VideoNotFoundError(f"{name}: no such file; check the path")
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise NotAFileError(f"{name}: is {kind}; pass a video file")
        if path.stat().st_size == 0:
            raise EmptyFileError(f"{name}: file is empty (0 bytes); the download or copy is incomplete")
        return os.fspath(path)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise EmptyFileError(f"{name}: zero bytes given; nothing to decode")
        return io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        if hasattr(source, "seek"):
            source.seek(0)
        return source
    raise InvalidSourceError(f"source must be a path, bytes or a binary file object, not {type(source).__name__}")


def open_video(source: VideoSource) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``source`` and return ``(container, first video stream)``.

    Raises EmptyFileError, VideoNotFoundError, NotAFileError, CorruptVideoError
    (not a media file, or unparsable) or NoVideoStreamError (audio only ...).
    The caller owns the container and must close it.
    """
    name = source_name(source)
    target = _as_input(source)
    try:
        container = av.open(target, mode="r", metadata_errors="ignore")
    except av.error.FileNotFoundError as e:  # pragma: no cover - raced deletion
        raise VideoNotFoundError(f"{name}: no such file; check the path") from e
    except (av.error.FFmpegError, UnicodeDecodeError, OSError) as e:
        raise CorruptVideoError(
            f"{name}: not a readable video container ({e}); the file is corrupt, truncated, or not a video"
        ) from e
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        container.close()
        raise NoVideoStreamError(f"{name}: no video stream (streams found: {', '.join(kinds)})")
    stream = container.streams.video[0]
    if stream.codec_context is None or stream.codec_context.width <= 0:
        container.close()
        raise CorruptVideoError(
            f"{name}: the video stream has no decodable picture size; the header is damaged"
        )
    return container, stream
