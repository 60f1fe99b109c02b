"""Both stages on real decoded clips: generated videos -> compvid shards -> mvcgc.data.shard_stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.mvcgc import main
import compvid.pipeline
from compvid.datasets import PairFiles, pair_loader
from compvid.request import ClipRequest
from compvid.shards import shard_paths, write_shards
from compvid.synthetic import RECIPES, write_moving_video
from mvcgc.data import shard_stream
from mvcgc.train import pretrain
from mvcgc_testing import TINY


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    # 8 videos, two classes moving opposite ways, H.264 and MPEG-4 Part 2, 64x48, 16 frames.
    root = tmp_path_factory.mktemp("shards") / "videos"
    for i in range(8):
        recipe = ("h264", "mpeg4")[i % 2]
        sign = 1 if i % 2 else -1
        path = root / f"class{i % 2}" / f"v{i}{RECIPES[recipe].suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_moving_video(path, recipe=recipe, dx=2 * sign, dy=1, num_frames=16, width=64, height=48, seed=i)
    return root


@pytest.fixture(scope="module")
def urls(videos) -> list[str]:
    root = videos
    out = root.parent / "out"
    write_shards(root, out, max_count=4, seed=0, workers=0)
    return [str(p) for p in shard_paths(out)]


def test_batches_follow_the_trainer_contract(urls):
    batch = next(iter(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32), batch_size=4)))
    assert tuple(batch["rgb"].shape) == (4, 2, 3, 4, 32, 32)
    assert tuple(batch["mv"].shape) == (4, 2, 2, 4, 32, 32)
    assert len(batch["key"]) == 4 and tuple(batch["label"].shape) == (4,)
    only_mv = next(iter(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32, views=("mv",)), batch_size=4)))
    assert "rgb" not in only_mv


def test_two_steps_of_each_stage_on_decoded_clips(urls, tmp_path):
    opts = dict(TINY, steps=2, queue_size=8)
    rgb = pretrain(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32, views=("rgb",)), batch_size=4), stage="init",
                   view="rgb", out_dir=tmp_path / "rgb", **opts)
    mv = pretrain(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32, views=("mv",)), batch_size=4), stage="init",
                  view="mv", out_dir=tmp_path / "mv", **opts)
    cross = pretrain(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32), batch_size=4), stage="cross",
                     out_dir=tmp_path / "cross", init_rgb=rgb.checkpoint, init_mv=mv.checkpoint, **opts)
    for run in (rgb, mv, cross):
        assert run.step == 2 and run.checkpoint.exists()
        losses = [json.loads(line)["loss"] for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()
                  if "loss" in json.loads(line)]
        assert losses and all(loss == loss and abs(loss) < 1e6 for loss in losses)  # finite


def test_supervised_stage_on_decoded_clips_shows_a_total_and_training_accuracy(urls, tmp_path):
    seen = []
    data = shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32, views=("rgb",)), batch_size=4, flip_p=0.0)
    assert len(data) == 2  # 8 videos in the shards' index, batch 4
    run = pretrain(data, stage="supervised", view="rgb", num_classes=2, out_dir=tmp_path / "sup", epochs=2,
                   on_progress=seen.append, **TINY)
    assert [p.total_steps for p in seen] == [4] * 4 and run.step == 4
    ends = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["event"] == "epoch_end"]
    assert len(ends) == 2 and all(0.0 <= e["train_accuracy"] <= 1.0 for e in ends)


def test_cli_pretrains_from_shard_urls(urls, tmp_path):
    result = CliRunner().invoke(main, [
        "pretrain", "--stage", "init", "--view", "mv", "--data", " ".join(urls), "--out", str(tmp_path / "run"),
        "--arch", "tiny", "--steps", "2", "--batch-size", "4", "--num-frames", "4", "--size", "32",
        "--queue-size", "8", "--dim", "16", "--workers", "0", "--device", "cpu",
    ])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "last.pt").exists()


def test_epochs_over_a_stream_without_length(urls, tmp_path):
    # A DataLoader over an IterableDataset has no len(): the trainer counts epochs by passes.
    run = pretrain(shard_stream(urls, request=ClipRequest(num_frames=4, crop_px=32, views=("mv",)), batch_size=4), stage="init",
                   view="mv", out_dir=tmp_path / "mv", epochs=2, **dict(TINY, queue_size=8))
    assert run.epoch == 2 and run.step == 4  # 8 videos, batches of 4, two passes


@pytest.mark.parametrize("batch_size,stops", [(2, (3,)), (3, (1, 3))])
def test_a_mid_epoch_checkpoint_of_decoded_clips_resumes_with_the_uninterrupted_runs_next_batch(urls, tmp_path,
                                                                                               batch_size, stops):
    # 8 videos, two workers decode, 6 steps: batches of 2 make 4 steps an epoch (the every-N-steps checkpoint at
    # step 3 is mid-epoch); batches of 3 make 2 (2 videos dropped), and the stops at steps 1 and 3 stand after 3
    # and 9 samples, where the second worker's turn is next. Each run resumes from the one before.
    def data():
        return shard_stream(urls, batch_size=batch_size, request=ClipRequest(num_frames=4, crop_px=16, views=("rgb",)),
                            num_workers=2, seed=4)

    opts = dict(TINY, queue_size=2 * batch_size, stage="init", view="rgb", checkpoint_every=3, seed=4)
    full = pretrain(data(), out_dir=tmp_path / "full", steps=6, **opts)
    losses, resume = [], None
    for steps in (*stops, 6):
        run = pretrain(data(), out_dir=tmp_path / "cut", steps=steps, resume=resume, **opts)
        losses, resume = losses + run.losses, run.checkpoint
    assert losses == full.losses and len(losses) == 6


def _count_decodes(log: Path, monkeypatch):
    """Every decode_clip call from now on (in DataLoader workers too) appends a line to ``log``;
    the function returned gives the calls since its last call."""
    real = compvid.pipeline.decode_clip

    def counted(*args, **kwargs):
        with open(log, "a") as f:
            f.write("1\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(compvid.pipeline, "decode_clip", counted)

    def count() -> int:
        n = len(log.read_text().splitlines()) if log.exists() else 0
        log.unlink(missing_ok=True)
        return n

    return count


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_mid_epoch_resume_over_video_files_decodes_none_of_the_batches_before_it(videos, tmp_path, monkeypatch,
                                                                                   num_workers):
    # 8 files / batch 2 = 4 steps an epoch, shuffled; the checkpoint at step 3 is mid-epoch, step 6 in epoch 2.
    # With two workers (whose DataLoader calls the batch sampler's __iter__ twice as it starts) the resumed
    # losses must still be the uninterrupted run's.
    count = _count_decodes(tmp_path / "decodes.txt", monkeypatch)

    def data():
        files = PairFiles(videos, request=ClipRequest(num_frames=4, crop_px=16, views=("rgb",)), seed=4)
        return pair_loader(files, batch_size=2, num_workers=num_workers)

    opts = dict(TINY, queue_size=4, stage="init", view="rgb", checkpoint_every=3, seed=4)
    full = pretrain(data(), out_dir=tmp_path / "full", steps=6, **opts)
    full_decodes = count()
    first = pretrain(data(), out_dir=tmp_path / "cut", steps=3, **opts)
    first_decodes = count()
    rest = pretrain(data(), out_dir=tmp_path / "cut", steps=6, resume=first.checkpoint, **opts)
    rest_decodes = count()
    assert first.losses + rest.losses == full.losses and len(full.losses) == 6
    if num_workers == 0:  # workers prefetch batches no step uses: counts are exact without them
        # the two runs together decode what the uninterrupted one did; the resumed one only batches 4-6
        assert first_decodes + rest_decodes == full_decodes and rest_decodes == full_decodes // 2 > 0
