"""WebDataset shards of original video bytes: write, read back, verify.

Output folder ``OUT``:

- ``<split>-<NNNNNN>.tar``: one sample per video, ``<key>.<ext>`` (the source
  bytes, untouched; ``ext`` is the source extension in lower case) and
  ``<key>.json`` (a :class:`ShardRecord`). Keys hold only ``[A-Za-z0-9_-]``.
- ``index.json``: shards per split with counts, bytes and sha256, the totals,
  the class list and the options of the run (``INDEX_NAME``).
- ``skipped.jsonl``: one JSON line per input that was not written
  (``path``, ``reason``, ``detail``; ``duplicate_of`` for duplicate content).
- ``.compvid-plan.json``: what each shard will hold, so a re-run resumes.

Determinism: probing results, keys, the seeded shuffle and the tar headers
(fixed mtime/owner) depend only on the source tree and the options, so a
re-run writes byte-identical shards. Shards are written under a hidden
temporary name and renamed once complete; an interrupted run leaves no
``*.tar`` that is partial, and a re-run keeps the completed ones.

Reading: :func:`iter_shard` yields :class:`ShardSample` ``(key, data, record)``.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import random
import re
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Literal, Mapping, NamedTuple

from compvid.errors import CompvidError, CorruptVideoError, InvalidArgumentError, ShardError
from compvid.layouts import LayoutName, ParsedLayout, Problem, extension, parse_layout
from compvid.probe import VideoInfo, mv_source_for_codec, probe
from compvid.source import VideoSource, open_video

logger = logging.getLogger(__name__)

INDEX_NAME = "index.json"
SKIPPED_NAME = "skipped.jsonl"
PLAN_NAME = ".compvid-plan.json"
FORMAT_VERSION = 1



@dataclass(frozen=True)
class ShardRecord:
    """The JSON record beside each video of a shard: where the video came from and its probe facts.

    Written by :func:`write_shards` (:meth:`to_dict`) and read by the datasets (:meth:`from_dict`,
    then :meth:`video_info`), so decoding neither re-probes nor guesses. Records written by older
    versions lack some fields; they read with the defaults below (``start_seconds`` None: read
    off the video's first packets; ``timeline`` None: ``decode_clip`` reads it off the video).
    """

    key: str
    codec: str
    width: int  # pixels, as stored (before display rotation)
    height: int
    fps: float  # the rate the container states
    num_frames: int  # decoded pictures
    label: int | None = None  # index into index.json's class list
    class_name: str | None = None
    split: str = ""
    path: str = ""  # relative to the source folder
    ext: str = ""  # the source extension, lower case: the video member's suffix
    bytes: int = 0
    sha256: str = ""
    duration_seconds: float | None = None
    mv_source: str | None = None
    container: str = ""
    pix_fmt: str | None = None
    has_b_frames: bool = False
    rotation_degrees: int = 0
    keyframe_indices: tuple[int, ...] = (0,)
    start_seconds: float | None = None
    timeline: tuple[tuple[int, float], ...] | None = None
    keyframe_sizes: tuple[int, ...] | None = None
    variable_frame_rate: bool = False
    frame_interval_seconds: tuple[float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, tuples as JSON lists."""
        return {name: _json_value(getattr(self, name)) for name in RECORD_FIELDS}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], *, where: str = "") -> "ShardRecord":
        """A record as read from JSON. Raises CorruptVideoError (naming ``where``, else the key) when
        the probe facts are missing; fields a record lacks take their defaults, unknown ones are ignored."""
        if not isinstance(record, Mapping):
            raise CorruptVideoError(f"{where or '<record>'}: the shard record is not a JSON object; re-shard with "
                                    "compvid shard")
        name = where or str(record.get("key", "<record>"))
        try:
            facts = {"codec": str(record["codec"]), "num_frames": int(record["num_frames"]),
                     "fps": float(record["fps"]), "width": int(record["width"]), "height": int(record["height"])}
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptVideoError(f"{name}: shard record lacks the probe facts ({e!r}); re-shard with compvid shard") \
                from e
        get = record.get
        return cls(
            key=str(get("key", "")),
            **facts,
            label=None if get("label") is None else int(get("label")),
            class_name=get("class_name"),
            split=str(get("split", "")),
            path=str(get("path", "")),
            ext=str(get("ext", "")),
            bytes=int(get("bytes", 0) or 0),
            sha256=str(get("sha256", "")),
            duration_seconds=None if get("duration_seconds") is None else float(get("duration_seconds")),
            mv_source=get("mv_source") or None,
            container=str(get("container", "")),
            pix_fmt=get("pix_fmt"),
            has_b_frames=bool(get("has_b_frames", False)),
            rotation_degrees=int(get("rotation_degrees", 0) or 0),
            keyframe_indices=tuple(int(k) for k in get("keyframe_indices") or (0,)),
            start_seconds=None if get("start_seconds") is None else float(get("start_seconds")),
            timeline=None if get("timeline") is None else tuple((int(k), float(t)) for k, t in get("timeline")),
            keyframe_sizes=tuple(int(n) for n in get("keyframe_sizes")) if get("keyframe_sizes") else None,
            variable_frame_rate=bool(get("variable_frame_rate", False)),
            frame_interval_seconds=None if get("frame_interval_seconds") is None
            else tuple(float(v) for v in get("frame_interval_seconds")),  # type: ignore[arg-type]
        )

    def video_info(self, *, data: VideoSource | None = None, source: str = "") -> VideoInfo:
        """The :class:`~compvid.probe.VideoInfo` these facts describe. A record without
        ``start_seconds`` takes it from ``data`` (a few packets), else 0."""
        if self.start_seconds is not None:
            start = self.start_seconds
        elif data is not None:
            start = first_pts_seconds(data)
        else:
            start = 0.0
        fps = self.fps
        return VideoInfo(
            source=source or self.key or "<record>",
            container=self.container,
            codec=self.codec,
            profile=None,  # not recorded
            pix_fmt=self.pix_fmt,
            width=self.width,
            height=self.height,
            fps=fps,
            num_frames=self.num_frames,
            duration_seconds=self.duration_seconds if self.duration_seconds is not None
            else (self.num_frames / fps if fps > 0 else 0.0),
            start_seconds=start,
            keyframe_indices=self.keyframe_indices,
            has_b_frames=self.has_b_frames,
            mv_source=self.mv_source or mv_source_for_codec(self.codec),
            rotation_degrees=self.rotation_degrees,
            timeline=self.timeline,
            keyframe_sizes=self.keyframe_sizes,
            variable_frame_rate=self.variable_frame_rate,
            frame_interval_seconds=self.frame_interval_seconds,
        )


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ShardRecord))


