"""The options of a pretraining run: one frozen record each, with defaults, flag text and checks.

:class:`PretrainOptions` holds what shapes training (stage, model, optimiser, loss, seed);
:class:`ClipSettings` the clips the data source is built with (the data's side, grouped apart so a
clip request can take its place in one edit). Their fields *are* the preset keys (``preset=True``
in a field's metadata) and the ``mvcgc pretrain`` flags (``--field-name``): the CLI makes its click
options from :func:`dataclasses.fields`, :func:`read_preset` accepts exactly those keys, and
``config.json`` records :meth:`to_dict`. Adding an option is one field here plus its flag text.

Imports nothing heavy (no torch): the CLI reads these fields to build ``--help``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin, get_type_hints

from mvcgc.errors import InvalidArgumentError

StageName = Literal["init", "cross", "supervised"]
View = Literal["rgb", "mv"]
MiningMode = Literal["intersection", "union"]
Device = Literal["auto", "cpu", "cuda"]


def option(default: Any, help: str = "", *, preset: bool = True, low: float | None = None,
           high: float | None = None, flag: str | None = None, show_default: bool = False) -> Any:
    """A field of an options record. ``preset``: a preset may set it. ``low``/``high``: inclusive
    bounds, checked on construction (None values pass). ``flag``: the CLI flag when it is not
    ``--field-name`` (a bool field's flag turns it off, e.g. ``--no-amp``)."""
    meta = {"help": help, "preset": preset, "low": low, "high": high, "flag": flag, "show_default": show_default}
    return field(metadata=meta) if default is dataclasses.MISSING else field(default=default, metadata=meta)


def parse_crop_px(value: Any) -> int:
    """The side of the square clips in pixels (``128``, ``"128"``, ``"128x128"``), through compvid's
    one parser (imported here, not at module level: ``--help`` reads this module without PyAV)."""
    from compvid.errors import InvalidArgumentError as ClipRequestError
    from compvid.request import parse_crop_px as compvid_parse_crop_px

    try:
        return compvid_parse_crop_px(value, where="size (--size)")
    except ClipRequestError as e:
        raise InvalidArgumentError(str(e)) from e


class _Record:
    """Shared by the options records: bounds and choices checked, ``to_dict`` / ``from_dict``."""

    def _check_fields(self) -> None:
        hints = field_types(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            choices = literal_choices(hints[f.name])
            if choices and value not in choices:
                raise InvalidArgumentError(f"{f.name} must be one of {', '.join(choices)}; got {value!r} "
                                           f"({flag_of(f)})")
            low, high = f.metadata.get("low"), f.metadata.get("high")
            if (low is not None and not value >= low) or (high is not None and not value <= high):
                bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
                raise InvalidArgumentError(f"{f.name} must be {bounds}, got {value} ({flag_of(f)})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: tuples become lists."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        """The record of a ``to_dict`` (or ``config.json``) mapping; keys of other records are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def preset_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("preset"))


@dataclass(frozen=True)
class ClipSettings(_Record):
    """The clips a pretraining data source yields (``mvcgc.data``): the data's side of a run."""

    batch_size: int = option(32, "Videos per process and step.", low=1)
    num_frames: int = option(32, "Frames per clip.", low=1)
    size: int = option(128, "Side of the square clips in pixels, e.g. 128 (or 128x128).")
    flip_p: float = option(0.5, "Probability of a horizontal flip per clip (default 0.5; 0 for mirror-sensitive "
                                "classes such as left/right or clockwise motion, e.g. compvid synth data).",
                           low=0.0, high=1.0)
    min_crop_area: float = option(0.2, "Smallest share of the frame a random resized crop keeps (default 0.2, "
                                       "as MoCo).", low=0.01, high=1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", parse_crop_px(self.size))
        self._check_fields()


DEFAULT_CHECKPOINT_EVERY = 1000  # steps; a crash (or SIGKILL) then costs at most this many


@dataclass(frozen=True)
class PretrainOptions(_Record):
    """Everything that shapes a pretraining run besides its data and its folder (:func:`mvcgc.train.pretrain`).

    Stage ``init`` trains ``view`` alone (InfoNCE); ``cross`` trains RGB and MV with cross guidance,
    starting from stage-1 checkpoints ``init_rgb`` / ``init_mv`` (random weights where absent);
    ``supervised`` trains ``view`` with ``num_classes`` labels. ``steps=0`` (stage init only) writes
    the untrained weights, the random-init baseline; ``epochs`` is then dropped.
    """

    stage: StageName = option(dataclasses.MISSING, "init: one view alone (InfoNCE); cross: RGB + MV with cross guidance; "
                                    "supervised: one view with the labels, from random weights (the ceiling "
                                    "beside the self-supervised stages).", preset=False)
    view: View | None = option(None, "View to train in stage init or supervised.", preset=False)
    num_classes: int | None = option(None, "Classes of the labelled data (stage supervised; default: the "
                                           "shards' index.json).", preset=False, low=2)
    init_rgb: str | None = option(None, "Stage-1 RGB checkpoint to start the cross stage from.", preset=False)
    init_mv: str | None = option(None, "Stage-1 MV checkpoint to start the cross stage from.", preset=False)
    arch: str = option("s3d", "Encoder from the registry (s3d, r3d_18, r2plus1d_18, tiny, motion).")
    epochs: int | None = option(None, "Passes over the data.", low=1)
    steps: int | None = option(None, "Stop after this many optimiser steps (0: write the untrained weights, a "
                                     "random-init baseline).", low=0)
    queue_size: int = option(2048, "K, a multiple of the global batch.", low=1)
    dim: int = option(128, "Embedding size of the projection head.", low=1)
    momentum: float = option(0.999, "Key-encoder momentum m.", low=0.0, high=1.0)
    temperature: float = option(0.07, "Softmax temperature of the contrastive losses (> 0).")
    topk: int = option(5, "k of the top-k mining (cross stage).", low=0)
    mode: MiningMode = option("intersection", "Mining ablation switch.")
    lr: float = option(1e-4, "Adam learning rate.")
    weight_decay: float = option(1e-5, "Adam weight decay.")
    plateau_patience: int = option(10, "Epochs without improvement before LR / 10.", low=0)
    lr_drops: int = option(2, "How many times the LR may drop.", low=0)
    grad_clip: float | None = option(None, "Clip the gradient norm to this value.")
    checkpoint_every: int = option(DEFAULT_CHECKPOINT_EVERY,
                                   "Also checkpoint every N steps [default: the preset's, else 1000; 0: epoch ends "
                                   "only]. Ctrl-C or SIGTERM always checkpoints after the current step and prints "
                                   "the resume command.", low=0)
    seed: int = option(0, "Seed of the weights, the data order and the augmentations.", preset=False,
                       show_default=True)
    device: Device = option("auto", "Where to train.", preset=False, show_default=True)
    amp: bool = option(True, "Disable bf16 autocast on CUDA.", preset=False, flag="--no-amp")

    def __post_init__(self) -> None:
        for name in ("init_rgb", "init_mv"):  # paths are recorded as text
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(getattr(self, name)))
        if self.steps == 0:  # the random-init baseline trains nothing; a preset's epochs would only mislead
            object.__setattr__(self, "epochs", None)
        if self.stage not in get_args(StageName):
            raise InvalidArgumentError(f"stage must be one of {', '.join(get_args(StageName))}; got {self.stage!r}")
        self._check_fields()
        if self.stage in ("init", "supervised") and self.view is None:
            raise InvalidArgumentError(f"stage {self.stage!r} trains one view: give view one of rgb, mv "
                                       "(--view rgb or --view mv)")
        if self.stage == "cross" and self.view is not None:
            raise InvalidArgumentError("stage 'cross' trains both views; do not pass view")
        if self.epochs is None and self.steps is None:
            raise InvalidArgumentError("give epochs, steps or both (--epochs, --steps, or a preset's epochs)")
        if self.stage == "supervised" and self.num_classes is None:
            raise InvalidArgumentError("stage 'supervised' needs num_classes >= 2 (the classes of the labelled "
                                       "data; --num-classes)")
        if self.steps == 0 and self.stage != "init":
            raise InvalidArgumentError("steps=0 writes a random-initialisation baseline; use stage 'init' for it")
        if self.stage != "cross" and (self.init_rgb is not None or self.init_mv is not None):
            raise InvalidArgumentError(f"init_rgb/init_mv start the cross stage; stage {self.stage!r} starts from "
                                       "random weights")
        if not self.temperature > 0:
            raise InvalidArgumentError(f"temperature must be positive, got {self.temperature}")
        if not (math.isfinite(self.lr) and self.lr >= 0 and math.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise InvalidArgumentError(f"lr and weight_decay must be finite numbers >= 0, got lr={self.lr}, "
                                       f"weight_decay={self.weight_decay} (--lr, --weight-decay)")


PRESET_KEYS = PretrainOptions.preset_keys() + ClipSettings.preset_keys()


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in resources.files("mvcgc.presets").iterdir()
                  if p.name.endswith(".toml"))


class PresetError(InvalidArgumentError):
    """A preset that does not exist, is not TOML, or sets keys that are no option."""


def read_preset(name_or_path: str, *, stage: str) -> dict[str, Any]:
    """A preset's top-level keys merged with its ``[stage]`` table; every key a field of
    :class:`PretrainOptions` or :class:`ClipSettings` marked ``preset``."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise PresetError(f"preset file {path} does not exist")
        text = path.read_text()
    elif name_or_path in list_presets():
        text = resources.files("mvcgc.presets").joinpath(f"{name_or_path}.toml").read_text()
    else:
        raise PresetError(f"unknown preset {name_or_path!r}; allowed: {', '.join(list_presets())} or a path to "
                          "a .toml file")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"preset {name_or_path!r} is not valid TOML: {e}") from e
    resolved = {k: v for k, v in table.items() if not isinstance(v, dict)}
    resolved.update(table.get(stage, {}))
    unknown = set(resolved) - set(PRESET_KEYS)
    if unknown:
        raise PresetError(f"preset {name_or_path!r} has unknown keys {sorted(unknown)}; a preset may set "
                          f"{', '.join(sorted(PRESET_KEYS))}")
    return resolved


def resolve(stage: str, preset: str | None, flags: Mapping[str, Any]) -> tuple[PretrainOptions, ClipSettings]:
    """The records of a run: each field's default, overridden by the preset, overridden by ``flags``
    (None values of ``flags`` are unset flags)."""
    layered: dict[str, Any] = dict(read_preset(preset, stage=stage)) if preset is not None else {}
    layered.update({k: v for k, v in flags.items() if v is not None})
    layered["stage"] = stage
    return PretrainOptions.from_dict(layered), ClipSettings.from_dict(layered)


def flag_of(f: dataclasses.Field) -> str:
    """The CLI flag of a field: ``--field-name`` unless its metadata names another."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def literal_choices(tp: Any) -> tuple[str, ...]:
    """The values of the ``Literal`` in a field's type (``View | None`` -> ("rgb", "mv")); () if none."""
    for t in (tp, *get_args(tp)):
        if get_origin(t) is Literal:
            return get_args(t)
    return ()


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field (the annotations are strings under ``from __future__``)."""
    return get_type_hints(cls)
