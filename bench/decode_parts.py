"""Where compvid's MV-only decode of a video's clips spends its time, part by part.

    python bench/decode_parts.py [VIDEO] [--repeat 4]

Decodes every sliding 32-frame window at a 128-px short side, RGB off (as
``bench/bench_decode.py``'s "MV only" case), with a wall-clock timer around a
few internal steps (by wrapping them: the names below are compvid's own, so
this script follows their renames). Prints ms per clip of each part, summed
over its calls; parts nest (``decoder loop`` holds ``decode + demux``, which
holds the packets' reference reading). Unlike cProfile it adds ~1 us per
wrapped call, not per Python call, so parts of many small calls keep their
size. Default video: the real H.264 clip with B-frames (bikes), if present.
"""

from __future__ import annotations

import argparse
import collections
import functools
import time
from pathlib import Path

from compvid import decode as decode_module
from compvid import decode_clip, kernels, mv_matching, mv_strategy, probe
from compvid.sampling import sliding_window_starts

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "media" / "h264_high_bframes_bikes_640x272.mp4"
# (module, attribute, label): the steps timed.
PARTS = ((decode_module, "open_video", "open the container"),
         (decode_module, "_run_decoder", "decoder loop"),
         (decode_module, "scan_access_unit", "    read reference flags of packets"),
         (decode_module, "_keep", "  keep a frame's luma/vectors/type"),
         (decode_module, "_motion_fields", "motion fields"),
         (mv_strategy.ExportedRows, "read", "  read the vector tables"),
         (mv_matching.ReferenceMatching, "from_rows", "  reference matching"),
         (mv_matching, "match_reference_distances_frames", "    matcher"),
         (mv_strategy, "rasterize_rows", "  rasterize"))


def timed(totals: collections.Counter, label: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - t
    return wrapper


def timed_generator(totals: collections.Counter, label: str, fn):
    """The same for a generator: time spent producing its items."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        items = fn(*args, **kwargs)
        while True:
            t = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                totals[label] += time.perf_counter() - t
            yield item
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?", default=str(DEFAULT))
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    path = Path(args.video)
    if not path.is_file():
        parser.error(f"{path} not found: pass a video file")
    info = probe(path)
    starts = sliding_window_starts(info.num_frames, num_frames=32)
    totals: collections.Counter = collections.Counter()
    for owner, name, label in PARTS:
        setattr(owner, name, timed(totals, label, getattr(owner, name)))
    decode_module._pictures = timed_generator(totals, "  decode + demux", decode_module._pictures)
    paint = kernels.paint_cells
    kernels.paint_cells = lambda: (lambda loop: loop and timed(totals, "    paint loop", loop))(paint())

    def run() -> None:
        for start in starts:
            decode_clip(path, start=start, num_frames=32, info=info, size=128, with_rgb=False)

    run()  # warm: numba's cache, the file in memory
    totals.clear()
    t = time.perf_counter()
    for _ in range(args.repeat):
        run()
    clips = args.repeat * len(starts)
    print(f"{path.name}: {clips} clips, {(time.perf_counter() - t) / clips * 1e3:.2f} ms a clip in all")
    order = ["open the container", "decoder loop", "  decode + demux"] + [label for _, _, label in PARTS[2:]]
    order.insert(order.index("  rasterize") + 1, "    paint loop")
    for label in order:
        print(f"  {label:40s} {totals[label] / clips * 1e3:7.3f}")


if __name__ == "__main__":
    main()