def _json_value(value: Any) -> Any:
    return [_json_value(v) for v in value] if isinstance(value, tuple) else value


def first_pts_seconds(source: VideoSource, packets: int = 16) -> float:
    """Presentation time of the first frame, read off the first ``packets`` packets.

    MPEG-PS and AVI with packed B-frames do not start at 0; frame indices
    count from this time, as :func:`compvid.probe` does.
    """
    container, stream = open_video(source)
    try:
        stamps = [p.pts for p in itertools.islice(container.demux(stream), packets) if p.pts is not None and p.size]
        tb = float(stream.time_base)
        return min(stamps) * tb if stamps else float((stream.start_time or 0) * tb)
    finally:
        container.close()

# Reasons an input found by the layout can still fail to be written.
REASON_EMPTY = "empty"
REASON_CORRUPT = "corrupt"
REASON_NO_VIDEO_STREAM = "no_video_stream"
REASON_UNSUPPORTED = "unsupported"
REASON_UNREADABLE = "unreadable"
REASON_DUPLICATE = "duplicate_content"

SHARD_NAME = re.compile(r"([A-Za-z0-9_-]+)-(\d{6})\.tar")
MAX_KEY_LENGTH = 80  # USTAR keeps member names up to 100 bytes without extensions headers
_TAR_BLOCK = 512
_TAR_RECORD = 20 * _TAR_BLOCK  # tarfile pads archives to whole records
_TAR_MTIME = 0  # fixed so a re-run writes identical bytes
_CHUNK = 1 << 20

