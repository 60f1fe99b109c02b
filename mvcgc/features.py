"""Evaluation features: pooled backbone features of every sliding window × crop of every video.

``extract_features(videos, checkpoints={"rgb": "last.pt"}, crops="ten")`` runs each view's frozen
query encoder (eval mode, ``forward_features`` -- the pooled backbone feature, never the projection
head) over compvid's evaluation windows and returns one :class:`WindowFeatures` per view:

- ``features``: float32 ``(W, N, D)`` -- W windows of all videos, N crops per window, D = feature_dim;
- ``window_video``: int64 ``(W,)`` -- the video (row of ``labels``/``keys``) each window belongs to;
- ``labels`` int64 ``(V,)``, ``keys`` (V paths or shard keys), ``failed`` (videos left out, with why).

A video whose probe or any window fails to decode is left out of every figure and listed in
``failed``. ``video_features()`` gives the retrieval feature: the mean over windows (and crops) of
the L2-normalised window features, ``(V, D)``.

Two caches live under ``cache_dir``:

- features, ``<view>-<key>.pt``, per (checkpoint, data, view, protocol): the key holds the
  checkpoint's sha256, every input file's path, size and mtime, the labels and every option, so
  changing any of them extracts again;
- decoded windows, ``windows-<key>.pt``, per (data, num_frames, frame_step, size, short side,
  stride, views) and independent of the checkpoint and of ``crops``: the first pass stores every
  window as decoded (RGB uint8 ``(T, H, W, 3)`` at short side ``size``, before resizing, cropping
  and normalising; MV float32 ``(2, T, H, W)``, pixels per frame step) with the failed videos'
  records; later passes (another checkpoint, other crops) read them instead of decoding, cut the
  crops as compvid does and give bit-identical outputs. About 1 MB per window at size 64, both views;
  the first pass keeps them in memory until it writes the file, later passes memory-map it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence, get_args

import torch
from torch.utils.data import DataLoader, Dataset

import compvid
from compvid.datasets import WindowFiles, WindowStream, expand_urls
from compvid.layouts import parse_layout
from compvid.pipeline import WindowClips
from compvid.probe import VideoInfo
from compvid.request import ALL_VIEWS, ClipRequest
from compvid.shards import videos_in_shards
from compvid.source import VideoSource
from mvcgc.checkpoint import evaluation_request, load_encoder
from mvcgc.errors import EmptyDataError, InvalidArgumentError
from mvcgc.models import VideoEncoder

log = logging.getLogger(__name__)

View = Literal["rgb", "mv"]
Crops = Literal["center", "three", "ten"]
Device = Literal["auto", "cpu", "cuda"]
FEATURES_FORMAT = "mvcgc.features"
FEATURES_VERSION = 1
WINDOWS_FORMAT = "mvcgc.windows"
WINDOWS_VERSION = 2  # 2: failures are records among the items (with key and window index)
# The first pass holds the decoded windows in memory until it writes them: beyond this many bytes
# (a large data set) it keeps none and every pass decodes, as without a cache.
WINDOW_CACHE_MAX_BYTES = 4 * 2**30
_SHARD_SUFFIXES = (".tar", ".tgz", ".tar.gz")


@dataclass(frozen=True)
class VideoSet:
    """Videos to evaluate: ``items`` ``[(path, label)]`` of files, or WebDataset shard ``urls``.

    ``class_names[label]`` names a label where known (folders of class subfolders).
    """

    items: tuple[tuple[str, int], ...] = ()
    urls: tuple[str, ...] = ()
    class_names: tuple[str, ...] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if bool(self.items) == bool(self.urls):
            raise EmptyDataError(f"{self.source or 'video set'}: no videos (or both files and shards) given")

    def __len__(self) -> int:
        return len(self.items)

    def fingerprint(self) -> list:
        """What identifies the data: every file's (path, size, mtime_ns) and label, or every shard's."""
        if self.items:
            return [[*_file_stamp(path), label] for path, label in self.items]
        return [list(_file_stamp(url)) if os.path.exists(url) else [url] for url in self.urls]


def video_set(spec: str | os.PathLike | Sequence[tuple[str | os.PathLike, int]] | VideoSet) -> VideoSet:
    """A :class:`VideoSet` from a folder of ``<class>/<video>``, shard URLs (``x.tar``,
    ``train-{000..009}.tar``, ``a.tar::b.tar``) or a list of ``(path, label)``."""
    if isinstance(spec, VideoSet):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if not text.strip():
            raise EmptyDataError("no data given (an empty path); pass a folder of <class>/<video> files or shard URLs")
        if Path(text).is_dir():
            parsed = parse_layout(text, layout="generic")
            for p in parsed.problems:
                log.warning("%s: left out (%s: %s)", Path(text) / p.path, p.reason, p.detail)
            entries = sorted(parsed.entries, key=lambda e: e.path)
            if not entries:
                raise EmptyDataError(f"{text}: no videos found (expected <class>/<video> files)")
            names = {e.label: e.class_name for e in entries}
            class_names = tuple(names.get(i, f"class{i}") for i in range(max(names) + 1))
            items = tuple((os.fspath(Path(text) / e.path), int(e.label)) for e in entries)
            return VideoSet(items=items, class_names=class_names, source=text)
        if text.endswith(_SHARD_SUFFIXES) or "{" in text or "::" in text:
            return VideoSet(urls=tuple(expand_urls(text)), source=text)
        raise EmptyDataError(f"{text}: not a folder of <class>/<video> files nor WebDataset shard URLs (.tar)")
    items = tuple((os.fspath(p), int(label)) for p, label in spec)
    if not items:
        raise EmptyDataError("the list of (path, label) is empty")
    return VideoSet(items=items, source="list")


def align_classes(reference: VideoSet, other: VideoSet) -> VideoSet:
    """``other`` relabelled so that class names mean the same label as in ``reference``.

    Folders number their classes by sorted name, so a test folder missing a class would shift
    labels; classes unknown to ``reference`` get labels after its own. Sets without class names
    (shards, lists) keep their labels.
    """
    if reference.class_names is None or other.class_names is None or not other.items:
        return other
    if reference.class_names == other.class_names:
        return other
    index = {name: i for i, name in enumerate(reference.class_names)}
    names = list(reference.class_names)
    for name in other.class_names:
        if name not in index:
            index[name] = len(names)
            names.append(name)
    items = tuple((path, index[other.class_names[label]]) for path, label in other.items)
    return VideoSet(items=items, class_names=tuple(names), source=other.source)


@dataclass
class WindowFeatures:
    """Features of every window × crop of the videos that decoded (see the module docstring)."""

    features: torch.Tensor  # float32 (W, N, D)
    window_video: torch.Tensor  # int64 (W,)
    labels: torch.Tensor  # int64 (V,)
    keys: list[str]
    failed: list[dict[str, str]] = field(default_factory=list)  # [{"key", "reason"}]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_videos(self) -> int:
        return len(self.keys)

    def video_features(self) -> torch.Tensor:
        """``(V, D)``: mean over each video's windows and crops of the L2-normalised features."""
        f = torch.nn.functional.normalize(self.features.float(), dim=-1).mean(dim=1)  # (W, D)
        out = torch.zeros(self.num_videos, f.shape[1]).index_add_(0, self.window_video, f)  # (V, D)
        counts = torch.bincount(self.window_video, minlength=self.num_videos).clamp_min(1)  # (V,)
        return out / counts[:, None]

    def subset(self, keys: Sequence[str]) -> "WindowFeatures":
        """The videos ``keys`` (in that order), e.g. those every view decoded."""
        row = {k: i for i, k in enumerate(self.keys)}
        old = torch.tensor([row[k] for k in keys], dtype=torch.long)
        new_of_old = torch.full((self.num_videos,), -1, dtype=torch.long)
        new_of_old[old] = torch.arange(len(keys))
        mapped = new_of_old[self.window_video]
        keep = mapped >= 0
        return WindowFeatures(self.features[keep], mapped[keep], self.labels[old], list(keys), list(self.failed),
                              dict(self.meta))

    def to_payload(self) -> dict[str, Any]:
        return {"format": FEATURES_FORMAT, "format_version": FEATURES_VERSION, "features": self.features,
                "window_video": self.window_video, "labels": self.labels, "keys": list(self.keys),
                "failed": [dict(f) for f in self.failed], "meta_json": json.dumps(self.meta)}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> "WindowFeatures":
        return cls(payload["features"], payload["window_video"], payload["labels"], list(payload["keys"]),
                   [dict(f) for f in payload["failed"]], json.loads(payload["meta_json"]))


