"""The one training loop: both stages step on CPU, resume is exact, bad input stops clearly."""

import json
import math

import pytest
import torch

from mvcgc_testing import TINY, clips
from mvcgc.checkpoint import load_checkpoint
from mvcgc.errors import CheckpointError, EmptyDataError, NonFiniteLossError
from mvcgc.train import pretrain


@pytest.mark.parametrize("stage,view,views", [("init", "rgb", ("rgb",)), ("init", "mv", ("mv",)), ("cross", None, ("rgb", "mv"))])
def test_two_cpu_steps_of_each_stage(tmp_path, stage, view, views):
    seen = []
    result = pretrain(clips(views), stage=stage, view=view, out_dir=tmp_path, steps=2, on_progress=seen.append, **TINY)
    assert result.step == 2 and len(result.losses) == 2 and all(math.isfinite(x) for x in result.losses)
    assert [p.step for p in seen] == [1, 2] and seen[-1].queue_fill == 1.0  # 2 steps x 4 keys fill K = 8
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["stage"] == stage and ckpt["views"] == list(views) and ckpt["step"] == 2
    assert int(ckpt["model"]["queue.num_enqueued"]) == 8
    assert ckpt["input_spec"][views[0]]["num_frames"] == 4 and "torch" in ckpt["versions"]
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["event"] == "step"] == [1, 2]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["config"]["stage"] == stage and "torch" in config["versions"]
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_cross_mines_only_once_the_queue_is_full(tmp_path, monkeypatch):
    import mvcgc.stages as stages

    used_topk = []
    real = stages.cross_guidance_nce

    def spy(*args, topk, **kw):
        used_topk.append(topk)
        return real(*args, topk=topk, **kw)

    monkeypatch.setattr(stages, "cross_guidance_nce", spy)
    pretrain(clips(), stage="cross", out_dir=tmp_path, steps=4, topk=3, **TINY)
    assert used_topk == [0, 0, 3, 3]  # K = 8 holds two batches of 4


def test_cross_starts_from_stage1_query_weights(tmp_path, stage1_rgb):
    # lr = 0 and m = 0: parameters cannot move, so they must equal the stage-1 query weights.
    result = pretrain(clips(), stage="cross", out_dir=tmp_path, steps=1, init_rgb=stage1_rgb,
                      **{**TINY, "lr": 0.0, "momentum": 0.0})
    stage1 = load_checkpoint(stage1_rgb)["model"]
    model = load_checkpoint(result.checkpoint)["model"]
    w = "encoder_q.rgb.encoder.backbone.0.0.weight"
    assert torch.equal(model[w], stage1[w])
    assert torch.equal(model[w.replace("encoder_q", "encoder_k")], stage1[w])
    assert torch.equal(model["encoder_q.rgb.head.mlp.0.weight"], stage1["encoder_q.rgb.head.mlp.0.weight"])
    assert not torch.equal(model["encoder_q.mv.head.mlp.0.weight"].flatten()[:16], stage1[w].flatten()[:16])


def test_resume_equals_uninterrupted_run(tmp_path):
    # 16 videos / batch 4 = 4 steps per epoch: the cut at step 3 is mid-epoch, the run then
    # crosses an epoch end (scheduler step) and the queue is full (mining on) from step 3.
    kw = dict(stage="cross", topk=2, checkpoint_every=2, **TINY)
    full = pretrain(clips(), out_dir=tmp_path / "full", steps=7, **kw)
    first = pretrain(clips(), out_dir=tmp_path / "cut", steps=3, **kw)
    rest = pretrain(clips(), out_dir=tmp_path / "cut", steps=7, resume=first.checkpoint, **kw)
    assert first.losses + rest.losses == full.losses
    a, b = load_checkpoint(full.checkpoint), load_checkpoint(rest.checkpoint)
    for name, t in a["model"].items():
        assert torch.equal(t, b["model"][name]), name
    assert a["trainer"] == b["trainer"]
    steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    full_steps = [json.loads(x)["step"] for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert steps == full_steps


def test_epochs_run_whole_passes(tmp_path):
    result = pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, epochs=2, **TINY)
    assert result.step == 8 and result.epoch == 2