ProgressFn = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``, stage one of 'probe', 'write' (shard), 'verify', 'source' (verify)."""


class ShardSample(NamedTuple):
    """One sample read back from a shard: key, original video bytes, JSON record."""

    key: str
    data: bytes
    record: dict


@dataclass(frozen=True)
class ShardResult:
    """What :func:`write_shards` did. ``inputs == written + skipped``."""

    out: Path
    layout: str
    inputs: int
    written: int
    skipped: int
    shards: tuple[str, ...]
    reused_shards: int
    input_bytes: int
    shard_bytes: int
    skipped_reasons: dict[str, int]
    warnings: tuple[str, ...] = ()
    split_rule: str = ""  # how test_fraction split the source, in words

    @property
    def storage_ratio(self) -> float:
        """Shard bytes / bytes of the source videos written (1.0 = no overhead)."""
        return self.shard_bytes / self.input_bytes if self.input_bytes else float("nan")


def default_output_dir(src: str | os.PathLike) -> Path:
    """``<SRC>-shards`` beside ``src``: ``ucf101/`` → ``ucf101-shards/``."""
    src = Path(src).resolve()
    return src.with_name(src.name + "-shards")


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class _Probed:
    path: str
    size: int = 0
    sha256: str = ""
    info: dict | None = None
    reason: str = ""
    detail: str = ""


def _open_source(path: str) -> IO[bytes]:
    return open(path, "rb")


def _hash_file(path: str) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with _open_source(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _probe_one(root: str, rel: str) -> _Probed:
    """Size, sha256 and probe facts of one file, or the reason it cannot be read."""
    # Imported here so that worker processes resolve the same (patchable) names.
    from compvid.errors import CorruptVideoError, EmptyFileError, NoVideoStreamError, UnsupportedVideoError

    path = os.path.join(root, rel)
    try:
        size, sha = _hash_file(path)
        if size == 0:
            return _Probed(rel, reason=REASON_EMPTY, detail="file is empty (0 bytes)")
        info = probe(path).to_dict()
    except PermissionError as e:
        return _Probed(rel, reason=REASON_UNREADABLE, detail=f"permission denied: {e.strerror}")
    except EmptyFileError as e:
        return _Probed(rel, reason=REASON_EMPTY, detail=str(e))
    except NoVideoStreamError as e:
        return _Probed(rel, reason=REASON_NO_VIDEO_STREAM, detail=str(e))
    except UnsupportedVideoError as e:
        return _Probed(rel, reason=REASON_UNSUPPORTED, detail=str(e))
    except (CorruptVideoError, CompvidError) as e:
        return _Probed(rel, reason=REASON_CORRUPT, detail=str(e))
    except OSError as e:
        return _Probed(rel, reason=REASON_UNREADABLE, detail=e.strerror or str(e))
    except Exception as e:  # noqa: BLE001 - shard policy: skip and report, never end the run
        logger.warning("%s: unexpected %s while probing: %s", path, type(e).__name__, e)
        return _Probed(rel, reason=REASON_CORRUPT, detail=f"unexpected {type(e).__name__} while probing: {e}")
    return _Probed(rel, size=size, sha256=sha, info=info)


def _probe_all(
    root: Path, rels: list[str], workers: int, executor: str, on_progress: ProgressFn | None
) -> list[_Probed]:
    total = len(rels)
    if on_progress:
        on_progress("probe", 0, total)
    if workers <= 1 or total <= 1:
        results = []
        for n, rel in enumerate(rels, start=1):
            results.append(_probe_one(str(root), rel))
            if on_progress:
                on_progress("probe", n, total)
        return results
    if executor == "process":
        pool: cf.Executor = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    else:
        pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="compvid-probe")
    with pool:
        futures = {pool.submit(_probe_one, str(root), rel): i for i, rel in enumerate(rels)}
        results: list[_Probed | None] = [None] * total
        for n, fut in enumerate(cf.as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if on_progress:
                on_progress("probe", n, total)
    return results  # type: ignore[return-value]


# --------------------------------------------------------------------------- keys and plan


def sanitize_key(rel: str) -> str:
    """A WebDataset key for a relative path: no extension, only ``[A-Za-z0-9_-]``."""
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    key = re.sub(r"[^A-Za-z0-9_-]+", "_", stem.replace("/", "__")).strip("_") or "video"
    if len(key) > MAX_KEY_LENGTH:
        key = f"{key[: MAX_KEY_LENGTH - 9]}_{_short_hash(rel)}"
    return key


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def assign_keys(paths: Iterable[str]) -> dict[str, str]:
    """Unique keys for ``paths``: paths whose sanitised keys clash all get a suffix
    made from a hash of their own path, so the result does not depend on order."""
    paths = sorted(set(paths))
    groups: dict[str, list[str]] = {}
    for p in paths:
        groups.setdefault(sanitize_key(p), []).append(p)
    keys: dict[str, str] = {}
    for key, members in groups.items():
        if len(members) == 1:
            keys[members[0]] = key
            continue
        for p in members:
            keys[p] = f"{key[: MAX_KEY_LENGTH - 9]}_{_short_hash(p)}"
    if len(set(keys.values())) != len(keys):  # a suffixed key met a natural one: number them
        seen: Counter = Counter()
        for p in paths:
            seen[keys[p]] += 1
            if seen[keys[p]] > 1:
                keys[p] = f"{keys[p][: MAX_KEY_LENGTH - 7]}_{seen[keys[p]]:06d}"
    assert len(set(keys.values())) == len(keys)
    return keys


def _padded(n: int) -> int:
    return -(-n // _TAR_BLOCK) * _TAR_BLOCK


def _sample_tar_bytes(size: int, json_size: int) -> int:
    return 2 * _TAR_BLOCK + _padded(size) + _padded(json_size)


def _archive_bytes(sample_bytes: int) -> int:
    return -(-(sample_bytes + 2 * _TAR_BLOCK) // _TAR_RECORD) * _TAR_RECORD


def _safe_split(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name) or "all"


@dataclass
class _Sample:
    key: str
    rel: str
    ext: str
    size: int
    sha256: str
    record_bytes: bytes


@dataclass
class _Shard:
    name: str
    split: str
    samples: list[_Sample] = field(default_factory=list)

    @property
    def expected_bytes(self) -> int:
        return _archive_bytes(sum(_sample_tar_bytes(s.size, len(s.record_bytes)) for s in self.samples))


def _make_record(key: str, entry, probed: _Probed) -> ShardRecord:
    facts = {name: probed.info[name] for name in RECORD_FIELDS if name in probed.info}
    return ShardRecord.from_dict({**facts, "key": key, "label": entry.label, "class_name": entry.class_name,
                                  "split": _safe_split(entry.split), "path": entry.path, "ext": extension(entry.path),
                                  "bytes": probed.size, "sha256": probed.sha256})


def _plan(samples: list[_Sample], splits: dict[str, str], *, seed: int, max_size: int, max_count: int) -> list[_Shard]:
    """Seeded shuffle per split, then cut into shards bounded by size and count."""
    shards: list[_Shard] = []
    for split in sorted(set(splits.values())):
        members = sorted((s for s in samples if splits[s.key] == split), key=lambda s: s.key)
        random.Random(f"{seed}/{split}").shuffle(members)
        current: _Shard | None = None
        size = 0
        for s in members:
            nbytes = _sample_tar_bytes(s.size, len(s.record_bytes))
            full = current is not None and (
                len(current.samples) >= max_count or _archive_bytes(size + nbytes) > max_size
            )
            if current is None or full:
                current = _Shard(f"{split}-{sum(sh.split == split for sh in shards):06d}.tar", split)
                shards.append(current)
                size = 0
            current.samples.append(s)
            size += nbytes
    return shards


def _plan_document(shards: list[_Shard], options: dict) -> dict:
    return {
        "version": FORMAT_VERSION,
        "options": options,
        "shards": [
            {
                "name": sh.name,
                "bytes": sh.expected_bytes,
                "samples": [[s.key, s.sha256, hashlib.sha256(s.record_bytes).hexdigest()] for s in sh.samples],
            }
            for sh in shards
        ],
    }


# --------------------------------------------------------------------------- writing


class _HashingWriter:
    """A write-only file wrapper that hashes and counts what passes through."""

    def __init__(self, f: IO[bytes]):
        self.f = f
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _file_sha256(path: Path) -> str:
    return _hash_file(str(path))[1]


def _read_source(root: Path, s: _Sample) -> bytes:
    with _open_source(str(root / s.rel)) as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != s.sha256:
        raise ShardError(f"{root / s.rel}: the file changed while sharding (sha256 differs from the probe); run again")
    return data


def _write_shard(root: Path, out: Path, shard: _Shard, on_sample: Callable[[], None]) -> str:
    """Write ``shard`` under a temporary name, rename it when complete; return its sha256."""
    import webdataset as wds  # here: it imports torch (a second); reading and verifying need neither

    final = out / shard.name
    tmp = out / f".{shard.name}.partial"
    try:
        with open(tmp, "wb") as raw:
            hashing = _HashingWriter(raw)
            writer = wds.TarWriter(
                hashing, encoder=False, mtime=_TAR_MTIME, user="compvid", group="compvid", mode=0o444
            )
            try:
                for s in shard.samples:
                    writer.write({"__key__": s.key, s.ext: _read_source(root, s), "json": s.record_bytes})
                    on_sample()
            finally:  # also on failure, so the tar stream never writes into a closed file later
                writer.close()
            raw.flush()
            os.fsync(raw.fileno())
        if hashing.size != shard.expected_bytes:
            raise ShardError(f"{final}: wrote {hashing.size} bytes, planned {shard.expected_bytes}")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashing.sha.hexdigest()


def _clear_outputs(out: Path) -> None:
    for p in out.iterdir():
        if p.is_file() and (SHARD_NAME.fullmatch(p.name) or p.name in (INDEX_NAME, SKIPPED_NAME, PLAN_NAME)):
            p.unlink()


def write_shards(
    src: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    layout: LayoutName = "auto",
    split: int | None = None,
    list_file: str | os.PathLike | None = None,
    test_fraction: float | None = None,
    max_size: int = 512 * 2**20,
    max_count: int = 10_000,
    seed: int = 0,
    workers: int | None = None,
    executor: Literal["thread", "process"] = "thread",
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
) -> ShardResult:
    """Shard the videos of ``src`` into ``out`` (default ``<src>-shards``).

    ``layout``/``split``/``list_file``/``test_fraction`` go to :func:`compvid.layouts.parse_layout`.
    A shard holds at most ``max_count`` samples and ``max_size`` bytes (a
    single larger video gets a shard of its own). ``seed`` drives the shuffle
    that mixes classes across shards. ``workers`` probe in parallel
    (``executor`` threads or spawned processes; 0 or 1 = in this thread;
    default min(8, cpu count)). ``on_progress(stage, done, total)`` is called
    with stage 'probe' and 'write' (one call per sample).

    Every input is either written or listed in ``skipped.jsonl``; content seen
    twice (same sha256) is written once and the copies are listed as
    ``duplicate_content``. When ``out`` already holds shards of the same plan,
    the complete ones are kept (resume); shards of a different plan raise
    ShardError unless ``overwrite`` is set.
    """
    src = Path(src)
    out = Path(out) if out is not None else default_output_dir(src)
    if executor not in ("thread", "process"):
        raise InvalidArgumentError(f"executor={executor!r}: allowed values are thread, process")
    for name, value in (("max_size", max_size), ("max_count", max_count)):
        if not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name}={value!r}: must be a positive integer")
    if workers is None:
        workers = min(8, os.cpu_count() or 1)
    if workers < 0:
        raise InvalidArgumentError(f"workers={workers}: must be >= 0")
    if not src.is_dir():
        raise InvalidArgumentError(f"{src}: not a folder; pass the folder that holds the videos")
    if out.resolve() == src.resolve():
        raise InvalidArgumentError(f"{out}: the output folder must differ from the source folder")

    parsed = parse_layout(src, layout=layout, split=split, list_file=list_file, test_fraction=test_fraction,
                          exclude=[out])
    probed = _probe_all(src, [e.path for e in parsed.entries], workers, executor, on_progress)

    problems: list[Problem] = list(parsed.problems)
    extra: dict[str, dict] = {}
    good = []
    first_of_sha: dict[str, str] = {}
    for entry, p in zip(parsed.entries, probed):  # entries are sorted by path: the first copy wins
        if p.reason:
            problems.append(Problem(entry.path, p.reason, p.detail))
        elif p.sha256 in first_of_sha:
            problems.append(Problem(entry.path, REASON_DUPLICATE, f"same content as {first_of_sha[p.sha256]}"))
            extra[entry.path] = {"duplicate_of": first_of_sha[p.sha256]}
        else:
            first_of_sha[p.sha256] = entry.path
            good.append((entry, p))

    keys = assign_keys(e.path for e, _ in good)
    samples, splits = [], {}
    for entry, p in good:
        key = keys[entry.path]
        record = _make_record(key, entry, p)
        data = json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        samples.append(_Sample(key, entry.path, record.ext, p.size, p.sha256, data))
        splits[key] = record.split
    shards = _plan(samples, splits, seed=seed, max_size=max_size, max_count=max_count)
    options = {
        "layout": parsed.layout, "fold": parsed.fold, "seed": seed, "max_size": max_size, "max_count": max_count,
        "list_file": os.fspath(list_file) if list_file is not None else None,
    }  # fmt: skip
    if test_fraction is not None:  # only then: earlier runs' plans and indexes stay byte-identical
        options["test_fraction"] = test_fraction
    plan = _plan_document(shards, options)

    reused = _prepare_output(out, plan, overwrite)
    total = len(samples)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress("write", done, total)

    if on_progress:
        on_progress("write", 0, total)
    shard_entries: dict[str, list[dict]] = {}
    for sh in shards:
        if sh.name in reused:
            sha = _file_sha256(out / sh.name)
            for _ in sh.samples:
                tick()
        else:
            sha = _write_shard(src, out, sh, tick)
        shard_entries.setdefault(sh.split, []).append(
            {"name": sh.name, "count": len(sh.samples), "bytes": sh.expected_bytes, "sha256": sha}
        )

    problems.sort(key=lambda p: (p.path, p.reason))
    skipped_lines = []
    for p in problems:
        line = {"path": p.path, "reason": p.reason, "detail": p.detail, **extra.get(p.path, {})}
        skipped_lines.append(json.dumps(line, sort_keys=True, ensure_ascii=False))
    _atomic_write(out / SKIPPED_NAME, "".join(f"{line}\n" for line in skipped_lines).encode("utf-8"))

    input_bytes = sum(s.size for s in samples)
    shard_bytes = sum(sh.expected_bytes for sh in shards)
    reasons = dict(sorted(Counter(p.reason for p in problems).items()))
    inputs = parsed.num_inputs
    assert inputs == len(samples) + len(problems), (inputs, len(samples), len(problems))
    index = {
        "version": FORMAT_VERSION,
        "source": os.fspath(src.resolve()),
        "options": options,
        "classes": list(parsed.classes),
        "inputs": inputs,
        "written": len(samples),
        "skipped": len(problems),
        "skipped_reasons": reasons,
        "input_bytes": input_bytes,
        "shard_bytes": shard_bytes,
        "storage_ratio": shard_bytes / input_bytes if input_bytes else None,
        "splits": {
            name: {
                "count": sum(e["count"] for e in entries),
                "bytes": sum(e["bytes"] for e in entries),
                "shards": entries,
            }
            for name, entries in sorted(shard_entries.items())
        },
    }
    _atomic_write(out / INDEX_NAME, (json.dumps(index, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return ShardResult(
        out=out,
        layout=parsed.layout,
        inputs=inputs,
        written=len(samples),
        skipped=len(problems),
        shards=tuple(sh.name for sh in shards),
        reused_shards=len(reused),
        input_bytes=input_bytes,
        shard_bytes=shard_bytes,
        skipped_reasons=reasons,
        warnings=tuple(parsed.warnings),
        split_rule=parsed.split_rule,
    )


def _prepare_output(out: Path, plan: dict, overwrite: bool) -> set[str]:
    """Create ``out``, drop partial files, and return the names of complete shards to keep."""
    out.mkdir(parents=True, exist_ok=True)
    for p in out.iterdir():
        if p.name.startswith(".") and p.name.endswith(".partial"):
            p.unlink()
    existing = {p.name for p in out.iterdir() if p.is_file() and SHARD_NAME.fullmatch(p.name)}
    previous = None
    if (out / PLAN_NAME).is_file():
        try:
            previous = json.loads((out / PLAN_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    if previous != plan:
        if (existing or (out / INDEX_NAME).exists()) and not overwrite:
            raise ShardError(
                f"{out}: holds shards of another run (different source, options or plan); "
                "choose another output folder or pass overwrite=True (--overwrite)"
            )
        _clear_outputs(out)
        _atomic_write(out / PLAN_NAME, json.dumps(plan, sort_keys=True).encode("utf-8"))
        return set()
    planned = {sh["name"]: sh["bytes"] for sh in plan["shards"]}
    keep = set()
    for name in existing:
        if name in planned and (out / name).stat().st_size == planned[name]:
            keep.add(name)
        else:
            (out / name).unlink()
    return keep


# --------------------------------------------------------------------------- reading


def iter_shard(shard: str | os.PathLike | IO[bytes]) -> Iterator[ShardSample]:
    """Yield ``(key, video bytes, record)`` for each sample of one shard, in order.

    Accepts a path or a readable binary stream. Raises ShardError for a tar
    that cannot be read (truncated, damaged header) or a sample that lacks its
    video or its JSON member.
    """
    name = os.fspath(shard) if isinstance(shard, (str, os.PathLike)) else getattr(shard, "name", "<stream>")
    key = None
    members: dict[str, bytes] = {}
    try:
        opened = (
            tarfile.open(name, mode="r|")
            if isinstance(shard, (str, os.PathLike))
            else tarfile.open(fileobj=shard, mode="r|")
        )
        with opened as tar:
            for info in tar:
                if not info.isfile():
                    continue
                base, _, ext = info.name.rpartition("/")[2].partition(".")
                data = tar.extractfile(info).read()
                if len(data) != info.size:
                    raise ShardError(f"{name}: member {info.name} is truncated")
                if base != key:
                    if key is not None:
                        yield _sample(name, key, members)
                    key, members = base, {}
                members[ext] = data
            if key is not None:
                yield _sample(name, key, members)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ShardError(f"{name}: unreadable tar after key {key!r} ({e}); the shard is truncated or damaged") from e


def _sample(shard: str, key: str, members: dict[str, bytes]) -> ShardSample:
    if "json" not in members or len(members) != 2:
        raise ShardError(f"{shard}: sample {key} has members {sorted(members)}; expected one video and json")
    try:
        record = json.loads(members.pop("json"))
    except ValueError as e:
        raise ShardError(f"{shard}: sample {key} has a damaged JSON record ({e})") from e
    return ShardSample(key, next(iter(members.values())), record)


def read_index(out: str | os.PathLike) -> dict:
    """The parsed ``index.json`` of a shard folder (ShardError when absent or damaged)."""
    path = Path(out) / INDEX_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ShardError(f"{path}: no index; is {out} a folder written by compvid shard?") from e
    except (OSError, ValueError) as e:
        raise ShardError(f"{path}: unreadable index ({e})") from e


def videos_in_shards(paths: Iterable[str | os.PathLike]) -> int | None:
    """How many videos the shard files ``paths`` hold, from the ``index.json`` beside them; None when
    a path is remote or not listed in its folder's index (the count is then unknown, not guessed)."""
    total, indexes = 0, {}
    for path in paths:
        path = Path(os.fspath(path))
        if "://" in str(path) or str(path).startswith("pipe:"):
            return None
        if path.parent not in indexes:
            try:
                indexes[path.parent] = {s["name"]: s["count"] for split in read_index(path.parent)["splits"].values()
                                        for s in split["shards"]}
            except (ShardError, KeyError, TypeError):
                return None
        count = indexes[path.parent].get(path.name)
        if count is None:
            return None
        total += int(count)
    return total