@dataclass(frozen=True)
class FeatureProgress:
    """Reported as a decoding pass goes, after every window.

    ``done`` of ``total`` videos are finished (all their windows seen, or failed), counted over every
    pass of the call: a video counts once per pass, and views that share window options share a pass.
    ``total`` is None where a shard set's size is unknown (remote shards, no ``index.json``).
    ``views``: the views of the current pass; ``windows``: its windows so far.
    """

    views: tuple[str, ...]
    done: int
    total: int | None
    windows: int


def count_videos(videos: VideoSet) -> int | None:
    """Videos in the set: the files, or what the shards' ``index.json`` lists (None: unknown)."""
    return len(videos.items) if videos.items else videos_in_shards(videos.urls)


@dataclass
class FeaturePass:
    """One decoding pass: the clips (``request`` of every view in it), window options, and the
    views (encoder, provenance) computed in it."""

    request: ClipRequest
    stride: int | None
    crops: Crops
    encoders: dict[str, tuple[VideoEncoder, dict[str, Any]]]


@dataclass
class FeaturePlan:
    """What :func:`extract_features` does for one video set: the views it reads from the feature
    cache (``cached``) and the decoding passes it runs for the others (``passes``)."""

    videos: VideoSet
    views: tuple[str, ...]  # in the caller's order
    cached: dict[str, WindowFeatures]
    passes: list[FeaturePass]
    cache_dir: str | os.PathLike | None

    @property
    def work(self) -> int | None:
        """Videos to decode over all passes (0 when every view is cached; None when unknown)."""
        if not self.passes:
            return 0
        n = count_videos(self.videos)
        return None if n is None else n * len(self.passes)


