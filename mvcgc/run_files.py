"""The files of a pretraining run folder that other modules read (the report, the loss plot): their
names and one type per record.

``config.json`` is a :class:`RunConfig`; ``metrics.jsonl`` holds one JSON line per optimiser step
(:class:`StepRecord`) and one per finished epoch (:class:`EpochEndRecord`), written as they happen by
:func:`mvcgc.train.pretrain` and read back with :func:`read_metrics`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from mvcgc.errors import ResultsError

CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.jsonl"
CHECKPOINT_NAME = "last.pt"
LOSS_PLOT_NAME = "loss.png"


@dataclass(frozen=True)
class RunConfig:
    """``config.json``: ``config``, the run's options (the fields of
    :class:`~mvcgc.options.PretrainOptions`, the device resolved) with its views, the checkpoint it
    resumed, the preset, the world size and ``data`` (how the data was built); ``versions`` of the
    packages it ran with."""

    config: dict[str, Any]
    versions: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config, "versions": self.versions}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = CONFIG_NAME) -> "RunConfig":
        if not isinstance(d, Mapping) or not isinstance(d.get("config"), Mapping):
            raise ResultsError(f"{source}: no 'config' table; is it a run's {CONFIG_NAME}?")
        return cls(dict(d["config"]), dict(d.get("versions") or {}))


@dataclass(frozen=True)
class StepRecord:
    """One optimiser step: its number (from 1), the run's total when known, the epoch (from 0), the
    loss, the learning rate, how full the key queue is (0..1), the throughput, and the stage's
    diagnostics: ``mining`` (cross stage, once mining starts) or ``train_accuracy`` (supervised)."""

    step: int
    total_steps: int | None
    epoch: int
    loss: float
    lr: float
    queue_fill: float
    samples_per_s: float
    mining: dict[str, float | None] | None = None
    train_accuracy: float | None = None

    event = "step"

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.event, **asdict(self)}
        return {k: v for k, v in d.items() if v is not None or k not in ("mining", "train_accuracy")}


@dataclass(frozen=True)
class EpochEndRecord:
    """One finished epoch: its number (from 0), the mean of its step losses, the step it ended at and,
    supervised, its mean training accuracy (augmented clips)."""

    epoch: int
    mean_loss: float
    step: int
    train_accuracy: float | None = None

    event = "epoch_end"

    def to_dict(self) -> dict[str, Any]:
        d = {"event": self.event, **asdict(self)}
        return d if self.train_accuracy is not None else {k: v for k, v in d.items() if k != "train_accuracy"}


MetricsRecord = StepRecord | EpochEndRecord
_BY_EVENT = {StepRecord.event: StepRecord, EpochEndRecord.event: EpochEndRecord}


def metrics_record(d: Mapping[str, Any], *, source: str = METRICS_NAME) -> MetricsRecord:
    """The record of one decoded ``metrics.jsonl`` line."""
    kind = _BY_EVENT.get(d.get("event")) if isinstance(d, Mapping) else None
    if kind is None:
        raise ResultsError(f"{source}: not a metrics record (event {d.get('event') if isinstance(d, Mapping) else d!r}"
                           f"; expected one of {', '.join(_BY_EVENT)})")
    names = {f.name for f in fields(kind)}
    try:
        return kind(**{k: v for k, v in d.items() if k != "event" and (k in names or _unknown(k, source))})
    except TypeError as e:  # a field missing
        raise ResultsError(f"{source}: an incomplete {kind.event} record ({e}); written by another version?") from e


def read_metrics(path: str | Path) -> list[MetricsRecord]:
    """Every record of a ``metrics.jsonl``, in order ([] if the file does not exist); a line that is
    not valid JSON (a write cut off) is a :class:`ResultsError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for i, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            d = json.loads(text)
        except ValueError as e:
            raise ResultsError(f"{path} line {i} is not valid JSON ({e}); was it cut off? write it again (re-run "
                               "the command that made it) or remove it") from e
        out.append(metrics_record(d, source=f"{path} line {i}"))
    return out


def _unknown(key: str, source: str) -> bool:
    raise ResultsError(f"{source}: unknown metrics field {key!r}; written by another version?")
