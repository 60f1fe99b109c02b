"""Typed errors of mvcgc.

As in ``compvid.errors``, every class also inherits the builtin it means, so a
caller may catch ``mvcgc.errors.CheckpointError`` or plain ``ValueError``.
"""

from __future__ import annotations

import signal


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
