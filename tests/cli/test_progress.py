"""Every long command draws one bar with done / total, and nothing else is written over it.

The bars are read back from what they drew (tqdm's frames on the captured stderr, see
``bar_frames``) on small generated inputs whose counts are known: videos, windows, steps, files.
"""

import io
import logging
import sys
import warnings

import pytest
from click.testing import CliRunner

from bar_frames import frames, phases
from pan_folders import class_folders as folders
from cli.compvid import main as compvid_main
from cli.mvcgc import main as mvcgc_main
from cli.progress import Bar
from compvid.synthetic import write_moving_video
from mvcgc.data import SyntheticClips
from mvcgc.train import pretrain


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars")
    data = SyntheticClips(num_videos=4, batch_size=4, num_frames=8, size=(32, 32))
    ckpt = pretrain(data, stage="cross", out_dir=root / "run", steps=1, arch="tiny", queue_size=8, dim=16,
                    device="cpu").checkpoint
    train = folders(root / "train", {"left": 2, "right": 2})  # 4 videos
    test = folders(root / "test", {"left": 1, "right": 1}, seed=100)
    (test / "right" / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 40)  # 3 videos, one fails
    return root, ckpt, train, test


def mvcgc(*args):
    return CliRunner().invoke(mvcgc_main, [str(a) for a in args], catch_exceptions=False)


def compvid(*args):
    return CliRunner().invoke(compvid_main, [str(a) for a in args], catch_exceptions=False)


def test_the_bar_is_drawn_on_first_start_and_log_records_and_warnings_go_above_it(monkeypatch):
    screen = io.StringIO()
    shown_before = warnings.showwarning
    monkeypatch.setattr(sys, "stderr", screen)
    logger = logging.getLogger("test_progress.above")
    monkeypatch.setattr(logging.root, "handlers", [logging.StreamHandler(sys.stderr)])  # as basicConfig makes it
    with Bar(unit="item") as bar:
        bar.update(3)  # before start: nothing drawn
        assert bar.bar is None and screen.getvalue() == ""
        bar.start("phase one", 5)
        for i in range(1, 6):
            bar.update(i)
            logger.warning("note %d", i)
        warnings.warn("a python warning", UserWarning)
        bar.start("phase two", 2, unit="file")
        bar.update(2)
    assert phases(screen.getvalue()) == [("phase one", 5, 5), ("phase two", 2, 2)]
    for segment in screen.getvalue().replace("\r", "\n").split("\n"):  # a log line never shares a bar's line
        assert not (frames(segment) and ("note" in segment or "python warning" in segment)), segment
    lines = screen.getvalue().split("\n")
    assert sum(ln.rsplit("\r", 1)[-1] == f"note {i}" for ln in lines for i in range(1, 6)) == 5
    assert any("UserWarning: a python warning" in ln for ln in lines)
    assert warnings.showwarning is shown_before  # warnings capture is undone on exit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("after", UserWarning)
    assert len(caught) == 1


def test_retrieve_draws_one_bar_over_every_video_of_both_splits(setup, tmp_path):
    root, ckpt, train, test = setup
    args = ["retrieve", "--ckpt", ckpt, "--view", "both", "--train", train, "--test", test, "--device", "cpu",
            "--cache-dir", tmp_path / "cache"]
    r = mvcgc(*args)
    assert r.exit_code == 0, r.output
    # RGB and MV share one decoding pass per split: 4 train + 3 test videos (the broken one counts, done)
    assert phases(r.stderr) == [("features train rgb+mv", 7, 7)]
    assert {f.desc for f in frames(r.stderr)} == {"features train rgb+mv", "features test rgb+mv"}
    assert all(f.total == 7 for f in frames(r.stderr))
    counts = [f.n for f in frames(r.stderr)]
    assert counts == sorted(counts)  # never backwards
    r = mvcgc(*args)  # every feature cached: no work, no bar
    assert r.exit_code == 0 and frames(r.stderr) == []


def test_two_decoding_passes_count_twice(setup, tmp_path):
    root, ckpt, train, test = setup
    # an MV encoder trained on 4-frame clips: its windows differ from the RGB encoder's (8 frames)
    mv4 = pretrain(SyntheticClips(num_videos=4, batch_size=4, num_frames=4, size=(32, 32), views=("mv",)),
                   stage="init", view="mv", out_dir=tmp_path / "mv4", steps=1, arch="tiny", queue_size=8, dim=16,
                   device="cpu").checkpoint
    r = mvcgc("retrieve", "--ckpt", mv4, "--ckpt", ckpt, "--view", "both", "--train", train, "--test", test,
              "--device", "cpu", "--no-cache")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("features train rgb", 14, 14)]  # (4 + 3) videos x 2 passes
    assert {f.desc for f in frames(r.stderr)} == {"features train mv", "features train rgb", "features test mv",
                                                  "features test rgb"}


def test_linear_draws_the_features_then_the_probe_epochs(setup, tmp_path):
    root, ckpt, train, test = setup
    r = mvcgc("linear", "--ckpt", ckpt, "--view", "both", "--train", train, "--test", test, "--device", "cpu",
              "--no-cache", "--epochs", "3")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("features train rgb+mv", 7, 7), ("linear probe rgb", 6, 6)]  # 3 epochs x 2 views
    assert "linear probe mv" in {f.desc for f in frames(r.stderr)}


