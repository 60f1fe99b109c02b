"""The training stages: which views train, on which model, and which loss applies.

One training loop (:mod:`mvcgc.train`) runs every stage: the two pretraining stages of the paper
(``init``, ``cross``) and ``supervised``, the labelled ceiling beside them (:mod:`mvcgc.supervised`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mvcgc.errors import DataError
from mvcgc.losses import cross_guidance_nce, info_nce, mining_statistics
from mvcgc.models import VideoEncoder
from mvcgc.moco import MoCo
from mvcgc.options import MiningMode, PretrainOptions, StageName, View
from mvcgc.queue import KeyQueue

IN_CHANNELS: dict[str, int] = {"rgb": 3, "mv": 2}


@dataclass(frozen=True)
class InitStage:
    """Stage 1: one view alone, InfoNCE (eq. 1) -- clip A's query against clip B's key and the queue."""

    view: View
    temperature: float = 0.07
    name: StageName = "init"

    @property
    def views(self) -> tuple[str, ...]:
        return (self.view,)

    def build_model(self, encoders: Mapping[str, VideoEncoder], *, queue_size: int, dim: int, momentum: float) -> nn.Module:
        return MoCo(encoders, queue_size=queue_size, dim=dim, m=momentum)

    def loss(self, q: Mapping[str, torch.Tensor], k: Mapping[str, torch.Tensor], queue: KeyQueue,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        v = self.view
        return info_nce(q[v], k[v], queue[v], temperature=self.temperature)

    def diagnostics(self, k: Mapping[str, torch.Tensor], queue: KeyQueue, labels: torch.Tensor | None,
                    q: Mapping[str, torch.Tensor] | None = None) -> dict:
        """Nothing is mined in stage 1."""
        return {}


@dataclass(frozen=True)
class CrossStage:
    """Stage 2: RGB and MV train together with the cross-guidance loss (eq. 4-5).

    Mining (top-``topk`` ``mode`` of the two aligned queues) starts once the queue is full.
    """

    topk: int = 5
    mode: MiningMode = "intersection"
    temperature: float = 0.07
    name: StageName = "cross"

    @property
    def views(self) -> tuple[str, ...]:
        return ("rgb", "mv")

    def build_model(self, encoders: Mapping[str, VideoEncoder], *, queue_size: int, dim: int, momentum: float) -> nn.Module:
        return MoCo(encoders, queue_size=queue_size, dim=dim, m=momentum)

    def loss(self, q: Mapping[str, torch.Tensor], k: Mapping[str, torch.Tensor], queue: KeyQueue,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        return cross_guidance_nce(
            q["rgb"], q["mv"], k["rgb"], k["mv"], queue["rgb"], queue["mv"],
            topk=self.topk if queue.is_full else 0,
            temperature=self.temperature,
            mode=self.mode,
        )

    def diagnostics(self, k: Mapping[str, torch.Tensor], queue: KeyQueue, labels: torch.Tensor | None,
                    q: Mapping[str, torch.Tensor] | None = None) -> dict:
        """``{"mining": ...}``: mining quality of this step (:func:`mvcgc.losses.mining_statistics`);
        ``{}`` before mining starts."""
        if not queue.is_full or self.topk == 0:
            return {}
        return {"mining": mining_statistics(k["rgb"], k["mv"], queue["rgb"], queue["mv"], topk=self.topk,
                                            mode=self.mode, labels=labels, queue_labels=queue.labels)}


@dataclass(frozen=True)
class SupervisedStage:
    """The ceiling: one view trained from random weights with labels (cross-entropy on clips A and B).

    ``q`` and ``k`` are the logits of the two clips (:class:`mvcgc.supervised.Supervised`).
    """

    view: View
    num_classes: int
    name: StageName = "supervised"

    @property
    def views(self) -> tuple[str, ...]:
        return (self.view,)

    def build_model(self, encoders: Mapping[str, VideoEncoder], *, queue_size: int, dim: int, momentum: float) -> nn.Module:
        from mvcgc.supervised import Supervised  # deferred: it imports the evaluation side (classify)

        return Supervised(encoders, num_classes=self.num_classes)

    def _check_labels(self, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None or bool((labels < 0).any()) or bool((labels >= self.num_classes).any()):
            shown = None if labels is None else sorted(set(labels.tolist()))
            raise DataError(
                f"supervised training needs a class label in 0..{self.num_classes - 1} for every video; "
                f"this batch has {shown}. Shard a labelled layout (compvid shard --layout ucf101|hmdb51|kinetics)"
            )
        return labels

    def loss(self, q: Mapping[str, torch.Tensor], k: Mapping[str, torch.Tensor], queue: KeyQueue | None,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        y = self._check_labels(labels)  # (B,)
        v = self.view
        return 0.5 * (F.cross_entropy(q[v].float(), y) + F.cross_entropy(k[v].float(), y))

    def diagnostics(self, k: Mapping[str, torch.Tensor], queue: KeyQueue | None, labels: torch.Tensor | None,
                    q: Mapping[str, torch.Tensor] | None = None) -> dict:
        """Training accuracy of this batch (both clips), so underfitting shows in the metrics."""
        if q is None or labels is None:
            return {}
        v = self.view
        hits = (q[v].argmax(1) == labels).float().mean() + (k[v].argmax(1) == labels).float().mean()
        return {"train_accuracy": 0.5 * hits.item()}


Stage = InitStage | CrossStage | SupervisedStage


def make_stage(options: PretrainOptions) -> Stage:
    """The stage of a (validated) options record: its name, view, loss settings and classes."""
    if options.stage == "init":
        return InitStage(view=options.view, temperature=options.temperature)
    if options.stage == "supervised":
        return SupervisedStage(view=options.view, num_classes=options.num_classes)
    return CrossStage(topk=options.topk, mode=options.mode, temperature=options.temperature)
