"""Which display index a presentation timestamp names.

compvid counts frames as :func:`compvid.probe` does: frame ``i`` is the coded
picture with the ``i``-th smallest packet timestamp, whatever that time is.
Timestamps are not always ``start + i / fps``: FFmpeg's MPEG-1 elementary-stream
parser skips one frame duration after the first picture, files start late or
hold gaps, AVIs skip frame slots (null frames) and frame rates vary. So a
timestamp is turned into an index by looking it up among the probe's
timestamps (the nearest one), never by ``round(t * fps)``.

The timestamps are kept compactly as *runs*: ``(first index, its time in
seconds)``, each run continuing in steps of ``1 / fps`` until the next one. A
constant-rate file is one run; each gap, offset or change of interval adds one.
A run absorbs a time only as far off its grid as one tick of the stream's time
base (or a tenth of a frame, the smaller), so times are served as stamped.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Sequence

Run = tuple[int, float]  # (display index of the run's first frame, its time in seconds)

# A timestamp more than this many frame durations off its run's grid starts a new run.
RUN_TOLERANCE_FRAMES = 0.1
# A decoded frame names a timeline frame when its time lies within this many frame durations of it.
MATCH_TOLERANCE_FRAMES = 0.25


def timeline_runs(times: Sequence[float], fps: float, *, tick_seconds: float | None = None) -> tuple[Run, ...]:
    """Runs of sorted frame times (seconds) at ``fps`` frames per second.

    ``tick_seconds``: the stream's time base; a time further than one tick off its
    run's grid starts a new run (None: a tenth of a frame, as before).
    """
    tolerance = RUN_TOLERANCE_FRAMES / fps
    if tick_seconds is not None and tick_seconds > 0:
        tolerance = min(tolerance, tick_seconds)
    tolerance += 1e-9  # float error of pts * time_base
    runs: list[Run] = []
    for i, t in enumerate(times):
        if runs:
            k0, t0 = runs[-1]
            if abs(t - (t0 + (i - k0) / fps)) <= tolerance:
                continue
        runs.append((i, float(t)))
    return tuple(runs)


@dataclass(frozen=True)
class Timeline:
    """The frame times of one stream: ``runs`` (see module doc), ``fps``, ``num_frames``.

    Empty ``runs``: the packets carry no timestamps (raw H.264 / HEVC streams);
    frames are then only known by counting from the first.
    """

    runs: tuple[Run, ...]
    fps: float
    num_frames: int
    _starts: list[int] = field(init=False, repr=False, compare=False)  # first index of each run
    _times: list[float] = field(init=False, repr=False, compare=False)  # first time of each run
    _has: bool = field(init=False, repr=False, compare=False)  # has_timestamps, asked once per frame or more

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", [k for k, _ in self.runs])
        object.__setattr__(self, "_times", [t for _, t in self.runs])
        object.__setattr__(self, "_has", bool(self.runs) and self.fps > 0)

    @property
    def has_timestamps(self) -> bool:
        return self._has

    def time_of(self, index: int) -> float | None:
        """Presentation time in seconds of display frame ``index`` (None without timestamps)."""
        if not self._has:
            return None
        r = bisect.bisect_right(self._starts, index) - 1 if len(self._starts) > 1 else 0
        k0, t0 = self.runs[max(r, 0)]
        return t0 + (index - k0) / self.fps

    def index_at(self, seconds: float | None) -> int | None:
        """The display frame whose time is nearest ``seconds``, if within a quarter frame; else None."""
        if seconds is None or not self._has:
            return None
        i, t = self._nearest(seconds)
        return i if abs(t - seconds) <= MATCH_TOLERANCE_FRAMES / self.fps else None

    def index_near(self, seconds: float) -> int:
        """The display frame nearest ``seconds`` (for windows, where near is good enough)."""
        return self._nearest(seconds)[0] if self._has else 0

    def _nearest(self, seconds: float) -> tuple[int, float]:
        """The frame whose time is nearest ``seconds``, and its time: the nearest on the grid of the
        run that holds ``seconds``, or the next run's first frame. Pictures may lie much closer
        together than ``1 / fps`` (bursts in variable-rate files), so no tolerance decides this."""
        r = bisect.bisect_right(self._times, seconds) - 1
        if r < 0:
            return 0, self.time_of(0)
        k0, t0 = self.runs[r]
        end = max(self.runs[r + 1][0] if r + 1 < len(self.runs) else self.num_frames, k0 + 1)
        i = min(max(k0 + round((seconds - t0) * self.fps), k0), end - 1)
        t = t0 + (i - k0) / self.fps  # time_of(i): i lies in run r
        if i + 1 < max(self.num_frames, end):
            after = t0 + (i + 1 - k0) / self.fps if i + 1 < end else self.time_of(i + 1)
            if abs(after - seconds) < abs(t - seconds):
                return i + 1, after
        return i, t
