"""The result files of the evaluation commands, which ``mvcgc report`` reads: one type each.

``mvcgc retrieve --json F`` writes a :class:`RetrievalFile`, ``mvcgc linear --json F`` a
:class:`LinearFile`; a run folder keeps them as ``results/retrieve-<stage>.json`` and
``results/linear-<stage>.json`` (:func:`result_name`; ``examples/demo.sh`` writes those names).
Each file keeps every test video's outcome, so the report can give each figure its interval.
Writer and reader share ``to_dict`` / ``from_dict``; a file without what the report needs (an
older version's) is a :class:`~mvcgc.errors.ResultsError` that says how to write it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from mvcgc.errors import ResultsError

Kind = Literal["retrieve", "linear"]


def result_name(kind: Kind, stage: str) -> str:
    """The file name of ``kind``'s results for a training stage in a run folder's ``results/``."""
    return f"{kind}-{stage}.json"


@dataclass(frozen=True)
class QueryOutcomes:
    """Per test video (a retrieval query): its key and label, and per view (and ``both``, the fused
    similarity) the 0-based rank of its first same-class train video, None where the train set has
    none of its class. ``gallery_labels``: the train videos' labels (for chance levels)."""

    keys: list[str]
    labels: list[int]
    gallery_labels: list[int]
    first_hit_rank: dict[str, list[int | None]]

    def hits(self, view: str, k: int) -> dict[str, int]:
        """``{video key: 1 if its first same-class train video is among the k nearest, else 0}``."""
        return {key: int(r is not None and r < k) for key, r in zip(self.keys, self.first_hit_rank[view])}


@dataclass(frozen=True)
class RetrievalFile:
    """What ``mvcgc retrieve --json`` writes: R@k (``recall`` fused, ``per_view``), the counts, the
    videos left out, the data, the evaluation's own record (``meta``: checkpoints, protocol) and
    per-query outcomes. JSON turns the ``k`` keys of ``recall`` into strings."""

    queries: QueryOutcomes
    recall: dict = field(default_factory=dict)
    per_view: dict = field(default_factory=dict)
    num_queries: int | None = None
    num_gallery: int | None = None
    failed_test: list[dict[str, str]] = field(default_factory=list)
    failed_train: list[dict[str, str]] = field(default_factory=list)
    train: Any = None
    test: Any = None
    meta: dict[str, Any] = field(default_factory=dict)  # written at the top level beside the fields

    @classmethod
    def from_result(cls, r, *, train: Any, test: Any) -> "RetrievalFile":
        """From :class:`mvcgc.evaluate.RetrievalResult` (unreached ranks are ``inf`` there, None here)."""
        ranks = {v: [None if math.isinf(x) else int(x) for x in rs] for v, rs in r.first_hit.items()}
        return cls(QueryOutcomes(list(r.query_keys), list(r.query_labels), list(r.gallery_labels), ranks),
                   recall=r.recall, per_view=r.per_view, num_queries=r.num_queries, num_gallery=r.num_gallery,
                   failed_test=r.failed_test, failed_train=r.failed_train, train=train, test=test, meta=r.meta)

    def to_dict(self) -> dict[str, Any]:
        q = self.queries
        return {"recall": self.recall, "per_view": self.per_view, "num_queries": self.num_queries,
                "num_gallery": self.num_gallery, "failed_test": self.failed_test, "failed_train": self.failed_train,
                "train": self.train, "test": self.test, **self.meta,
                "queries": {"keys": q.keys, "labels": q.labels, "gallery_labels": q.gallery_labels,
                            "first_hit_rank": q.first_hit_rank}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "retrieval results") -> "RetrievalFile":
        q = d.get("queries") if isinstance(d, Mapping) else None
        if not q:
            raise ResultsError(f"{source}: no per-query results; re-run `mvcgc retrieve --json` with this version")
        try:
            queries = QueryOutcomes(list(q["keys"]), [int(x) for x in q["labels"]],
                                    [int(x) for x in q["gallery_labels"]],
                                    {v: list(r) for v, r in q["first_hit_rank"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ResultsError(f"{source}: its per-query results are incomplete ({e!r}); re-run "
                               "`mvcgc retrieve --json` with this version") from e
        named = {"recall", "per_view", "num_queries", "num_gallery", "failed_test", "failed_train", "train", "test"}
        return cls(queries, **{k: d[k] for k in named if k in d},
                   meta={k: v for k, v in d.items() if k not in named | {"queries"}})


@dataclass(frozen=True)
class LinearView:
    """One probed view of ``mvcgc linear --json``: top-1/top-5 over the test videos and per video
    (``keys``) whether its top-1 class was right (``correct``, 0/1), the probe's last training
    epoch, the classes and the evaluation's own record (``meta``, written beside the fields)."""

    keys: list[str]
    correct: list[int]
    top1: float | None = None
    top5: float | None = None
    videos: int | None = None
    num_classes: int | None = None
    final_train_loss: float | None = None
    final_train_accuracy: float | None = None
    failed_test: list[dict[str, str]] = field(default_factory=list)
    train: Any = None
    test: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    _NAMED = ("top1", "top5", "videos", "failed_test", "final_train_loss", "final_train_accuracy", "keys",
              "correct", "num_classes", "train", "test")

    @classmethod
    def from_result(cls, res, *, train: Any, test: Any) -> "LinearView":
        """From :class:`mvcgc.classify.ClassifyResult` of one view."""
        last = res.history[-1] if res.history else None
        return cls(keys=list(res.predictions.keys), correct=res.predictions.top1_correct(), top1=res.accuracy[1],
                   top5=res.accuracy[5], videos=len(res.predictions.keys), num_classes=res.predictions.probs.shape[1],
                   final_train_loss=last.loss if last else None,
                   final_train_accuracy=last.train_accuracy if last else None, failed_test=res.failed,
                   train=train, test=test, meta=res.meta)

    def hits(self) -> dict[str, int]:
        """``{video key: 1 if its top-1 class was right, else 0}``."""
        return dict(zip(self.keys, self.correct))

    def to_dict(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self._NAMED}, **self.meta}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str) -> "LinearView":
        if not isinstance(d, Mapping) or "correct" not in d or "keys" not in d:
            raise ResultsError(f"{source}: no per-video results; re-run `mvcgc linear --json` with this version")
        return cls(**{k: d[k] for k in cls._NAMED if k in d},
                   meta={k: v for k, v in d.items() if k not in cls._NAMED})


@dataclass(frozen=True)
class LinearFile:
    """What ``mvcgc linear --json`` writes: one :class:`LinearView` per probed view (and ``both``)."""

    views: dict[str, LinearView]

    def to_dict(self) -> dict[str, Any]:
        return {name: v.to_dict() for name, v in self.views.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "linear results") -> "LinearFile":
        if not isinstance(d, Mapping):
            raise ResultsError(f"{source}: not a mapping of views; re-run `mvcgc linear --json` with this version")
        return cls({name: LinearView.from_dict(v, source=f"{source} ({name})") for name, v in d.items()})
