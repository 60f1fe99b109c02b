"""A tiny class-folder set for CLI tests: train/test × left/right, 16 frames of 48×64 panning 2 px per frame."""

from pathlib import Path

from compvid.synthetic import write_moving_video


def write_pan_folders(root: Path) -> None:
    """libx264 defaults; 2 train and 1 test video per class (3 windows of 8 frames each)."""
    for split, n in (("train", 2), ("test", 1)):
        for c, dx in (("left", -2), ("right", 2)):
            for i in range(n):
                (root / split / c).mkdir(parents=True, exist_ok=True)
                write_moving_video(root / split / c / f"v{i}.mp4", dx=dx, dy=0, num_frames=16, width=64,
                                   height=48, seed=i + 10 * (split == "test"))
