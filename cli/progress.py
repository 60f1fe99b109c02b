"""The one progress bar of a long command: done / total with an ETA, and nothing written over it.

Every command that runs long (pretrain, feature extraction, fine-tuning, efficiency, shard, synth,
inspect) draws a single :class:`Bar` on stderr. A command with several phases (fine-tuning, then
testing) starts each on the same bar, which then counts that phase's own total. While the bar is
open, log records and Python warnings are written above it (``tqdm.write``), never across it.
tqdm is imported on first use, so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from typing import IO, Any


class Bar:
    """A tqdm bar drawn on the first :meth:`start` (a command that fails on its options draws none).

    ``start(desc, total)`` begins a phase: the bar is made, or reset in place to the new total
    (None: unknown, the bar then counts without a percentage). ``update(done)`` sets the count of
    the current phase. ``enabled=False`` (e.g. a DDP rank other than 0, or ``--json`` output) draws
    nothing. ``file``: where to draw (default ``sys.stderr`` at the time of the first start).
    """

    def __init__(self, *, unit: str, leave: bool = False, enabled: bool = True, file: IO[str] | None = None) -> None:
        self.unit = unit
        self.leave = leave
        self.enabled = enabled
        self.file = file
        self.bar: Any = None  # the tqdm instance, once drawn
        self._redirect = ExitStack()

    def __enter__(self) -> "Bar":
        if self.enabled:
            from tqdm.contrib.logging import logging_redirect_tqdm

            # warnings.warn goes to the 'py.warnings' logger, which the redirect then writes above the bar
            capturing = logging.captureWarnings
            capturing(True)
            self._redirect.callback(capturing, False)
            self._redirect.enter_context(logging_redirect_tqdm())
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        self._redirect.close()
        return False

    def start(self, desc: str, total: int | None, *, initial: int = 0, unit: str | None = None) -> None:
        """Begin a phase of ``total`` units (``initial`` of them done already, e.g. on resume)."""
        if not self.enabled:
            return
        if unit is not None:
            self.unit = unit
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=self.unit, leave=self.leave,
                            file=self.file if self.file is not None else sys.stderr, dynamic_ncols=True)
            return
        self.bar.unit = self.unit
        self.bar.set_description_str(desc, refresh=False)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.reset(total=total)
        if initial:
            self.bar.update(initial)

    def update(self, done: int, *, desc: str | None = None, postfix: str | None = None) -> None:
        """The current phase has ``done`` units done; ``desc``/``postfix`` relabel it (e.g. the split)."""
        if self.bar is None:
            return
        if desc is not None and desc != self.bar.desc:
            self.bar.set_description_str(desc, refresh=False)
        if postfix is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(done - self.bar.n)  # also when 0: redraws a new label, at most every 0.1 s
        if self.bar.total is not None and done >= self.bar.total:
            self.bar.refresh()  # a finished phase shows its last count, however fast it ran

    def set_total(self, total: int | None) -> None:
        """The current phase's total became known (or changed), e.g. after a stream's first epoch."""
        if self.bar is not None and self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
