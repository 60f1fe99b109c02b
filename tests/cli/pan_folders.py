"""Tiny class-folder sets for CLI tests: libx264 defaults (MP4), 16 frames of 48×64, each class panning 2 px per frame."""

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


# Pan per class, px per frame (dx, dy).
MOTIONS = {"left": (-2, 0), "right": (2, 0), "up": (0, -2)}


def class_folders(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """``root/<class>/v<i>.mp4`` for ``per_class`` videos of each class in :data:`MOTIONS`; returns ``root``."""
    for c, n in per_class.items():
        for i in range(n):
            path = root / c / f"v{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_moving_video(path, dx=MOTIONS[c][0], dy=MOTIONS[c][1], num_frames=16, width=64, height=48,
                               seed=seed + 7 * i)
    return root
