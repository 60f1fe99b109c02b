"""The pretraining options records: presets, flags, config.json and pretrain() all read the same fields."""

import dataclasses
import json

import click
import pytest

from cli.mvcgc import pretrain as pretrain_command
from mvcgc.errors import CheckpointError, InvalidArgumentError
from mvcgc.loop_state import LoopState
from mvcgc.options import PRESET_KEYS, ClipSettings, PresetError, PretrainOptions, list_presets, read_preset, resolve

RECORDS = (PretrainOptions, ClipSettings)


def test_every_field_is_a_flag_of_mvcgc_pretrain_and_nothing_else_is_hand_carried():
    flags = {p.name: p for p in pretrain_command.params if isinstance(p, click.Option)}
    fields = {f.name for r in RECORDS for f in dataclasses.fields(r)}
    assert fields <= set(flags)
    # the flags outside the records say where the data and the run live, not how to train
    assert set(flags) - fields == {"data_source", "out_dir", "preset", "resume", "overwrite", "synthetic_videos",
                                   "workers"}
    assert flags["amp"].opts == ["--no-amp"] and list(flags["mode"].type.choices) == ["intersection", "union"]


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_key_is_a_field_and_every_preset_builds_both_records(name):
    for stage in ("init", "cross"):
        keys = read_preset(name, stage=stage)
        assert set(keys) <= set(PRESET_KEYS)
        options, clip = resolve(stage, name, {"view": "rgb" if stage == "init" else None})
        assert (options.arch, options.queue_size, options.epochs) == (keys["arch"], keys["queue_size"], keys["epochs"])
        assert clip.size == keys["size"] and clip.num_frames == keys["num_frames"]


def test_flags_override_the_preset_which_overrides_the_defaults():
    options, clip = resolve("init", "tiny-cpu", {"view": "mv", "lr": 0.5, "size": 48, "epochs": None})
    assert (options.lr, options.arch, options.epochs, options.dim) == (0.5, "motion", 30, 128)  # flag, preset x2
    assert (clip.size, clip.flip_p, clip.min_crop_area) == (48, 0.5, 0.6)  # flag, default, preset
    default, _ = resolve("init", None, {"view": "mv", "steps": 3})
    assert default == PretrainOptions(stage="init", view="mv", steps=3) and default.arch == "s3d"


def test_an_unknown_preset_key_is_refused_with_the_keys_allowed(tmp_path):
    (tmp_path / "p.toml").write_text('arch = "tiny"\nlearning_rate = 1.0\n[init]\nepochs = 2\n')
    with pytest.raises(PresetError, match=r"unknown keys \['learning_rate'\]; a preset may set .*lr") as info:
        read_preset(str(tmp_path / "p.toml"), stage="init")
    assert isinstance(info.value, InvalidArgumentError)


@pytest.mark.parametrize("fields, needle", [
    (dict(stage="init", view="rgb", epochs=0), r"epochs must be >= 1, got 0 \(--epochs\)"),
    (dict(stage="init", view="rgb", steps=1, checkpoint_every=-1), r"checkpoint_every must be >= 0"),
    (dict(stage="cross", steps=1, mode="all"), r"mode must be one of intersection, union"),
    (dict(stage="cross", steps=0), "random-initialisation baseline"),
    (dict(stage="supervised", view="rgb", steps=1), "num_classes"),
    (dict(stage="init", view="rgb", steps=1, init_rgb="a.pt"), "init_rgb/init_mv start the cross stage"),
    (dict(stage="init", view="rgb", steps=1, temperature=0.0), "temperature must be positive"),
])
def test_bad_options_are_refused_on_construction(fields, needle):
    with pytest.raises(InvalidArgumentError, match=needle):
        PretrainOptions(**fields)


def test_clip_settings_parse_and_check_their_values():
    assert ClipSettings(size="96x96").size == 96 and ClipSettings(size=[64]).size == 64
    with pytest.raises(InvalidArgumentError, match="clips are square"):
        ClipSettings(size="96x128")
    for bad in (dict(size="16xA"), dict(size=0), dict(flip_p=1.5), dict(min_crop_area=0.0), dict(batch_size=0)):
        with pytest.raises(InvalidArgumentError):
            ClipSettings(**bad)


def test_to_dict_is_json_and_from_dict_rebuilds_the_record():
    options = PretrainOptions(stage="cross", steps=0 + 5, topk=2, init_rgb="x/last.pt")
    assert PretrainOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    clip = ClipSettings(size="48")
    assert ClipSettings.from_dict(json.loads(json.dumps(clip.to_dict()))) == clip
    assert PretrainOptions(stage="init", view="rgb", steps=0, epochs=30).epochs is None  # the baseline trains nothing


def test_pretrain_refuses_an_unknown_keyword(tmp_path):
    from mvcgc.train import pretrain

    with pytest.raises(InvalidArgumentError, match="no option learning_rate"):
        pretrain([], stage="init", view="rgb", steps=1, learning_rate=1.0, out_dir=tmp_path)


def test_the_loop_state_of_a_checkpoint_round_trips_and_old_entries_still_load():
    # the trainer dict the loop saved before it was typed, mid-epoch of a supervised run and of another stage
    old_supervised = {"step": 3, "epoch": 1, "batch_in_epoch": 1, "epoch_loss_sum": 2.5, "input_spec": None,
                      "epoch_accuracy_sum": 0.25}
    old_init = {"step": 3, "epoch": 0, "batch_in_epoch": 3, "epoch_loss_sum": 7.0, "input_spec": {"rgb": {}}}
    for old in (old_supervised, old_init):
        assert LoopState.from_dict(old).to_dict() == {**old, "batches_per_epoch": None}  # learnt again
        state = LoopState.from_dict(old)
        assert LoopState.from_dict(state.to_dict()) == state
    with pytest.raises(CheckpointError, match="trainer state has keys"):
        LoopState.from_dict({"steps": 3})


def test_an_unset_flag_leaves_the_preset_or_default_and_no_amp_turns_amp_off():
    def parsed(*args):
        params = pretrain_command.make_context("pretrain", ["--data", "x", "--out", "o", *args]).params
        return resolve(params["stage"], None, {k: params[k] for k in PRESET_KEYS + ("stage", "view", "amp")})

    options, clip = parsed("--stage", "init", "--view", "rgb", "--steps", "1", "--size", "96x96")
    assert options.amp is True and clip.size == 96 and options.seed == 0
    assert parsed("--stage", "init", "--view", "rgb", "--steps", "1", "--no-amp")[0].amp is False
