"""The pretraining loop's own state, saved in every checkpoint (``checkpoint["trainer"]``) to resume from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from mvcgc.errors import CheckpointError


@dataclass
class LoopState:
    """Where the loop stands: after ``step`` optimiser steps, ``batch_in_epoch`` batches into epoch
    ``epoch`` (0-based), with the sums of this epoch's losses (and, supervised, training accuracies)
    so far. ``batches_per_epoch`` gives the progress its total where the data has no length (a
    stream under torchrun, ``pipe:`` shards). ``input_spec``: per view ``{channels, num_frames, height, width, units}`` of the clips
    trained on (None until the first batch)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    epoch_loss_sum: float = 0.0
    epoch_accuracy_sum: float | None = None  # None: the stage reports no training accuracy
    input_spec: dict | None = None
    batches_per_epoch: int | None = None  # the data's length, or the batches of the first whole epoch

    def finish_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_loss_sum = 0.0
        if self.epoch_accuracy_sum is not None:
            self.epoch_accuracy_sum = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's ``trainer`` entry (``epoch_accuracy_sum`` only where the stage has one)."""
        d = dataclasses.asdict(self)
        if self.epoch_accuracy_sum is None:
            del d["epoch_accuracy_sum"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "checkpoint") -> "LoopState":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown or "step" not in d:
            raise CheckpointError(f"{source}: its trainer state has keys {sorted(d)}; expected {sorted(names)} "
                                  "(a checkpoint of another version?)")
        return cls(**d)
