"""A failing video is named by its own failure record, never found by searching error text.

The data: compvid shards of three good generated videos (16 frames of 48×64, libx264, panning)
and two *cut* samples among them: each carries the JSON record of a 16-frame video but the bytes
of an 8-frame one, so windows 0 and 1 (frames 0-7, 4-11) decode and window 2 (start 8) fails.
Their keys, ``cut`` and ``cut_again``, make every error text about ``cut_again`` mention ``cut``
too: matching keys in error text would give ``cut`` the other's failure as well.
"""

import pytest
import torch
from eval_testing import class_folders, tiny_checkpoint, write_tar
from torch.utils.data import DataLoader

from compvid.datasets import WindowFiles, WindowStream
from compvid.pipeline import sample_of
from compvid.request import ClipRequest
from compvid.shards import iter_shard, shard_paths, write_shards
from compvid.synthetic import write_moving_video
from mvcgc.features import extract_features

REQUEST = ClipRequest(num_frames=8, crop_px=32)  # stride 4: windows start at 0, 4, 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """(mixed tar, tar of the good samples alone, checkpoint)."""
    root = tmp_path_factory.mktemp("failures")
    write_shards(class_folders(root / "v", per_class={"left": 2, "right": 1}), root / "s", workers=0)
    good = [(s.key, s.record, s.data) for url in shard_paths(root / "s") for s in iter_shard(url)]
    short = write_moving_video(root / "short.mp4", dx=2, dy=0, num_frames=8, width=64, height=48).read_bytes()
    cut = [(name, good[0][1], short) for name in ("cut", "cut_again")]
    mixed = write_tar(root / "mixed.tar", [good[0], cut[0], good[1], cut[1], good[2]])
    only_good = write_tar(root / "good.tar", good)
    return mixed, only_good, tiny_checkpoint(root / "run")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_stream_yields_each_failure_as_a_record_of_its_own_video(shards, num_workers):
    mixed, _, _ = shards
    stream = WindowStream([str(mixed)], request=REQUEST, handler="report")
    items = list(DataLoader(stream, batch_size=None, num_workers=num_workers))
    failures = sorted((i["video_index"], i["key"], i["window_index"]) for i in items if "error" in i)
    assert failures == [(1, "cut", 2), (3, "cut_again", 2)]
    for i in items:
        if "error" in i:
            assert f"sample {i['key']} of" in i["error"] and "no frame decoded at or after start=8" in i["error"]
    served = sorted((i["video_index"], i["window_index"]) for i in items if "error" not in i)
    assert served == sorted([(v, w) for v in (0, 2, 4) for w in range(3)] + [(1, 0), (1, 1), (3, 0), (3, 1)])


def test_a_handler_reads_the_failing_sample_off_the_exception(shards):
    mixed, _, _ = shards
    seen = []

    def handler(exn):
        seen.append(sample_of(exn))
        return True

    list(WindowStream([str(mixed)], request=REQUEST, handler=handler))
    assert seen == [{"key": "cut", "video_index": 1, "window_index": 2},
                    {"key": "cut_again", "video_index": 3, "window_index": 2}]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_features_name_the_cut_videos_and_leave_the_others_unchanged(shards, num_workers):
    mixed, only_good, ckpt = shards
    views = {"rgb": ckpt, "mv": ckpt}
    out = extract_features(str(mixed), checkpoints=views, device="cpu", num_workers=num_workers)
    reference = extract_features(str(only_good), checkpoints=views, device="cpu")
    for view in views:
        failed = {f["key"]: f["reason"] for f in out[view].failed}
        assert sorted(failed) == ["cut", "cut_again"]
        assert "window 2 (start 8) of sample cut of" in failed["cut"] and "cut_again" not in failed["cut"]
        assert "window 2 (start 8) of sample cut_again of" in failed["cut_again"]
        assert out[view].keys == reference[view].keys and len(out[view].keys) == 3
        assert torch.equal(out[view].features, reference[view].features)
        assert torch.equal(out[view].window_video, reference[view].window_video)
        assert torch.equal(out[view].labels, reference[view].labels)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_files_that_fail_are_named_by_path_from_workers_too(tmp_path, shards, num_workers):
    _, _, ckpt = shards
    videos = class_folders(tmp_path / "v", per_class={"left": 1, "up": 1})
    (videos / "up" / "v.mp4.mp4").write_bytes(b"\x00not a video" * 50)  # its path contains another's
    (videos / "left" / "zz.mp4").write_bytes(b"junk" * 40)
    out = extract_features(videos, checkpoints={"mv": ckpt}, device="cpu", num_workers=num_workers)["mv"]
    clean = extract_features(class_folders(tmp_path / "clean", per_class={"left": 1, "up": 1}),
                             checkpoints={"mv": ckpt}, device="cpu")["mv"]
    failed = {f["key"].rsplit("/", 2)[-2] + "/" + f["key"].rsplit("/", 1)[-1]: f["reason"] for f in out.failed}
    assert sorted(failed) == ["left/zz.mp4", "up/v.mp4.mp4"]
    assert "up/v.mp4.mp4" in failed["up/v.mp4.mp4"] and "zz.mp4" not in failed["up/v.mp4.mp4"]
    assert "left/zz.mp4" in failed["left/zz.mp4"] and "v.mp4.mp4" not in failed["left/zz.mp4"]
    assert torch.equal(out.features, clean.features) and out.num_videos == 2


def test_a_window_that_fails_in_a_worker_comes_back_as_its_record(tmp_path):
    # WindowFiles told wrong probe facts (16 frames for an 8-frame file): window 2 fails when read
    from compvid.probe import probe

    long = write_moving_video(tmp_path / "long.mp4", dx=2, dy=0, num_frames=16, width=64, height=48)
    short = write_moving_video(tmp_path / "short.mp4", dx=2, dy=0, num_frames=8, width=64, height=48)
    info = probe(long)
    files = WindowFiles([(long, 0), (short, 1)], request=REQUEST, handler="report", infos=[info, info])
    items = list(DataLoader(files, batch_size=None, num_workers=2))
    failures = [(i["video_index"], i["window_index"], i["key"]) for i in items if "error" in i]
    assert failures == [(1, 2, str(short))] and "start=8" in items[-1]["error"]
    assert len(items) == 6 and not files.failures


def test_the_window_cache_keeps_each_failure_with_its_video(shards, tmp_path):
    mixed, _, ckpt = shards
    fresh = extract_features(str(mixed), checkpoints={"mv": ckpt}, device="cpu")["mv"]
    cold = extract_features(str(mixed), checkpoints={"mv": ckpt}, device="cpu", cache_dir=tmp_path)["mv"]
    for f in tmp_path.glob("mv-*.pt"):
        f.unlink()  # the features again, now from the stored windows
    warm = extract_features(str(mixed), checkpoints={"mv": ckpt}, device="cpu", cache_dir=tmp_path)["mv"]
    for out in (cold, warm):
        assert out.failed == fresh.failed and [f["key"] for f in out.failed] == ["cut", "cut_again"]
        assert torch.equal(out.features, fresh.features) and out.keys == fresh.keys
