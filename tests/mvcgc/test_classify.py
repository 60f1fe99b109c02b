"""Linear probe / fine-tune parameters, the crops × windows test protocol, predictions and their fusion."""

import pytest
import torch

from mvcgc.classify import VideoClassifier, feature_batches, linear_probe, set_mode, train_classifier
from mvcgc.features import WindowFeatures
from mvcgc.models import create_encoder
from mvcgc.retrieval import ClassMismatchError
from mvcgc.testing_protocol import Predictions, fuse_predictions, topk_accuracy, video_probabilities


def toy_features(num_videos, *, classes=3, windows=2, crops=2, dim=16, seed=0):
    """Linearly separable: class c sits around 4·e_c, with unit Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_videos) % classes
    centres = 4.0 * torch.eye(dim)[:classes]
    window_video = torch.arange(num_videos).repeat_interleave(windows)  # (W,)
    feats = centres[labels[window_video]][:, None, :] + torch.randn(len(window_video), crops, dim, generator=g)
    keys = [f"v{i}" for i in range(num_videos)]
    return WindowFeatures(feats, window_video, labels, keys, meta={"toy": True})


def test_linear_probe_separates_a_linearly_separable_set():
    train, test = toy_features(60, seed=1), toy_features(30, seed=2)
    result = linear_probe(train, test, epochs=15, batch_size=16)
    assert result.accuracy[1] >= 0.97
    assert result.history[-1].train_accuracy >= 0.97 and len(result.history) == 15
    assert result.predictions.probs.shape == (30, 3)
    assert torch.allclose(result.predictions.probs.sum(1), torch.ones(30, dtype=torch.float64))


def test_linear_probe_rejects_disjoint_classes():
    train, test = toy_features(6), toy_features(6)
    test.labels = test.labels + 3
    with pytest.raises(ClassMismatchError, match="share no class"):
        linear_probe(train, test, epochs=1)


def test_video_probabilities_average_softmax_over_windows_and_crops():
    # Video 0: two windows × one crop with logits giving softmax [0.5, 0.5] and [1/(1+e^2), e^2/(1+e^2)].
    logits = torch.tensor([[[0.0, 0.0]], [[0.0, 2.0]], [[3.0, 0.0]]])  # (W=3, N=1, C=2)
    probs = video_probabilities(logits, torch.tensor([0, 0, 1]), 2)
    e2 = torch.exp(torch.tensor(2.0, dtype=torch.float64))
    expected0 = (torch.tensor([0.5, 0.5], dtype=torch.float64) + torch.stack([1 / (1 + e2), e2 / (1 + e2)])) / 2
    assert torch.allclose(probs[0], expected0)  # the mean of softmaxes, not the softmax of mean logits
    assert torch.allclose(probs.sum(1), torch.ones(2, dtype=torch.float64))


def test_ten_crop_windows_on_a_tiny_model_sum_to_one_and_ignore_window_order():
    torch.manual_seed(0)
    model = VideoClassifier(create_encoder("tiny", 2), 5).eval()
    g = torch.Generator().manual_seed(3)
    # 3 videos with 2, 3 and 1 windows; each window is 10 crops of an MV clip (10, 2, T, H, W).
    window_video = torch.tensor([0, 0, 1, 1, 1, 2])
    clips = [torch.randn(10, 2, 4, 16, 16, generator=g) for _ in window_video]

    def run(order):
        with torch.no_grad():
            logits = torch.stack([model(clips[i]) for i in order])  # (W, 10, 5)
        return video_probabilities(logits, window_video[order], 3)

    probs = run(torch.arange(6))
    assert probs.shape == (3, 5)
    assert torch.allclose(probs.sum(1), torch.ones(3, dtype=torch.float64))
    shuffled = run(torch.tensor([5, 2, 0, 4, 1, 3]))
    assert torch.allclose(probs, shuffled, atol=1e-12)


def test_topk_accuracy_worked_example():
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5], [0.1, 0.5, 0.4]])
    labels = torch.tensor([0, 1, 0])
    # video 0: top-1 hit; video 1: label ranked 2nd; video 2: label ranked 3rd.
    assert topk_accuracy(probs, labels, ks=(1, 2, 5)) == {1: 1 / 3, 2: 2 / 3, 5: 1.0}


def test_predictions_round_trip_and_fuse_by_key(tmp_path):
    a = Predictions(torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]], dtype=torch.float64),
                    torch.tensor([0, 1, 1]), ["x", "y", "z"], {"view": "rgb"})
    b = Predictions(torch.tensor([[0.2, 0.8], [0.7, 0.3]], dtype=torch.float64), torch.tensor([1, 0]),
                    ["y", "x"], {"view": "mv"})  # z failed to decode in this run
    loaded = Predictions.load(a.save(tmp_path / "a.json"))
    assert torch.equal(loaded.probs, a.probs) and loaded.keys == a.keys and loaded.meta == {"view": "rgb"}
    fused = fuse_predictions(loaded, b)
    assert fused.keys == ["x", "y"] and fused.meta["left_out"] == 1
    assert torch.allclose(fused.probs, torch.tensor([[0.8, 0.2], [0.3, 0.7]], dtype=torch.float64))
    assert fused.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="disagree on the labels"):
        fuse_predictions(a, Predictions(b.probs, torch.tensor([0, 0]), b.keys))


def test_linear_mode_trains_only_the_head_and_keeps_the_encoder_in_eval_mode():
    torch.manual_seed(0)
    model = VideoClassifier(create_encoder("tiny", 3), 2, dropout=0.5)
    frozen = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # weights and BN running stats
    head_before = model.head[2].weight.clone()
    x, y = torch.randn(4, 3, 4, 16, 16), torch.tensor([0, 1, 0, 1])
    train_classifier(model, lambda epoch, start: [(x, y)][start:], mode="linear", epochs=2, lr=0.1)
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in frozen.items())
    assert not torch.equal(head_before, model.head[2].weight)
    trained = set_mode(model, "finetune")
    assert len(trained) == len(list(model.parameters()))
    train_classifier(model, lambda epoch, start: [(x, y)][start:], mode="finetune", epochs=1, lr=0.1)
    assert not torch.equal(frozen["backbone.0.0.weight"], model.encoder.state_dict()["backbone.0.0.weight"])
    with pytest.raises(ValueError, match="allowed values are linear, finetune"):
        set_mode(model, "partial")


def test_feature_batches_cover_every_sample_each_epoch():
    x, y = torch.arange(10.0)[:, None], torch.arange(10)
    batches = feature_batches(x, y, batch_size=4, seed=1)
    seen = torch.cat([b[1] for b in batches(0, 0)])
    assert sorted(seen.tolist()) == list(range(10))  # 4 + 4 + 2
    assert [b[1].tolist() for b in batches(0, 0)] == [b[1].tolist() for b in batches(0, 0)]  # deterministic per epoch
