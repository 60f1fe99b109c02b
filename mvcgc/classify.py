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

import hashlib
import json
import logging
import math
import os
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, get_args

import torch
from torch import nn

from mvcgc.checkpoint import load_encoder, load_failure_reason
from mvcgc.errors import (CheckpointError, CheckpointNotFoundError, DataError, EmptyDataError, InvalidArgumentError,
                          NonFiniteLossError, SignalInterrupt, TrainingInterrupted)
from mvcgc.features import (Crops, Device, FeatureProgress, VideoSet, WindowFeatures, align_classes, file_sha256,
                            video_set, window_outputs)
from mvcgc.interrupt import StopRequests, raising_on_stop_signals
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
            raise InvalidArgumentError(f"need at least 2 classes, got {num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise InvalidArgumentError(f"dropout must be in [0, 1), got {dropout}")
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
        raise InvalidArgumentError(f"mode={mode!r}: allowed values are {', '.join(get_args(Mode))}")
    model.encoder.requires_grad_(mode == "finetune")
    model.head.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


@dataclass(frozen=True)
class StepReport:
    """After every optimiser step: ``step`` of ``total_steps`` (None: unknown) over the whole run."""

    step: int
    total_steps: int | None
    epoch: int
    loss: float


Batches = Callable[[int, int], Iterable[tuple[torch.Tensor, torch.Tensor]]]


class ClassifierTrainer:
    """SGD with momentum on ``model``'s trainable parameters (``mode``), LR / 10 when the epoch loss
    has not improved for ``plateau_patience`` epochs; :meth:`state` / :meth:`restore` continue a run
    exactly where it stopped (weights, optimiser, scheduler, RNG, the epoch's batches and sums)."""

    def __init__(self, model: VideoClassifier, *, mode: Mode, inputs: Literal["clips", "features"] = "clips",
                 lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-3, plateau_patience: int = 5,
                 device: torch.device | str = "cpu") -> None:
        params = set_mode(model, mode)
        if inputs == "features" and mode != "linear":
            raise InvalidArgumentError("training on cached features is only the linear probe (a frozen encoder); "
                                       "use mode='linear' or inputs='clips'")
        if not (math.isfinite(lr) and lr >= 0 and math.isfinite(weight_decay) and weight_decay >= 0):
            raise InvalidArgumentError(f"lr and weight_decay must be finite numbers >= 0, got lr={lr}, "
                                       f"weight_decay={weight_decay} (--lr, --weight-decay)")
        if not 0 <= momentum < 1:
            raise InvalidArgumentError(f"momentum must be in [0, 1), got {momentum}")
        self.model, self.mode, self.inputs, self.device = model, mode, inputs, device
        model.to(device)
        self.optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, mode="min", factor=0.1,
                                                                    patience=plateau_patience)
        # epoch and batch to run next; the current epoch's loss sum, right answers and samples
        self.t: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0}
        self.history: list[EpochReport] = []

    def state(self) -> dict[str, Any]:
        """Everything a resumed run needs (plain types and tensors: loadable with ``weights_only``)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
                "trainer": dict(self.t), "history": [asdict(r) for r in self.history]}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.t = dict(state["trainer"])
        self.history = [EpochReport(**r) for r in state["history"]]

    def train(
        self,
        batches: Batches,
        *,
        epochs: int,
        steps_per_epoch: int | None = None,
        on_epoch: Callable[[EpochReport], None] | None = None,
        on_step: Callable[[StepReport], None] | None = None,
        stop: StopRequests | None = None,
        save_state: Callable[[dict[str, Any]], os.PathLike] | None = None,
    ) -> list[EpochReport]:
        """Train until ``epochs`` epochs are done; ``batches(epoch, start)`` yields ``(x, y)`` from the
        epoch's batch ``start`` on (clips ``(B, C, T, H, W)`` or, in linear mode, features ``(B, D)``).

        ``stop`` (entered here): after a SIGINT/SIGTERM the current step finishes, ``save_state``
        writes :meth:`state` and :class:`~mvcgc.errors.TrainingInterrupted` is raised; a second
        signal stops at once (nothing saved)."""
        if epochs < 1:
            raise InvalidArgumentError(f"epochs must be >= 1, got {epochs}")
        if stop is not None and save_state is None:
            raise InvalidArgumentError("stop needs save_state: where an interrupted run is saved")
        model, t, criterion = self.model, self.t, nn.CrossEntropyLoss()
        total_steps = epochs * steps_per_epoch if steps_per_epoch is not None else None
        try:
            with stop if stop is not None else nullcontext():
                while t["epoch"] < epochs:
                    epoch = t["epoch"]
                    model.train()
                    if self.mode == "linear":
                        model.encoder.eval()  # frozen backbone: BatchNorm statistics stay those of pretraining
                    for x, y in batches(epoch, t["batch"]):
                        loss, right = self._step(x, y, criterion, epoch)
                        t["batch"], t["step"] = t["batch"] + 1, t["step"] + 1
                        t["loss_sum"] += loss * len(y)
                        t["correct"] += right
                        t["seen"] += len(y)
                        if on_step is not None:
                            on_step(StepReport(t["step"], total_steps, epoch, loss))
                        signum = stop.agreed(torch.device(self.device)) if stop is not None else None
                        if signum is not None:
                            path = save_state(self.state())  # type: ignore[misc]
                            raise TrainingInterrupted(signum, step=t["step"], checkpoint=path,
                                                      checkpoint_step=t["step"], saved_now=True)
                    if t["seen"] == 0:
                        raise EmptyDataError(f"no training batch in epoch {epoch}; is the train split empty?")
                    self.scheduler.step(t["loss_sum"] / t["seen"])
                    report = EpochReport(epoch=epoch + 1, epochs=epochs, loss=t["loss_sum"] / t["seen"],
                                         lr=self.optimizer.param_groups[0]["lr"],
                                         train_accuracy=t["correct"] / t["seen"])
                    self.history.append(report)
                    t.update(epoch=epoch + 1, batch=0, loss_sum=0.0, correct=0, seen=0)
                    if on_epoch is not None:
                        on_epoch(report)
                if stop is not None and stop.signal_number is not None:  # came after the last step's check
                    raise TrainingInterrupted(stop.signal_number, step=t["step"],
                                              checkpoint=save_state(self.state()),  # type: ignore[misc]
                                              checkpoint_step=t["step"], saved_now=True)
        except SignalInterrupt as e:  # a second signal: stop now, the steps since the start are lost
            raise TrainingInterrupted(e.signal_number, step=t["step"], checkpoint=None, checkpoint_step=None,
                                      saved_now=False) from None
        return list(self.history)

    def _step(self, x: torch.Tensor, y: torch.Tensor, criterion: nn.Module, epoch: int) -> tuple[float, int]:
        """One SGD step; the batch's mean loss and its right answers."""
        x, y = x.to(self.device).float(), y.to(self.device)
        logits = self.model.head(x) if self.inputs == "features" else self.model(x)  # (B, num_classes)
        loss = criterion(logits, y)
        if not math.isfinite(loss.item()):
            raise NonFiniteLossError(f"classifier loss became {loss.item()} in epoch {epoch}; try a lower lr")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.item(), int((logits.argmax(1) == y).sum().item())