def plan_features(
    videos: VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]],
    *,
    checkpoints: Mapping[str, str | os.PathLike],
    num_frames: int | None = None,
    crop_px: int | None = None,
    frame_step: int | None = None,
    stride: int | None = None,
    crops: Crops = "center",
    cache_dir: str | os.PathLike | None = None,
) -> FeaturePlan:
    """Load the encoders, read cached features, and group the other views into decoding passes;
    :func:`run_features` carries the plan out.

    ``checkpoints``: ``{view: path}``. ``num_frames``, ``crop_px`` (the side of each crop, pixels)
    and ``frame_step`` default to what the checkpoint's encoder was trained on
    (:func:`mvcgc.checkpoint.evaluation_request`); windows start every ``stride`` frames (default
    half a clip); ``crops``: 'center' (1), 'three' (3) or 'ten' (4 corners + centre, × flip, which
    negates MV x). Views that share these settings are decoded in one pass. ``cache_dir``: where
    features and decoded windows are kept (None: no cache); a new checkpoint on the same videos
    and protocol reads the windows there.
    """
    videos = video_set(videos)
    _check_choice("crops", crops, Crops)
    for view in checkpoints:
        _check_choice("view", view, View)
    if not checkpoints:
        raise InvalidArgumentError("give at least one checkpoint, e.g. checkpoints={'rgb': 'last.pt'}")
    cached: dict[str, WindowFeatures] = {}
    # (request without its views, stride, crops) -> the views decoded in that pass
    todo: dict[tuple, dict[str, tuple[VideoEncoder, dict]]] = defaultdict(dict)
    for view, ckpt_path in checkpoints.items():
        encoder = load_encoder(ckpt_path, view)  # CheckpointError when the view is absent
        request = evaluation_request(ckpt_path, view, num_frames=num_frames, crop_px=crop_px, frame_step=frame_step)
        meta = {"checkpoint": os.fspath(ckpt_path), "checkpoint_sha256": file_sha256(ckpt_path), "view": view,
                "arch": encoder.arch, "feature_dim": encoder.feature_dim, "data": videos.source,
                **window_options(request, stride=stride, crops=crops)}
        path = _cache_path(cache_dir, meta, videos)
        if path is not None and path.is_file():
            try:
                cached[view] = WindowFeatures.from_payload(torch.load(path, weights_only=True))
                log.info("%s features of %s: from cache %s", view, videos.source, path)
                continue
            except Exception as e:  # noqa: BLE001 - a broken cache file is re-made, never trusted
                log.warning("ignoring unreadable feature cache %s (%s)", path, e)
        todo[(request.replace(views=ALL_VIEWS), stride, crops)][view] = (encoder, meta)
    passes = [FeaturePass(request.replace(views=set(encoders)), stride, crops, encoders)
              for (request, stride, crops), encoders in todo.items()]
    return FeaturePlan(videos, tuple(checkpoints), cached, passes, cache_dir)


