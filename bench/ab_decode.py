"""Paired A/B of two checkouts of compvid on clip decoding: is a change faster, and by how much?

    python bench/ab_decode.py BEFORE_DIR AFTER_DIR VIDEO [VIDEO ...] [--pairs 8] [--rounds 3]

On a shared machine single runs of bench_decode.py swing by ±0.3 in their ratios, more than most
changes move them. This runs one process per checkout, alternating (before, after, before, ...),
``--pairs`` times; each process imports compvid from its checkout (PYTHONPATH) and measures the
cases of bench_decode.py on every sliding 32-frame window of each video: the floor (PyAV decode
with MV export), the bound (floor + the least output work), compvid MV only and RGB+MV at 128 px,
one untimed pass, then ``--rounds`` rounds of thread CPU time, the cases taking turns window by
window (bench_decode.interleaved_rounds). Per process and video
the median of each round's ratio (case / its baseline of the same round), then per figure: the
median over each side's processes and the median of the paired differences (after - before of
the same pair) with a bootstrap 95 % interval. Check out the "before" commit with
``git worktree add --detach ../before <commit>``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# (case, baseline): the figures compared.
FIGURES = (("mv_only", "floor"), ("rgb_mv", "bound_rgb_mv"), ("rgb_mv", "floor"))


def measure(videos: list[str], rounds: int) -> dict:
    """In this process: per video, per case, ms per clip of each round."""
    sys.path.insert(0, str(HERE))
    import bench_decode as bd
    from compvid import probe
    from compvid.sampling import sliding_window_starts

    out = {}
    for path in videos:
        info = probe(path)
        starts = sliding_window_starts(info.num_frames, num_frames=bd.NUM_FRAMES)
        cases = bd.video_cases(path, info, starts, estimated=False, torchcodec=False)
        cases = {"floor": cases[bd.FLOOR], "bound_rgb_mv": cases["bound: floor + MV + RGB outputs"],
                 "mv_only": cases["compvid MV only, 128 px"], "rgb_mv": cases["compvid RGB+MV, 128 px"]}
        rounds_s = bd.interleaved_rounds(cases, len(starts), rounds)
        out[Path(path).name] = {name: [t / len(starts) * 1e3 for t in ts] for name, ts in rounds_s.items()}
    return out


def paired_table(before: list[dict], after: list[dict], *, seed: int = 0, draws: int = 4000) -> list[tuple]:
    """(video, figure, median before, median after, median difference, low, high) per video and figure,
    from the per-process results of each side (same order: process k of each side forms pair k)."""
    rng = np.random.default_rng(seed)
    rows = []
    for video in before[0]:
        for case, base in FIGURES:
            side = [np.array([np.median(np.array(p[video][case]) / np.array(p[video][base])) for p in runs])
                    for runs in (before, after)]
            d = side[1] - side[0]
            boots = np.median(rng.choice(d, (draws, len(d))), axis=1)
            low, high = np.percentile(boots, [2.5, 97.5])
            rows.append((video, f"{case} / {base}", float(np.median(side[0])), float(np.median(side[1])),
                         float(np.median(d)), float(low), float(high)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="checkout whose compvid is the baseline")
    ap.add_argument("after", help="checkout with the change")
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one process's part
    args = ap.parse_args()
    if args.measure:
        import compvid

        print(json.dumps({"compvid": compvid.__file__, "ms": measure(args.videos, args.rounds)}))
        return
    missing = [v for v in args.videos if not Path(v).is_file()]
    if missing:
        raise SystemExit(f"no such video: {', '.join(missing)}")
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for k in range(args.pairs):
        for side in ("before", "after"):
            tree = Path(getattr(args, side)).resolve()
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run([sys.executable, str(HERE / "ab_decode.py"), args.before, args.after,
                                   *map(os.path.abspath, args.videos), "--rounds", str(args.rounds), "--measure"],
                                  env=env, cwd=tree, capture_output=True, text=True)
            if done.returncode:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise SystemExit(f"{side} ({tree}): the measuring process failed: {last}")
            got = json.loads(done.stdout.splitlines()[-1])
            if not Path(got["compvid"]).resolve().is_relative_to(tree):  # else both sides measure one compvid
                raise SystemExit(f"{side}: compvid imported from {got['compvid']}, not from {tree}")
            results[side].append(got["ms"])
        print(f"pair {k + 1}/{args.pairs} done", file=sys.stderr)
    print(f"{'video':40s} {'figure':24s} {'before':>7s} {'after':>7s}  after - before [95 %]")
    for video, figure, b, a, d, low, high in paired_table(results["before"], results["after"]):
        print(f"{video[:40]:40s} {figure:24s} {b:7.3f} {a:7.3f}  {d:+.3f} [{low:+.3f}, {high:+.3f}]")


if __name__ == "__main__":
    main()
