"""Generated class folders and a tiny pretrained checkpoint shared by the evaluation tests."""

from pathlib import Path

from compvid.synthetic import write_moving_video

# Recipe: libx264 defaults (MP4), 16 frames of 48×64; the class sets the pan direction.
MOTIONS = {"left": (-2, 0), "right": (2, 0), "up": (0, -2)}


def class_folders(root: Path, *, per_class: dict[str, int], seed: int = 0) -> Path:
    """``root/<class>/v<i>.mp4`` for each class in ``per_class`` (videos per class)."""
    for c, n in per_class.items():
        dx, dy = MOTIONS[c]
        for i in range(n):
            path = root / c / f"v{i}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_moving_video(path, dx=dx, dy=dy, num_frames=16, width=64, height=48, seed=seed + 17 * i + len(c))
    return root


def tiny_checkpoint(out: Path, *, stage: str = "cross", view: str | None = None, seed: int = 0) -> Path:
    """One optimiser step of the ``tiny`` encoder on random tensors (clips of 8 frames, 32×32)."""
    from mvcgc.data import SyntheticClips
    from mvcgc.train import pretrain

    views = ("rgb", "mv") if stage == "cross" else (view,)
    data = SyntheticClips(num_videos=4, batch_size=4, num_frames=8, size=(32, 32), views=views)
    return pretrain(data, stage=stage, view=view, out_dir=out, steps=1, arch="tiny", queue_size=8, dim=16,
                    device="cpu", seed=seed).checkpoint


def write_tar(path: Path, samples: list[tuple[str, dict, bytes]]) -> Path:
    """A WebDataset shard of ``(key, JSON record, video bytes)`` in order (members ``key.json``, ``key.<ext>``)."""
    import io
    import json
    import tarfile

    def add(tar, name: str, data: bytes) -> None:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))

    with tarfile.open(path, "w") as tar:
        for key, record, data in samples:
            add(tar, f"{key}.json", json.dumps({**record, "key": key}).encode())
            add(tar, f"{key}.{record['ext']}", data)
    return path
