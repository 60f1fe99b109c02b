"""Typed errors of mvcgc.

As in ``compvid.errors``, every class also inherits the builtin it means, so a
caller may catch ``mvcgc.errors.CheckpointError`` or plain ``ValueError``. Messages name the
value or file and the problem and, where one exists, the fix. ``mvcgc`` (the CLI) prints any
:class:`MvcgcError` as one line and exits with status 1.

The two interrupts below are no errors: like Ctrl-C they derive from ``KeyboardInterrupt``.
"""

from __future__ import annotations

import signal


class MvcgcError(Exception):
    """Base class of every error mvcgc raises on purpose."""


class InvalidArgumentError(MvcgcError, ValueError):
    """An option or argument has a value outside its allowed set or range, or does not fit the others
    (e.g. a queue size that is no multiple of the global batch, a tensor of the wrong shape)."""


class InputNotFoundError(MvcgcError, FileNotFoundError):
    """A file or folder the call reads does not exist (shards, videos, a results folder's files)."""


class CheckpointNotFoundError(InputNotFoundError):
    """The checkpoint path does not exist."""


class CheckpointError(MvcgcError, ValueError):
    """The file is not an mvcgc checkpoint, or does not fit the request (view, architecture)."""


class DataError(MvcgcError, ValueError):
    """The data does not fit what the call needs: batches without a view or of the wrong shape,
    labels out of range, a split with a single class, features holding NaN."""


class EmptyDataError(DataError):
    """The data stream yielded no complete batch, or a split holds no video."""


class ClassMismatchError(DataError):
    """Query and gallery (or test and train) sets share no class: the splits or their labels are wrong."""


class MissingViewError(DataError, KeyError):
    """A batch or a queue has no entry for the view asked for (also a ``KeyError``: a failed lookup)."""

    def __str__(self) -> str:  # the message as given, not KeyError's repr of it
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ResultsError(MvcgcError, ValueError):
    """A saved results or predictions file is unreadable, of another kind or from an older version,
    or several of them do not fit together."""


class NonFiniteLossError(MvcgcError, FloatingPointError):
    """The training loss became NaN or infinite; the run stopped."""


class RunExistsError(MvcgcError, FileExistsError):
    """The run folder already holds a run; resume it or overwrite it explicitly."""


class DistributedSetupError(MvcgcError, RuntimeError):
    """The environment describes a process group (``WORLD_SIZE`` > 1) that cannot be joined."""


class MissingDependencyError(MvcgcError, ImportError):
    """An optional package a feature needs is not installed (the message says how to install it)."""


class SignalInterrupt(KeyboardInterrupt):
    """SIGINT or SIGTERM asked to stop at once (SIGTERM raises it like Ctrl-C raises KeyboardInterrupt)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_name(signal_number))
        self.signal_number = signal_number

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped pretraining between steps.

    ``checkpoint`` (None: none yet) continues the run exactly from ``checkpoint_step``; ``saved_now``
    tells whether it was written on the way out (False after a second signal stopped at once: the
    steps after ``checkpoint_step`` are lost). Like Ctrl-C, and unlike :class:`MvcgcError`, it is no
    ``Exception``: ``except Exception`` handlers let it through.
    """

    def __init__(self, signal_number: int, *, step: int, checkpoint, checkpoint_step: int | None,
                 saved_now: bool) -> None:
        where = f"checkpoint {checkpoint} (step {checkpoint_step})" if checkpoint is not None else "no checkpoint"
        super().__init__(f"stopped by {signal_name(signal_number)} after step {step}; {where}")
        self.signal_number = signal_number
        self.step = step
        self.checkpoint = checkpoint
        self.checkpoint_step = checkpoint_step
        self.saved_now = saved_now

    @property
    def exit_code(self) -> int:
        return 128 + self.signal_number


def signal_name(signal_number: int) -> str:
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return f"signal {signal_number}"
