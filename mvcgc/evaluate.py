"""Evaluation runs behind ``mvcgc retrieve`` and ``mvcgc linear``: checkpoints + train/test sets in,
figures with their provenance out.

Both extract (or load from the cache) the pooled backbone features of every window of the train
and test videos (:mod:`mvcgc.features`; with ``cache_dir`` the decoded windows are kept too, so
another checkpoint on the same videos is scored without decoding), leave out videos that failed to
decode in any view, check that the two sets share classes, and score: R@k (:mod:`mvcgc.retrieval`)
or a linear probe tested with crops × windows (:mod:`mvcgc.classify`). ``view="both"`` sums the RGB and MV similarity
matrices (retrieval) or averages the RGB and MV probabilities (classification).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence, get_args

from mvcgc.checkpoint import load_checkpoint
from mvcgc.classify import ClassifyResult, EpochReport, linear_probe
from mvcgc.errors import CheckpointError, InvalidArgumentError
from mvcgc.features import (
    Crops,
    Device,
    FeatureProgress,
    VideoSet,
    WindowFeatures,
    align_classes,
    plan_features,
    run_features,
    video_set,
)
from mvcgc.provenance import package_versions
from mvcgc.retrieval import (
    DEFAULT_KS,
    check_shared_classes,
    first_hit_ranks,
    fuse_similarities,
    recall_from_ranks,
    similarity,
)
from mvcgc.testing_protocol import fuse_predictions

EvalView = Literal["rgb", "mv", "both"]
Data = VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]]


def resolve_checkpoints(paths: Sequence[str | os.PathLike], view: EvalView) -> dict[str, str]:
    """``{view: checkpoint}`` for the views ``view`` needs: the first of ``paths`` holding each one."""
    if view not in get_args(EvalView):
        raise InvalidArgumentError(f"view={view!r}: allowed values are {', '.join(get_args(EvalView))}")
    if not paths:
        raise InvalidArgumentError("give at least one checkpoint (--ckpt PATH)")
    needed = ("rgb", "mv") if view == "both" else (view,)
    held = {os.fspath(p): load_checkpoint(p)["views"] for p in paths}
    out = {}
    for v in needed:
        holder = next((p for p, views in held.items() if v in views), None)
        if holder is None:
            listing = "; ".join(f"{p} holds {views}" for p, views in held.items())
            raise CheckpointError(f"no checkpoint holds the {v!r} encoder needed for view {view!r} ({listing})")
        out[v] = holder
    return out


@dataclass
class EvalFeatures:
    """Train and test features per view, restricted to videos every view decoded."""

    train: dict[str, WindowFeatures]
    test: dict[str, WindowFeatures]
    failed_train: list[dict[str, str]] = field(default_factory=list)
    failed_test: list[dict[str, str]] = field(default_factory=list)


# plan_features' keywords that eval_features passes through; run_retrieval / run_linear pass these
# and eval_features' own run options
WINDOW_OPTIONS = ("num_frames", "crop_px", "frame_step", "stride", "cache_dir")
FEATURE_OPTIONS = WINDOW_OPTIONS + ("device", "num_workers", "on_progress")


def _check_options(given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """An unknown pass-through keyword is named here, before any checkpoint or video is read."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidArgumentError(f"unknown option(s) {', '.join(unknown)}; the options passed on are "
                                   f"{', '.join(allowed)}")


def eval_features(
    train: Data,
    test: Data,
    *,
    checkpoints: Mapping[str, str | os.PathLike],
    train_crops: Crops = "center",
    test_crops: Crops = "center",
    device: Device = "auto",
    num_workers: int = 0,
    on_progress: Callable[[str, FeatureProgress], None] | None = None,
    **window_options: Any,
) -> EvalFeatures:
    """Features of the train and test sets for each view of ``checkpoints`` (cached), aligned.

    ``window_options`` are :func:`mvcgc.features.plan_features`'s window protocol and cache
    (``num_frames``, ``crop_px``, ``frame_step``, ``stride``, ``cache_dir``: documented there), the
    same for both splits; ``train_crops`` / ``test_crops`` are its ``crops`` for each split.
    ``device`` and ``num_workers`` run the decoding passes (:func:`mvcgc.features.run_features`).
    ``on_progress(split, FeatureProgress)``: ``done`` and ``total`` count the videos of every
    decoding pass of both splits (cached features need none), so one bar can show the whole job.
    :func:`run_retrieval` and :func:`run_linear` pass these keywords on unchanged.
    """
    _check_options(window_options, WINDOW_OPTIONS)
    train_set = video_set(train)
    test_set = align_classes(train_set, video_set(test))
    plans = {split: plan_features(vs, checkpoints=checkpoints, crops=crops, **window_options)
             for split, vs, crops in (("train", train_set, train_crops), ("test", test_set, test_crops))}
    works = [p.work for p in plans.values()]
    total = None if None in works else sum(works)
    done_before = 0
    sets = {}
    for split, plan in plans.items():
        last = [0]

        def progress(p: FeatureProgress, split: str = split, base: int = done_before) -> None:
            last[0] = p.done
            if on_progress is not None:
                on_progress(split, FeatureProgress(p.views, base + p.done, total, p.windows))

        feats = run_features(plan, device=device, num_workers=num_workers, on_progress=progress)
        done_before += last[0]
        # a video that failed in one view is left out of every view's figures
        common = [k for k in next(iter(feats.values())).keys if all(k in set(f.keys) for f in feats.values())]
        failed = {f["key"]: f for fs in feats.values() for f in fs.failed}
        sets[split] = ({v: f.subset(common) for v, f in feats.items()}, list(failed.values()))
    (tr, ftr), (te, fte) = sets["train"], sets["test"]
    first = next(iter(tr))
    check_shared_classes(te[first].labels, tr[first].labels, what="test and train sets")
    return EvalFeatures(tr, te, ftr, fte)