def train_classifier(
    model: VideoClassifier,
    batches: Batches,
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
    on_step: Callable[[StepReport], None] | None = None,
) -> list[EpochReport]:
    """SGD over ``batches(epoch, start)`` (``(x, y)``: clips ``(B, C, T, H, W)`` or, in linear mode,
    pooled features ``(B, D)``; ``start`` is 0 here) for ``epochs`` epochs; LR / 10 when the epoch loss
    has not improved for ``plateau_patience`` epochs. In linear mode the encoder stays in eval mode
    throughout. :class:`ClassifierTrainer` does the same and can stop and resume."""
    trainer = ClassifierTrainer(model, mode=mode, inputs=inputs, lr=lr, momentum=momentum,
                                weight_decay=weight_decay, plateau_patience=plateau_patience, device=device)
    return trainer.train(batches, epochs=epochs, on_epoch=on_epoch, on_step=on_step)


def feature_batches(features: torch.Tensor, labels: torch.Tensor, *, batch_size: int, seed: int = 0) -> Batches:
    """``batches(epoch, start)`` over rows of ``features (S, D)``, shuffled by ``(seed, epoch)``, from
    the epoch's batch ``start`` on.

    A last batch of one sample is dropped (BatchNorm cannot train on it)."""
    if len(features) == 0:
        raise EmptyDataError("no training features; is the train split empty?")

    def batches(epoch: int, start: int = 0):
        for idx in epoch_batches(len(features), batch_size, seed=seed, epoch=epoch)[start:]:
            yield features[idx], labels[idx]

    return batches


