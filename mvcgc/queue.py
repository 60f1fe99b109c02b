"""FIFO key queues with one pointer shared by all views.

In the cross stage the RGB and MV queues advance together, so row ``j`` of both holds the two
keys of the same video -- the alignment that top-k intersection mining relies on.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mvcgc.errors import InvalidArgumentError, MissingViewError


def check_queue_size(size: int, global_batch: int) -> None:
    """Raise ``ValueError`` unless ``size`` is a positive multiple of ``global_batch``."""
    if global_batch < 1 or size < 1 or size % global_batch != 0:
        nearest = max(1, round(size / max(global_batch, 1))) * max(global_batch, 1)
        raise InvalidArgumentError(
            f"queue size {size} must be a positive multiple of the global batch {global_batch} "
            f"(batch per process x processes), e.g. {nearest}"
        )


class KeyQueue(nn.Module):
    """Queues ``Q_v`` of shape ``(K, D)``, one per view, advanced by one shared pointer.

    The queues start as random unit vectors (as in MoCo); ``num_enqueued`` counts real keys so
    that callers know when every row is a real key (:attr:`is_full`). All state lives in buffers,
    so it is saved and restored with the module's ``state_dict``.
    """

    def __init__(self, *, views: Sequence[str], size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise InvalidArgumentError(f"queue size and dim must be positive, got size={size}, dim={dim}")
        if not views or len(set(views)) != len(views):
            raise InvalidArgumentError(f"views must be distinct and non-empty, got {list(views)}")
        self.views = tuple(views)
        self.size = size
        for view in self.views:
            self.register_buffer(f"queue_{view}", F.normalize(torch.randn(size, dim), dim=1))  # (K, D)
        # Class of each row where the data carry one (-1: unknown); only for diagnostics of mining.
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))  # (K,)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("num_enqueued", torch.zeros((), dtype=torch.long))

    def __getitem__(self, view: str) -> torch.Tensor:
        """The queue of ``view``, ``(K, D)``; row ``j`` of every view is the same sample."""
        if view not in self.views:
            raise MissingViewError(f"no queue for view {view!r}; this queue holds {list(self.views)}")
        return getattr(self, f"queue_{view}")

    @property
    def is_full(self) -> bool:
        """True once ``K`` real keys have been enqueued (no random initial row left)."""
        return int(self.num_enqueued) >= self.size

    @property
    def fill(self) -> float:
        """Share of rows holding real keys, in [0, 1]."""
        return min(int(self.num_enqueued), self.size) / self.size

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Checkpoints written before the label buffer existed: rows of unknown class.
        state_dict.setdefault(prefix + "labels", torch.full((self.size,), -1, dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def enqueue(self, keys: Mapping[str, torch.Tensor], labels: torch.Tensor | None = None) -> None:
        """Replace the oldest ``N`` rows of every view with ``keys[view]`` ``(N, D)``; advance the pointer.

        ``labels`` (``(N,)``, -1 = unknown) are kept beside the rows for mining diagnostics."""
        if set(keys) != set(self.views):
            raise InvalidArgumentError(f"enqueue needs keys for exactly {list(self.views)}, got {sorted(keys)}")
        n = {view: k.shape[0] for view, k in keys.items()}
        if len(set(n.values())) != 1:
            raise InvalidArgumentError(f"all views must enqueue the same number of keys, got {n}")
        (batch,) = set(n.values())
        check_queue_size(self.size, batch)
        ptr = int(self.ptr)
        for view, k in keys.items():
            self[view][ptr : ptr + batch] = k.to(self[view].dtype)  # (N, D) into rows ptr..ptr+N
        self.labels[ptr : ptr + batch] = -1 if labels is None else labels.to(self.labels)
        self.ptr.fill_((ptr + batch) % self.size)
        self.num_enqueued += batch
