"""Action classification on top of a pretrained encoder: linear probe and full fine-tune.

One model, :class:`VideoClassifier` = encoder -> (BatchNorm) -> dropout -> linear, and one training
loop, :func:`train_classifier`; the two protocols differ only in which parameters train:

- ``mode="linear"``: the encoder is frozen and kept in eval mode; only the head trains. Because the
  frozen encoder is a fixed function, the probe trains on cached pooled features
  (:func:`linear_probe`), which is the same maths without decoding every epoch.
- ``mode="finetune"``: every parameter trains (:func:`finetune`), SGD lr 0.1, wd 1e-3, dropout
  before the classifier.

Both use SGD with momentum and divide the LR by 10 when the epoch's training loss plateaus; both are
tested with crops × sliding windows (:mod:`mvcgc.testing_protocol`), scored at the final epoch.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Sequence, get_args

import torch
from torch import nn

from mvcgc.checkpoint import load_encoder
from mvcgc.errors import EmptyDataError, NonFiniteLossError
from mvcgc.features import Crops, Device, VideoSet, WindowFeatures, align_classes, video_set, window_outputs
from mvcgc.models import VideoEncoder
from mvcgc.retrieval import check_shared_classes
from mvcgc.testing_protocol import Predictions, video_probabilities

log = logging.getLogger(__name__)

Mode = Literal["linear", "finetune"]


class VideoClassifier(nn.Module):
    """``encoder.forward_features`` -> BatchNorm1d (optional) -> Dropout -> Linear; ``(B, C, T, H, W)`` -> logits."""

    def __init__(self, encoder: VideoEncoder, num_classes: int, *, batchnorm: bool = True, dropout: float = 0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"need at least 2 classes, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.encoder = encoder
        d = encoder.feature_dim
        self.head = nn.Sequential(
            nn.BatchNorm1d(d) if batchnorm else nn.Identity(),
            nn.Dropout(dropout),
            nn.Linear(d, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.forward_features(x))  # (B, num_classes)


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    epochs: int
    loss: float
    lr: float
    train_accuracy: float


def set_mode(model: VideoClassifier, mode: Mode) -> list[nn.Parameter]:
    """Freeze what ``mode`` does not train; return the parameters that do train."""
    if mode not in get_args(Mode):
        raise ValueError(f"mode={mode!r}: allowed values are {', '.join(get_args(Mode))}")
    model.encoder.requires_grad_(mode == "finetune")
    model.head.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def train_classifier(
    model: VideoClassifier,
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    *,
    mode: Mode,
    inputs: Literal["clips", "features"] = "clips",
    epochs: int = 100,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-3,
    plateau_patience: int = 5,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> list[EpochReport]:
    """SGD over ``batches(epoch)`` (``(x, y)``: clips ``(B, C, T, H, W)`` or, in linear mode, pooled
    features ``(B, D)``) for ``epochs`` epochs; LR / 10 when the epoch loss has not improved for
    ``plateau_patience`` epochs. In linear mode the encoder stays in eval mode throughout."""
    params = set_mode(model, mode)
    if inputs == "features" and mode != "linear":
        raise ValueError("training on cached features is only the linear probe (a frozen encoder)")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    model.to(device)
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.1,
                                                           patience=plateau_patience)
    criterion = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        model.train()
        if mode == "linear":
            model.encoder.eval()  # frozen backbone: BatchNorm statistics stay those of pretraining
        total, correct, loss_sum = 0, 0, 0.0
        for x, y in batches(epoch):
            x, y = x.to(device).float(), y.to(device)
            logits = model.head(x) if inputs == "features" else model(x)  # (B, num_classes)
            loss = criterion(logits, y)
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(f"classifier loss became {loss.item()} in epoch {epoch}; try a lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            total += len(y)
        if total == 0:
            raise EmptyDataError(f"no training batch in epoch {epoch}; is the train split empty?")
        scheduler.step(loss_sum / total)
        report = EpochReport(epoch=epoch + 1, epochs=epochs, loss=loss_sum / total,
                             lr=optimizer.param_groups[0]["lr"], train_accuracy=correct / total)
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
    return history


def feature_batches(features: torch.Tensor, labels: torch.Tensor, *, batch_size: int, seed: int = 0,
                    ) -> Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]:
    """``batches(epoch)`` over rows of ``features (S, D)``, shuffled by ``(seed, epoch)``.

    A last batch of one sample is dropped (BatchNorm cannot train on it)."""
    if len(features) == 0:
        raise EmptyDataError("no training features; is the train split empty?")

    def batches(epoch: int):
        order = torch.randperm(len(features), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            if len(idx) > 1 or len(order) == 1:
                yield features[idx], labels[idx]

    return batches


@dataclass
class ClassifyResult:
    """Test predictions of the final epoch, their top-1/top-5, the training history and what produced them."""

    predictions: Predictions
    accuracy: dict[int, float]
    history: list[EpochReport]
    failed: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def num_classes_of(*labels: torch.Tensor) -> int:
    return int(max(int(t.max()) for t in labels if len(t)) + 1)


def linear_probe(
    train: WindowFeatures,
    test: WindowFeatures,
    *,
    epochs: int = 100,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    batchnorm: bool = True,
    batch_size: int = 64,
    plateau_patience: int = 5,
    num_classes: int | None = None,
    seed: int = 0,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> ClassifyResult:
    """Linear probe on cached pooled features of a frozen encoder.

    Trains on every (window, crop) feature of ``train`` labelled by its video; tests on ``test``'s
    (window, crop) features with softmax averaged per video (the crops × windows protocol).
    """
    _check_sets(train.labels, test.labels)
    torch.manual_seed(seed)
    c = num_classes or num_classes_of(train.labels, test.labels)
    d = train.features.shape[-1]
    head_only = VideoClassifier(_FeatureDim(d), c, batchnorm=batchnorm, dropout=0.0)
    x = train.features.reshape(-1, d).float()  # (W * N, D)
    y = train.labels[train.window_video].repeat_interleave(train.features.shape[1])  # (W * N,)
    history = train_classifier(head_only, feature_batches(x, y, batch_size=batch_size, seed=seed), mode="linear",
                               inputs="features", epochs=epochs, lr=lr, momentum=momentum,
                               weight_decay=weight_decay, plateau_patience=plateau_patience, on_epoch=on_epoch)
    head_only.eval()
    with torch.no_grad():
        w, n = test.features.shape[:2]
        logits = head_only.head(test.features.reshape(w * n, d).float()).reshape(w, n, c)  # (W, N, C)
    probs = video_probabilities(logits, test.window_video, test.num_videos)
    meta = {"protocol": "linear", "epochs": epochs, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
            "batchnorm": batchnorm, "batch_size": batch_size, "seed": seed, "train": train.meta, "test": test.meta}
    preds = Predictions(probs, test.labels, list(test.keys), meta)
    return ClassifyResult(preds, preds.accuracy(), history, list(test.failed), meta)


class _FeatureDim(nn.Module):
    """Stands in for the frozen encoder when the probe runs on cached features (only its size matters)."""

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.feature_dim = feature_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x


def finetune(
    train: VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]],
    test: VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]],
    *,
    checkpoint: str | os.PathLike,
    view: Literal["rgb", "mv"],
    epochs: int = 100,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-3,
    dropout: float = 0.5,
    batchnorm: bool = False,
    batch_size: int = 8,
    plateau_patience: int = 5,
    num_frames: int | None = None,
    size: int | None = None,
    crops: Crops = "ten",
    device: Device = "auto",
    num_workers: int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> ClassifyResult:
    """Fine-tune the whole ``view`` encoder of ``checkpoint`` with a new classifier on ``train`` videos
    (one random, augmented clip per video per epoch: compvid's training clips), then test on every
    window × ``crops`` of ``test``, softmax averaged per video, at the final epoch. ``cache_dir``:
    where the decoded test windows are kept for the next run (see :mod:`mvcgc.features`)."""
    from compvid.datasets import PairFiles

    train_set, test_set = video_set(train), video_set(test)
    test_set = align_classes(train_set, test_set)
    if not train_set.items or not test_set.items:
        raise ValueError("finetune reads video files (a folder or a (path, label) list), not shards")
    _check_sets(torch.tensor([lbl for _, lbl in train_set.items]), torch.tensor([lbl for _, lbl in test_set.items]))
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    torch.manual_seed(seed)
    encoder = load_encoder(checkpoint, view)
    from mvcgc.checkpoint import load_checkpoint

    spec = (load_checkpoint(checkpoint).get("input_spec") or {}).get(view) or {}
    num_frames = int(num_frames or spec.get("num_frames") or 16)
    size = int(size or spec.get("height") or 128)
    c = num_classes_of(torch.tensor([lbl for _, lbl in train_set.items + test_set.items]))
    model = VideoClassifier(encoder, c, batchnorm=batchnorm, dropout=dropout)
    pairs = PairFiles(list(train_set.items), num_frames=num_frames, size=size, views=view, seed=seed)
    loader = torch.utils.data.DataLoader(pairs, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                         drop_last=len(pairs) > batch_size,
                                         generator=torch.Generator().manual_seed(seed))

    def batches(epoch: int):
        pairs.set_epoch(epoch)
        for batch in loader:
            yield batch[view][:, 0], batch["label"]  # clip A of each video, (B, C, T, S, S)

    history = train_classifier(model, batches, mode="finetune", epochs=epochs, lr=lr, momentum=momentum,
                               weight_decay=weight_decay, plateau_patience=plateau_patience, device=dev,
                               on_epoch=on_epoch)
    model.eval()
    out = window_outputs(test_set, {view: model}, num_frames=num_frames, size=size, crops=crops, device=device,
                         num_workers=num_workers, cache_dir=cache_dir)[view]
    probs = video_probabilities(out.features, out.window_video, out.num_videos)
    meta = {"protocol": "finetune", "checkpoint": os.fspath(checkpoint), "view": view, "epochs": epochs, "lr": lr,
            "momentum": momentum, "weight_decay": weight_decay, "dropout": dropout, "batch_size": batch_size,
            "num_frames": num_frames, "size": size, "crops": crops, "seed": seed,
            "train": train_set.source, "test": test_set.source, "skipped_train_videos": pairs.skipped}
    preds = Predictions(probs, out.labels, list(out.keys), meta)
    return ClassifyResult(preds, preds.accuracy(), history, list(out.failed), meta)


def _check_sets(train_labels: torch.Tensor, test_labels: torch.Tensor) -> None:
    if len(train_labels) == 0 or len(test_labels) == 0:
        raise EmptyDataError("the train or test split is empty")
    check_shared_classes(test_labels, train_labels, what="test and train sets")
    if len(set(train_labels.tolist())) < 2:
        raise ValueError("the train set holds a single class; a classifier needs at least two")
