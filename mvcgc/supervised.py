"""The supervised ceiling: the same encoder trained *with labels* on the pretraining clips.

Beside every self-supervised figure stands what the encoder reaches when the labels are given
(same shards, clips, augmentations and optimiser as pretraining, from random weights): if that is
near chance, the encoder or recipe is broken and no self-supervised result can be read. The
trainer runs it as a third stage (``pretrain(..., stage="supervised", num_classes=C)``) so it gets
the loop's checkpoints, resume and metrics; :class:`Supervised` stands where MoCo stands in the
other stages and keeps the same state names (``encoder_q.<view>.encoder.*``), so
:func:`mvcgc.checkpoint.load_encoder`, ``retrieve`` and ``linear`` read its checkpoints unchanged.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from mvcgc.classify import VideoClassifier
from mvcgc.models import VideoEncoder


class Supervised(nn.Module):
    """One classifier per view (encoder -> BatchNorm -> linear); both clips of a video are samples.

    ``forward(x_q, x_k)`` returns logits of clip A and of clip B, each ``{view: (B, num_classes)}``
    (the MoCo interface: queries and keys). There is no queue.
    """

    queue = None

    def __init__(self, encoders: Mapping[str, VideoEncoder], *, num_classes: int) -> None:
        super().__init__()
        self.views = tuple(encoders)
        self.num_classes = num_classes
        self.encoder_q = nn.ModuleDict({v: VideoClassifier(e, num_classes) for v, e in encoders.items()})

    @property
    def dim(self) -> int:
        return self.num_classes

    def forward(
        self, x_q: Mapping[str, torch.Tensor], x_k: Mapping[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``x_q[v]``, ``x_k[v]``: ``(B, C_v, T, H, W)`` -> logits ``{v: (B, num_classes)}`` for each clip."""
        return ({v: self.encoder_q[v](x_q[v]) for v in self.views},
                {v: self.encoder_q[v](x_k[v]) for v in self.views})

    def dequeue_and_enqueue(self, k: Mapping[str, torch.Tensor], labels: torch.Tensor | None = None) -> None:
        """Nothing to enqueue (the trainer calls this after every step in every stage)."""
