"""Datasets over shards and file lists: pretraining pairs and evaluation windows.

- :class:`PairStream` (iterable, WebDataset shards): per video
  ``{"rgb": float32 (2, 3, T, S, S), "mv": float32 (2, 2, T, S, S), "key": str, "label": int}``,
  clips A and B at independent random starts. Shards are split by node and by
  DataLoader worker (``wds.split_by_node`` / ``wds.split_by_worker``). Batched by
  :func:`pair_loader` into the trainer's contract ``rgb (B, 2, 3, T, S, S)``,
  ``mv (B, 2, 2, T, S, S)``, ``key`` list, ``label (B,)`` (see ``mvcgc.data``).
- :class:`PairFiles` (map-style, a file list or class folders): the same dict per video.
- :class:`WindowStream` (iterable, shards) and :class:`WindowFiles` (map-style, a file list):
  every sliding window × crops of each video, in a fixed order, one item per window:
  ``{"rgb": (N, 3, T, S, S), "mv": (N, 2, T, S, S), "key", "label", "video_index",
  "window_index", "num_windows", "start"}`` with N = 1, 3 or 10 crops (crop n of the window
  is ``rgb[n]``). Average predictions per ``video_index``.

Randomness is a function of ``(seed, epoch, rank, worker)`` (streams) or
``(seed, epoch, index)`` (map-style); call ``set_epoch(epoch)`` before each
epoch. The epoch lives in shared memory, so it reaches DataLoader workers that
persist across epochs (:func:`pair_loader` keeps them).
A bad sample goes through ``handler`` (see :func:`compvid.pipeline.resolve_handler`):
training defaults to 'skip' (warn, count in ``.skipped``, go on), evaluation to 'raise'. The
exception names its sample (:func:`compvid.pipeline.sample_of`: key, video and window index).
The window datasets also take 'report': a failure is yielded as a
:func:`compvid.pipeline.failure_record` item (``{"error", "error_type", "key", "label",
"video_index", "window_index"}``) where a window would be, so the caller learns which video
failed even from DataLoader workers (which re-raise an exception rebuilt from its text alone).
A damaged clip (``Clip.damaged`` frames: concealed by the decoder or predicted from
such; or packets the decoder skipped) is a bad sample, a
:class:`~compvid.errors.DamagedClipError`, unless ``on_damage='keep'`` (served, with a
logged warning; see :func:`compvid.pipeline.check_damage`).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, Sequence, Union

import numpy as np
import webdataset as wds
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate

from compvid.errors import InvalidArgumentError, NothingDecodedError
from compvid.layouts import parse_layout
from compvid.pipeline import (
    DamagePolicy,
    HandlerPolicy,
    PairClips,
    SharedInt,
    WindowClips,
    describe_error,
    failure_record,
    name_sample,
    resolve_handler,
    skipped_count,
    video_member,
)
from compvid.probe import VideoInfo, probe
from compvid.request import ClipRequest
from compvid.shards import ShardRecord
from compvid.transforms import ClipAugment, CropMode

log = logging.getLogger(__name__)

StreamMode = Literal["epoch", "resampled"]
Urls = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]
FileItems = Union[str, os.PathLike, Sequence[tuple[Union[str, os.PathLike], int]]]
# A worker that meets this many bad samples in a row without one good one stops:
# every sample failing means a bug or a wrong path, not a bad video.
MAX_FAILURES_WITHOUT_SUCCESS = 50


def expand_urls(urls: Urls) -> list[str]:
    """Shard URLs: a path, a brace pattern (``shards/train-{000000..000009}.tar``), a
    ``::``-separated string, or a sequence of them."""
    if isinstance(urls, (str, os.PathLike)):
        out = wds.shardlists.expand_urls(os.fspath(urls))
    else:
        out = [u for url in urls for u in wds.shardlists.expand_urls(os.fspath(url))]
    if not out:
        raise InvalidArgumentError(f"no shard URLs in {urls!r}")
    return out


def _mix(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) & (2**63 - 1) for p in parts])


class _Guard:
    """Counts consecutive failures; raises once every sample seems to fail."""

    def __init__(self, what: str) -> None:
        self.what, self.failures, self.successes = what, 0, 0

    def ok(self) -> None:
        self.successes += 1

    def failed(self, exn: BaseException) -> None:
        self.failures += 1
        if self.successes == 0 and self.failures >= MAX_FAILURES_WITHOUT_SUCCESS:
            raise NothingDecodedError(
                f"{self.what}: the first {self.failures} samples all failed (last: {describe_error(exn)}); "
                "check the shard URLs and options"
            ) from exn


def _samples(urls: Iterable[str], handler) -> Iterator[dict[str, Any]]:
    """WebDataset samples (``__key__``, ``__url__``, ``json``, ``<ext>``) of ``urls`` in order."""
    return wds.tarfile_to_samples(handler=handler)({"url": u} for u in urls)


def _decode_record(sample: dict[str, Any]) -> tuple[ShardRecord, bytes, VideoInfo]:
    where = f"{sample.get('__url__')}/{sample.get('__key__')}"
    try:
        fields = json.loads(sample["json"])
    except (KeyError, ValueError) as e:
        raise InvalidArgumentError(f"{sample.get('__key__')}: sample has no readable JSON record ({e!r})") from e
    record = ShardRecord.from_dict(fields, where=where)
    data = video_member(sample, record)
    return record, data, record.video_info(data=data, source=where)


def _label(record: ShardRecord) -> int:
    return -1 if record.label is None else record.label


# --------------------------------------------------------------------------- pretraining pairs


class _Epochs:
    """The epoch of a pretraining dataset, in shared memory (``_epoch``, a :class:`SharedInt`) so
    it reaches persistent DataLoader workers, and its handler's skip count."""

    _epoch: SharedInt
    handler: Any

    @property
    def epoch(self) -> int:
        return self._epoch.value

    def set_epoch(self, epoch: int) -> None:
        self._epoch.value = epoch

    @property
    def skipped(self) -> int | None:
        """Bad samples skipped so far, all workers together (None unless handler='skip')."""
        return skipped_count(self.handler)


