"""Clips per second of the pretraining stream (compvid.datasets.PairStream) with 0 and N workers.

Generated textured pans (``compvid.synthetic``, 320×240 by default, libx264 and MPEG-4 alternating)
are sharded with ``compvid.shards.write_shards``, then read in one process by:

- ``decode floor``: ``decode_clip`` alone on the same bytes, two clips per video at random starts,
  no augmentation, in this process (the named baseline);
- ``decode + augment``: :class:`compvid.pipeline.PairClips` (decode and paired augmentation) alone;
- ``stream, 0 workers``: ``pair_loader(..., num_workers=0)`` (decode + paired augmentation + batching);
- ``stream, N workers``: the same with ``N`` DataLoader worker processes (``--workers 1 2 4``: one row each);
- ``E epochs, workers restarted / persistent``: ``E`` short epochs over every video with ``N``
  workers, started anew at each epoch (DataLoader's default) or kept (``pair_loader``).

A clip is one of the two clips (A, B) of a video, with every view asked for. Figures are ratios
against the decode floor and against 0 workers, measured in the same run. Each row also gives its
clips per CPU-second (this process and its workers, user + system): what one core delivers, so
the cores that keep a trainer fed are its clips/s over that figure, however loaded this machine is.

    python bench/bench_data.py                                    # 16 videos, 16×128×128, 2 workers
    python bench/bench_data.py --frames 32 --videos 32 --workers 1 2 --views both
    python bench/bench_data.py --shards 'out/train-{000000..000009}.tar' --videos 64
    python bench/bench_data.py --json data.json                  # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from compvid.datasets import EpochLoader, PairStream, expand_urls, pair_loader
from compvid.decode import decode_clip
from compvid.pipeline import PairClips, video_member
from compvid.request import ClipRequest
from compvid.shards import ShardRecord, iter_shard, shard_paths, write_shards
from compvid.synthetic import RECIPES, write_moving_video


def make_shards(root: Path, *, videos: int, width: int, height: int, frames: int, shards: int = 4) -> list[str]:
    src = root / "videos"
    for i in range(videos):
        recipe = ("h264", "mpeg4")[i % 2]
        path = src / f"class{i % 2}" / f"v{i:03d}{RECIPES[recipe].suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_moving_video(path, recipe=recipe, num_frames=frames, width=width, height=height, seed=i)
    # at least one shard per loader worker: WebDataset hands whole shards to workers
    write_shards(src, root / "shards", max_count=max(1, videos // shards), workers=0)
    return [str(p) for p in shard_paths(root / "shards")]


def decode_floor(urls: list[str], clips: PairClips, limit: int, *, augment: bool = False) -> tuple[int, float]:
    """Clips decoded (and, with ``augment``, paired-augmented by PairClips) in this process."""
    rng = np.random.default_rng(0)
    r = clips.request
    with_rgb, with_mv = r.with_rgb, r.with_mv
    n = 0
    t0 = time.perf_counter()
    for url in urls:
        for s in iter_shard(url):
            if n >= limit:
                break
            record = ShardRecord.from_dict(s.record)
            info = record.video_info(data=video_member({"json": None, record.ext: s.data}, record))
            if augment:
                clips(s.data, info, rng)
                n += 2
                continue
            for _ in range(2):
                start = int(rng.integers(0, max(1, info.num_frames - r.num_frames + 1)))
                decode_clip(s.data, start=start, num_frames=r.num_frames, frame_step=r.frame_step,
                            size=clips.short_side, with_rgb=with_rgb, with_mv=with_mv, info=info)
            n += 2
    return n, time.perf_counter() - t0


def stream_rate(urls: list[str], *, workers: int, batch: int, limit: int, **opts) -> tuple[int, float]:
    loader = pair_loader(urls, batch_size=batch, num_workers=workers, drop_last=False, **opts)
    n = 0
    t0 = time.perf_counter()
    batches = iter(loader)  # worker start-up is part of the cost of an epoch
    for b in batches:
        n += 2 * len(b["key"])
        if n >= limit:
            break
    secs = time.perf_counter() - t0
    del batches  # its workers end (and are reaped, so their CPU time is counted) here
    return n, secs


def cpu_seconds(who: int) -> float:
    """User + system CPU seconds of this process (RUSAGE_SELF) or its ended, reaped children (RUSAGE_CHILDREN)."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def measured(run) -> tuple[int, float, float, float]:
    """(clips, wall seconds, CPU seconds of this process and its workers, of this process alone) of one row's run."""
    me, kids = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    n, secs = run()
    me = cpu_seconds(resource.RUSAGE_SELF) - me
    gc.collect()  # joins (reaps) workers a loader cycle still holds; its own ~0.15 s is not counted
    return n, secs, me + cpu_seconds(resource.RUSAGE_CHILDREN) - kids, me


