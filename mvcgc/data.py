"""Pretraining batches: the contract the trainer consumes, a synthetic source, and the compvid seam.

A pretraining batch is a dict:

- ``"rgb"``: float32 ``(B, 2, 3, T, H, W)`` -- clips A and B of each video, normalised RGB;
- ``"mv"``: float32 ``(B, 2, 2, T, H', W')`` -- the same clips' motion vectors in pixels per frame
  step (channel 0 = x, right +; channel 1 = y, down +);
- ``"key"``: ``list[str]`` (B,) and ``"label"``: int64 ``(B,)``.

A view the stage does not train may be absent. The trainer iterates the source once per epoch;
if it has ``set_epoch(epoch)``, that is called first (as with a DistributedSampler). A source with
``iter_from(batch)`` (the epoch's batches from ``batch`` on, drawing from torch's global RNG what
``iter()`` draws) lets a mid-epoch resume skip the batches before it without building them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator, Sequence

import torch

from mvcgc.errors import InputNotFoundError, InvalidArgumentError

if TYPE_CHECKING:
    from compvid.request import ClipRequest


class SyntheticClips:
    """RANDOM TENSORS shaped like pretraining batches -- for tests, smoke runs and benchmarks only.

    Nothing here is video: the clips are Gaussian noise, so nothing meaningful is learnt. Batches
    are a deterministic function of ``(seed, epoch, batch index)``, so a resumed run sees exactly
    the batches an uninterrupted one would. ``rank``/``world_size`` give each process its own
    disjoint share of the ``num_videos`` videos; incomplete batches are dropped.
    """

    def __init__(
        self,
        *,
        num_videos: int = 64,
        batch_size: int = 8,
        num_frames: int = 8,
        size: tuple[int, int] = (32, 32),
        mv_size: tuple[int, int] | None = None,
        views: Sequence[str] = ("rgb", "mv"),
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1 or num_videos < 0 or num_frames < 1:
            raise InvalidArgumentError(
                f"need batch_size >= 1, num_videos >= 0, num_frames >= 1; got {batch_size}, {num_videos}, {num_frames}"
            )
        unknown = set(views) - {"rgb", "mv"}
        if unknown or not views:
            raise InvalidArgumentError(f"views must be a non-empty subset of rgb, mv; got {list(views)}")
        self.num_videos = num_videos
        self.batch_size = batch_size
        self.num_frames = num_frames
        self.size = tuple(size)
        self.mv_size = tuple(mv_size) if mv_size is not None else self.size
        self.views = tuple(views)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (self.num_videos // self.world_size) // self.batch_size

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def iter_from(self, start: int) -> Iterator[dict]:
        """The epoch's batches from batch ``start`` on (each is made from its index alone)."""
        t = self.num_frames
        for index in range(start, len(self)):
            g = torch.Generator().manual_seed(hash((self.seed, self.epoch, self.rank, index)) % (2**63))
            first = (index * self.world_size + self.rank) * self.batch_size
            batch: dict = {
                "key": [f"synthetic{first + i:06d}" for i in range(self.batch_size)],
                "label": torch.randint(0, 10, (self.batch_size,), generator=g),
            }
            if "rgb" in self.views:
                batch["rgb"] = torch.randn(self.batch_size, 2, 3, t, *self.size, generator=g)  # (B, 2, 3, T, H, W)
            if "mv" in self.views:
                batch["mv"] = 2.0 * torch.randn(self.batch_size, 2, 2, t, *self.mv_size, generator=g)  # pixels
            yield batch


def shard_stream(
    urls: str | Sequence[str],
    *,
    batch_size: int,
    request: ClipRequest,
    num_workers: int = 0,
    seed: int = 0,
    mode: str = "epoch",
    epoch_size: int | None = None,
    flip_p: float = 0.5,
    min_crop_area: float = 0.2,
):
    """Batches decoded on the fly from compvid shards: the contract above.

    ``urls``: shard paths or brace patterns (anything WebDataset opens). Each
    video yields clips A and B at independent random starts, augmented with
    paired RGB/MV transforms (compvid.datasets.PairStream); shards are split by
    node and by DataLoader worker. ``request`` (a :class:`compvid.request.ClipRequest`) gives the
    clips' frames, side and views; only those views are decoded.
    ``mode="resampled"`` with ``epoch_size`` (videos per rank) gives every rank
    the same number of batches, which DistributedDataParallel needs.
    ``flip_p``: probability of a horizontal flip per clip (MV x negated). Set it to 0 where the
    classes are mirror-sensitive ("moves left" / "moves right", clockwise / counter-clockwise, as
    in Something-Something or ``compvid synth``): a flip turns one class into the other, and with
    independent flips of clips A and B the positive pair moves in mirrored directions.
    ``min_crop_area``: the smallest share of the frame a random resized crop keeps (MoCo's 0.2);
    raise it where the action is a small object that a small crop would cut away.
    """
    from compvid.datasets import expand_urls, pair_loader  # deferred: compvid is only needed for real data
    from compvid.shards import videos_in_shards
    from compvid.transforms import ClipAugment

    urls = expand_urls([urls] if isinstance(urls, str) else list(urls))
    missing = [u for u in urls if "://" not in u and not u.startswith("pipe:") and not os.path.isfile(u)]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise InputNotFoundError(
            f"{len(missing)} of {len(urls)} shard(s) not found: {shown}; write them with `compvid shard SRC --out DIR`"
        )
    # Videos per epoch, for a progress total: known from the shards' index in epoch mode on one process.
    from mvcgc.distributed import world_size

    if mode == "resampled":
        num_samples = epoch_size
    else:
        num_samples = videos_in_shards(urls) if world_size() == 1 else None
    return pair_loader(
        urls,
        num_samples=num_samples,
        batch_size=batch_size,
        num_workers=num_workers,
        request=request,
        seed=seed,
        mode=mode,
        epoch_size=epoch_size,
        augment=ClipAugment(size=request.crop_px, flip_p=flip_p, scale=(min_crop_area, 1.0)),
    )