class PairStream(_Epochs, IterableDataset):
    """Pretraining stream over WebDataset shards: two augmented clips (A, B) per video.

    Yields ``{"rgb": float32 (2, 3, T, S, S), "mv": float32 (2, 2, T, S, S), "key": str,
    "label": int}`` for ``request`` (a :class:`~compvid.request.ClipRequest`: frames, step, side
    and views; a view not asked for is absent and not decoded).

    ``mode``: 'epoch' (each shard once per epoch, in an order shuffled by
    ``(seed, epoch)`` identically on every rank, then split by node and by
    worker) or 'resampled' (each worker draws shards with replacement, forever,
    or ``epoch_size`` videos per rank per epoch). Epoch mode gives ranks the
    videos of different shards, so their counts can differ; multi-GPU training
    wants resampled mode with ``epoch_size``. ``shuffle``: samples buffered for
    shuffling (0 or 1 = none). ``handler``: 'skip' (default: warn, count in
    :attr:`skipped`, go on), 'raise', or ``callable(exn) -> bool``. ``on_damage``:
    'error' (default: a damaged clip is a bad sample for ``handler``) or 'keep'.
    """

    def __init__(
        self,
        urls: Urls,
        *,
        request: ClipRequest,
        augment: ClipAugment | None = None,
        normalize: bool = True,
        shuffle: int = 100,
        mode: StreamMode = "epoch",
        epoch_size: int | None = None,
        handler: HandlerPolicy = "skip",
        seed: int = 0,
        on_damage: DamagePolicy = "error",
    ) -> None:
        super().__init__()
        if mode not in ("epoch", "resampled"):
            raise InvalidArgumentError(f"mode={mode!r}: allowed values are epoch, resampled")
        if epoch_size is not None and (mode != "resampled" or epoch_size < 1):
            raise InvalidArgumentError("epoch_size is a positive number of videos per rank, for mode='resampled' only")
        if shuffle < 0:
            raise InvalidArgumentError(f"shuffle={shuffle}: a buffer size >= 0")
        self.urls = expand_urls(urls)
        self.clips = PairClips(request, augment=augment, normalize=normalize, on_damage=on_damage)
        self.shuffle, self.mode, self.epoch_size = shuffle, mode, epoch_size
        self.handler = resolve_handler(handler)
        self.seed = int(seed)
        self._epoch = SharedInt(0)  # set here, read in the workers

    def _shard_urls(self, rank: int, worker: int, world: int, workers: int) -> Iterator[str]:
        if self.mode == "resampled":
            rng = random.Random(f"{self.seed}/{self.epoch}/{rank}/{worker}")
            return (rng.choice(self.urls) for _ in itertools.count())
        order = list(self.urls)
        random.Random(f"{self.seed}/{self.epoch}").shuffle(order)  # the same order on every rank
        if len(order) < world * workers and worker == 0 and rank == 0:
            log.warning("%d shards for %d ranks × %d workers: some workers get no shard", len(order), world, workers)
        src = wds.split_by_worker(wds.split_by_node({"url": u} for u in order))
        return (s["url"] for s in src)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world, worker, workers = wds.utils.pytorch_worker_info()
        rng = _mix(self.seed, self.epoch, rank, worker)
        samples = _samples(self._shard_urls(rank, worker, world, workers), self.handler)
        if self.shuffle > 1:
            samples = wds.shuffle(self.shuffle, min(self.shuffle, 100), rng=random.Random(int(rng.integers(2**63))))(
                samples
            )
        limit = None
        if self.epoch_size is not None:
            limit = self.epoch_size // workers + (1 if worker < self.epoch_size % workers else 0)
        guard = _Guard("PairStream")
        served = 0
        for sample in samples:
            if limit is not None and served >= limit:
                break
            try:
                record, data, info = _decode_record(sample)
                out = self.clips(data, info, rng)
            except Exception as e:  # noqa: BLE001 - the handler policy decides
                name_sample(e, f"sample {sample.get('__key__')} of {sample.get('__url__')}",
                            key=str(sample.get("__key__")))
                if not self.handler(e):
                    return
                guard.failed(e)
                continue
            guard.ok()
            served += 1
            yield {**out, "key": str(sample["__key__"]), "label": _label(record)}


