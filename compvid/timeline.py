"""Which display index a presentation timestamp names.

compvid counts frames as :func:`compvid.probe` does: frame ``i`` is the coded
picture with the ``i``-th smallest packet timestamp. Timestamps are not always
``start + i / fps``: FFmpeg's MPEG-1 elementary-stream parser skips one frame
duration after the first picture, files start late or hold gaps, and frame
rates vary. So a timestamp is turned into an index by looking it up among the
probe's timestamps, never by ``round(t * fps)``.

The timestamps are kept compactly as *runs*: ``(first index, its time in
seconds)``, each run continuing in steps of ``1 / fps`` until the next one. A
constant-rate file is one run; each gap or offset adds one.
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


def timeline_runs(times: Sequence[float], fps: float) -> tuple[Run, ...]:
    """Runs of sorted frame times (seconds) at ``fps`` frames per second."""
    runs: list[Run] = []
    for i, t in enumerate(times):
        if runs:
            k0, t0 = runs[-1]
            if abs(t - (t0 + (i - k0) / fps)) * fps <= RUN_TOLERANCE_FRAMES:
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_starts", [k for k, _ in self.runs])
        object.__setattr__(self, "_times", [t for _, t in self.runs])

    @property
    def has_timestamps(self) -> bool:
        return bool(self.runs) and self.fps > 0

    def time_of(self, index: int) -> float | None:
        """Presentation time in seconds of display frame ``index`` (None without timestamps)."""
        if not self.has_timestamps:
            return None
        r = bisect.bisect_right(self._starts, index) - 1
        k0, t0 = self.runs[max(r, 0)]
        return t0 + (index - k0) / self.fps

    def index_at(self, seconds: float | None) -> int | None:
        """The display frame whose time is ``seconds`` (within a quarter frame), else None."""
        if seconds is None or not self.has_timestamps:
            return None
        tolerance = MATCH_TOLERANCE_FRAMES / self.fps
        r = bisect.bisect_right(self._times, seconds + tolerance) - 1
        if r < 0:
            return None
        k0, t0 = self.runs[r]
        end = self.runs[r + 1][0] if r + 1 < len(self.runs) else self.num_frames
        i = k0 + round((seconds - t0) * self.fps)
        if not k0 <= i < end or abs(seconds - (t0 + (i - k0) / self.fps)) > tolerance:
            return None
        return i

    def index_near(self, seconds: float) -> int:
        """The display frame nearest ``seconds`` (for windows, where near is good enough)."""
        exact = self.index_at(seconds)
        if exact is not None or not self.has_timestamps:
            return exact if exact is not None else 0
        r = max(bisect.bisect_right(self._times, seconds) - 1, 0)
        k0, t0 = self.runs[r]
        return max(k0 + round((seconds - t0) * self.fps), 0)
