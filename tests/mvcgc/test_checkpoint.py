"""Checkpoints: atomic writes, safe loads, encoders rebuilt from the file alone, clear errors; hubconf."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mvcgc.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, load_encoder, save_checkpoint
from mvcgc.errors import CheckpointError, CheckpointNotFoundError

REPO = Path(__file__).resolve().parents[2]


def test_package_exports_load_encoder():
    # In a fresh interpreter outside tests/ (where tests/mvcgc would shadow the package name).
    code = "import mvcgc; print(mvcgc.load_encoder.__module__, sorted(mvcgc.list_encoders()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO.parent, check=True)
    assert out.stdout.split()[0] == "mvcgc.checkpoint" and "s3d" in out.stdout


def test_load_encoder_rebuilds_the_trained_query_encoder(stage1_rgb):
    enc = load_encoder(stage1_rgb, view="rgb")
    assert enc.arch == "tiny" and enc.in_channels == 3 and not enc.training
    state = load_checkpoint(stage1_rgb)["model"]
    torch.testing.assert_close(enc.backbone[0][0].weight, state["encoder_q.rgb.encoder.backbone.0.0.weight"])
    assert enc.forward_features(torch.randn(2, 3, 4, 16, 16)).shape == (2, 128)


def test_incompatible_or_missing_checkpoints_are_clear(tmp_path, stage1_rgb):
    with pytest.raises(CheckpointError, match=r"holds view\(s\) \['rgb'\], not 'mv'"):
        load_encoder(stage1_rgb, view="mv")
    with pytest.raises(CheckpointError, match="'tiny' encoder, but 's3d'"):
        load_encoder(stage1_rgb, view="rgb", arch="s3d")
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        load_encoder(tmp_path / "nope.pt")
    assert issubclass(CheckpointNotFoundError, FileNotFoundError)

    garbage = tmp_path / "garbage.pt"
    for seed in range(40):  # random bytes make the unpickler fail in many different ways
        garbage.write_bytes(np.random.default_rng(seed).bytes(256))
        with pytest.raises(CheckpointError, match="not a readable mvcgc checkpoint") as info:
            load_checkpoint(garbage)
        message = str(info.value)
        # one line that says what a checkpoint is, and never PyTorch's advice to load unsafely
        assert "\n" not in message and "weights_only" not in message and "last.pt" in message, message

    bare = tmp_path / "bare.pt"
    torch.save({"weight": torch.zeros(2)}, bare)
    with pytest.raises(CheckpointError, match="not an mvcgc checkpoint"):
        load_checkpoint(bare)

    old = tmp_path / "old.pt"
    torch.save({"format": FORMAT, "format_version": 99}, old)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(old)


class NotWeights:
    """An arbitrary pickled object: weights_only loading must refuse it."""


def test_loading_is_safe(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "x": NotWeights()}, evil)
    with pytest.raises(CheckpointError, match="not a readable") as info:
        load_checkpoint(evil)
    assert "weights_only" not in str(info.value) and "allowlist" not in str(info.value)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"format": FORMAT, "format_version": FORMAT_VERSION, "step": 1}, path)

    def crash(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"format": FORMAT, "format_version": FORMAT_VERSION, "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_hubconf_builds_and_loads(tmp_path, stage1_rgb):
    enc = torch.hub.load(str(REPO), "tiny", source="local", in_channels=2)
    assert enc.in_channels == 2 and enc.input_norm == "batchnorm"
    trained = torch.hub.load(str(REPO), "tiny", source="local", checkpoint=str(stage1_rgb), view="rgb")
    torch.testing.assert_close(trained.backbone[0][0].weight, load_encoder(stage1_rgb).backbone[0][0].weight)
    bare = tmp_path / "bare.pt"
    torch.save(trained.state_dict(), bare)  # weights trained elsewhere: a plain state_dict
    again = torch.hub.load(str(REPO), "tiny", source="local", checkpoint=str(bare))
    torch.testing.assert_close(again.backbone[0][0].weight, trained.backbone[0][0].weight)
    with pytest.raises(CheckpointError, match="neither"):
        torch.hub.load(str(REPO), "r3d_18", source="local", checkpoint=str(bare))


def test_clip_request_is_read_from_the_checkpoint_or_rebuilt_from_older_fields(tmp_path, stage1_rgb):
    from compvid.errors import InvalidArgumentError
    from compvid.request import ClipRequest
    from mvcgc.checkpoint import clip_request, evaluation_request

    ckpt = load_checkpoint(stage1_rgb)
    # written without a recorded request (as before it existed): its input, 4 frames of 16 x 16
    assert ckpt["config"]["data"] is None and ckpt["input_spec"]["rgb"]["height"] == 16
    assert clip_request(ckpt, "rgb") == ClipRequest(num_frames=4, crop_px=16, views="rgb")
    # nothing recorded at all: the old defaults
    assert clip_request({"config": {}}, "mv") == ClipRequest(num_frames=16, crop_px=128, views="mv")

    recorded = dict(ckpt, config={**ckpt["config"], "data": {"clip_request": ClipRequest(
        num_frames=6, crop_px=24, frame_step=2, decode_short_side_px=30, views="both").to_dict()}})
    path = save_checkpoint(recorded, tmp_path / "recorded.pt")
    assert clip_request(load_checkpoint(path), "rgb") == ClipRequest(6, 24, frame_step=2, decode_short_side_px=30,
                                                                     views="rgb")
    # evaluation: the checkpoint's clips, decoded at the crop side, each given option in its place
    assert evaluation_request(path, "rgb") == ClipRequest(6, 24, frame_step=2, views="rgb")
    assert evaluation_request(path, "rgb", num_frames=3, crop_px=20, frame_step=1) == ClipRequest(3, 20, views="rgb")
    with pytest.raises(InvalidArgumentError, match="num_frames=0: must be a positive whole number"):
        evaluation_request(path, "rgb", num_frames=0)  # never "take it from the checkpoint"

    broken = dict(recorded, config={**ckpt["config"], "data": {"clip_request": {"num_frames": 0, "crop_px": 8}}})
    with pytest.raises(CheckpointError, match="clip settings that cannot be read: num_frames=0"):
        clip_request(broken, "rgb")