class EpochBatches(Sampler):
    """Batches of indices of a map-style dataset, one epoch per ``iter()``: shuffled like
    ``DataLoader(shuffle=True)`` (one seed drawn from torch's global RNG as the iteration starts,
    a ``randperm`` from it) or in order. :attr:`start` (one-shot) makes the next iteration begin at
    that batch of the same order, so a resumed epoch never loads the batches before it."""

    def __init__(self, num_items: int, *, batch_size: int, drop_last: bool, shuffle: bool) -> None:
        self.num_items, self.batch_size, self.drop_last, self.shuffle = num_items, batch_size, drop_last, shuffle
        self.start = 0

    def __len__(self) -> int:
        full, rest = divmod(self.num_items, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[list[int]]:
        # eager (not a generator): the seed is drawn when the DataLoader's iterator is made
        order = list(range(self.num_items))
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            order = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(seed)).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, len(self) * self.batch_size, self.batch_size)]
        return self._from_start(batches)

    def _from_start(self, batches: list[list[int]]) -> Iterator[list[int]]:
        # read at the first batch taken, not in __iter__: a DataLoader with workers calls __iter__
        # twice as its iterator starts and keeps only the second
        start, self.start = self.start, 0
        yield from batches[start:]


class EpochLoader(DataLoader):
    """A DataLoader whose ``set_epoch`` reaches its dataset, in the workers too (shared memory).

    For a stream (an IterableDataset) the workers hand over single samples and batches are formed
    here, across workers. A DataLoader batching inside each worker drops every worker's last
    partial batch, so a worker whose shards hold fewer than ``batch_size`` videos contributes
    nothing: with few videos per worker (small sets, many workers) most of an epoch was lost.
    Here only the epoch's final partial batch is dropped (``drop_last``). ``num_samples`` (videos
    per epoch, when known) gives a stream a length in batches, so progress can show a total.

    :meth:`iter_from` resumes an epoch mid-way: for a map-style dataset (batched by
    :class:`EpochBatches`) without loading the batches before the start; a stream cannot tell
    which of its samples those were without decoding them, so it draws them again, unused.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, drop_last: bool, num_samples: int | None = None,
                 **kw: Any) -> None:
        self.stream_batch_size = batch_size if isinstance(dataset, IterableDataset) else None
        self.stream_drop_last = drop_last
        self.num_samples = num_samples
        if self.stream_batch_size is None and not {"sampler", "batch_sampler"} & set(kw):
            batches = EpochBatches(len(dataset), batch_size=batch_size, drop_last=drop_last,
                                   shuffle=bool(kw.pop("shuffle", False)))
            super().__init__(dataset, batch_sampler=batches, **kw)
        elif self.stream_batch_size is None:
            super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kw)
        else:
            kw.pop("shuffle", None)
            super().__init__(dataset, batch_size=None, **kw)  # single samples from the workers

    def __iter__(self):
        samples = super().__iter__()
        return samples if self.stream_batch_size is None else self._batches(samples)

    def iter_from(self, start: int) -> Iterator[dict[str, Any]]:
        """This epoch's batches from batch ``start`` on, as ``iter(self)`` gives them after ``start``
        batches, drawing from torch's global RNG what ``iter(self)`` draws."""
        if isinstance(self.batch_sampler, EpochBatches):
            self.batch_sampler.start = start
            return iter(self)
        batches = iter(self)
        for _ in range(start):  # a stream, or a caller's own sampler: drawn again, unused
            next(batches, None)
        return batches

    def __len__(self) -> int:
        if self.stream_batch_size is None:
            return super().__len__()
        if self.num_samples is None:
            raise TypeError("this stream's length is unknown (no num_samples)")
        full, rest = divmod(self.num_samples, self.stream_batch_size)
        return full + (1 if rest and not self.stream_drop_last else 0)

    def _batches(self, samples: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        buffer: list[dict[str, Any]] = []
        for sample in samples:
            buffer.append(sample)
            if len(buffer) == self.stream_batch_size:
                yield default_collate(buffer)
                buffer = []
        if buffer and not self.stream_drop_last:
            yield default_collate(buffer)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    @property
    def skipped(self) -> int | None:
        return getattr(self.dataset, "skipped", None)


def pair_loader(
    dataset: Dataset | Urls,
    *,
    batch_size: int,
    num_workers: int = 0,
    drop_last: bool = True,
    pin_memory: bool = False,
    num_samples: int | None = None,
    **stream_options: Any,
) -> EpochLoader:
    """Batches of the trainer's contract: ``rgb (B, 2, 3, T, S, S)``, ``mv (B, 2, 2, T, S, S)``,
    ``key`` list[str], ``label`` int64 (B,).

    ``dataset``: a :class:`PairStream`/:class:`PairFiles`, or shard URLs (then a
    :class:`PairStream` is built with ``stream_options``). Incomplete batches are
    dropped by default (MoCo queues want a fixed batch). Workers persist across
    epochs (no restart, no re-probing, no empty pipeline at each epoch's start);
    ``set_epoch`` reaches them. ``num_samples``: videos per epoch, when known, for a length
    (progress totals); leave it None where ranks see different shares.
    """
    if not isinstance(dataset, Dataset):
        dataset = PairStream(dataset, **stream_options)
    elif stream_options:
        raise InvalidArgumentError(f"options {sorted(stream_options)} apply only when shard URLs are given")
    shuffle = None if isinstance(dataset, IterableDataset) else True
    return EpochLoader(dataset, batch_size=batch_size, num_workers=num_workers, drop_last=drop_last,
                       pin_memory=pin_memory, shuffle=shuffle, persistent_workers=num_workers > 0,
                       num_samples=num_samples)


def file_items(items: FileItems) -> list[tuple[str, int]]:
    """``[(path, label)]`` from a list of ``(path, label)`` or a folder ``<class>/<video>``
    (classes sorted, labels 0..C-1; files that are not videos are left out with a warning)."""
    if isinstance(items, (str, os.PathLike)):
        root = Path(items)
        parsed = parse_layout(root, layout="generic")
        for p in parsed.problems:
            log.warning("%s: left out (%s: %s)", root / p.path, p.reason, p.detail)
        out = [(os.fspath(root / e.path), int(e.label)) for e in parsed.entries]
    else:
        out = [(os.fspath(path), int(label)) for path, label in items]
    if not out:
        raise InvalidArgumentError(f"no videos in {items!r}")
    return out


class PairFiles(_Epochs, Dataset):
    """Map-style pretraining pairs over video files: the same dict per video as :class:`PairStream`.

    ``items``: ``[(path, label)]`` or a folder of class subfolders. Clip starts
    and augmentations are a function of ``(seed, epoch, index)``; ``clips_per_video=1``
    decodes clip A alone (``(1, C, T, S, S)`` per view; a classifier's training clip). With
    handler='skip' (default) a bad video is warned about, counted in
    :attr:`skipped`, and the next index is served instead; so is a damaged clip
    unless ``on_damage='keep'``.
    """

    def __init__(
        self,
        items: FileItems,
        *,
        request: ClipRequest,
        augment: ClipAugment | None = None,
        normalize: bool = True,
        handler: HandlerPolicy = "skip",
        seed: int = 0,
        on_damage: DamagePolicy = "error",
        clips_per_video: int = 2,
    ) -> None:
        self.items = file_items(items)
        self.clips = PairClips(request, augment=augment, normalize=normalize, on_damage=on_damage,
                               clips_per_video=clips_per_video)
        self.handler = resolve_handler(handler)
        self.seed = int(seed)
        self._epoch = SharedInt(0)  # set here, read in the workers
        self._infos: dict[int, VideoInfo] = {}  # per process (kept by persistent workers): probing reads every packet

    def __len__(self) -> int:
        return len(self.items)

    def _info(self, index: int) -> VideoInfo:
        if index not in self._infos:
            self._infos[index] = probe(self.items[index][0])
        return self._infos[index]

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.items)
        for attempt in range(n):
            i = (index + attempt) % n
            path, label = self.items[i]
            try:
                out = self.clips(path, self._info(i), _mix(self.seed, self.epoch, i))
            except Exception as e:  # noqa: BLE001 - the handler policy decides
                name_sample(e, f"video {path}", key=path, video_index=i)
                if not self.handler(e):
                    raise
                continue
            return {**out, "key": path, "label": label}
        raise NothingDecodedError(f"PairFiles: none of the {n} videos could be decoded; the files are not videos "
                                  "compvid can read, or the clip options do not fit them (each was warned about)")


