"""compvid.shards: round trip, bad inputs, verify, interrupted runs and resume."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import compvid.shards as shards_mod
from compvid.errors import ShardError
from compvid.shards import (
    INDEX_NAME,
    SKIPPED_NAME,
    assign_keys,
    default_output_dir,
    iter_shard,
    read_index,
    shard_paths,
    verify_shards,
    write_shards,
)
from compvid.synthetic import RECIPES as SYNTHETIC_RECIPES
from compvid.synthetic import write_moving_video

# Generated set: textured 64×48 clips of 16 frames at 25 fps, an object moving (2, 1) px/frame,
# one seed per file so no two files share content; compvid.synthetic recipes
# "h264" (libx264 defaults, .mp4), "mpeg4" (mpeg4 bf=2 g=12, .avi), "mpeg2" (mpeg2video bf=2 g=12, .mpg).
RECIPES = ("h264", "mpeg4", "mpeg2")
CLASSES = ("cats", "dogs")


def make_video(path: Path, recipe: str, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_moving_video(
        path, recipe=recipe, dx=2, dy=1, num_frames=16, width=64, height=48, motion="object", seed=seed
    )


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory) -> Path:
    """``<class>/<n>.<ext>``: 2 classes × 4 videos over the three recipes (generic layout)."""
    root = tmp_path_factory.mktemp("gen") / "videos"
    n = 0
    for cls in CLASSES:
        for i in range(4):
            recipe = RECIPES[n % len(RECIPES)]
            make_video(root / cls / f"clip {i}{SYNTHETIC_RECIPES[recipe].suffix}", recipe, seed=n)
            n += 1
    return root


@pytest.fixture(scope="module")
def sharded(video_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "shards"
    result = write_shards(video_tree, out, max_count=3, seed=0, workers=2)
    return result


def read_all(out: Path) -> dict[str, tuple[bytes, dict, str]]:
    samples = {}
    for path in shard_paths(out):
        for s in iter_shard(path):
            samples[s.key] = (s.data, s.record, path.name)
    return samples


def folder_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_round_trip_members_are_the_source_bytes(video_tree, sharded):
    out = sharded.out
    assert sharded.inputs == sharded.written == 8 and sharded.skipped == 0
    assert sharded.shards == ("all-000000.tar", "all-000001.tar", "all-000002.tar")
    report = verify_shards(out, source=video_tree)
    assert report.ok, report.problems
    samples = read_all(out)
    assert len(samples) == 8
    for key, (data, rec, _) in samples.items():
        assert "." not in key and rec["key"] == key
        src = (video_tree / rec["path"]).read_bytes()
        assert data == src
        assert rec["sha256"] == hashlib.sha256(src).hexdigest() and rec["bytes"] == len(src)
        assert (rec["width"], rec["height"], rec["num_frames"]) == (64, 48, 16)
        assert rec["fps"] == pytest.approx(25.0)
        assert rec["duration_seconds"] == pytest.approx(16 / 25)
        assert rec["mv_source"] == "bitstream"
        assert rec["class_name"] == rec["path"].split("/")[0]
        assert rec["label"] == CLASSES.index(rec["class_name"]) and rec["split"] == "all"
        assert rec["ext"] == rec["path"].rsplit(".", 1)[1]
    assert {rec["codec"] for _, rec, _ in samples.values()} == {"h264", "mpeg4", "mpeg2video"}
    # the tar members are named <key>.<ext> and <key>.json
    with tarfile.open(out / "all-000000.tar") as tar:
        names = tar.getnames()
    assert len(names) == 6 and all(n.count(".") == 1 for n in names)
    index = read_index(out)
    assert index["splits"]["all"]["count"] == 8 and index["inputs"] == 8
    assert sum(s["bytes"] for s in index["splits"]["all"]["shards"]) == sharded.shard_bytes
    assert sharded.storage_ratio == pytest.approx(sharded.shard_bytes / sharded.input_bytes)
    assert (out / SKIPPED_NAME).read_text() == ""


def test_seeded_shuffle_mixes_classes(video_tree, tmp_path):
    changes = []
    for seed in range(8):
        out = write_shards(video_tree, tmp_path / str(seed), max_count=3, seed=seed, workers=0).out
        classes = [s.record["class_name"] for p in shard_paths(out) for s in iter_shard(p)]
        changes.append(sum(a != b for a, b in zip(classes, classes[1:])))
    # in key order (no shuffle) the 4 cats come first: one class change every time;
    # a fair shuffle of 4 + 4 averages 4 changes
    assert sum(changes) / len(changes) >= 3 and len(set(changes)) > 1


def test_same_inputs_same_bytes_and_resume_keeps_complete_shards(video_tree, sharded, tmp_path):
    out = tmp_path / "again"
    again = write_shards(video_tree, out, max_count=3, seed=0, workers=0)
    assert folder_bytes(out) == folder_bytes(sharded.out)
    rerun = write_shards(video_tree, out, max_count=3, seed=0, workers=0)
    assert rerun.reused_shards == len(again.shards) and folder_bytes(out) == folder_bytes(sharded.out)
    other = write_shards(video_tree, tmp_path / "seed1", max_count=3, seed=1, workers=0)
    assert [s.key for p in shard_paths(other.out) for s in iter_shard(p)] != [
        s.key for p in shard_paths(out) for s in iter_shard(p)
    ]


@pytest.mark.slow  # spawned workers import torch through compvid: ~20 s on 2 cores
def test_process_pool_gives_the_same_shards(video_tree, sharded, tmp_path):
    out = write_shards(video_tree, tmp_path / "p", max_count=3, seed=0, workers=2, executor="process").out
    assert folder_bytes(out) == folder_bytes(sharded.out)


def test_max_size_bounds_shards(video_tree, tmp_path):
    result = write_shards(video_tree, tmp_path / "s", max_size=30_000, seed=0, workers=0)
    sizes = [(result.out / n).stat().st_size for n in result.shards]
    assert len(sizes) > 1 and max(sizes) <= 30_000
    assert verify_shards(result.out).ok


def test_a_different_plan_is_refused_unless_overwrite(video_tree, sharded, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(sharded.out, out)
    with pytest.raises(ShardError, match="another run"):
        write_shards(video_tree, out, max_count=3, seed=7, workers=0)
    result = write_shards(video_tree, out, max_count=100, seed=7, workers=0, overwrite=True)
    assert sorted(p.name for p in out.glob("*.tar")) == ["all-000000.tar"] and result.written == 8
    assert verify_shards(out, source=video_tree).ok


def test_an_output_folder_inside_the_source_is_not_an_input(video_tree, tmp_path):
    root = tmp_path / "src"
    shutil.copytree(video_tree, root)
    first = write_shards(root, root / "shards", workers=0)
    again = write_shards(root, root / "shards", workers=0)
    assert first.inputs == again.inputs == 8 and again.reused_shards == len(first.shards)
    assert verify_shards(root / "shards", source=root).ok


def test_default_output_is_a_sibling(tmp_path):
    assert default_output_dir(tmp_path / "ucf101") == (tmp_path / "ucf101-shards").resolve()
    assert default_output_dir(str(tmp_path / "ucf101") + "/") == (tmp_path / "ucf101-shards").resolve()


def test_keys_are_unique_dotless_and_independent_of_order():
    paths = ["a/x y.mp4", "a/x_y.mp4", "a/x.y.z.mp4", "b/" + "long" * 40 + ".avi", "a/x-y.avi"]
    keys = assign_keys(paths)
    assert assign_keys(reversed(paths)) == keys
    assert len(set(keys.values())) == len(paths)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", k) for k in keys.values())
    assert keys["a/x y.mp4"] != keys["a/x_y.mp4"] and keys["a/x y.mp4"].startswith("a__x_y_")
    assert keys["a/x-y.avi"] == "a__x-y"  # no clash: no suffix


# --------------------------------------------------------------------------- bad inputs


def _unreadable(path: Path, monkeypatch) -> None:
    """Make ``path`` unreadable; as root permissions do not stop reads, fail the open instead."""
    path.chmod(0)
    if os.geteuid() == 0:
        real = shards_mod._open_source

        def deny(p):
            if Path(p) == path:
                raise PermissionError(13, "Permission denied", str(p))
            return real(p)

        monkeypatch.setattr(shards_mod, "_open_source", deny)


def test_every_bad_input_is_skipped_with_its_reason(video_tree, tmp_path, monkeypatch):
    root = tmp_path / "bad"
    shutil.copytree(video_tree, root)
    good = sorted(p for p in root.rglob("*") if p.is_file())
    # Fixed random bytes: fresh ones per run are now and then probed as some raw format (a flake).
    (root / "cats" / "corrupt.mp4").write_bytes(random.Random(0).randbytes(4000))
    (root / "cats" / "truncated.mp4").write_bytes(good[0].read_bytes()[:200])
    (root / "cats" / "empty.avi").write_bytes(b"")
    (root / "cats" / "notes.txt").write_text("not a video")
    (root / "cats" / "text.mp4").write_text("a text file with a video name")
    shutil.copy(good[1], root / "dogs" / f"copy of one{good[1].suffix}")
    os.symlink("loop.mp4", root / "dogs" / "loop.mp4")
    (root / "dogs" / os.fsdecode(b"\xff\xfe.mp4")).write_bytes(good[2].read_bytes())
    make_video(root / "dogs" / "same key.mp4", "h264", seed=100)
    make_video(root / "dogs" / "same_key.mp4", "h264", seed=101)
    locked = make_video(root / "dogs" / "locked.mp4", "h264", seed=102)
    _unreadable(locked, monkeypatch)

    result = write_shards(root, tmp_path / "out", max_count=4, workers=2)
    skipped = [json.loads(line) for line in (result.out / SKIPPED_NAME).read_text().splitlines()]
    reasons = {s["path"]: s["reason"] for s in skipped}
    duplicate = [s for s in skipped if s["reason"] == "duplicate_content"]
    assert reasons == {
        "cats/corrupt.mp4": "corrupt",
        "cats/truncated.mp4": "corrupt",
        "cats/empty.avi": "empty",
        "cats/notes.txt": "not_video",
        "cats/text.mp4": "corrupt",
        duplicate[0]["path"]: "duplicate_content",
        "dogs/loop.mp4": "symlink_loop",
        "dogs/\\xff\\xfe.mp4": "non_utf8_name",
        "dogs/locked.mp4": "unreadable",
    }
    assert duplicate[0]["duplicate_of"] == good[1].relative_to(root).as_posix()
    assert all(s["detail"] for s in skipped)
    assert result.inputs == 8 + 11 and result.inputs == result.written + result.skipped
    assert result.written == 10  # the 8 originals and both "same key" files
    records = {rec["path"]: key for key, (_, rec, _) in read_all(result.out).items()}
    assert records["dogs/same key.mp4"] != records["dogs/same_key.mp4"]
    assert records["dogs/same key.mp4"].startswith("dogs__same_key_")
    monkeypatch.undo()
    locked.chmod(0o644)
    # verify --source rescans the tree; the unreadable file is readable again but stays an input
    report = verify_shards(result.out, source=root)
    assert report.ok, report.problems


def test_ucf101_split_problems_land_in_skipped(tmp_path):
    root = tmp_path / "ucf"
    make_video(root / "Run" / "v_Run_g01_c01.avi", "mpeg4", seed=1)
    make_video(root / "Run" / "v_Run_g02_c01.avi", "mpeg4", seed=2)
    make_video(root / "Swim" / "v_Swim_g01_c01.avi", "mpeg4", seed=3)
    (root / "classInd.txt").write_text("1 Run\n2 Swim\n")
    (root / "trainlist01.txt").write_text(
        "Run/v_Run_g01_c01.avi 1\nSwim/v_Swim_g01_c01.avi 2\nRun/v_Run_g09_c01.avi 1\n"
    )
    (root / "testlist01.txt").write_text("Run/v_Run_g02_c01.avi\nFly/v_Fly_g01_c01.avi\n")
    result = write_shards(root, workers=0)
    assert result.out == (tmp_path / "ucf-shards").resolve()
    assert sorted(result.shards) == ["test-000000.tar", "train-000000.tar"]
    assert result.skipped_reasons == {"missing_video": 1, "unknown_class": 1}
    assert result.inputs == 5 == result.written + result.skipped
    by_split = {p.name: [s.record["class_name"] for s in iter_shard(p)] for p in shard_paths(result.out)}
    assert sorted(by_split["train-000000.tar"]) == ["Run", "Swim"] and by_split["test-000000.tar"] == ["Run"]
    assert verify_shards(result.out, source=root).ok


# --------------------------------------------------------------------------- verify


@pytest.fixture
def copy_of(sharded, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(sharded.out, out)
    return out


def _kinds(report, shard=None):
    return {(p.kind, p.shard, p.key) for p in report.problems if shard is None or p.shard == shard}


def test_verify_names_the_shard_and_key_of_a_flipped_byte(copy_of):
    shard = copy_of / "all-000001.tar"
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if not m.name.endswith(".json"))
    raw = bytearray(shard.read_bytes())
    raw[member.offset_data + member.size // 2] ^= 0x01
    shard.write_bytes(bytes(raw))
    report = verify_shards(copy_of)
    key = member.name.split(".")[0]
    assert ("sha256_mismatch", "all-000001.tar", key) in _kinds(report)
    assert ("shard_sha256", "all-000001.tar", None) in _kinds(report)
    assert {p.shard for p in report.problems} == {"all-000001.tar"}


def test_verify_reports_a_missing_shard(copy_of):
    (copy_of / "all-000002.tar").unlink()
    report = verify_shards(copy_of)
    assert ("missing_shard", "all-000002.tar", None) in _kinds(report)
    assert any(p.kind == "accounting" for p in report.problems)


def test_verify_reports_a_truncated_tar(copy_of):
    shard = copy_of / "all-000000.tar"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
    report = verify_shards(copy_of)
    kinds = {k for k, s, _ in _kinds(report, "all-000000.tar")}
    assert {"unreadable_tar", "shard_size", "count"} <= kinds
    assert "all-000000.tar" in str(next(p for p in report.problems if p.kind == "unreadable_tar"))


def test_verify_checks_sources_and_the_skipped_list(copy_of, video_tree, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(video_tree, source)
    victim = next(source.rglob("*.avi"))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    (source / "cats" / "new.mp4").write_bytes(b"x")
    report = verify_shards(copy_of, source=source)
    messages = "\n".join(str(p) for p in report.problems)
    assert "differs from the shard member" in messages and "cats/new.mp4 is neither written nor skipped" in messages
    (copy_of / SKIPPED_NAME).write_text('{"path": "ghost", "reason": "corrupt"}\n')
    assert any(p.kind == "accounting" for p in verify_shards(copy_of).problems)
    (copy_of / INDEX_NAME).unlink()
    assert [p.kind for p in verify_shards(copy_of).problems] == ["index"]


# --------------------------------------------------------------------------- interrupted runs


class Boom(Exception):
    pass


def test_an_exception_midway_leaves_no_partial_shard_and_a_rerun_completes(video_tree, sharded, tmp_path):
    out = tmp_path / "interrupted"

    def explode(stage, done, total):
        if stage == "write" and done == 4:  # the first sample of the second shard is in
            raise Boom

    with pytest.raises(Boom):
        write_shards(video_tree, out, max_count=3, seed=0, workers=0, on_progress=explode)
    assert sorted(p.name for p in out.iterdir()) == [".compvid-plan.json", "all-000000.tar"]
    first = (out / "all-000000.tar").read_bytes()
    result = write_shards(video_tree, out, max_count=3, seed=0, workers=0)
    assert result.reused_shards == 1 and (out / "all-000000.tar").read_bytes() == first
    assert folder_bytes(out) == folder_bytes(sharded.out)


KILLER = """
import os, signal, sys
from compvid.shards import write_shards

