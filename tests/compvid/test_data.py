"""compvid.datasets / compvid.pipeline: pretraining pairs, evaluation windows, file lists, bad samples."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import webdataset as wds

import compvid.pipeline as pipeline_mod
from compvid.datasets import PairFiles, PairStream, WindowFiles, WindowStream, expand_urls, pair_loader
from compvid.errors import CorruptVideoError, InvalidArgumentError
from compvid.pipeline import KINETICS_MEAN, KINETICS_STD, PairClips
from compvid.probe import probe
from compvid.request import ClipRequest
from compvid.shards import ShardRecord, iter_shard, shard_paths, write_shards
from compvid.synthetic import RECIPES, write_moving_video
from compvid.transforms import ClipAugment

# Generated set: textured 64×48 pans of 20 frames at 25 fps moving (+3, -2) px/frame, one seed per
# file; compvid.synthetic recipes "h264" (libx264 defaults, .mp4) and "mpeg4" (bf=2 g=12, .avi).
# Two classes × 3 videos, sharded 2 per shard (3 shards).
DX, DY, W, H, FRAMES = 3, -2, 64, 48, 20
T = 4  # frames per clip in these tests
S = 32  # crop size


@pytest.fixture(scope="module")
def video_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "videos"
    for i in range(6):
        recipe = ("h264", "mpeg4")[i % 2]
        path = root / f"class{i % 2}" / f"v{i}{RECIPES[recipe].suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_moving_video(path, recipe=recipe, dx=DX, dy=DY, num_frames=FRAMES, width=W, height=H, seed=i)
    return root


@pytest.fixture(scope="module")
def urls(video_tree, tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("data") / "shards"
    write_shards(video_tree, out, max_count=2, seed=0, workers=0)
    return [str(p) for p in shard_paths(out)]


@pytest.fixture(scope="module")
def records(urls) -> dict[str, dict]:
    return {s.key: s.record for u in urls for s in iter_shard(u)}


@pytest.fixture(scope="module")
def bad_shard(urls, tmp_path_factory) -> str:
    """A shard holding a good video, a corrupt one (garbage bytes, valid record), and another good one."""
    good = list(iter_shard(urls[0]))
    path = tmp_path_factory.mktemp("bad") / "bad-000000.tar"
    with wds.TarWriter(str(path), encoder=False) as w:
        w.write({"__key__": good[0].key, good[0].record["ext"]: good[0].data, "json": json.dumps(good[0].record).encode()})
        rec = dict(good[0].record, key="broken")
        w.write({"__key__": "broken", rec["ext"]: b"\x00garbage, not a video" * 50, "json": json.dumps(rec).encode()})
        w.write({"__key__": good[1].key, good[1].record["ext"]: good[1].data, "json": json.dumps(good[1].record).encode()})
    return str(path)


def test_stream_yields_pairs_of_the_right_shapes(urls, records):
    stream = PairStream(urls, request=ClipRequest(num_frames=T, crop_px=S), shuffle=0)
    items = list(stream)
    assert sorted(i["key"] for i in items) == sorted(records)
    for item in items:
        assert item["rgb"].shape == (2, 3, T, S, S) and item["rgb"].dtype == torch.float32
        assert item["mv"].shape == (2, 2, T, S, S) and item["mv"].dtype == torch.float32
        assert isinstance(item["key"], str) and item["label"] == records[item["key"]]["label"]
        assert torch.isfinite(item["rgb"]).all() and torch.isfinite(item["mv"]).all()
    assert stream.skipped == 0


def test_stream_is_deterministic_per_seed_and_epoch(urls):
    def first(seed, epoch):
        s = PairStream(urls, request=ClipRequest(num_frames=T, crop_px=S), seed=seed)
        s.set_epoch(epoch)
        item = next(iter(s))
        return item["key"], item["rgb"]

    k1, r1 = first(0, 0)
    k2, r2 = first(0, 0)
    assert k1 == k2 and torch.equal(r1, r2)
    assert any(first(0, e)[0] != k1 or not torch.equal(first(0, e)[1], r1) for e in (1, 2))


def test_expand_urls_takes_brace_patterns(urls):
    folder = Path(urls[0]).parent
    assert expand_urls(f"{folder}/all-{{000000..000002}}.tar") == urls
    with pytest.raises(InvalidArgumentError):
        PairStream(urls, request=ClipRequest(num_frames=16, crop_px=128), mode="sometimes")


def test_loader_with_two_workers_yields_every_video_once_per_epoch(urls, records):
    loader = pair_loader(urls, request=ClipRequest(num_frames=T, crop_px=S), batch_size=2, num_workers=2, drop_last=False)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        keys = []
        for batch in loader:
            b = len(batch["key"])
            assert batch["rgb"].shape == (b, 2, 3, T, S, S)
            assert batch["mv"].shape == (b, 2, 2, T, S, S)
            assert batch["label"].shape == (b,) and batch["label"].dtype == torch.int64
            keys += batch["key"]
        assert sorted(keys) == sorted(records)


def _epoch_clips(loader, epoch: int) -> dict[str, torch.Tensor]:
    loader.set_epoch(epoch)
    return {k: mv for batch in loader for k, mv in zip(batch["key"], batch["mv"])}


def test_workers_persist_across_epochs_and_each_epoch_reaches_them(urls, records):
    """The epoch lives in shared memory: persistent workers draw the clips of the epoch they are
    told, exactly those of a fresh loader (new workers) set to that epoch, and differ between epochs."""
    kw = dict(batch_size=2, num_workers=2, drop_last=False, request=ClipRequest(num_frames=T, crop_px=S, views="mv"),
              seed=5)
    loader = pair_loader(urls, **kw)
    assert loader.persistent_workers
    first = _epoch_clips(loader, 0)
    pids = [w.pid for w in loader._iterator._workers]
    second = _epoch_clips(loader, 1)
    assert [w.pid for w in loader._iterator._workers] == pids and all(w.is_alive() for w in loader._iterator._workers)
    assert sorted(first) == sorted(second) == sorted(records)
    assert any(not torch.equal(first[k], second[k]) for k in records)  # epoch 1 drew other clips

    fresh = pair_loader(urls, **kw)
    again = _epoch_clips(fresh, 1)  # new workers started at epoch 1
    assert all(torch.equal(again[k], second[k]) for k in records)
    del loader, fresh


def test_shared_int_is_shared_with_workers_and_copied_otherwise():
    import copy
    import pickle

    from compvid.pipeline import SharedInt

    a = SharedInt(3)
    b = pickle.loads(pickle.dumps(a))
    c = copy.deepcopy(a)
    a.value = 7
    assert (a.value, b.value, c.value) == (7, 3, 3)
    assert a.add(2) == 9


def test_batches_are_formed_across_workers_so_small_worker_shares_are_not_lost(urls, records):
    # 3 shards of 2 videos, 3 workers, batch 4: no worker alone holds a batch (per-worker batching
    # would serve nothing); across workers the epoch gives one full batch and drops only 2 videos.
    loader = pair_loader(urls, request=ClipRequest(num_frames=T, crop_px=S, views="mv"), batch_size=4, num_workers=3)
    batches = list(loader)
    assert [len(b["key"]) for b in batches] == [4] and set(batches[0]["key"]) <= set(records)
    assert batches[0]["mv"].shape == (4, 2, 2, T, S, S)
    loader = pair_loader(urls, request=ClipRequest(num_frames=T, crop_px=S, views="mv"), batch_size=4, num_workers=3, drop_last=False)
    assert sorted(k for b in loader for k in b["key"]) == sorted(records)


def test_a_stream_knows_its_length_when_the_index_counts_its_videos(urls, records, tmp_path):
    from compvid.shards import videos_in_shards

    assert videos_in_shards(urls) == len(records) == 6
    assert videos_in_shards(urls[:1]) == 2
    stray = tmp_path / "train-000000.tar"
    stray.write_bytes(b"")  # a shard no index lists: the count is unknown, not guessed
    assert videos_in_shards([*urls, str(stray)]) is None
    assert videos_in_shards(["pipe:curl -s https://host/a.tar"]) is None
    # 6 videos, batch 4: one full batch when the last partial one is dropped, two otherwise
    kw = dict(batch_size=4, num_workers=0, request=ClipRequest(num_frames=T, crop_px=S, views="mv"), num_samples=6)
    dropped, kept = pair_loader(urls, **kw), pair_loader(urls, drop_last=False, **kw)
    assert len(dropped) == len(list(dropped)) == 1 and len(kept) == len(list(kept)) == 2
    with pytest.raises(TypeError):
        len(pair_loader(urls, request=ClipRequest(num_frames=T, crop_px=S, views="mv"), batch_size=4))


def test_resampled_mode_serves_epoch_size_videos(urls, records):
    stream = PairStream(urls, request=ClipRequest(num_frames=T, crop_px=S, views="rgb"), mode="resampled", epoch_size=5)
    keys = [item["key"] for item in stream]
    assert len(keys) == 5 and set(keys) <= set(records)


def test_a_corrupt_video_is_skipped_with_a_warning_and_counted(urls, bad_shard, records, caplog):
    stream = PairStream([bad_shard, *urls], request=ClipRequest(num_frames=T, crop_px=S, views="mv"))
    with caplog.at_level(logging.WARNING, logger="compvid.pipeline"):
        keys = [item["key"] for item in stream]
    good_in_bad = [s.key for s in iter_shard(bad_shard) if s.key != "broken"]
    assert sorted(keys) == sorted(list(records) + good_in_bad)  # the epoch went on past the bad video
    assert stream.skipped == 1
    assert any("broken" in r.getMessage() for r in caplog.records)

    loader = pair_loader([bad_shard, *urls], request=ClipRequest(num_frames=T, crop_px=S, views="mv"), batch_size=1, num_workers=2)
    assert len([b for b in loader]) == len(records) + 2
    assert loader.skipped == 1  # counted across worker processes

    with pytest.raises(CorruptVideoError, match="not a readable video"):
        list(PairStream([bad_shard], request=ClipRequest(num_frames=T, crop_px=S), handler="raise"))


def test_eval_stream_yields_every_window_and_crop_with_video_indices(urls):
    order = [s.key for u in urls for s in iter_shard(u)]
    stream = WindowStream(urls, request=ClipRequest(num_frames=8, crop_px=S), crops="ten")
    items = list(stream)
    windows = 4  # 20 frames, clips of 8, stride 4: starts 0, 4, 8, 12
    assert len(items) == len(order) * windows
    for n, item in enumerate(items):
        assert item["video_index"] == n // windows and item["key"] == order[n // windows]
        assert item["window_index"] == n % windows and item["num_windows"] == windows
        assert item["start"] == 4 * (n % windows)
        assert item["rgb"].shape == (10, 3, 8, S, S) and item["mv"].shape == (10, 2, 8, S, S)
    again = list(WindowStream(urls, request=ClipRequest(num_frames=8, crop_px=S), crops="ten"))
    assert all(torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["mv"], b["mv"]) for a, b in zip(items, again))
    # 10-crop: the last five are the first five flipped, MV x negated.
    mv = items[1]["mv"]
    assert torch.allclose(mv[5:, 0], -mv[:5, 0].flip(-1)) and torch.allclose(mv[5:, 1], mv[:5, 1].flip(-1))


def test_eval_stream_with_two_workers_covers_each_window_once(urls):
    stream = WindowStream(urls, request=ClipRequest(num_frames=8, crop_px=S, views="rgb"), crops="three")
    loader = torch.utils.data.DataLoader(stream, batch_size=3, num_workers=2)
    seen = []
    for batch in loader:
        assert batch["rgb"].shape[1:] == (3, 3, 8, S, S) and "mv" not in batch
        seen += list(zip(batch["video_index"].tolist(), batch["window_index"].tolist()))
    assert sorted(seen) == [(v, w) for v in range(6) for w in range(4)]


def test_eval_files_match_the_stream_and_count_windows(video_tree, urls, records):
    items = [(str(video_tree / r["path"]), r["label"]) for r in records.values()]
    files = WindowFiles(items, request=ClipRequest(num_frames=8, crop_px=S), crops="center")
    assert len(files) == len(items) * 4 and files.num_windows == [4] * len(items)
    item = files[5]
    assert (item["video_index"], item["window_index"], item["start"]) == (1, 1, 4)
    assert item["rgb"].shape == (1, 3, 8, S, S) and item["label"] == items[1][1]
    key = list(records)[1]
    from_stream = next(i for i in WindowStream(urls, request=ClipRequest(num_frames=8, crop_px=S)) if i["key"] == key and i["window_index"] == 1)
    assert torch.equal(item["rgb"], from_stream["rgb"]) and torch.equal(item["mv"], from_stream["mv"])


def _median_motion(mv: torch.Tensor) -> tuple[float, float] | None:
    """Median (x, y) over the frames of a (2, T, H, W) field mostly covered by vectors.

    Frames without vectors (key frames; the tiny MPEG-4 pans also end in intra-only
    frames, and B-frames between them are flagged has_mv=False) are left out; None if none is left.
    """
    covered = (mv.abs().sum(dim=0) > 0).float().mean(dim=(1, 2)) > 0.5  # (T,)
    if not covered.any():
        return None
    return float(mv[0, covered].median()), float(mv[1, covered].median())


@pytest.mark.parametrize("flip", [False, True])
def test_mv_follows_the_rgb_geometry(urls, flip):
    # Whole 48×64 frame (aspect 4/3) resized to 32×32: vectors scale by (32/64, 32/48).
    augment = ClipAugment(size=S, scale=(1.0, 1.0), ratio=(4 / 3, 4 / 3), flip_p=float(flip))
    stream = PairStream(urls, request=ClipRequest(num_frames=8, crop_px=S, decode_short_side_px=H), augment=augment, normalize=False)
    sx, sy = S / W, S / H
    checked = 0
    for item in stream:
        for clip in item["mv"]:
            median = _median_motion(clip)
            if median is None:
                continue
            checked += 1
            mx, my = median
            assert mx == pytest.approx((-DX if flip else DX) * sx, abs=0.3), item["key"]
            assert my == pytest.approx(DY * sy, abs=0.3), item["key"]
        assert item["rgb"].min() >= 0 and item["rgb"].max() <= 1  # normalize=False: [0, 1]
    assert checked >= 6


def test_views_decode_only_what_is_asked(urls, monkeypatch):
    calls = []
    real = pipeline_mod.decode_clip

    def spy(*args, **kw):
        calls.append((kw["with_rgb"], kw["with_mv"]))
        return real(*args, **kw)

    monkeypatch.setattr(pipeline_mod, "decode_clip", spy)
    item = next(iter(PairStream(urls, request=ClipRequest(num_frames=T, crop_px=S, views="rgb"))))
    assert "mv" not in item and item["rgb"].shape == (2, 3, T, S, S)
    assert calls and all(c == (True, False) for c in calls)
    calls.clear()
    item = next(iter(PairStream(urls, request=ClipRequest(num_frames=T, crop_px=S, views="mv"))))
    assert "rgb" not in item and item["mv"].shape == (2, 2, T, S, S)
    assert calls and all(c == (False, True) for c in calls)


def test_file_list_dataset_from_class_folders(video_tree, tmp_path):
    ds = PairFiles(video_tree, request=ClipRequest(num_frames=T, crop_px=S), seed=3)
    assert len(ds) == 6 and sorted({label for _, label in ds.items}) == [0, 1]
    item = ds[2]
    assert item["rgb"].shape == (2, 3, T, S, S) and item["mv"].shape == (2, 2, T, S, S)
    assert item["key"] == ds.items[2][0] and item["label"] == ds.items[2][1]
    assert torch.equal(ds[2]["rgb"], item["rgb"])  # a function of (seed, epoch, index)
    batch = next(iter(pair_loader(ds, batch_size=3, num_workers=0)))
    assert batch["rgb"].shape == (3, 2, 3, T, S, S) and batch["label"].shape == (3,)

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 20)
    listed = PairFiles([(broken, 0), ds.items[0]], request=ClipRequest(num_frames=T, crop_px=S))
    assert listed[0]["key"] == ds.items[0][0] and listed.skipped == 1  # the next video stands in


def test_record_info_matches_probe(video_tree, records):
    for rec in records.values():
        path = video_tree / rec["path"]
        expected = probe(path)
        got = ShardRecord.from_dict(rec).video_info(data=path.read_bytes())
        for name in ("codec", "width", "height", "fps", "num_frames", "keyframe_indices", "mv_source",
                     "start_seconds", "rotation_degrees", "duration_seconds", "variable_frame_rate",
                     "frame_interval_seconds", "timeline"):
            assert getattr(got, name) == getattr(expected, name), (rec["path"], name)


def test_shard_records_read_back_to_the_bytes_written(urls, video_tree):
    """One record type on both sides: each JSON member is exactly ShardRecord.to_dict of its
    ShardRecord.from_dict, and the record's facts are the probe's."""
    import tarfile

    for url in urls:
        with tarfile.open(url) as tar:
            for member in (m for m in tar.getmembers() if m.name.endswith(".json")):
                raw = tar.extractfile(member).read()
                record = ShardRecord.from_dict(json.loads(raw))
                assert json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8") == raw
                info = probe(video_tree / record.path)
                assert (record.codec, record.num_frames, record.fps, record.keyframe_indices, record.timeline) == \
                    (info.codec, info.num_frames, info.fps, info.keyframe_indices, info.timeline)


def test_older_or_broken_shard_records(records, video_tree):
    rec = next(iter(records.values()))
    facts = {k: rec[k] for k in ("key", "codec", "num_frames", "fps", "width", "height", "path", "ext")}
    older = ShardRecord.from_dict(facts)  # written before the optional fields existed
    assert (older.label, older.start_seconds, older.timeline, older.keyframe_indices) == (None, None, None, (0,))
    info = older.video_info(data=(video_tree / rec["path"]).read_bytes())
    assert info.start_seconds == probe(video_tree / rec["path"]).start_seconds  # read off the first packets
    assert info.duration_seconds == rec["num_frames"] / rec["fps"] and info.mv_source == rec["mv_source"]
    del facts["fps"]
    with pytest.raises(CorruptVideoError, match="train/x: shard record lacks the probe facts .*re-shard"):
        ShardRecord.from_dict(facts, where="train/x")
    with pytest.raises(CorruptVideoError, match="train/x: the shard record is not a JSON object"):
        ShardRecord.from_dict([facts], where="train/x")


def test_rgb_and_mv_of_a_clip_share_the_flip(video_tree):
    # Same seed, same draws: the two augmentations differ only in the flip decision.
    path = next(video_tree.rglob("*.mp4"))
    info = probe(path)

    def pair(flip_p: float):
        aug = ClipAugment(size=S, flip_p=flip_p, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0)
        return PairClips(ClipRequest(num_frames=T, crop_px=S), augment=aug)(str(path), info, np.random.default_rng(7))

    plain, flipped = pair(0.0), pair(1.0)
    assert torch.allclose(flipped["rgb"], plain["rgb"].flip(-1))
    assert torch.allclose(flipped["mv"][:, 0], -plain["mv"][:, 0].flip(-1))
    assert torch.allclose(flipped["mv"][:, 1], plain["mv"][:, 1].flip(-1))


def test_pair_clips_normalise_each_clip_into_its_slot(urls):
    """Normalised pairs are (clip - mean) / std of the very clips the unnormalised path gives (same draws)."""
    sample = next(iter_shard(urls[0]))
    record = ShardRecord.from_dict(sample.record)
    info = record.video_info(data=sample.data)
    request = ClipRequest(num_frames=T, crop_px=S, views="both")
    plain = PairClips(request, normalize=False)(sample.data, info, np.random.default_rng(3))
    normed = PairClips(request)(sample.data, info, np.random.default_rng(3))
    mean = torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1)
    assert normed["rgb"].shape == (2, 3, T, S, S) and normed["rgb"].is_contiguous()
    assert torch.equal(normed["rgb"], (plain["rgb"] - mean) / std)
    assert torch.equal(normed["mv"], plain["mv"]) and not torch.equal(plain["rgb"][0], plain["rgb"][1])