class PoisonedAfter:
    """Synthetic batches whose RGB turns NaN from batch ``n`` on."""

    def __init__(self, n):
        self.n, self.inner = n, clips(("rgb",))

    def __iter__(self):
        for i, batch in enumerate(self.inner):
            if i >= self.n:
                batch["rgb"] = torch.full_like(batch["rgb"], float("nan"))
            yield batch


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"step 3 .*last.pt"):
        pretrain(PoisonedAfter(2), stage="init", view="rgb", out_dir=tmp_path, steps=4, checkpoint_every=1, **TINY)
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["step"] == 2
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())


def test_empty_data_stream_is_an_error(tmp_path):
    with pytest.raises(EmptyDataError, match="no complete batch"):
        pretrain([], stage="init", view="rgb", out_dir=tmp_path, steps=3, **TINY)
    with pytest.raises(EmptyDataError):
        pretrain(clips(("rgb",), num_videos=3), stage="init", view="rgb", out_dir=tmp_path, epochs=1, **TINY)


def test_bad_options_and_inputs(tmp_path, stage1_rgb):
    with pytest.raises(ValueError, match="init, cross"):
        pretrain(clips(), stage="both", out_dir=tmp_path, steps=1, **TINY)
    with pytest.raises(ValueError, match="rgb, mv"):
        pretrain(clips(), stage="init", out_dir=tmp_path, steps=1, **TINY)
    with pytest.raises(ValueError, match="epochs, steps"):
        pretrain(clips(), stage="init", view="rgb", out_dir=tmp_path, **TINY)
    with pytest.raises(ValueError, match="multiple of the global batch 4"):
        pretrain(clips(), stage="init", view="rgb", out_dir=tmp_path, steps=1, **{**TINY, "queue_size": 10})
    with pytest.raises(KeyError, match="no 'mv' clips"):
        pretrain(clips(("rgb",)), stage="cross", out_dir=tmp_path, steps=1, **TINY)
    with pytest.raises(CheckpointError, match=r"holds view\(s\) \['rgb'\], not 'mv'"):
        pretrain(clips(), stage="cross", out_dir=tmp_path, steps=1, init_mv=stage1_rgb, **TINY)
    with pytest.raises(CheckpointError, match="'tiny' encoder, but 'r3d_18'"):
        pretrain(clips(), stage="cross", out_dir=tmp_path, steps=1, init_rgb=stage1_rgb, **{**TINY, "arch": "r3d_18"})
    with pytest.raises(CheckpointError, match="cannot resume"):
        pretrain(clips(), stage="cross", out_dir=tmp_path, steps=1, resume=stage1_rgb, **TINY)


def test_zero_steps_writes_the_untrained_weights_as_a_random_init_baseline(tmp_path):
    result = pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, steps=0, epochs=30, seed=3, **TINY)
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["step"] == 0 and result.losses == [] and ckpt["config"]["epochs"] is None
    assert not (tmp_path / "loss.png").exists()  # nothing to draw; the README says so (tests/test_readme.py)
    # the input the encoder is meant for is recorded from the data, so evaluation needs no flags
    assert ckpt["input_spec"]["rgb"]["num_frames"] == 4 and ckpt["input_spec"]["rgb"]["height"] == 16
    torch.manual_seed(3)  # the same seed builds the same initial weights: nothing was trained
    from mvcgc.models import create_encoder
    from mvcgc.moco import MoCo

    fresh = MoCo({"rgb": create_encoder("tiny", 3)}, queue_size=8, dim=16, m=0.99).state_dict()
    for name, value in fresh.items():
        if name.startswith("encoder_q."):
            assert torch.equal(ckpt["model"][name], value), name
    with pytest.raises(ValueError, match="random-initialisation baseline"):
        pretrain(clips(), stage="cross", out_dir=tmp_path / "x", steps=0, **TINY)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        pretrain(clips(), stage="init", view="rgb", out_dir=tmp_path / "y", steps=-1, **TINY)


