"""``compvid shard`` / ``compvid verify`` as a user types them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.compvid_shard import parse_size, shard, verify
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