def shard_paths(out: str | os.PathLike, split: str | None = None) -> list[Path]:
    """Paths of the shards of ``split`` (all splits when None), from the index."""
    index = read_index(out)
    names = [
        sh["name"] for name, s in index["splits"].items() if split is None or name == split for sh in s["shards"]
    ]
    if split is not None and split not in index["splits"]:
        raise ShardError(f"{out}: no split {split!r}; splits: {', '.join(index['splits']) or 'none'}")
    return [Path(out) / n for n in names]


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class VerifyProblem:
    """One thing wrong in a shard folder; ``shard``/``key`` name where."""

    kind: str
    message: str
    shard: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = "/".join(x for x in (self.shard, self.key) if x)
        return f"{where}: {self.message} [{self.kind}]" if where else f"{self.message} [{self.kind}]"


@dataclass
class VerifyReport:
    """What :func:`verify_shards` checked and every problem it found."""

    out: Path
    shards_checked: int = 0
    samples_checked: int = 0
    inputs: int = 0
    skipped: int = 0
    problems: list[VerifyProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, message: str, shard: str | None = None, key: str | None = None) -> None:
        self.problems.append(VerifyProblem(kind, message, shard, key))


def verify_shards(out: str | os.PathLike, *, source: str | os.PathLike | None = None,
                  on_progress: ProgressFn | None = None) -> VerifyReport:
    """Check a shard folder; return a report listing every problem (never raises for them).

    Checks: each indexed shard exists, has its indexed size and sha256, reads
    as a tar to the end; each sample has a video and a JSON record whose
    ``bytes``/``sha256`` match the video member and whose key is unique; the
    counts equal the index; inputs = written + skipped (``skipped.jsonl``);
    no stray or partial shard lies in the folder. With ``source``, each
    record's source file must exist with the same sha256, and the source tree
    must hold the same inputs as recorded. ``on_progress(stage, done, total)``: stage 'verify' after
    each shard, 'source' after each source file.
    """
    out = Path(out)
    report = VerifyReport(out)
    try:
        index = read_index(out)
    except ShardError as e:
        report.add("index", str(e))
        return report
    report.inputs = int(index.get("inputs", 0))
    seen_keys: dict[str, str] = {}
    records: list[dict] = []
    indexed: set[str] = set()
    num_shards = sum(len(split.get("shards", [])) for split in index.get("splits", {}).values())
    if on_progress:
        on_progress("verify", 0, num_shards)
    for split_name, split in sorted(index.get("splits", {}).items()):
        split_count = 0
        for entry in split.get("shards", []):
            name = entry["name"]
            indexed.add(name)
            count = _verify_shard(out / name, entry, report, seen_keys, records)
            split_count += count
            if on_progress:
                on_progress("verify", len(indexed), num_shards)
        if split_count != split.get("count"):
            report.add("count", f"split {split_name}: {split_count} samples, index says {split.get('count')}")
    for p in sorted(out.iterdir()):
        if SHARD_NAME.fullmatch(p.name) and p.name not in indexed:
            report.add("stray_shard", "shard is not in the index (left from another run?)", shard=p.name)
        elif p.name.endswith(".partial"):
            report.add("partial", "partial file left by an interrupted run; run compvid shard again", shard=p.name)
    skipped = _read_skipped(out, report)
    report.skipped = len(skipped)
    if len(records) != index.get("written"):
        report.add("count", f"{len(records)} samples in the shards, index says written = {index.get('written')}")
    if len(skipped) != index.get("skipped"):
        report.add("count", f"{len(skipped)} lines in {SKIPPED_NAME}, index says skipped = {index.get('skipped')}")
    if report.inputs != len(records) + len(skipped):
        report.add(
            "accounting",
            f"inputs ({report.inputs}) != written ({len(records)}) + skipped ({len(skipped)})",
        )
    if source is not None:
        _verify_against_source(Path(source), index, records, skipped, report, on_progress)
    return report