class Separable:
    """SyntheticClips whose labels are 0/1 and whose clips carry the label as a brightness offset,
    so a classifier can learn them (the supervised stage must, and must say so in its metrics)."""

    def __init__(self, labels_known=True, **kw):
        self.inner = clips(("rgb",), **kw)
        self.labels_known = labels_known

    def __len__(self):
        return len(self.inner)

    def set_epoch(self, epoch):
        self.inner.set_epoch(epoch)

    def __iter__(self):
        for batch in self.inner:
            y = batch["label"] % 2
            batch["rgb"] = batch["rgb"] + 3.0 * (2 * y - 1).float().view(-1, 1, 1, 1, 1, 1)  # (B, 2, 3, T, H, W)
            batch["label"] = y if self.labels_known else torch.full_like(y, -1)
            yield batch


def test_supervised_stage_fits_labels_and_writes_a_loadable_encoder(tmp_path):
    from mvcgc.checkpoint import load_encoder

    result = pretrain(Separable(), stage="supervised", view="rgb", num_classes=2, out_dir=tmp_path, epochs=4,
                      **{**TINY, "lr": 1e-2})
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    ends = [x for x in lines if x["event"] == "epoch_end"]
    assert len(ends) == 4 and all("train_accuracy" in x for x in ends)
    assert ends[-1]["train_accuracy"] >= 0.9  # the offset gives the class away
    steps = [x for x in lines if x["event"] == "step"]
    assert all(0.0 <= x["train_accuracy"] <= 1.0 for x in steps)
    # epoch accuracy is the mean of the steps' accuracies
    last = [x["train_accuracy"] for x in steps if x["epoch"] == 3]
    assert ends[-1]["train_accuracy"] == pytest.approx(sum(last) / len(last))
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt["stage"] == "supervised" and ckpt["num_classes"] == 2 and ckpt["views"] == ["rgb"]
    encoder = load_encoder(result.checkpoint, "rgb")
    assert encoder.forward_features(torch.randn(2, 3, 4, 16, 16)).shape == (2, encoder.feature_dim)


def test_supervised_stage_refuses_unlabelled_data(tmp_path):
    with pytest.raises(ValueError, match="needs a class label"):
        pretrain(Separable(labels_known=False), stage="supervised", view="rgb", num_classes=2, out_dir=tmp_path,
                 steps=1, **TINY)
    with pytest.raises(ValueError, match="num_classes"):
        pretrain(Separable(), stage="supervised", view="rgb", out_dir=tmp_path, steps=1, **TINY)


def test_cross_stage_logs_mining_statistics_once_mining_starts(tmp_path):
    pretrain(clips(), stage="cross", out_dir=tmp_path, steps=4, topk=3, **TINY)
    steps = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert ["mining" in x for x in steps] == [False, False, True, True]  # K = 8: full after two batches of 4
    mining = steps[-1]["mining"]
    assert 0.0 <= mining["queries_with_mined"] <= 1.0 and 0.0 <= mining["mined_per_query"] <= 3.0
    # SyntheticClips carry labels, so the class shares are logged too
    assert {"mined_same_class", "rgb_topk_same_class", "mv_topk_same_class"} <= set(mining)


def test_a_used_run_folder_is_refused_unless_resumed_or_overwritten(tmp_path):
    from mvcgc.errors import RunExistsError

    first = pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, steps=3, **TINY)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RunExistsError, match=r"--resume .*last\.pt.*--overwrite"):
        pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, steps=1, **TINY)
    assert (tmp_path / "metrics.jsonl").read_text() == before  # nothing truncated
    resumed = pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, steps=4,
                       resume=first.checkpoint, **TINY)
    assert resumed.step == 4
    again = pretrain(clips(("rgb",)), stage="init", view="rgb", out_dir=tmp_path, steps=1, overwrite=True, **TINY)
    assert again.step == 1 and len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
