"""``mvcgc retrieve`` / ``linear`` / ``fuse`` end to end on generated videos, and their bad-input errors."""

import json

import pytest
from click.testing import CliRunner

from cli.mvcgc import main
from mvcgc.data import SyntheticClips
from mvcgc.results import LinearFile, RetrievalFile
from mvcgc.train import pretrain
from pan_folders import class_folders as folders


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalcli")
    # A few pretraining steps of the tiny encoder, both views (random tensors: the shard stream is separate).
    data = SyntheticClips(num_videos=8, batch_size=4, num_frames=8, size=(32, 32))
    ckpt = pretrain(data, stage="cross", out_dir=root / "run", steps=2, arch="tiny", queue_size=8, dim=16,
                    device="cpu").checkpoint
    train = folders(root / "train", {"left": 2, "right": 2})
    test = folders(root / "test", {"left": 1, "right": 1}, seed=100)
    (test / "right" / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 40)
    return root, ckpt, train, test


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_retrieve_and_linear_print_their_tables(setup, tmp_path):
    root, ckpt, train, test = setup
    common = ["--ckpt", ckpt, "--train", train, "--test", test, "--cache-dir", tmp_path / "cache", "--device", "cpu"]
    r = run("retrieve", *common, "--view", "both", "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "left out 1 test video(s) that failed to decode" in r.output and "broken.mp4" in r.output
    assert "2 test queries, 4 train videos" in r.output
    for line in ("R@1     R@5    R@10    R@20    R@50", "\nrgb ", "\nmv ", "\nboth (sum) "):
        assert line in r.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert set(doc["recall"]) == {"1", "5", "10", "20", "50"} and doc["recall"]["5"] == 1.0  # k >= gallery of 4
    assert doc["view"] == "both" and doc["checkpoints"]["mv"] == str(ckpt)
    assert doc["features"]["rgb"]["test"]["checkpoint_sha256"] and len(doc["failed_test"]) == 1
    # the report reads it through the type that wrote it, losing nothing
    assert RetrievalFile.from_dict(doc).to_dict() == doc
    assert set(RetrievalFile.from_dict(doc).queries.first_hit_rank) == {"rgb", "mv", "both"}

    r = run("linear", *common, "--view", "both", "--epochs", "3", "--predictions", tmp_path / "pred",
            "--json", tmp_path / "l.json")
    assert r.exit_code == 0, r.output
    assert "from cache" not in r.output  # logging goes to stderr; the table to stdout
    assert "left out 1 test video(s)" in r.output and "top-1   top-5  videos" in r.output
    for name in ("rgb", "mv", "both"):
        assert f"\n{name} " in r.output and (tmp_path / f"pred.{name}.json").exists()
    doc = json.loads((tmp_path / "l.json").read_text())
    assert doc["rgb"]["videos"] == 2 and doc["rgb"]["epochs"] == 3 and doc["rgb"]["test"]["crops"] == "ten"
    assert LinearFile.from_dict(doc).to_dict() == doc and len(LinearFile.from_dict(doc).views["mv"].hits()) == 2

    r = run("fuse", tmp_path / "pred.rgb.json", tmp_path / "pred.mv.json", "--out", tmp_path / "fused.json")
    assert r.exit_code == 0, r.output
    assert "fused 2 prediction files over 2 videos" in r.output and "top-1" in r.output
    fused = json.loads((tmp_path / "fused.json").read_text())
    both = json.loads((tmp_path / "pred.both.json").read_text())
    assert sum(fused["probs"], []) == pytest.approx(sum(both["probs"], []))  # the --view both fusion is the same average


def test_bad_input_is_one_line_and_exit_1(setup, tmp_path):
    root, ckpt, train, test = setup
    rgb_only = pretrain(SyntheticClips(num_videos=4, batch_size=4, num_frames=8, size=(32, 32), views=("rgb",)),
                        stage="init", view="rgb", out_dir=tmp_path / "rgb", steps=1, arch="tiny", queue_size=8,
                        dim=16, device="cpu").checkpoint
    base = ["--cache-dir", tmp_path / "cache", "--device", "cpu"]
    r = run("retrieve", "--ckpt", rgb_only, "--view", "mv", "--train", train, "--test", test, *base)
    assert r.exit_code == 1 and "no checkpoint holds the 'mv' encoder" in r.output and "Traceback" not in r.output

    other = folders(tmp_path / "other", {"up": 1})
    r = run("linear", "--ckpt", ckpt, "--train", train, "--test", other, "--epochs", "1", *base)
    assert r.exit_code == 1 and "share no class" in r.output

    (tmp_path / "empty").mkdir()
    r = run("retrieve", "--ckpt", ckpt, "--train", train, "--test", tmp_path / "empty", *base)
    assert r.exit_code == 1 and "no videos" in r.output

    r = run("retrieve", "--ckpt", ckpt, "--view", "flow", "--train", train, "--test", test, *base)
    assert r.exit_code == 2 and "'rgb', 'mv', 'both'" in r.output
    # omitted, the clip settings are the checkpoint's; 0 never means that, and crops are square
    for command in ("retrieve", "linear", "finetune"):
        r = run(command, "--ckpt", ckpt, "--view", "rgb", "--train", train, "--test", test, "--num-frames", "0")
        assert r.exit_code == 2 and "Invalid value for '--num-frames': 0 is not in the range x>=1" in r.output
        r = run(command, "--ckpt", ckpt, "--view", "rgb", "--train", train, "--test", test, "--size", "24x32")
        assert r.exit_code == 2 and "clips are square (H = W); pass one side, e.g. 32" in r.output
    r = run("fuse", tmp_path / "missing.json", tmp_path / "missing2.json")
    assert r.exit_code == 1 and "not a readable predictions file" in r.output
