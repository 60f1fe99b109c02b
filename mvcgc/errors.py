"""Typed errors of mvcgc.

As in ``compvid.errors``, every class also inherits the builtin it means, so a
caller may catch ``mvcgc.errors.CheckpointError`` or plain ``ValueError``.
"""

from __future__ import annotations


class MvcgcError(Exception):
    """Base class of every error mvcgc raises on purpose."""


class CheckpointNotFoundError(MvcgcError, FileNotFoundError):
    """The checkpoint path does not exist."""


class CheckpointError(MvcgcError, ValueError):
    """The file is not an mvcgc checkpoint, or does not fit the request (view, architecture)."""


class EmptyDataError(MvcgcError, ValueError):
    """The data stream yielded no complete batch."""


class NonFiniteLossError(MvcgcError, FloatingPointError):
    """The training loss became NaN or infinite; the run stopped."""


class RunExistsError(MvcgcError, FileExistsError):
    """The run folder already holds a run; resume it or overwrite it explicitly."""