def run_features(
    plan: FeaturePlan,
    *,
    device: Device = "auto",
    num_workers: int = 0,
    on_progress: Callable[[FeatureProgress], None] | None = None,
) -> dict[str, WindowFeatures]:
    """Run the passes of ``plan`` (storing their features in its cache); ``{view: WindowFeatures}``."""
    _check_choice("device", device, Device)
    out = dict(plan.cached)
    total, done_before = plan.work, 0
    for fp in plan.passes:
        last = [0]

        def progress(p: FeatureProgress, base: int = done_before) -> None:
            last[0] = p.done
            if on_progress is not None:
                on_progress(FeatureProgress(p.views, base + p.done, total, p.windows))

        result = window_outputs(plan.videos, {v: enc for v, (enc, _) in fp.encoders.items()}, request=fp.request,
                                stride=fp.stride, crops=fp.crops, device=device, num_workers=num_workers,
                                cache_dir=plan.cache_dir, on_progress=progress)
        done_before += last[0]
        for view, feats in result.items():
            feats.meta = dict(fp.encoders[view][1])
            cached = _cache_path(plan.cache_dir, feats.meta, plan.videos)
            if cached is not None:
                _save_atomic(feats.to_payload(), cached)
            out[view] = feats
    return {view: out[view] for view in plan.views}


def extract_features(
    videos: VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]],
    *,
    device: Device = "auto",
    num_workers: int = 0,
    on_progress: Callable[[FeatureProgress], None] | None = None,
    **plan_options: Any,
) -> dict[str, WindowFeatures]:
    """Features of ``videos`` for each view in ``checkpoints`` (``{"rgb": path, "mv": path}``; one
    file may hold both). Returns ``{view: WindowFeatures}``.

    ``plan_options`` are :func:`plan_features`'s (``checkpoints`` and the window protocol);
    ``device`` and ``num_workers`` run the passes, ``on_progress`` follows them
    (:class:`FeatureProgress`). The same as ``run_features(plan_features(...))``.
    Raises CheckpointError when a checkpoint lacks its view, EmptyDataError when no video decodes.
    """
    _check_choice("device", device, Device)
    plan = plan_features(videos, **plan_options)
    return run_features(plan, device=device, num_workers=num_workers, on_progress=on_progress)