# --------------------------------------------------------------------------- evaluation windows


def _window_item(out: dict, *, key: str, label: int, video_index: int, window_index: int, num_windows: int,
                 start: int) -> dict[str, Any]:
    return {**out, "key": key, "label": label, "video_index": video_index, "window_index": window_index,
            "num_windows": num_windows, "start": start}


def _window_handler(handler: HandlerPolicy | Literal["report"]) -> tuple[bool, Any]:
    """(report, handler): 'report' yields failure records and never calls a handler."""
    if handler == "report":
        return True, None
    return False, resolve_handler(handler)


class WindowStream(IterableDataset):
    """Evaluation over shards: every sliding window × crops of every video, in shard order.

    One item per window (see the module docstring). ``video_index`` counts the
    videos of ``urls`` in order, from 0. Every worker of every rank reads all
    shards and keeps videos ``video_index % (ranks × workers) == its slot``, so
    indices are exact and the split is even whatever the shard sizes (only the
    tar bytes are read more than once; decoding is not repeated).
    ``handler``: 'raise' (default), 'skip', a callable, or 'report': a failing window
    yields its :func:`~compvid.pipeline.failure_record` (``window_index`` -1 when the
    video's record or data failed before its windows; ``video_index`` -1, from one worker
    only, for an unreadable tar). With 'skip' a skipped window simply yields nothing.
    ``on_damage``: 'error' (default: a damaged window is a bad sample for ``handler``) or 'keep'.
    """

    def __init__(
        self,
        urls: Urls,
        *,
        request: ClipRequest,
        crops: CropMode = "center",
        stride: int | None = None,
        normalize: bool = True,
        handler: HandlerPolicy | Literal["report"] = "raise",
        on_damage: DamagePolicy = "error",
    ) -> None:
        super().__init__()
        self.urls = expand_urls(urls)
        self.clips = WindowClips(request, crops=crops, stride=stride, normalize=normalize, on_damage=on_damage)
        self.report, self.handler = _window_handler(handler)

    @property
    def skipped(self) -> int | None:
        return None if self.report else skipped_count(self.handler)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world, worker, workers = wds.utils.pytorch_worker_info()
        slot, slots = rank * workers + worker, world * workers
        tar_failures: list[BaseException] = []  # 'report': unreadable tar data, tied to no video

        def on_tar_failure(exn: BaseException) -> bool:
            tar_failures.append(exn)
            return True

        def loose() -> Iterator[dict[str, Any]]:
            while tar_failures:
                exn = tar_failures.pop(0)
                if slot == 0:  # every slot reads every tar: one reports
                    url = next((a for a in exn.args if isinstance(a, str) and a in self.urls), "shards")
                    yield failure_record(exn, key=url, label=-1, video_index=-1, window_index=-1)

        samples = _samples(self.urls, on_tar_failure if self.report else self.handler)
        for video_index, sample in enumerate(samples):
            yield from loose()
            if video_index % slots != slot:
                continue
            key, url = str(sample.get("__key__")), sample.get("__url__")
            label = -1
            try:
                record, data, info = _decode_record(sample)
                label = _label(record)
                starts = self.clips.windows(info)
            except Exception as e:  # noqa: BLE001 - the handler policy decides
                name_sample(e, f"sample {key} of {url}", key=key, video_index=video_index)
                if self.report:
                    yield failure_record(e, key=key, label=label, video_index=video_index, window_index=-1)
                    continue
                if not self.handler(e):
                    return
                continue
            for w, start in enumerate(starts):
                try:
                    out = self.clips(data, info, start)
                except Exception as e:  # noqa: BLE001
                    name_sample(e, f"window {w} (start {start}) of sample {key} of {url}", key=key,
                                video_index=video_index, window_index=w)
                    if self.report:
                        yield failure_record(e, key=key, label=label, video_index=video_index, window_index=w)
                        continue
                    if not self.handler(e):
                        return
                    continue
                yield _window_item(out, key=key, label=label, video_index=video_index, window_index=w,
                                   num_windows=len(starts), start=start)
        yield from loose()