def on_progress(stage, done, total):
    if stage == "write" and done == 5:  # two samples into the second shard
        os.kill(os.getpid(), signal.SIGKILL)

write_shards(sys.argv[1], sys.argv[2], max_count=3, seed=0, workers=0, on_progress=on_progress)
"""


def test_a_killed_run_resumes_to_the_same_shards(video_tree, sharded, tmp_path):
    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(video_tree), str(out)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    names = sorted(p.name for p in out.iterdir())
    assert names == [".all-000001.tar.partial", ".compvid-plan.json", "all-000000.tar"]
    report = verify_shards(out)
    assert not report.ok  # no index yet: the run is visibly unfinished
    result = write_shards(video_tree, out, max_count=3, seed=0, workers=0)
    assert result.reused_shards == 1
    assert folder_bytes(out) == folder_bytes(sharded.out)  # the partial file is gone too
    assert verify_shards(out, source=video_tree).ok


# --------------------------------------------------------------------------- real clips


@pytest.mark.media
def test_shared_media_round_trip(shared_media, tmp_path):
    root = tmp_path / "media"
    (root / "real").mkdir(parents=True)
    clips = sorted(p for p in shared_media.iterdir() if p.suffix in (".mp4", ".avi", ".mpg"))
    for clip in clips:
        os.symlink(clip, root / "real" / clip.name)
    result = write_shards(root, tmp_path / "out", workers=2)
    assert result.written == len(clips) and result.skipped == 0
    assert verify_shards(result.out, source=root).ok
    for key, (data, rec, _) in read_all(result.out).items():
        assert data == (shared_media / rec["path"].split("/", 1)[1]).read_bytes()
    assert result.storage_ratio < 1.02
