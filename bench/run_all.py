"""Run every benchmark in bench/ and print one table of ratios against their named baselines.

Each benchmark runs as its own subprocess (``python bench/X.py ... --json PATH``), so one that
crashes or times out is reported in the table and the others still run. Every figure is a ratio of
two things measured in the same process: ``ratio = measured / baseline``, recomputed
here from the raw values each script writes. Where an issue sets a goal, the table says whether it
is met.

    python bench/run_all.py                  # default sizes: ~5-10 min on 2 CPU cores (`make bench`)
    python bench/run_all.py --quick          # smoke version, ~1-2 min
    python bench/run_all.py --only decode --only train --out out/bench.md

Writes the table (plus each script's own output) to ``--out`` (markdown), all results to ``--raw``
(JSON; default: ``--out`` with a .json suffix) and each script's JSON to a folder named after
``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# name -> (script, default arguments, --quick arguments). Defaults are sized for ~5-10 min in all on
# 2 CPU cores; every script's own defaults (bigger) stay what `python bench/X.py` runs.
BENCHES: dict[str, tuple[str, list[str], list[str] | None]] = {
    "decode": ("bench_decode.py", ["--repeat", "3"],
               ["--repeat", "1", "--generated", "h264,mpeg4", "--media", "none", "--sizes", "426x240"]),
    "data": ("bench_data.py", ["--videos", "32", "--repeat", "1"],  # enough videos for workers to pay off
             ["--videos", "4", "--video-frames", "32", "--frames", "8", "--size", "64", "--repeat", "1"]),
    "train": ("bench_train.py", ["--arch", "tiny", "--steps", "7"],
              ["--arch", "tiny", "--steps", "2", "--frames", "8", "--size", "32", "--batch", "8"]),
    "train-s3d": ("bench_train.py", ["--arch", "s3d", "--frames", "8", "--size", "64", "--batch", "2", "--steps", "3"],
                  None),  # None: skipped by --quick
    "eval": ("bench_eval.py",
             ["--arch", "tiny", "--arch", "s3d", "--crops", "center", "--videos", "2", "--repeats", "2"],
             ["--arch", "tiny", "--crops", "center", "--videos", "1", "--repeats", "1", "--frames", "8", "--size", "64"]),
}

# Goals set by the issues, on ratio = measured / baseline: (figure id pattern, "<=" or ">=", limit, wording).
# Issue 12's decode goals hold for H.264 and MPEG-4 Part 2, generated and real clips ("h264", "h264-real" ...).
GOALS: list[tuple[str, str, float, str]] = [
    *((f"decode.{codec}*.rgb_mv_over_pyav", "<=", 1.0, f"{codec}: compvid RGB+MV ≤ 1.0× PyAV RGB + raw MV export")
      for codec in ("h264", "mpeg4")),
    *((f"decode.{codec}*.rgb_mv_over_bound", "<=", 1.15, f"{codec}: compvid RGB+MV ≤ 1.15× its lower bound")
      for codec in ("h264", "mpeg4")),
    *((f"decode.{codec}*.mv_only", "<=", 1.25, f"{codec}: compvid MV only ≤ 1.25× the PyAV floor")
      for codec in ("h264", "mpeg4")),
    ("decode.size.*", "<=", 1.10, "compvid MV only per pixel within 1.1× of a neighbouring frame size"),
    ("train.*.cross_step", "<=", 1.05, "cross-stage step overhead ≤ 5 % of a plain MoCo step"),
]

LOWER_IS_BETTER_NOTE = ("ratio = measured / baseline, both from the same run of the same script. "
                        "Times (ms/clip, s/step, s/video, ms): lower is better; rates (clips/s): higher is better.")


def goal_for(fig_id: str) -> tuple[str, float, str] | None:
    for pattern, op, limit, wording in GOALS:
        if fnmatch.fnmatchcase(fig_id, pattern):
            return op, limit, wording
    return None


def fmt_goal(op: str, limit: float) -> str:
    return f"{'≤' if op == '<=' else '≥'} {limit:g}×"


def fmt_value(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def fmt_ratio(r: float) -> str:
    return f"{r:.3f}×" if r < 10 else f"{r:.1f}×"


def table_rows(results: dict[str, dict]) -> list[dict]:
    """One row per figure of every benchmark, in run order; a failed benchmark is one row.

    ``results[name]`` is ``{"ok": True, "data": <the script's JSON>}`` or ``{"ok": False, "error": str}``.
    Goals whose pattern matched no figure come last, as "not measured".
    """
    rows: list[dict] = []
    matched: set[str] = set()
    for name, res in results.items():
        if not res.get("ok"):
            rows.append(dict(benchmark=name, measured=f"FAILED: {res.get('error', 'no result')}", baseline="—",
                             ratio=None, goal="—", met="—", id=None))
            continue
        for fig in res["data"]["figures"]:
            value, base = float(fig["value"]), float(fig["baseline_value"])
            ratio = value / base if base else float("inf")
            row = dict(benchmark=name, id=fig["id"], measured=f"{fig['measured']}: {fmt_value(value)} {fig['unit']}",
                       baseline=f"{fig['baseline']}: {fmt_value(base)} {fig['unit']}", ratio=ratio,
                       goal="—", met="—")
            if "ratio" in fig and abs(float(fig["ratio"]) - ratio) > 1e-6 * max(1.0, abs(ratio)):
                row["measured"] += f" (script printed ratio {float(fig['ratio']):.3f})"
            goal = goal_for(fig["id"])
            if goal:
                op, limit, wording = goal
                matched.update(p for p, *_ in GOALS if fnmatch.fnmatchcase(fig["id"], p))
                ok = ratio <= limit if op == "<=" else ratio >= limit
                row.update(goal=fmt_goal(op, limit), met="yes" if ok else "**no**")
            rows.append(row)
    for pattern, op, limit, wording in GOALS:
        if pattern not in matched:
            rows.append(dict(benchmark=pattern.split(".")[0], id=None, measured=f"{wording}: no figure `{pattern}`",
                             baseline="—", ratio=None, goal=fmt_goal(op, limit), met="not measured"))
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| benchmark | measured | baseline (named) | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—" if r["ratio"] is None else fmt_ratio(r["ratio"])
        cells = [r["benchmark"], r["measured"], r["baseline"], ratio, r["goal"], r["met"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def run_one(name: str, script: str, args: list[str], json_path: Path, timeout: float) -> dict:
    """Run one benchmark script, echoing its output; return its result entry for ``table_rows``."""
    cmd = [sys.executable, str(BENCH_DIR / script), *args, "--json", str(json_path)]
    shown = " ".join(["python", f"bench/{script}", *args])
    print(f"\n=== {name}: {shown}", flush=True)
    json_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    out: list[str] = []
    tail: deque[str] = deque(maxlen=20)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"),
                            start_new_session=True)  # own process group: a timeout also ends DataLoader workers

    def echo() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  {line}", end="", flush=True)
            out.append(line)
            tail.append(line.rstrip())

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(timeout=10)
    seconds = time.perf_counter() - t0
    entry = dict(command=shown, seconds=seconds, returncode=proc.returncode, output="".join(out))
    if timed_out:
        return dict(entry, ok=False, error=f"timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        return dict(entry, ok=False, error=f"exit {proc.returncode}: {last[:200]}")
    try:
        data = json.loads(json_path.read_text())
        data["figures"]  # noqa: B018 - a result without figures is a failure
    except (OSError, ValueError, KeyError) as e:
        return dict(entry, ok=False, error=f"no usable --json result ({type(e).__name__}: {e})")
    return dict(entry, ok=True, data=data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smallest settings (~1-2 min), for a smoke run")
    ap.add_argument("--only", action="append", choices=list(BENCHES), help="run only these (repeatable)")
    ap.add_argument("--out", default="out/bench-results.md", help="markdown table (default: %(default)s)")
    ap.add_argument("--raw", default=None, help="all results as JSON (default: --out with .json suffix)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per benchmark before it is killed")
    args = ap.parse_args(argv)

    out = Path(args.out)
    raw = Path(args.raw) if args.raw else out.with_suffix(".json")
    json_dir = out.with_suffix("")  # out/bench-results/<name>.json
    json_dir.mkdir(parents=True, exist_ok=True)
    raw.parent.mkdir(parents=True, exist_ok=True)

    started = datetime.datetime.now().astimezone()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    for name, (script, default, quick) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        if args.quick and quick is None:
            continue
        results[name] = run_one(name, script, quick if args.quick else default, json_dir / f"{name}.json",
                                args.timeout)
    total = time.perf_counter() - t0

    rows = table_rows(results)
    table = markdown_table(rows)
    load1 = os.getloadavg()
    header = (f"Benchmarks ({'--quick' if args.quick else 'default sizes'}), {started:%Y-%m-%d %H:%M %Z}, "
              f"{platform.node()}, {os.cpu_count()} CPUs, load average {load0[0]:.1f} -> {load1[0]:.1f}, "
              f"Python {platform.python_version()}; total {total:.0f} s")
    timings = "; ".join(f"{n} {r['seconds']:.0f} s" + ("" if r["ok"] else " (FAILED)") for n, r in results.items())
    print(f"\n{header}\n{LOWER_IS_BETTER_NOTE}\n\n{table}\n\nper benchmark: {timings}")

    md = [f"# Benchmark results\n\n{header}\n\n{LOWER_IS_BETTER_NOTE}\n\n{table}\n\nPer benchmark: {timings}\n",
          "## Commands and their output\n"]
    for name, r in results.items():
        md.append(f"### {name}\n\n`{r['command']}` ({r['seconds']:.0f} s, exit {r['returncode']})\n\n"
                  f"```\n{r['output'].rstrip()}\n```\n")
    out.write_text("\n".join(md))
    raw.write_text(json.dumps(dict(started=started.isoformat(), quick=args.quick, total_seconds=total,
                                   load_average=[load0, load1], results=results,
                                   table=[{k: v for k, v in r.items()} for r in rows]), indent=1) + "\n")
    print(f"wrote {out}, {raw} and {json_dir}/")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
