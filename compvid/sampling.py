"""Where clips start: random starts, sliding windows, two independent clips per video.

All functions return display frame indices; a clip of ``num_frames`` frames
every ``frame_step`` frames spans ``(num_frames - 1) * frame_step + 1`` frames.
Videos shorter than one clip get start 0 and ``decode_clip`` pads them by
repeating their last frame (``Clip.padded``).
"""

from __future__ import annotations

import numpy as np

from compvid.errors import InvalidArgumentError


def clip_span(num_frames: int, frame_step: int = 1) -> int:
    """Frames covered by one clip, first to last inclusive."""
    if num_frames <= 0 or frame_step <= 0:
        raise InvalidArgumentError(
            f"num_frames and frame_step must be positive, got {num_frames} and {frame_step}"
        )
    return (num_frames - 1) * frame_step + 1


def _check_length(video_frames: int) -> None:
    if video_frames <= 0:
        raise InvalidArgumentError(f"the video has {video_frames} frames; nothing to sample")


def random_start(
    video_frames: int, *, num_frames: int, frame_step: int = 1, rng: np.random.Generator | None = None
) -> int:
    """A start drawn uniformly among those whose clip fits (0 if none fits)."""
    _check_length(video_frames)
    rng = rng if rng is not None else np.random.default_rng()
    last_start = video_frames - clip_span(num_frames, frame_step)
    return int(rng.integers(0, last_start + 1)) if last_start > 0 else 0


def two_clip_starts(
    video_frames: int, *, num_frames: int, frame_step: int = 1, rng: np.random.Generator | None = None
) -> tuple[int, int]:
    """Starts of clip A and clip B, drawn independently (pretraining's two views)."""
    rng = rng if rng is not None else np.random.default_rng()
    return (
        random_start(video_frames, num_frames=num_frames, frame_step=frame_step, rng=rng),
        random_start(video_frames, num_frames=num_frames, frame_step=frame_step, rng=rng),
    )


def sliding_window_starts(
    video_frames: int, *, num_frames: int, frame_step: int = 1, stride: int | None = None
) -> list[int]:
    """Starts of windows every ``stride`` frames (default: half a clip) covering the video.

    The last window is aligned to the end of the video, so every frame is
    covered at least once; a video shorter than one clip gets the single start 0.
    """
    _check_length(video_frames)
    span = clip_span(num_frames, frame_step)
    stride = stride if stride is not None else max(1, span // 2)
    if stride <= 0:
        raise InvalidArgumentError(f"stride must be positive, got {stride}")
    last_start = video_frames - span
    if last_start <= 0:
        return [0]
    starts = list(range(0, last_start + 1, stride))
    if starts[-1] != last_start:
        starts.append(last_start)
    return starts