def window_outputs(
    videos: VideoSet | str | os.PathLike | Sequence[tuple[str | os.PathLike, int]],
    modules: Mapping[str, torch.nn.Module],
    *,
    request: ClipRequest,
    stride: int | None = None,
    crops: Crops = "center",
    device: Device = "auto",
    num_workers: int = 0,
    cache_dir: str | os.PathLike | None = None,
    on_progress: Callable[[FeatureProgress], None] | None = None,
) -> dict[str, WindowFeatures]:
    """One pass over every window × crop of ``videos``: ``modules[view](clips (N, C, T, S, S))``
    -> ``(N, D)`` for each view (an encoder gives features, a classifier logits), in eval mode, no grad.
    ``request`` gives the windows' frames, frame step and crop side; its views are those of ``modules``.

    Videos that fail to decode are left out and listed in ``failed``. The outputs are not cached
    (see :func:`extract_features`), but with ``cache_dir`` the decoded windows are: the first call
    decodes and stores them (``windows-<key>.pt``), later calls on the same videos and options read
    them instead (any modules, any ``crops``), with identical results. ``on_progress`` follows the
    pass (:class:`FeatureProgress`), from before the files are probed to the last window.
    """
    videos = video_set(videos)
    _check_choice("crops", crops, Crops)
    _check_choice("device", device, Device)
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    encoders = {view: (module, {"view": view}) for view, module in modules.items()}
    views = sorted(encoders)
    window_opts = dict(request=request.replace(views=set(views)), crops=crops, stride=stride)
    num_videos = count_videos(videos)
    shown_views = tuple(v for v in get_args(View) if v in encoders)  # rgb first
    done = seen = 0  # videos finished, windows seen

    def report() -> None:
        if on_progress is not None:
            on_progress(FeatureProgress(views=shown_views, done=done, total=num_videos, windows=seen))

    report()  # before the files are probed: that may take a while too
    if cache_dir is None:
        windows = _decode_windows(videos, window_opts, num_workers=num_workers)
    else:
        windows = _cached_windows(videos, window_opts, num_workers=num_workers, cache_dir=cache_dir)
    errors = windows.errors  # video index -> reason; each from the failure record of that very video
    loose_errors: list[str] = []  # failures tied to no video (an unreadable tar)
    failed_keys: dict[int, str] = {}  # video index -> key, as the failure record names it
    for _, (encoder, _) in encoders.items():
        encoder.to(dev).eval()
    # video index -> window index -> (N, D) per view; plus the label and key of each video
    per_video: dict[int, dict[int, dict[str, torch.Tensor]]] = defaultdict(dict)
    info: dict[int, tuple[int, str, int]] = {}
    with torch.no_grad():
        for item in windows.items:
            v = int(item["video_index"])
            if "error" in item and v < 0:
                loose_errors.append(item["error"])
                continue
            if "error" in item:
                errors.setdefault(v, item["error"])
                failed_keys.setdefault(v, str(item["key"]))
            elif v not in errors:
                feats = {view: enc(item[view].to(dev).float()).float().cpu()  # (N, D)
                         for view, (enc, _) in encoders.items()}
                per_video[v][int(item["window_index"])] = feats
                info[v] = (int(item["label"]), str(item["key"]), int(item["num_windows"]))
            # videos come in order (files; a shard stream nearly so across workers): those before v are finished
            last = "error" in item or int(item["window_index"]) == int(item["num_windows"]) - 1
            done, seen = max(done, v + last), seen + 1
            report()
    done = num_videos if num_videos is not None else done  # failed videos have no items to count
    report()
    # A video is kept only when every one of its windows decoded; every failing window or video came
    # with its own failure record (handler 'report'), so what is left here is never a guess from text.
    for v, (_, key, n) in info.items():
        if len(per_video[v]) != n and v not in errors:
            errors[v] = f"{n - len(per_video[v])} of its {n} windows never arrived"
    if not windows.from_files:  # shards: a sample lost to an unreadable tar never shows up
        seen = set(info) | set(errors)
        for v in range(max(seen) + 1 if seen else 0):
            if v not in seen:
                errors[v] = "never read; the shards reported: " + ("; ".join(loose_errors)[:500] or "nothing")
    keep = sorted(v for v in info if v not in errors)
    failed = [{"key": failed_keys.get(v) or _key_of(videos, v, info), "reason": errors[v]} for v in sorted(errors)]
    for f in failed:
        log.warning("left out %s: %s", f["key"], f["reason"])
    if not keep:
        raise EmptyDataError(
            f"{videos.source}: no video could be decoded ({len(failed)} failed"
            + (f"; first: {failed[0]['key']}: {failed[0]['reason']}" if failed else "") + ")"
        )
    results = {}
    for view, (_, meta) in encoders.items():
        rows, window_video = [], []
        for new, v in enumerate(keep):
            for w in sorted(per_video[v]):
                rows.append(per_video[v][w][view])
                window_video.append(new)
        results[view] = WindowFeatures(
            features=torch.stack(rows),  # (W, N, D)
            window_video=torch.tensor(window_video, dtype=torch.long),
            labels=torch.tensor([info[v][0] for v in keep], dtype=torch.long),
            keys=[info[v][1] for v in keep],
            failed=failed,
            meta=dict(meta),
        )
    return results


