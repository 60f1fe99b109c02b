"""SIGINT / SIGTERM stop pretraining between steps, with a checkpoint that resumes exactly there."""

import json
import os
import signal

import pytest
import torch

from mvcgc_testing import TINY, clips
from mvcgc.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, save_checkpoint
from mvcgc.errors import SignalInterrupt, TrainingInterrupted
from mvcgc.interrupt import StopRequests
from mvcgc.train import pretrain

# 16 videos / batch 4 = 4 steps per epoch; K = 8 is full (mining on) from step 3.
CROSS = dict(stage="cross", topk=2, **TINY)


def signal_at(step, *signals):
    """An on_progress callback that sends ``signals`` to this process once ``step`` is logged."""

    def on_progress(p):
        if p.step == step:
            for s in signals:
                os.kill(os.getpid(), s)

    return on_progress


def metrics(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_sigterm_mid_epoch_checkpoints_that_step_and_resume_equals_an_uninterrupted_run(tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    full = pretrain(clips(), out_dir=tmp_path / "full", steps=7, **CROSS)
    with pytest.raises(TrainingInterrupted) as info:
        pretrain(clips(), out_dir=tmp_path / "cut", steps=7, on_progress=signal_at(2, signal.SIGTERM), **CROSS)
    stopped = info.value
    assert (stopped.signal_number, stopped.exit_code, stopped.step, stopped.saved_now) == (signal.SIGTERM, 143, 2, True)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # handlers restored
    ckpt = load_checkpoint(stopped.checkpoint)
    assert ckpt["step"] == 2 and ckpt["trainer"]["batch_in_epoch"] == 2  # mid-epoch
    assert not (tmp_path / "cut" / "loss.png").exists()  # drawn when the run ends, not when it is stopped
    rest = pretrain(clips(), out_dir=tmp_path / "cut", steps=7, resume=stopped.checkpoint, **CROSS)
    assert rest.step == 7 and rest.losses == full.losses[2:]
    # the same log, step for step, epoch ends (scheduler steps) included
    keep = ("event", "step", "epoch", "loss", "lr", "queue_fill", "mean_loss", "mining")
    assert [{k: x.get(k) for k in keep} for x in metrics(tmp_path / "cut")] == \
        [{k: x.get(k) for k in keep} for x in metrics(tmp_path / "full")]
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(rest.checkpoint)
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), name


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(TrainingInterrupted) as info:
        pretrain(clips(), out_dir=tmp_path, steps=7, checkpoint_every=2,
                 on_progress=signal_at(3, signal.SIGINT, signal.SIGINT), **CROSS)
    stopped = info.value
    assert (stopped.exit_code, stopped.step, stopped.saved_now) == (130, 3, False)
    assert stopped.checkpoint == tmp_path / "last.pt" and stopped.checkpoint_step == 2
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2  # step 3 is lost, step 2 is intact
    resumed = pretrain(clips(), out_dir=tmp_path, steps=4, resume=stopped.checkpoint, **CROSS)
    assert [x["step"] for x in metrics(tmp_path) if x["event"] == "step"] == [1, 2, 3, 4]
    assert resumed.step == 4


def test_a_second_signal_during_the_checkpoint_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"format": FORMAT, "format_version": FORMAT_VERSION, "step": 1}, path)

    def interrupted_save(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the first is being honoured

    monkeypatch.setattr(torch, "save", interrupted_save)
    with StopRequests(announce=False) as stop:
        stop.signal_number = signal.SIGINT  # the first Ctrl-C, already received
        with pytest.raises(SignalInterrupt):
            save_checkpoint({"format": FORMAT, "format_version": FORMAT_VERSION, "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1  # the previous checkpoint survives whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left


def test_checkpoints_every_thousand_steps_by_default():
    from mvcgc.options import DEFAULT_CHECKPOINT_EVERY, PretrainOptions

    options = PretrainOptions(stage="init", view="rgb", steps=1)
    assert options.checkpoint_every == DEFAULT_CHECKPOINT_EVERY == 1000


class _Videos(torch.utils.data.Dataset):
    """16 fixed random "videos" (clip pair of each view), served in a DataLoader's shuffled order."""

    def __init__(self):
        g = torch.Generator().manual_seed(5)
        self.rgb = torch.randn(16, 2, 3, 4, 16, 16, generator=g)
        self.mv = torch.randn(16, 2, 2, 4, 16, 16, generator=g)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"rgb": self.rgb[i], "mv": self.mv[i], "key": f"v{i}", "label": i % 3}


def shuffled_loader():
    # the order of each epoch is drawn from torch's global RNG as the epoch's iteration starts
    return torch.utils.data.DataLoader(_Videos(), batch_size=4, shuffle=True, drop_last=True)


@pytest.mark.parametrize("cut", [2, 5])  # mid-epoch in the first and in the second epoch
def test_a_mid_epoch_resume_over_a_shuffling_loader_continues_with_the_batch_an_uninterrupted_run_trains_on(
        tmp_path, cut):
    full = pretrain(shuffled_loader(), out_dir=tmp_path / "full", steps=11, **CROSS)
    with pytest.raises(TrainingInterrupted) as info:
        pretrain(shuffled_loader(), out_dir=tmp_path / "cut", steps=11, on_progress=signal_at(cut, signal.SIGINT),
                 **CROSS)
    assert load_checkpoint(info.value.checkpoint)["trainer"]["batch_in_epoch"] == cut % 4  # mid-epoch
    rest = pretrain(shuffled_loader(), out_dir=tmp_path / "cut", steps=11, resume=info.value.checkpoint, **CROSS)
    assert rest.losses == full.losses[cut:]
    keep = ("event", "step", "epoch", "loss", "lr", "queue_fill", "mean_loss", "mining")
    assert [{k: x.get(k) for k in keep} for x in metrics(tmp_path / "cut")] == \
        [{k: x.get(k) for k in keep} for x in metrics(tmp_path / "full")]


def test_a_checkpoint_written_before_the_loop_state_was_typed_still_resumes_exactly(tmp_path):
    full = pretrain(clips(), out_dir=tmp_path / "full", steps=7, **CROSS)
    first = pretrain(clips(), out_dir=tmp_path / "cut", steps=3, **CROSS)
    ckpt = load_checkpoint(first.checkpoint)
    del ckpt["rng"]["epoch_start"], ckpt["trainer"]["batches_per_epoch"]  # what the loop saved before
    save_checkpoint(ckpt, first.checkpoint)
    rest = pretrain(clips(), out_dir=tmp_path / "cut", steps=7, resume=first.checkpoint, **CROSS)
    assert first.losses + rest.losses == full.losses