def epoch_batches(n: int, batch_size: int, *, seed: int, epoch: int, drop_last: bool = False) -> list[list[int]]:
    """The epoch's batches of sample indices: a permutation seeded by ``(seed, epoch)``, cut every
    ``batch_size``; a last batch of one sample (of more than one) is dropped, as BatchNorm cannot
    train on it, and with ``drop_last`` any short last batch."""
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be >= 1, got {batch_size} (--batch-size)")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if out and (len(out[-1]) == 1 < n or (drop_last and len(out[-1]) < batch_size < n)):
        out.pop()
    return out


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


FINETUNE_STATE_FORMAT = "mvcgc.finetune-state"


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
    crop_px: int | None = None,
    crops: Crops = "ten",
    device: Device = "auto",
    num_workers: int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    state_dir: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_step: Callable[[StepReport], None] | None = None,
    on_progress: Callable[[FeatureProgress], None] | None = None,
) -> ClassifyResult:
    """Fine-tune the whole ``view`` encoder of ``checkpoint`` with a new classifier on ``train`` videos
    (one random, augmented clip per video per epoch: compvid's training clips), then test on every
    window × ``crops`` of ``test``, softmax averaged per video, at the final epoch. ``num_frames`` and
    ``crop_px`` (the clip side, pixels) default to the checkpoint's
    (:func:`mvcgc.checkpoint.evaluation_request`). ``cache_dir``:
    where the decoded test windows are kept for the next run (see :mod:`mvcgc.features`).

    With ``state_dir``, SIGINT or SIGTERM stops after the current step (or during the test pass)
    and saves the run to :func:`finetune_state_path` there, then raises
    :class:`~mvcgc.errors.TrainingInterrupted`; ``resume`` (that file) continues exactly: the same
    losses, weights and predictions as a run never stopped. The file is removed when the run ends.
    ``on_step`` follows the training steps, ``on_progress`` the test pass.
    """
    from compvid.datasets import PairFiles
    from mvcgc.checkpoint import evaluation_request, save_checkpoint

    train_set, test_set = video_set(train), video_set(test)
    test_set = align_classes(train_set, test_set)
    if not train_set.items or not test_set.items:
        raise InvalidArgumentError("finetune reads video files (a folder of <class>/<video> files or a (path, label) "
                                   "list), not shards: pass --train and --test folders")
    _check_sets(torch.tensor([lbl for _, lbl in train_set.items]), torch.tensor([lbl for _, lbl in test_set.items]))
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    torch.manual_seed(seed)
    encoder = load_encoder(checkpoint, view)
    request = evaluation_request(checkpoint, view, num_frames=num_frames, crop_px=crop_px)
    c = num_classes_of(torch.tensor([lbl for _, lbl in train_set.items + test_set.items]))
    model = VideoClassifier(encoder, c, batchnorm=batchnorm, dropout=dropout)
    # one random, augmented clip per video: the clip A that a pretraining pair would hold
    pairs = PairFiles(list(train_set.items), request=request, seed=seed, clips_per_video=1)
    drop_last = len(pairs) > batch_size
    steps_per_epoch = len(epoch_batches(len(pairs), batch_size, seed=seed, epoch=0, drop_last=drop_last))

    def batches(epoch: int, start: int):
        pairs.set_epoch(epoch)
        plan = epoch_batches(len(pairs), batch_size, seed=seed, epoch=epoch, drop_last=drop_last)[start:]
        # a loader per epoch, seeded by it: resuming mid-epoch needs no state of an earlier loader
        loader = torch.utils.data.DataLoader(pairs, batch_sampler=plan, num_workers=num_workers,
                                             generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        for batch in loader:
            yield batch[view][:, 0], batch["label"]  # the one clip of each video, (B, C, T, S, S)

    options = {"checkpoint_sha256": file_sha256(checkpoint), "view": view, "epochs": epochs, "lr": lr,
               "momentum": momentum, "weight_decay": weight_decay, "dropout": dropout, "batchnorm": batchnorm,
               "batch_size": batch_size, "plateau_patience": plateau_patience, "num_frames": request.num_frames,
               "size": request.crop_px, "crops": crops, "seed": seed, "train": train_set.fingerprint(),
               "test": test_set.fingerprint()}
    state_path = None if state_dir is None else finetune_state_path(state_dir, options)
    trainer = ClassifierTrainer(model, mode="finetune", lr=lr, momentum=momentum, weight_decay=weight_decay,
                                plateau_patience=plateau_patience, device=dev)
    if resume is not None:
        trainer.restore(_read_finetune_state(resume, options))

    def save_state(state: dict[str, Any]) -> os.PathLike:
        if state_path is None:
            raise InvalidArgumentError("no state_dir to save the run to; pass state_dir (--state-dir)")
        return save_checkpoint({"format": FINETUNE_STATE_FORMAT, "run_key": _run_key(options),
                                "options_json": json.dumps(options), **state}, state_path)

    stop = StopRequests() if state_dir is not None else None
    history = trainer.train(batches, epochs=epochs, steps_per_epoch=steps_per_epoch, on_epoch=on_epoch,
                            on_step=on_step, stop=stop, save_state=save_state)
    model.eval()
    try:
        with raising_on_stop_signals() if state_dir is not None else nullcontext():
            out = window_outputs(test_set, {view: model}, request=request, crops=crops, device=device,
                                 num_workers=num_workers, cache_dir=cache_dir, on_progress=on_progress)[view]
    except SignalInterrupt as e:  # testing: the trained run is saved, resuming only tests again
        step = trainer.t["step"]
        raise TrainingInterrupted(e.signal_number, step=step, checkpoint=save_state(trainer.state()),
                                  checkpoint_step=step, saved_now=True) from None
    if state_path is not None:
        Path(state_path).unlink(missing_ok=True)  # the run is over: nothing left to resume
    probs = video_probabilities(out.features, out.window_video, out.num_videos)
    meta = {"protocol": "finetune", "checkpoint": os.fspath(checkpoint), "view": view, "epochs": epochs, "lr": lr,
            "momentum": momentum, "weight_decay": weight_decay, "dropout": dropout, "batch_size": batch_size,
            "num_frames": request.num_frames, "size": request.crop_px, "crops": crops, "seed": seed,
            "train": train_set.source, "test": test_set.source, "skipped_train_videos": pairs.skipped,
            "resumed_from": None if resume is None else os.fspath(resume)}
    preds = Predictions(probs, out.labels, list(out.keys), meta)
    return ClassifyResult(preds, preds.accuracy(), history, list(out.failed), meta)


def finetune_state_path(state_dir: str | os.PathLike, options: Mapping[str, Any]) -> Path:
    """Where a fine-tuning run with these options saves itself: one file per run, so runs never clash."""
    return Path(state_dir) / f"finetune-{_run_key(options)}.pt"


def _run_key(options: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:32]


def _read_finetune_state(path: str | os.PathLike, options: Mapping[str, Any]) -> dict[str, Any]:
    """The saved state at ``path``, checked to be of a run with exactly these options."""
    if not Path(path).is_file():
        raise CheckpointNotFoundError(f"--resume {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - damaged or foreign: one line, never an unsafe load
        raise CheckpointError(f"--resume {path}: not a readable fine-tuning state ({load_failure_reason(e)})") from e
    if not isinstance(state, dict) or state.get("format") != FINETUNE_STATE_FORMAT:
        raise CheckpointError(f"--resume {path}: not a fine-tuning state (an interrupted `mvcgc finetune` "
                              "writes one and prints its path)")
    if state.get("run_key") != _run_key(options):
        saved = json.loads(state.get("options_json", "{}"))
        differ = sorted(k for k in set(saved) | set(options) if saved.get(k) != options.get(k))
        raise CheckpointError(f"--resume {path}: saved by a run with other options or data ({', '.join(differ)} "
                              "differ); resume with the command it printed, or start again without --resume")
    return state


def _check_sets(train_labels: torch.Tensor, test_labels: torch.Tensor) -> None:
    if len(train_labels) == 0 or len(test_labels) == 0:
        raise EmptyDataError("the train or test split is empty")
    check_shared_classes(test_labels, train_labels, what="test and train sets")
    if len(set(train_labels.tolist())) < 2:
        raise DataError("the train set holds a single class; a classifier needs at least two (is --train a folder "
                        "of <class>/<video> files with one subfolder per class?)")
