"""``mvcgc pretrain``: presets + flags, both stages on synthetic tensors, one-line errors, exit codes."""

import json

import pytest
from click.testing import CliRunner

from cli.mvcgc import main
from mvcgc.options import list_presets, read_preset

SMALL = ["--data", "synthetic", "--preset", "tiny-cpu", "--synthetic-videos", "8", "--batch-size", "4",
         "--num-frames", "4", "--size", "16", "--queue-size", "8", "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_presets_resolve_per_stage():
    assert set(list_presets()) == {"ucf101", "k400", "tiny-cpu"}
    ucf_init, ucf_cross = read_preset("ucf101", stage="init"), read_preset("ucf101", stage="cross")
    assert (ucf_init["queue_size"], ucf_init["num_frames"], ucf_init["size"], ucf_init["batch_size"]) == (2048, 32, 128, 32)
    assert (ucf_init["epochs"], ucf_cross["epochs"]) == (300, 200)
    k400 = read_preset("k400", stage="cross")
    assert (k400["queue_size"], k400["epochs"], read_preset("k400", stage="init")["epochs"]) == (16384, 50, 200)
    assert read_preset("tiny-cpu", stage="init")["arch"] == "motion"


def test_both_stages_end_to_end(tmp_path, caplog):
    r1 = run("pretrain", "--stage", "init", "--view", "rgb", "--out", str(tmp_path / "rgb"), "--steps", "2", *SMALL)
    assert r1.exit_code == 0, r1.output
    assert "RANDOM TENSORS" in caplog.text  # synthetic data says what it is
    config = json.loads((tmp_path / "rgb" / "config.json").read_text())
    assert config["config"]["arch"] == "motion"  # from the preset
    assert config["config"]["queue_size"] == 8 and config["config"]["steps"] == 2  # flags override it
    assert config["config"]["data"]["source"] == "synthetic" and config["config"]["preset"] == "tiny-cpu"
    assert "torch" in config["versions"]
    # the clip request, built once from preset + flags, is recorded in the checkpoint and read back from it
    from compvid.request import ClipRequest
    from mvcgc.checkpoint import clip_request, load_checkpoint

    assert config["config"]["data"]["clip_request"] == {"num_frames": 4, "crop_px": 16, "frame_step": 1,
                                                        "decode_short_side_px": None, "views": ["rgb"]}
    assert clip_request(load_checkpoint(tmp_path / "rgb" / "last.pt"), "rgb") == \
        ClipRequest(num_frames=4, crop_px=16, views="rgb")
    r2 = run("pretrain", "--stage", "cross", "--init-rgb", str(tmp_path / "rgb" / "last.pt"),
             "--out", str(tmp_path / "cross"), "--steps", "2", "--mode", "union", *SMALL)
    assert r2.exit_code == 0, r2.output
    assert (tmp_path / "cross" / "last.pt").exists() and (tmp_path / "cross" / "loss.png").exists()
    assert json.loads((tmp_path / "cross" / "config.json").read_text())["config"]["mode"] == "union"
    # the same command into the same folder is refused with one line naming both ways on
    again = run("pretrain", "--stage", "init", "--view", "rgb", "--out", str(tmp_path / "rgb"), "--steps", "2", *SMALL)
    assert again.exit_code == 1 and "--resume" in again.output and "--overwrite" in again.output
    assert "Traceback" not in again.output and len(again.output.strip().splitlines()) == 1
    over = run("pretrain", "--stage", "init", "--view", "rgb", "--out", str(tmp_path / "rgb"), "--steps", "2",
               "--overwrite", *SMALL)
    assert over.exit_code == 0, over.output


def test_library_errors_are_one_line_and_exit_1(tmp_path):
    r = run("pretrain", "--stage", "cross", "--init-mv", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x"),
            "--steps", "1", *SMALL)
    assert r.exit_code == 1 and "does not exist" in r.output and "Traceback" not in r.output
    r = run("pretrain", "--stage", "init", "--view", "mv", "--out", str(tmp_path / "y"), "--steps", "1",
            *SMALL[:-6], "--queue-size", "6", "--device", "cpu")
    assert r.exit_code == 1 and "multiple of the global batch 4" in r.output
    r = run("pretrain", "--stage", "init", "--view", "rgb", "--data", "shards/train-{000..009}.tar",
            "--out", str(tmp_path / "z"), "--steps", "1")
    assert r.exit_code == 1 and "10 of 10 shard(s) not found" in r.output and "compvid shard" in r.output


@pytest.mark.parametrize("args,needle", [
    (["--stage", "init"], "--view rgb or --view mv"),
    (["--stage", "both", "--view", "rgb"], "'init', 'cross'"),
    (["--stage", "cross", "--mode", "all"], "'intersection', 'union'"),
    (["--stage", "init", "--view", "rgb", "--preset", "huge"], "ucf101"),
    (["--stage", "init", "--view", "rgb", "--size", "16xA"], "positive number of pixels"),
    (["--stage", "init", "--view", "rgb", "--size", "96x128"], "clips are square (H = W); pass one side, e.g. 128"),
    (["--stage", "init", "--view", "rgb", "--num-frames", "0"], "0 is not in the range x>=1"),
])
def test_usage_errors_exit_2(tmp_path, args, needle):
    r = run("pretrain", *args, "--data", "synthetic", "--out", str(tmp_path))
    assert r.exit_code == 2 and needle in r.output, r.output


def test_a_preset_with_a_non_square_size_is_a_usage_error(tmp_path):
    preset = tmp_path / "wide.toml"
    preset.write_text('size = "96x128"\nsteps = 1\n')
    r = run("pretrain", "--stage", "init", "--view", "rgb", "--preset", str(preset), "--data", "synthetic",
            "--out", str(tmp_path / "run"))
    assert r.exit_code == 2 and "size (--size)='96x128': clips are square (H = W); pass one side" in r.output