class WindowFiles(Dataset):
    """Evaluation over video files, map-style: item i is one window (see the module docstring).

    ``items``: ``[(path, label)]`` or a folder of class subfolders; ``video_index``
    is the position in that list. Every video is probed once here to count its
    windows (pass ``infos`` to reuse probe results). A video that cannot be
    probed raises (handler 'raise', default) or, with 'skip', gets no windows;
    with 'report' it gets no windows and its :func:`~compvid.pipeline.failure_record`
    in :attr:`failures`, and a window that fails to decode is returned as its failure
    record instead of raising. A damaged window raises
    :class:`~compvid.errors.DamagedClipError` when read, unless ``on_damage='keep'``.
    """

    def __init__(
        self,
        items: FileItems,
        *,
        request: ClipRequest,
        crops: CropMode = "center",
        stride: int | None = None,
        normalize: bool = True,
        handler: HandlerPolicy | Literal["report"] = "raise",
        infos: Sequence[VideoInfo] | None = None,
        on_damage: DamagePolicy = "error",
    ) -> None:
        self.items = file_items(items)
        self.clips = WindowClips(request, crops=crops, stride=stride, normalize=normalize, on_damage=on_damage)
        self.report, self.handler = _window_handler(handler)
        if infos is not None and len(infos) != len(self.items):
            raise InvalidArgumentError(f"{len(infos)} infos for {len(self.items)} videos")
        self.infos: list[VideoInfo | None] = []
        self.windows: list[tuple[int, int, int]] = []  # (video_index, window_index, start)
        self.num_windows: list[int] = []
        self.failures: dict[int, dict[str, Any]] = {}  # 'report': video index -> failure record of its probe
        for v, (path, label) in enumerate(self.items):
            try:
                info = infos[v] if infos is not None else probe(path)
                starts = self.clips.windows(info)
            except Exception as e:  # noqa: BLE001 - the handler policy decides
                name_sample(e, f"video {path}", key=path, video_index=v)
                if self.report:
                    self.failures[v] = failure_record(e, key=path, label=label, video_index=v, window_index=-1)
                elif not self.handler(e):
                    raise
                info, starts = None, []
            self.infos.append(info)
            self.num_windows.append(len(starts))
            self.windows.extend((v, w, s) for w, s in enumerate(starts))

    @property
    def skipped(self) -> int | None:
        return None if self.report else skipped_count(self.handler)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        v, w, start = self.windows[index]
        path, label = self.items[v]
        try:
            out = self.clips(path, self.infos[v], start)
        except Exception as e:  # noqa: BLE001 - 'report' returns it; otherwise it propagates as before
            name_sample(e, f"window {w} (start {start}) of video {path}", key=path, video_index=v, window_index=w)
            if self.report:
                return failure_record(e, key=path, label=label, video_index=v, window_index=w)
            raise
        return _window_item(out, key=path, label=label, video_index=v, window_index=w,
                            num_windows=self.num_windows[v], start=start)