def _verify_shard(path: Path, entry: dict, report: VerifyReport, seen_keys: dict, records: list) -> int:
    name = path.name
    if not path.is_file():
        report.add("missing_shard", "shard file is missing", shard=name)
        return 0
    report.shards_checked += 1
    size = path.stat().st_size
    if size != entry.get("bytes"):
        report.add("shard_size", f"{size} bytes, index says {entry.get('bytes')}", shard=name)
    if _file_sha256(path) != entry.get("sha256"):
        report.add("shard_sha256", "shard sha256 differs from the index", shard=name)
    count = 0
    try:
        for sample in iter_shard(path):
            count += 1
            report.samples_checked += 1
            rec = sample.record
            records.append(rec)
            if sample.key in seen_keys:
                report.add("duplicate_key", f"key also in {seen_keys[sample.key]}", shard=name, key=sample.key)
            seen_keys[sample.key] = name
            if rec.get("key") != sample.key:
                report.add("record", f"record names key {rec.get('key')!r}", shard=name, key=sample.key)
            sha = hashlib.sha256(sample.data).hexdigest()
            if sha != rec.get("sha256") or len(sample.data) != rec.get("bytes"):
                report.add(
                    "sha256_mismatch",
                    f"video member sha256 {sha[:12]}… / {len(sample.data)} bytes, record says "
                    f"{str(rec.get('sha256'))[:12]}… / {rec.get('bytes')} bytes",
                    shard=name,
                    key=sample.key,
                )
    except ShardError as e:
        report.add("unreadable_tar", f"{e}", shard=name)
    if count != entry.get("count"):
        report.add("count", f"{count} samples, index says {entry.get('count')}", shard=name)
    return count