@dataclass
class RetrievalResult:
    recall: dict[int, float]  # {k: R@k}
    per_view: dict[str, dict[int, float]]  # each view alone
    num_queries: int
    num_gallery: int
    failed_test: list[dict[str, str]]
    failed_train: list[dict[str, str]]
    meta: dict[str, Any]
    # per test video (query): its key and the 0-based rank of its first same-class train video,
    # per view and for the fused similarity ("both"); inf where the train set lacks the class
    query_keys: list[str] = field(default_factory=list)
    query_labels: list[int] = field(default_factory=list)
    gallery_labels: list[int] = field(default_factory=list)
    first_hit: dict[str, list[float]] = field(default_factory=dict)


def run_retrieval(
    train: Data,
    test: Data,
    *,
    checkpoints: Sequence[str | os.PathLike],
    view: EvalView = "rgb",
    ks: Sequence[int] = DEFAULT_KS,
    crops: Crops = "center",
    **feature_options: Any,
) -> RetrievalResult:
    """Test videos query train videos; R@k for ``view`` (``both``: RGB + MV similarities summed).

    ``crops`` serve both splits; ``feature_options`` are :func:`eval_features`'s (window protocol,
    cache, device, workers, progress)."""
    _check_options(feature_options, FEATURE_OPTIONS)
    ckpts = resolve_checkpoints(checkpoints, view)
    ef = eval_features(train, test, checkpoints=ckpts, train_crops=crops, test_crops=crops, **feature_options)
    sims = {v: similarity(ef.test[v].video_features(), ef.train[v].video_features()) for v in ckpts}  # (Q, G)
    first = next(iter(ckpts))
    ql, gl = ef.test[first].labels, ef.train[first].labels
    if len(sims) > 1:
        sims["both"] = fuse_similarities(*sims.values())
    ranks = {v: first_hit_ranks(s, ql, gl) for v, s in sims.items()}  # {view: (Q,)}
    recall_of = {v: recall_from_ranks(r, ks=ks) for v, r in ranks.items()}
    per_view = {v: recall_of[v] for v in ckpts}
    recall = recall_of["both" if len(ckpts) > 1 else first]
    meta = {"task": "retrieval", "view": view, "ks": list(ks), "checkpoints": ckpts,
            "features": {v: {"train": ef.train[v].meta, "test": ef.test[v].meta} for v in ckpts},
            "versions": package_versions()}
    return RetrievalResult(recall, per_view, len(ql), len(gl), ef.failed_test, ef.failed_train, meta,
                           query_keys=list(ef.test[first].keys), query_labels=ql.tolist(),
                           gallery_labels=gl.tolist(), first_hit={v: r.tolist() for v, r in ranks.items()})


def run_linear(
    train: Data,
    test: Data,
    *,
    checkpoints: Sequence[str | os.PathLike],
    view: EvalView = "rgb",
    epochs: int = 100,
    lr: float = 0.1,
    weight_decay: float = 0.0,
    batchnorm: bool = True,
    batch_size: int = 64,
    train_crops: Crops = "center",
    test_crops: Crops = "ten",
    seed: int = 0,
    on_epoch: Callable[[str, EpochReport], None] | None = None,
    **feature_options: Any,
) -> dict[str, ClassifyResult]:
    """Linear probe per view (frozen encoder, cached features); ``both`` adds ``"both"``, the mean of
    the RGB and MV probabilities. Returns ``{view: ClassifyResult}``.

    ``epochs`` ... ``seed`` and ``on_epoch(view, EpochReport)`` are the probe's
    (:func:`mvcgc.classify.linear_probe`); ``feature_options`` are :func:`eval_features`'s."""
    _check_options(feature_options, FEATURE_OPTIONS)
    ckpts = resolve_checkpoints(checkpoints, view)
    ef = eval_features(train, test, checkpoints=ckpts, train_crops=train_crops, test_crops=test_crops,
                       **feature_options)
    results = {}
    for v in ckpts:
        results[v] = linear_probe(ef.train[v], ef.test[v], epochs=epochs, lr=lr, weight_decay=weight_decay,
                                  batchnorm=batchnorm, batch_size=batch_size, seed=seed,
                                  on_epoch=None if on_epoch is None else (lambda r, v=v: on_epoch(v, r)))
        results[v].failed = ef.failed_test
        results[v].meta["versions"] = package_versions()
    if len(ckpts) > 1:
        fused = fuse_predictions(*(results[v].predictions for v in ckpts))
        results["both"] = ClassifyResult(fused, fused.accuracy(), [], ef.failed_test, fused.meta)
    return results
