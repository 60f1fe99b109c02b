"""The results report of a run folder (``make demo``): one table, every row with its noise.

Reads what ``mvcgc retrieve --json`` and ``mvcgc linear --json`` wrote to ``RUN/results`` as
``retrieve-<stage>.json`` / ``linear-<stage>.json`` (stage: ``random``, ``init``, ``cross``; each file
holds the views it was run with), the training logs ``RUN/runs/*/metrics.jsonl`` and, if present,
``RUN/results/timings.tsv`` and ``RUN/results/motion-vectors.png``. Writes ``RUN/report/report.md``
with ``results.png`` (bars with 95 % intervals), ``loss-curves.png`` and the motion-vector picture.

Noise: every figure is a share of the test videos, shown with its 95 % Wilson interval; the change
between two stages is the paired mean difference over the same test videos with a 95 % bootstrap
interval (:mod:`mvcgc.stats`). Seed-to-seed noise of training is not in these intervals.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mvcgc.plots import save_bar_chart, stack_images
from mvcgc.stats import chance_recall, paired_difference, wilson_interval

STAGES = {"random": "random init", "init": "stage 1 (init)", "cross": "stage 2 (cross)"}
VIEWS = ("rgb", "mv", "both")
MEASURES = ("R@1", "R@5", "linear top-1")
LIFT_MEASURES = ("R@1", "linear top-1")  # R@5 says little more at this size
# The comparisons in the lift table: (later stage, earlier stage).
LIFTS = (("init", "random"), ("cross", "init"), ("cross", "random"))


@dataclass
class Outcomes:
    """Per test video 0/1 outcomes of one measure, keyed by video."""

    hits: dict[str, int]

    @property
    def n(self) -> int:
        return len(self.hits)

    @property
    def value(self) -> float:
        return sum(self.hits.values()) / self.n

    def interval(self) -> tuple[float, float]:
        return wilson_interval(sum(self.hits.values()), self.n)


@dataclass
class Lift:
    view: str
    measure: str
    later: str
    earlier: str
    diff: float
    low: float
    high: float
    n: int


def load_results(results_dir: str | os.PathLike) -> tuple[dict[tuple[str, str, str], Outcomes], dict[str, float]]:
    """``({(stage, view, measure): Outcomes}, {measure: chance level})`` from the JSON files."""
    results_dir = Path(results_dir)
    table: dict[tuple[str, str, str], Outcomes] = {}
    chance: dict[str, float] = {}
    for stage in STAGES:
        for path in sorted(results_dir.glob(f"retrieve-{stage}*.json")):
            doc = json.loads(path.read_text())
            q = doc.get("queries")
            if not q:
                raise ValueError(f"{path}: no per-query results; re-run `mvcgc retrieve --json` with this version")
            for view, ranks in q["first_hit_rank"].items():
                for k in (1, 5):
                    table[(stage, view, f"R@{k}")] = Outcomes(
                        {key: int(r is not None and r < k) for key, r in zip(q["keys"], ranks)})
            for k in (1, 5):
                chance[f"R@{k}"] = chance_recall(q["labels"], q["gallery_labels"], k)
        for path in sorted(results_dir.glob(f"linear-{stage}*.json")):
            doc = json.loads(path.read_text())
            for view, res in doc.items():
                if "correct" not in res:
                    raise ValueError(f"{path}: no per-video results; re-run `mvcgc linear --json` with this version")
                table[(stage, view, "linear top-1")] = Outcomes(dict(zip(res["keys"], res["correct"])))
                num_classes = res.get("num_classes")
                if num_classes:
                    chance["linear top-1"] = 1 / num_classes
    if not table:
        raise FileNotFoundError(f"no retrieve-<stage>.json or linear-<stage>.json results in {results_dir}")
    return table, chance


def lifts(table: dict[tuple[str, str, str], Outcomes]) -> list[Lift]:
    """Paired differences between stages on the test videos both were scored on."""
    out = []
    for view in VIEWS:
        for measure in LIFT_MEASURES:
            for later, earlier in LIFTS:
                a, b = table.get((earlier, view, measure)), table.get((later, view, measure))
                if a is None or b is None:
                    continue
                keys = sorted(set(a.hits) & set(b.hits))
                if not keys:
                    continue
                d, lo, hi = paired_difference([a.hits[k] for k in keys], [b.hits[k] for k in keys])
                out.append(Lift(view, measure, later, earlier, d, lo, hi, len(keys)))
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell(o: Outcomes | None) -> str:
    if o is None:
        return "–"
    lo, hi = o.interval()
    return f"{_pct(o.value)} [{_pct(lo)}, {_pct(hi)}]"


def results_table(table: dict[tuple[str, str, str], Outcomes], chance: dict[str, float]) -> str:
    """Markdown: one row per (stage, view), each measure with its 95 % interval."""
    lines = ["| stage | view | " + " | ".join(f"{m} % [95 % CI]" for m in MEASURES) + " | test videos |",
             "|---|---|" + "---|" * len(MEASURES) + "---|"]
    for stage, label in STAGES.items():
        for view in VIEWS:
            cells = [table.get((stage, view, m)) for m in MEASURES]
            if not any(cells):
                continue
            n = max(c.n for c in cells if c is not None)
            lines.append(f"| {label} | {view} | " + " | ".join(_cell(c) for c in cells) + f" | {n} |")
    if chance:
        lines.append("| chance | – | " + " | ".join(_pct(chance[m]) if m in chance else "–" for m in MEASURES)
                     + " | |")
    return "\n".join(lines)


def lift_table(rows: list[Lift]) -> str:
    """Markdown: paired change in points with its 95 % bootstrap interval; * where it excludes 0."""
    lines = ["| view | measure | change | points [95 % CI] | test videos |", "|---|---|---|---|---|"]
    for r in rows:
        mark = " *" if r.low > 0 or r.high < 0 else ""
        lines.append(f"| {r.view} | {r.measure} | {STAGES[r.later]} − {STAGES[r.earlier]} | "
                     f"{100 * r.diff:+.1f} [{100 * r.low:+.1f}, {100 * r.high:+.1f}]{mark} | {r.n} |")
    return "\n".join(lines)


def _run_configs(runs_dir: Path) -> list[tuple[str, dict]]:
    out = []
    order = {"random": 0, "init": 1, "cross": 2}  # runs in pipeline order
    for cfg in sorted(runs_dir.glob("*/config.json"), key=lambda p: (order.get(p.parent.name.split("-")[0], 3),
                                                                      p.parent.name)):
        out.append((cfg.parent.name, json.loads(cfg.read_text()).get("config", {})))
    return out


def _config_table(configs: list[tuple[str, dict]]) -> str:
    keys = ("stage", "views", "arch", "epochs", "steps", "lr", "queue_size", "momentum", "topk", "mode", "seed")
    lines = ["| run | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name, c in configs:
        lines.append(f"| {name} | " + " | ".join(str(c.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def write_report(run_dir: str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
                 title: str = "mvcgc results") -> Path:
    """Write ``report.md`` and its PNGs for the run folder ``run_dir``; returns the markdown path."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    table, chance = load_results(run_dir / "results")
    lift_rows = lifts(table)

    panels = {}
    for measure in ("R@1", "linear top-1"):
        groups = {}
        for view in VIEWS:
            bars = {}
            for stage, label in STAGES.items():
                o = table.get((stage, view, measure))
                if o is not None:
                    bars[label] = (o.value, *o.interval())
            if bars:
                groups[view] = bars
        if groups:
            panels[measure] = groups
    save_bar_chart(panels, out / "results.png", title=f"{title}: test videos, 95 % Wilson intervals", chance=chance)

    configs = _run_configs(run_dir / "runs")
    curves = [run_dir / "runs" / name / "loss.png" for name, _ in configs]
    have_curves = stack_images(curves, out / "loss-curves.png", captions=[n for n, _ in configs]) is not None
    mv_png = run_dir / "results" / "motion-vectors.png"
    if mv_png.is_file():
        shutil.copyfile(mv_png, out / "motion-vectors.png")

    parts = [f"# {title}", "",
             "Every figure is a share of the test videos (retrieval: test videos query the train videos; "
             "linear probe: frozen backbone, tested with crops × sliding windows). Brackets: 95 % Wilson "
             "interval of that share. Training seed-to-seed noise is not included.", "",
             "![results](results.png)", "", "## Results", "", results_table(table, chance), "",
             "## Change between stages (paired over the same test videos)", "",
             "Mean per-video change in points with a 95 % bootstrap interval over test videos; `*` marks an "
             "interval that excludes zero.", "", lift_table(lift_rows), "", "## Runs", "", _config_table(configs), ""]
    if have_curves:
        parts += ["## Loss curves", "", "![loss curves](loss-curves.png)", ""]
    if mv_png.is_file():
        parts += ["## Motion vectors", "", "RGB frames, the decoded motion-vector field as colour, and arrows:", "",
                  "![motion vectors](motion-vectors.png)", ""]
    timings = run_dir / "results" / "timings.tsv"
    if timings.is_file():
        rows = [line.split("\t") for line in timings.read_text().splitlines() if line.strip()]
        total = sum(float(r[1]) for r in rows)
        parts += ["## Where the time goes", "", "| step | seconds | share |", "|---|---|---|"]
        parts += [f"| {name} | {float(s):.0f} | {100 * float(s) / max(total, 1e-9):.0f} % |" for name, s in rows]
        parts += [f"| total | {total:.0f} | |", ""]
    md = out / "report.md"
    md.write_text("\n".join(parts))
    return md