@dataclass
class _Windows:
    """One pass over the evaluation windows, decoded now or read from the window cache.

    ``items``: window items of compvid (``{view: (N, C, T, S, S), "key", "label", "video_index",
    "window_index", "num_windows", "start"}``) or failure records (compvid's handler 'report':
    ``{"error", "error_type", "key", "label", "video_index", "window_index"}``, ``video_index`` -1
    when tied to no video); ``errors``: video index -> reason, known before the pass (probe
    failures); ``total``: windows in all (None for shards).
    """

    items: Iterable[dict[str, Any]]
    errors: dict[int, str]
    total: int | None
    from_files: bool


def _decode_windows(videos: VideoSet, window_opts: Mapping[str, Any], *, num_workers: int,
                    clips: WindowClips | None = None) -> _Windows:
    """Decode every window (``clips`` replaces the dataset's :class:`WindowClips` when given).

    Failures come as compvid's failure records (handler 'report'), each naming its video by index,
    so they reach this process intact from DataLoader workers too."""
    errors: dict[int, str] = {}
    if videos.items:
        files = WindowFiles(list(videos.items), handler="report", **window_opts)
        errors = {v: failure["error"] for v, failure in files.failures.items()}
        for v, n in enumerate(files.num_windows):
            if n == 0 and v not in errors:
                errors[v] = "has no window of these options"
        dataset: Dataset = files
        total: int | None = len(files)
    else:
        dataset = WindowStream(list(videos.urls), handler="report", **window_opts)
        total = None
    if clips is not None:
        dataset.clips = clips
    loader = DataLoader(dataset, batch_size=None, num_workers=num_workers)
    return _Windows(loader, errors, total, bool(videos.items))


@dataclass(frozen=True)
class _DecodedWindowClips(WindowClips):
    """:class:`WindowClips` whose items are the windows as decoded (:meth:`WindowClips.decode`);
    :meth:`cropped` cuts and normalises them later, exactly as :class:`WindowClips` does."""

    def __call__(self, source: VideoSource, info: VideoInfo, start: int) -> dict[str, torch.Tensor]:
        return self.decode(source, info, start)

    def cropped(self, item: Mapping[str, Any]) -> dict[str, Any]:
        """A window item with its decoded views replaced by their crops (error items unchanged)."""
        if "error" in item:
            return dict(item)
        return {**item, **self.crop({v: item[v] for v in ("rgb", "mv") if v in item})}


def window_options(request: ClipRequest, *, stride: int | None, crops: Crops) -> dict[str, Any]:
    """How feature files and results describe their windows (JSON; ``size`` is the crop side in pixels)."""
    return {"num_frames": request.num_frames, "size": request.crop_px, "frame_step": request.frame_step,
            "stride": stride, "crops": crops}


