"""SIGINT and SIGTERM without losing work: stop between steps, or at once with one clear line.

:class:`StopRequests` is what the pretraining loop uses: the first signal only asks to stop, the
loop finishes its step, checkpoints and raises :class:`~mvcgc.errors.TrainingInterrupted`. In a
single process a second signal stops at once (raising :class:`~mvcgc.errors.SignalInterrupt`); a
checkpoint being written then stays as it was, since checkpoints are written atomically.
:func:`raising_on_stop_signals` is for commands with nothing to save: SIGTERM raises like Ctrl-C.

Python runs signal handlers in the main thread only; elsewhere both are inert (signals act as before).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import torch

from mvcgc import distributed as dist_utils
from mvcgc.errors import SignalInterrupt, signal_name

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """While entered, SIGINT and SIGTERM are recorded instead of raising; the loop polls :meth:`agreed`.

    ``announce``: say on stderr, as the signal arrives, that the run is stopping (the step may take a
    while). ``force_on_repeat``: a second signal stops at once. Under torchrun leave it off: the
    launcher forwards the terminal's Ctrl-C to workers that got it already, so a repeat there is no
    second request, and the launcher escalates to SIGKILL on its own.
    """

    def __init__(self, *, announce: bool = True, force_on_repeat: bool = True) -> None:
        self.announce = announce
        self.force_on_repeat = force_on_repeat
        self.signal_number: int | None = None
        self._pid = os.getpid()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            self._previous = {s: signal.signal(s, self._on_signal) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc) -> bool:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        return False

    def agreed(self, device: torch.device) -> int | None:
        """The signal after which every rank stops now, or None to go on.

        Under DDP this is a collective (the maximum over ranks), so call it once per step on every
        rank: all ranks then stop after the same step, whichever of them got the signal.
        """
        return dist_utils.max_across_ranks(self.signal_number or 0, device=device) or None

    def _on_signal(self, signum: int, frame) -> None:
        if os.getpid() != self._pid:
            _as_forked_worker(signum)
            return
        if self.signal_number is None:
            self.signal_number = signum
            if self.announce:
                name = signal_name(signum)
                # os.write, not print: a handler may interrupt a print (the progress bar's) mid-way
                os.write(2, f"\n{name} received: finishing this step, then saving a checkpoint to resume from "
                            f"({'another ' + name + ' stops at once' if self.force_on_repeat else 'please wait'})\n"
                         .encode())
            return
        if self.force_on_repeat:
            raise SignalInterrupt(signum)


@contextmanager
def raising_on_stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`SignalInterrupt` (SIGTERM would otherwise kill without a word)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pid = os.getpid()

    def on_signal(signum: int, frame) -> None:
        if os.getpid() != pid:
            _as_forked_worker(signum)
            return
        raise SignalInterrupt(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _as_forked_worker(signum: int) -> None:
    """In a forked DataLoader worker, which inherits the handlers: ignore SIGINT, die of SIGTERM.

    A terminal's Ctrl-C reaches every process of the group; a worker dying of it would break the
    step the main process is finishing. The main process stops and shuts its workers down itself.
    """
    if signum == signal.SIGINT:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
