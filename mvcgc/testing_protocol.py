"""The classification test protocol: crops × sliding windows, softmax averaged per video.

Every window of a video is cut into crops (ten: 4 corners + centre, × flip); the classifier's softmax
probabilities of every (window, crop) are averaged per video, and top-1/top-5 accuracy is read off
the averaged probabilities. Two-view classification averages the RGB and MV probabilities per video.
Predictions are saved as JSON (keys, labels, probabilities, and what produced them) so two runs can
be fused later.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from mvcgc.errors import EmptyDataError, InvalidArgumentError, ResultsError

PREDICTIONS_FORMAT = "mvcgc.predictions"


def video_probabilities(logits: torch.Tensor, window_video: torch.Tensor, num_videos: int) -> torch.Tensor:
    """``logits (W, N, C)`` of W windows × N crops -> ``(V, C)``: the mean softmax per video.

    ``window_video (W,)`` gives each window's video (0..V-1). Every (window, crop) weighs the same.
    """
    if logits.dim() != 3 or window_video.shape != logits.shape[:1]:
        raise InvalidArgumentError(f"need logits (W, N, C) and window_video (W,), got {tuple(logits.shape)} and "
                                   f"{tuple(window_video.shape)}")
    probs = logits.double().softmax(dim=-1).mean(dim=1)  # (W, C), mean over crops
    sums = torch.zeros(num_videos, probs.shape[1], dtype=probs.dtype).index_add_(0, window_video, probs)  # (V, C)
    counts = torch.bincount(window_video, minlength=num_videos)  # (V,)
    if (counts == 0).any():
        raise InvalidArgumentError(f"videos {torch.nonzero(counts == 0).flatten().tolist()[:10]} have no window")
    return sums / counts[:, None]


def topk_accuracy(probs: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Share of videos whose label is among the ``k`` most probable classes (k capped at C)."""
    hits = topk_hits(probs, labels)
    return {k: hits[:, :k].any(dim=1).double().mean().item() for k in ks}


def topk_hits(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``(V, C)`` bool: column j says whether video v's label is its (j+1)-th most probable class."""
    if len(labels) == 0:
        raise EmptyDataError("no test videos to score")
    ranked = probs.argsort(dim=1, descending=True, stable=True)  # (V, C), ties: class order
    return ranked == labels[:, None]


@dataclass
class Predictions:
    """Per-video class probabilities ``probs (V, C)`` with ``labels (V,)``, ``keys`` and provenance."""

    probs: torch.Tensor
    labels: torch.Tensor
    keys: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def accuracy(self, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
        return topk_accuracy(self.probs, self.labels, ks)

    def top1_correct(self) -> list[int]:
        """Per video (in ``keys`` order): 1 where the most probable class is the label, else 0."""
        return topk_hits(self.probs, self.labels)[:, 0].int().tolist()

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON atomically (temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": PREDICTIONS_FORMAT, "keys": self.keys, "labels": self.labels.tolist(),
               "probs": self.probs.tolist(), "meta": self.meta}
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(doc) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Predictions":
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ResultsError(f"{path} is not a readable predictions file: {e}") from e
        if not isinstance(doc, dict) or doc.get("format") != PREDICTIONS_FORMAT:
            raise ResultsError(f"{path} is not an mvcgc predictions file (no format={PREDICTIONS_FORMAT!r})")
        return cls(torch.tensor(doc["probs"], dtype=torch.float64), torch.tensor(doc["labels"], dtype=torch.long),
                   list(doc["keys"]), dict(doc.get("meta", {})))


def fuse_predictions(*preds: Predictions) -> Predictions:
    """Two-view classification: the mean of the probabilities per video, over the videos all runs scored.

    Videos are matched by key; one left out by a run (it failed to decode there) is left out here.
    """
    if len(preds) < 2:
        raise InvalidArgumentError("give at least two prediction sets to fuse")
    classes = {p.probs.shape[1] for p in preds}
    if len(classes) != 1:
        raise ResultsError(f"prediction sets have different numbers of classes: {sorted(classes)}; "
                           "were they made on the same test set?")
    common = [k for k in preds[0].keys if all(k in set(p.keys) for p in preds[1:])]
    if not common:
        raise EmptyDataError("the prediction sets share no video key; were they made on the same test set?")
    rows = [{k: i for i, k in enumerate(p.keys)} for p in preds]
    labels = preds[0].labels[[rows[0][k] for k in common]]
    for p, row in zip(preds[1:], rows[1:]):
        if not torch.equal(p.labels[[row[k] for k in common]], labels):
            raise ResultsError("prediction sets disagree on the labels of the same videos; were they made on the same "
                               "test set, labelled the same way?")
    probs = torch.stack([p.probs[[row[k] for k in common]].double() for p, row in zip(preds, rows)]).mean(dim=0)
    return Predictions(probs, labels, common, {"fused": [p.meta for p in preds],
                                               "left_out": max(len(p.keys) for p in preds) - len(common)})
