"""Typed errors of compvid.

Every class also inherits the builtin it means, so callers can catch either
``compvid.errors.CorruptVideoError`` or plain ``ValueError``. Messages name the
source and the problem and, where one exists, the fix.
"""

from __future__ import annotations


class CompvidError(Exception):
    """Base class of every error compvid raises on purpose."""


class VideoNotFoundError(CompvidError, FileNotFoundError):
    """The path does not exist."""


class NotAFileError(CompvidError, IsADirectoryError):
    """The path is a directory or another non-regular file."""


class EmptyFileError(CompvidError, ValueError):
    """The source holds zero bytes."""


class CorruptVideoError(CompvidError, ValueError):
    """The container or the stream cannot be parsed or decoded."""


class DamagedClipError(CorruptVideoError):
    """A clip decoded, but some of its frames are damaged (concealed by the decoder, or packets lost)."""


class NoVideoStreamError(CompvidError, LookupError):
    """The container holds no video stream (audio only, subtitles ...)."""


class UnsupportedVideoError(CompvidError, ValueError):
    """The stream is valid but compvid cannot serve it (no decoder ...)."""


class ClipRangeError(CompvidError, IndexError):
    """The requested clip lies outside the video."""


class InvalidArgumentError(CompvidError, ValueError):
    """An option has a value outside its allowed set or range."""


class InvalidSourceError(CompvidError, TypeError):
    """A video source is neither a path, bytes nor a binary file object."""


class ShardError(CompvidError, ValueError):
    """A shard or its index is missing, truncated or inconsistent."""


class LayoutError(CompvidError, ValueError):
    """A source folder does not fit the dataset layout asked for (or several fit)."""


class NothingDecodedError(CompvidError, RuntimeError):
    """Every sample tried failed: the data (URLs, files) or the options are wrong, not one video."""