def _read_skipped(out: Path, report: VerifyReport) -> list[dict]:
    path = out / SKIPPED_NAME
    if not path.is_file():
        report.add("skipped_list", f"{SKIPPED_NAME} is missing")
        return []
    lines = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except ValueError:
            report.add("skipped_list", f"{SKIPPED_NAME} line {n} is not JSON")
            lines.append({})
    return lines


def _verify_against_source(source: Path, index: dict, records: list[dict], skipped: list[dict], report,
                           on_progress: ProgressFn | None = None) -> None:
    for n, rec in enumerate(records):
        if on_progress:
            on_progress("source", n, len(records))
        path = source / str(rec.get("path", ""))
        try:
            sha = _file_sha256(path)
        except OSError as e:
            report.add("source", f"source file {path} cannot be read ({e.strerror})", key=rec.get("key"))
            continue
        if sha != rec.get("sha256"):
            report.add("source", f"source file {path} differs from the shard member (sha256)", key=rec.get("key"))
    if on_progress:
        on_progress("source", len(records), len(records))
    opts = index.get("options", {})
    try:
        parsed: ParsedLayout = parse_layout(
            source,
            layout=opts.get("layout", "auto"),
            split=opts.get("fold"),
            list_file=opts.get("list_file"),
            test_fraction=opts.get("test_fraction"),
            exclude=[report.out],
        )
    except CompvidError as e:
        report.add("source", f"cannot read the source layout: {e}")
        return
    recorded = Counter(str(r.get("path")) for r in records) + Counter(str(s.get("path")) for s in skipped)
    now = Counter([e.path for e in parsed.entries] + [p.path for p in parsed.problems])
    if parsed.num_inputs != index.get("inputs"):
        report.add("source", f"the source now holds {parsed.num_inputs} inputs, index says {index.get('inputs')}")
    for path in sorted((now - recorded).keys()):
        report.add("source", f"source input {path} is neither written nor skipped")
    for path in sorted((recorded - now).keys()):
        report.add("source", f"recorded input {path} is no longer in the source")
