"""``finetune`` stopped by SIGINT / SIGTERM saves itself and resumes exactly: the same epoch losses,
weights and test predictions as a run never stopped, on a tiny run of generated videos."""

import os
import signal

import pytest
import torch

from eval_testing import class_folders, tiny_checkpoint
from mvcgc.classify import finetune
from mvcgc.errors import CheckpointError, TrainingInterrupted

# 2 classes x 3 videos, batches of 2: 3 steps per epoch, 3 epochs = 9 steps; dropout on (the RNG matters)
RUN = dict(view="rgb", epochs=3, batch_size=2, lr=0.05, dropout=0.5, num_frames=8, crop_px=32, crops="center",
           device="cpu", seed=3)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    train = class_folders(root / "train", per_class={"left": 3, "right": 3})
    test = class_folders(root / "test", per_class={"left": 1, "right": 1}, seed=50)
    ckpt = tiny_checkpoint(root / "ckpt", stage="init", view="rgb")
    full = finetune(train, test, checkpoint=ckpt, **RUN)
    return train, test, ckpt, full


def signal_at(step, *signals):
    """An on_step callback that sends ``signals`` to this process once ``step`` is done."""

    def on_step(r):
        if r.step == step:
            for s in signals:
                os.kill(os.getpid(), s)

    return on_step


def same_run(a, b):
    assert [(r.epoch, r.loss, r.lr, r.train_accuracy) for r in a.history] == \
        [(r.epoch, r.loss, r.lr, r.train_accuracy) for r in b.history]
    assert torch.equal(a.predictions.probs, b.predictions.probs) and a.predictions.keys == b.predictions.keys


def test_sigint_mid_epoch_saves_and_the_resumed_run_equals_an_uninterrupted_one(data, tmp_path):
    train, test, ckpt, full = data
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, on_step=signal_at(4, signal.SIGINT), **RUN)
    stopped = info.value
    assert (stopped.exit_code, stopped.step, stopped.saved_now, stopped.checkpoint_step) == (130, 4, True, 4)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # handlers restored
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(stopped.checkpoint)]
    steps = []
    rest = finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, resume=stopped.checkpoint,
                    on_step=lambda r: steps.append((r.step, r.total_steps)), **RUN)
    assert steps == [(s, 9) for s in range(5, 10)]  # steps 5..9 of 9, epoch 2 entered at its second batch
    same_run(rest, full)
    assert not list(tmp_path.iterdir())  # the finished run leaves nothing to resume


def test_sigterm_during_the_test_pass_keeps_the_trained_run_and_resuming_only_tests(data, tmp_path):
    train, test, ckpt, full = data

    def sigterm(p):
        if p.done == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as info:
        finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, on_progress=sigterm, **RUN)
    assert (info.value.exit_code, info.value.step, info.value.saved_now) == (143, 9, True)
    steps = []
    rest = finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, resume=info.value.checkpoint,
                    on_step=steps.append, **RUN)
    assert steps == []  # nothing trained again
    same_run(rest, full)


def test_a_signal_after_the_last_step_is_not_ignored(data, tmp_path):
    train, test, ckpt, full = data

    def sigint_at_the_end(r):
        if r.epoch == r.epochs:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, on_epoch=sigint_at_the_end, **RUN)
    assert (info.value.step, info.value.saved_now) == (9, True)
    same_run(finetune(train, test, checkpoint=ckpt, resume=info.value.checkpoint, **RUN), full)


def test_a_second_signal_stops_at_once_and_saves_nothing(data, tmp_path):
    train, test, ckpt, _ = data
    with pytest.raises(TrainingInterrupted) as info:
        finetune(train, test, checkpoint=ckpt, state_dir=tmp_path,
                 on_step=signal_at(2, signal.SIGINT, signal.SIGINT), **RUN)
    assert (info.value.saved_now, info.value.checkpoint, info.value.step) == (False, None, 2)
    assert not list(tmp_path.iterdir())


def test_resuming_with_other_options_or_a_foreign_file_is_refused(data, tmp_path):
    train, test, ckpt, _ = data
    with pytest.raises(TrainingInterrupted) as info:
        finetune(train, test, checkpoint=ckpt, state_dir=tmp_path, on_step=signal_at(1, signal.SIGINT), **RUN)
    with pytest.raises(CheckpointError, match=r"other options or data \(lr differ\)"):
        finetune(train, test, checkpoint=ckpt, resume=info.value.checkpoint, **{**RUN, "lr": 0.01})
    with pytest.raises(CheckpointError, match="not a fine-tuning state"):
        finetune(train, test, checkpoint=ckpt, resume=ckpt, **RUN)  # a pretraining checkpoint
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable fine-tuning state"):
        finetune(train, test, checkpoint=ckpt, resume=tmp_path / "junk.pt", **RUN)