def test_finetune_draws_its_steps_then_the_test_videos(setup, tmp_path):
    root, ckpt, train, test = setup
    r = mvcgc("finetune", "--ckpt", ckpt, "--view", "rgb", "--train", train, "--test", test, "--device", "cpu",
              "--epochs", "2", "--batch-size", "2", "--test-crops", "center", "--state-dir", tmp_path / "state")
    assert r.exit_code == 0, r.output
    # 4 train videos in batches of 2: 2 steps per epoch; then 3 test videos
    assert phases(r.stderr) == [("finetune rgb", 4, 4), ("test rgb", 3, 3)]
    assert not list((tmp_path / "state").glob("*"))  # nothing left to resume


def test_efficiency_draws_one_bar_of_videos(setup, tmp_path):
    pytest.importorskip("cv2")
    root, ckpt, train, test = setup
    r = mvcgc("efficiency", test, "--arch", "tiny", "--num-frames", "8", "--size", "32", "--crops", "center",
              "--flow", "farneback", "--max-flow-frames", "4")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("efficiency", 3, 3)]  # 2 measured + 1 left out
    assert "2 videos; ours" in r.output


def test_pretrain_draws_one_bar_of_steps_and_a_resumed_run_starts_where_it_stopped(tmp_path):
    common = ["pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", "--arch", "tiny",
              "--synthetic-videos", "8", "--batch-size", "4", "--num-frames", "4", "--size", "16", "--queue-size",
              "8", "--dim", "16", "--device", "cpu", "--out", tmp_path / "run"]
    r = mvcgc(*common, "--steps", "3")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("pretrain init", 3, 3)]
    r = mvcgc(*common, "--steps", "5", "--resume", tmp_path / "run" / "last.pt")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("pretrain init", 5, 5)] and frames(r.stderr)[0].n >= 3


def test_shard_and_verify_draw_one_bar_each_stage_after_the_other(setup, tmp_path):
    root, ckpt, train, test = setup
    r = compvid("shard", test, "--out", tmp_path / "shards", "--workers", "0")
    assert r.exit_code == 0, r.output
    # 3 files probed (one unreadable), then the 2 good ones written
    assert phases(r.stderr) == [("shard 1/2: probe", 3, 3), ("shard 2/2: write", 2, 2)]
    r = compvid("verify", tmp_path / "shards", "--source", test)
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("verify shards", 1, 1), ("verify sources", 2, 2)]


def test_eval_on_shards_counts_their_videos_from_the_index(setup, tmp_path):
    root, ckpt, train, test = setup
    for name, src in (("train", train), ("test", test)):
        assert compvid("shard", src, "--out", tmp_path / name, "--workers", "0").exit_code == 0
    r = mvcgc("retrieve", "--ckpt", ckpt, "--train", tmp_path / "train" / "all-000000.tar", "--test",
              tmp_path / "test" / "all-000000.tar", "--device", "cpu", "--no-cache")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("features train rgb", 6, 6)]  # 4 + 2 videos in the shards


def test_synth_and_inspect_draw_one_bar_with_their_totals(tmp_path):
    r = compvid("synth", tmp_path / "data", "--classes", "MoveLeft,MoveRight", "--videos-per-class", "2",
                "--clips-per-group", "1", "--test-groups", "1", "--frames", "8", "--size", "32x32", "--codecs",
                "mpeg4", "--workers", "0")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("synth", 4, 4)]
    video = write_moving_video(tmp_path / "v.mp4", dx=1, dy=0, num_frames=150, width=64, height=48)
    r = compvid("inspect", video, "--max-frames", "140")
    assert r.exit_code == 0, r.output
    assert phases(r.stderr) == [("decoding", 140, 140)]  # windows of 128 frames: 0, 128, 140
    r = compvid("inspect", video, "--json")
    assert r.exit_code == 0 and frames(r.stderr) == []


class _Unsized:
    """Synthetic batches as a stream whose length nobody knows beforehand (under torchrun, pipe: shards)."""

    def __init__(self, **kw):
        self.clips = SyntheticClips(**kw)

    def set_epoch(self, epoch):
        self.clips.set_epoch(epoch)

    def __iter__(self):
        return iter(self.clips)


def test_a_stream_without_a_length_gets_its_total_once_its_first_epoch_ends(tmp_path, monkeypatch):
    seen = []
    pretrain(_Unsized(num_videos=12, batch_size=4, num_frames=4, size=(16, 16), views=("rgb",)), stage="init",
             view="rgb", arch="tiny", queue_size=8, dim=16, device="cpu", epochs=3, out_dir=tmp_path / "lib",
             on_progress=lambda p: seen.append(p.total_steps))
    assert seen == [None] * 3 + [9] * 6  # 3 batches an epoch, counted in the first
    monkeypatch.setattr("mvcgc.data.SyntheticClips", _Unsized)
    r = mvcgc("pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", "--arch", "tiny",
              "--synthetic-videos", "12", "--batch-size", "4", "--num-frames", "4", "--size", "16", "--queue-size",
              "8", "--dim", "16", "--device", "cpu", "--epochs", "3", "--out", tmp_path / "cli")
    assert r.exit_code == 0, r.output
    counted = phases(r.stderr)
    assert counted[0][1] is None and counted[-1][1:] == (9, 9)  # no total in the first epoch, then 9 steps