def epochs_rate(urls: list[str], *, workers: int, batch: int, epochs: int, persistent: bool,
                **opts) -> tuple[int, float]:
    """Clips per second over ``epochs`` short epochs, workers kept or restarted at each epoch."""
    stream = PairStream(urls, **opts)
    loader = EpochLoader(stream, batch_size=batch, drop_last=False, num_workers=workers,
                         persistent_workers=persistent and workers > 0)
    n = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for b in loader:
            n += 2 * len(b["key"])
    secs = time.perf_counter() - t0
    del loader  # persistent workers end here
    return n, secs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", help="existing shard URLs (brace pattern); default: generate videos")
    p.add_argument("--videos", type=int, default=16, help="videos to generate / to read at most")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--video-frames", type=int, default=64, help="frames per generated video")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (T)")
    p.add_argument("--size", type=int, default=128, help="crop size")
    p.add_argument("--views", choices=("rgb", "mv", "both"), default="both")
    p.add_argument("--workers", type=int, nargs="+", default=[2], help="worker counts, one row each")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3, help="short epochs for the persistent-workers rows")
    p.add_argument("--repeat", type=int, default=2, help="rounds; each row keeps its fastest (shared CPUs are noisy)")
    p.add_argument("--json", metavar="PATH", help="also write the printed figures (and raw counts/seconds) here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        if args.shards:
            urls = expand_urls(args.shards)
        else:
            urls = make_shards(Path(tmp), videos=args.videos, width=args.width, height=args.height,
                               frames=args.video_frames, shards=max(4, *args.workers))
        request = ClipRequest(num_frames=args.frames, crop_px=args.size, views=args.views)
        opts = dict(request=request, shuffle=0)
        clips = PairClips(request)
        limit = 2 * args.videos
        runs = {
            "decode floor (decode_clip only)": lambda: decode_floor(urls, clips, limit),
            "decode + augment, no DataLoader": lambda: decode_floor(urls, clips, limit, augment=True),
        }
        for workers in sorted({0, *args.workers}):
            runs[f"stream, {workers} workers"] = lambda w=workers: stream_rate(
                urls, workers=w, batch=args.batch, limit=limit, **opts)
        most = max(args.workers)
        if most > 0:  # short epochs over every video: workers kept (pair_loader) or restarted
            for persistent, how in ((False, "restarted"), (True, "persistent")):
                runs[f"{args.epochs} epochs, workers {how}"] = lambda p=persistent: epochs_rate(
                    urls, workers=most, batch=args.batch, epochs=args.epochs, persistent=p, **opts)
        # Untimed warm-up: the first decode pays one-off costs (numba compiles the matcher when its
        # on-disk cache is cold, shared libraries load), which would otherwise land on the floor row.
        decode_floor(urls, clips, 2, augment=True)
        best: dict[str, tuple[int, float, float, float]] = {}
        for _ in range(max(1, args.repeat)):  # rounds interleave the rows, so load drift hits all alike
            for name, run in runs.items():
                n, secs, cpu, main_cpu = measured(run)
                if name not in best or secs < best[name][1]:
                    best[name] = (n, secs, cpu, main_cpu)
        rows = [(name, *best[name]) for name in runs]

    floor = rows[0][1] / rows[0][2]
    zero = rows[2][1] / rows[2][2]
    print(f"clips of {args.frames}x{args.size}x{args.size}, views={args.views}, "
          f"source {args.width}x{args.height} (two clips per video)")
    print(f"{'pipeline':34s} {'clips':>6s} {'seconds':>8s} {'clips/s':>8s} {'/floor':>7s} {'/0 workers':>10s} "
          f"{'CPU s':>7s} {'clips/CPU-s':>11s} {'main CPU s':>10s}")
    for name, n, secs, cpu, main_cpu in rows:
        rate = n / secs
        print(f"{name:34s} {n:6d} {secs:8.2f} {rate:8.1f} {rate / floor:7.2f} {rate / zero:10.2f} "
              f"{cpu:7.2f} {n / cpu:11.1f} {main_cpu:10.2f}")
    if args.json:
        write_json(args.json, args, rows)


def write_json(path: str, args: argparse.Namespace, rows: list[tuple[str, int, float, float, float]]) -> None:
    """Figures as ``bench/run_all.py`` reads them: value and baseline in clips/s (higher is better)."""
    rate = {name: n / secs for name, n, secs, *_ in rows}
    floor, augment, zero = (r[0] for r in rows[:3])
    slug = {augment: "augment",
            **{name: f"stream_{name.split()[1]}" for name, *_ in rows if name.startswith("stream")}}

    def figure(name: str, base: str, vs: str) -> dict:
        return dict(id=f"data.{slug[name]}.{vs}", measured=name, value=rate[name], unit="clips/s", baseline=base,
                    baseline_value=rate[base], ratio=rate[name] / rate[base], higher_is_better=True)

    streams = [r[0] for r in rows if r[0].startswith("stream")]
    epochs = [r[0] for r in rows if "epochs, workers" in r[0]]
    slug.update({name: "epochs_" + name.split()[-1] for name in epochs})
    figures = [figure(name, floor, "vs_floor") for name in [augment, *streams]]
    figures += [figure(name, zero, "vs_0_workers") for name in streams[1:]]
    if len(epochs) == 2:  # persistent against restarted workers, the same short epochs
        figures.append(figure(epochs[1], epochs[0], "vs_restarted"))
    out = dict(benchmark="data", config=vars(args),
               setting=f"clips {args.frames}x{args.size}x{args.size}, views={args.views}, "
                       f"source {args.width}x{args.height}",
               rows=[dict(name=name, clips=n, seconds=secs, clips_per_s=n / secs, cpu_seconds=cpu,
                         clips_per_cpu_s=n / cpu, main_cpu_seconds=main_cpu)
                     for name, n, secs, cpu, main_cpu in rows],
               figures=figures)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