def window_cache_key(videos: VideoSet, window_opts: Mapping[str, Any]) -> str:
    """Hex digest of what determines the decoded windows: the data's fingerprint, the request's
    frames, frame step, crop side, decoded short side and views, and the stride (not the checkpoint,
    not the crops)."""
    request: ClipRequest = window_opts["request"]
    decoded = {"num_frames": request.num_frames, "frame_step": request.frame_step, "size": request.crop_px,
               "stride": window_opts.get("stride"), "views": request.views_name,
               "short_side": request.decode_short_side_px or request.crop_px}
    blob = json.dumps({"format": WINDOWS_FORMAT, "version": WINDOWS_VERSION, "compvid": compvid.__version__,
                       "options": decoded, "data": videos.fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _windows_cache_problem(payload: Any, key: str) -> str | None:
    """Why ``payload`` is not the windows cache of ``key`` (None: it is)."""
    if not isinstance(payload, dict) or payload.get("format") != WINDOWS_FORMAT \
            or payload.get("format_version") != WINDOWS_VERSION:
        return f"not a {WINDOWS_FORMAT} v{WINDOWS_VERSION} file"
    if payload.get("key") != key:
        return f"holds windows of key {payload.get('key')}, not {key}"
    return None


def _cached_windows(videos: VideoSet, window_opts: Mapping[str, Any], *, num_workers: int,
                    cache_dir: str | os.PathLike) -> _Windows:
    """The windows from ``cache_dir/windows-<key>.pt``, or decoded and stored there."""
    clips = _DecodedWindowClips(**window_opts)
    key = window_cache_key(videos, window_opts)
    path = Path(cache_dir) / f"windows-{key}.pt"
    if path.is_file():
        try:
            # mmap: windows are paged in as the pass reaches them, not all read up front
            payload = torch.load(path, weights_only=True, mmap=True)
            problem = _windows_cache_problem(payload, key)
            if problem is None:
                meta = json.loads(payload["meta_json"])
                items = payload["items"]
                log.info("windows of %s: from cache %s (%d items)", videos.source, path, len(items))
                return _Windows((clips.cropped(item) for item in items), {int(v): r for v, r in meta["errors"]},
                                meta["total"], bool(meta["from_files"]))
        except Exception as e:  # noqa: BLE001 - a broken cache file is re-made, never trusted
            problem = str(e)
        log.warning("ignoring unreadable window cache %s (%s)", path, problem)
    live = _decode_windows(videos, window_opts, num_workers=num_workers, clips=clips)
    errors_before = sorted(live.errors.items())  # the pass adds to live.errors; store what it started with

    def items() -> Iterable[dict[str, Any]]:
        stored: list[dict[str, Any]] | None = []
        size = 0
        for item in live.items:
            if stored is not None:
                # own copies: out of DataLoader workers' shared memory, and storage no larger than the window
                stored.append({k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in item.items()})
                size += sum(v.numel() * v.element_size() for v in item.values() if isinstance(v, torch.Tensor))
                if size > WINDOW_CACHE_MAX_BYTES:
                    log.info("windows of %s exceed %d bytes: not cached (each pass decodes)", videos.source,
                             WINDOW_CACHE_MAX_BYTES)
                    stored = None
            yield clips.cropped(item)
        if stored is None:
            return
        # crops are cut when read
        options = {"request": window_opts["request"].to_dict(), "stride": window_opts.get("stride")}
        meta = {"data": videos.source, "options": options, "errors": errors_before, "total": live.total,
                "from_files": live.from_files}
        _save_atomic({"format": WINDOWS_FORMAT, "format_version": WINDOWS_VERSION, "key": key,
                      "meta_json": json.dumps(meta), "items": stored}, path)
        log.info("windows of %s: decoded %d items, stored in %s", videos.source, len(stored), path)

    return _Windows(items(), live.errors, live.total, live.from_files)


def _key_of(videos: VideoSet, v: int, info: Mapping[int, tuple]) -> str:
    if v in info:
        return info[v][1]
    if videos.items and v < len(videos.items):
        return videos.items[v][0]
    return f"video #{v} of {videos.source}"


def _check_choice(name: str, value: Any, allowed_type: Any) -> None:
    allowed = get_args(allowed_type)
    if value not in allowed:
        raise InvalidArgumentError(f"{name}={value!r}: allowed values are {', '.join(map(str, allowed))}")


def _file_stamp(path: str | os.PathLike) -> tuple[str, int, int]:
    p = Path(path).resolve()
    st = p.stat()
    return os.fspath(p), st.st_size, st.st_mtime_ns


_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (path, size, mtime) for this process."""
    stamp = _file_stamp(path)
    if stamp not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[stamp] = h.hexdigest()
    return _SHA_CACHE[stamp]


def cache_key(meta: Mapping[str, Any], videos: VideoSet) -> str:
    """Hex digest of everything that determines a feature file (checkpoint hash, data, options)."""
    # the sha256 identifies the weights and the fingerprint the data, whatever their paths are spelt
    described = {k: v for k, v in meta.items() if k not in ("checkpoint", "data")}
    blob = json.dumps({"version": FEATURES_VERSION, "meta": described, "data": videos.fingerprint()},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _cache_path(cache_dir, meta: Mapping[str, Any], videos: VideoSet) -> Path | None:
    if cache_dir is None:
        return None
    return Path(cache_dir) / f"{meta['view']}-{cache_key(meta, videos)}.pt"


def _save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
