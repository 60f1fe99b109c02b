"""The two pretraining stages: which views train, and which loss applies.

One training loop (:mod:`mvcgc.train`) runs either stage; a stage only answers two questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, get_args

import torch

from mvcgc.losses import MiningMode, check_mining_mode, cross_guidance_nce, info_nce
from mvcgc.queue import KeyQueue

StageName = Literal["init", "cross"]
View = Literal["rgb", "mv"]
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

    def loss(self, q: Mapping[str, torch.Tensor], k: Mapping[str, torch.Tensor], queue: KeyQueue) -> torch.Tensor:
        v = self.view
        return info_nce(q[v], k[v], queue[v], temperature=self.temperature)


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

    def loss(self, q: Mapping[str, torch.Tensor], k: Mapping[str, torch.Tensor], queue: KeyQueue) -> torch.Tensor:
        return cross_guidance_nce(
            q["rgb"], q["mv"], k["rgb"], k["mv"], queue["rgb"], queue["mv"],
            topk=self.topk if queue.is_full else 0,
            temperature=self.temperature,
            mode=self.mode,
        )


Stage = InitStage | CrossStage


def make_stage(
    name: StageName,
    *,
    view: View | None = None,
    topk: int = 5,
    mode: MiningMode = "intersection",
    temperature: float = 0.07,
) -> Stage:
    """``make_stage("init", view="rgb")`` or ``make_stage("cross", topk=5, mode="union")``."""
    if name not in get_args(StageName):
        raise ValueError(f"stage must be one of {', '.join(get_args(StageName))}; got {name!r}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if name == "init":
        if view not in get_args(View):
            raise ValueError(f"stage 'init' needs view one of {', '.join(get_args(View))}; got {view!r}")
        return InitStage(view=view, temperature=temperature)
    if view is not None:
        raise ValueError("stage 'cross' trains both views; do not pass view")
    check_mining_mode(mode)
    if topk < 0:
        raise ValueError(f"topk must be >= 0, got {topk}")
    return CrossStage(topk=topk, mode=mode, temperature=temperature)
