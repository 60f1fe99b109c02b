"""``compvid shard`` / ``compvid verify`` as a user types them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.compvid_shard import parse_size, shard, verify
from cli.mvcgc import _classes_from_index
from cli.mvcgc import main as mvcgc_main
from compvid.shards import iter_shard, read_index
from compvid.synthetic import write_moving_video


@pytest.fixture(scope="module")
def ucf101(tmp_path_factory):
    """A UCF101-format tree: 2 classes, 3 clips (compvid.synthetic recipe "mpeg4" in .avi, 16 frames 64×48)."""
    root = tmp_path_factory.mktemp("data") / "ucf101"
    for i, rel in enumerate(("Run/v_Run_g01_c01.avi", "Run/v_Run_g02_c01.avi", "Swim/v_Swim_g01_c01.avi")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_moving_video(
            root / rel, recipe="mpeg4", dx=2, dy=1, num_frames=16, width=64, height=48, motion="object", seed=i
        )
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Run\n2 Swim\n")
    (lists / "trainlist01.txt").write_text("Run/v_Run_g01_c01.avi 1\nSwim/v_Swim_g01_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("Run/v_Run_g02_c01.avi\nRun/v_Run_g07_c01.avi\n")
    return root


def test_shard_without_out_writes_a_sibling_and_verify_passes(ucf101):
    runner = CliRunner()
    result = runner.invoke(shard, [str(ucf101), "--workers", "0"])
    assert result.exit_code == 0, result.output
    out = ucf101.parent / "ucf101-shards"
    lines = result.stdout.splitlines()
    assert lines[0] == f"shards: {out}"
    assert lines[-1].startswith(f"shards: {out}")
    assert "ucf101 layout: 4 inputs = 3 written + 1 skipped" in result.stdout
    assert "missing_video" in result.stdout and "storage ratio" in result.stdout
    assert sorted(p.name for p in out.glob("*.tar")) == ["test-000000.tar", "train-000000.tar"]

    ok = runner.invoke(verify, [str(out), "--source", str(ucf101)])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip().endswith("OK")

    shard_file = out / "train-000000.tar"
    shard_file.write_bytes(shard_file.read_bytes()[:3000])
    bad = runner.invoke(verify, [str(out)])
    assert bad.exit_code == 1
    assert "problem: train-000000.tar" in bad.stdout


def test_library_errors_are_one_line_and_exit_1(ucf101, tmp_path):
    runner = CliRunner()
    result = runner.invoke(shard, [str(ucf101), "--out", str(tmp_path / "o"), "--layout", "hmdb51"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "_test_splitN.txt" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    missing_index = runner.invoke(verify, [str(empty)])
    assert missing_index.exit_code == 1 and "no index" in missing_index.stdout


def test_sizes_parse():
    assert parse_size("512MiB") == 512 * 2**20
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("4096") == 4096
    with pytest.raises(Exception, match="expected a size"):
        parse_size("lots")


@pytest.fixture(scope="module")
def class_folders(tmp_path_factory):
    """A plain <class>/<video> tree without lists, UCF101 file names: 2 classes x groups g01-g04 x 1 clip."""
    root = tmp_path_factory.mktemp("plain") / "videos"
    for name, dx in (("Left", -2), ("Right", 2)):
        (root / name).mkdir(parents=True)
        for group in range(1, 5):
            write_moving_video(root / name / f"v_{name}_g{group:02d}_c01.avi", recipe="mpeg4", dx=dx, dy=0,
                               num_frames=16, width=64, height=48, seed=group)
    return root


def tiny_checkpoint(out):
    """Two steps of the tiny encoder on random tensors: enough to embed videos for retrieval."""
    from mvcgc.data import SyntheticClips
    from mvcgc.train import pretrain

    data = SyntheticClips(num_videos=8, batch_size=4, num_frames=8, size=(32, 32), views=("rgb",))
    return pretrain(data, stage="init", view="rgb", out_dir=out, steps=2, arch="tiny", queue_size=8, dim=16,
                    device="cpu").checkpoint


def test_a_class_folder_tree_splits_by_group_into_shards_that_mvcgc_evaluates(class_folders, tmp_path):
    out = tmp_path / "shards"
    runner = CliRunner()
    result = runner.invoke(shard, [str(class_folders), "--out", str(out), "--test-fraction", "0.25",
                                   "--workers", "0"])
    assert result.exit_code == 0, result.output
    assert "generic layout: 8 inputs = 8 written + 0 skipped" in result.stdout
    assert "split: groups g01 in test (1 of 4 groups" in result.stdout
    assert sorted(p.name for p in out.glob("*.tar")) == ["test-000000.tar", "train-000000.tar"]
    index = read_index(out)
    assert index["classes"] == ["Left", "Right"] and index["options"]["test_fraction"] == 0.25
    assert {name: split["count"] for name, split in index["splits"].items()} == {"test": 2, "train": 6}
    test_records = [sample.record for sample in iter_shard(out / "test-000000.tar")]
    assert sorted((r["class_name"], r["label"], r["path"].split("_")[-2]) for r in test_records) == [
        ("Left", 0, "g01"), ("Right", 1, "g01")]
    # verify re-reads the source with the recorded fraction and finds the same split
    checked = runner.invoke(verify, [str(out), "--source", str(class_folders)])
    assert checked.exit_code == 0 and checked.stdout.strip().endswith("OK"), checked.output

    # What reads these shards downstream: the class count of --stage supervised, and retrieval
    assert _classes_from_index(str(out / "train-000000.tar")) == 2
    retrieved = runner.invoke(mvcgc_main, [
        "retrieve", "--ckpt", str(tiny_checkpoint(tmp_path / "run")), "--train", str(out / "train-000000.tar"),
        "--test", str(out / "test-000000.tar"), "--no-cache", "--device", "cpu", "--ks", "1,5"])
    assert retrieved.exit_code == 0, retrieved.output
    assert "retrieval: 2 test queries, 6 train videos" in retrieved.output


def test_test_fraction_on_a_tree_with_lists_is_one_line_and_exit_1(ucf101, tmp_path):
    result = CliRunner().invoke(shard, [str(ucf101), "--out", str(tmp_path / "o"), "--test-fraction", "0.3"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "ucf101 layout takes its train/test split" in result.stderr
