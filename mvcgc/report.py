"""The results report of a run folder (``make demo``): one table, every row with its noise.

Reads what ``mvcgc retrieve --json`` and ``mvcgc linear --json`` wrote to ``RUN/results`` as
``retrieve-<stage>.json`` / ``linear-<stage>.json`` (:mod:`mvcgc.results`; stage: ``random``, ``init``, ``cross``, and
``supervised`` -- the same encoder trained with labels, the ceiling; each file holds the views it was
run with), the training logs ``RUN/runs/*/metrics.jsonl`` (the supervised runs' training accuracy,
the cross stage's mining statistics) and, if present,
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

from mvcgc.errors import InputNotFoundError, ResultsError
from mvcgc.plots import save_bar_chart, stack_images
from mvcgc.results import LinearFile, RetrievalFile, result_name
from mvcgc.run_files import CONFIG_NAME, LOSS_PLOT_NAME, METRICS_NAME, EpochEndRecord, RunConfig, StepRecord, read_metrics
from mvcgc.stats import chance_recall, paired_difference, wilson_interval

STAGES = {"random": "random init", "init": "stage 1 (init)", "cross": "stage 2 (cross)",
          "supervised": "supervised ceiling"}
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
    table, chance, _ = load_results_with_train(results_dir)
    return table, chance


def load_results_with_train(
    results_dir: str | os.PathLike,
) -> tuple[dict[tuple[str, str, str], Outcomes], dict[str, float], dict[tuple[str, str], float]]:
    """:func:`load_results` plus ``{(stage, view): linear probe's final training accuracy}``."""
    results_dir = Path(results_dir)
    table: dict[tuple[str, str, str], Outcomes] = {}
    train_accuracy: dict[tuple[str, str], float] = {}
    chance: dict[str, float] = {}
    for stage in STAGES:
        for path in sorted(results_dir.glob(_stage_files("retrieve", stage))):
            q = RetrievalFile.from_dict(_read_json(path), source=str(path)).queries
            for view in q.first_hit_rank:
                for k in (1, 5):
                    table[(stage, view, f"R@{k}")] = Outcomes(q.hits(view, k))
            for k in (1, 5):
                chance[f"R@{k}"] = chance_recall(q.labels, q.gallery_labels, k)
        for path in sorted(results_dir.glob(_stage_files("linear", stage))):
            for view, res in LinearFile.from_dict(_read_json(path), source=str(path)).views.items():
                table[(stage, view, "linear top-1")] = Outcomes(res.hits())
                if res.final_train_accuracy is not None:
                    train_accuracy[(stage, view)] = res.final_train_accuracy
                if res.num_classes:
                    chance["linear top-1"] = 1 / res.num_classes
    if not table:
        raise InputNotFoundError(f"no retrieve-<stage>.json or linear-<stage>.json results in {results_dir}; "
                                 "write them with `mvcgc retrieve --json` and `mvcgc linear --json` "
                                 "(examples/demo.sh does)")
    return table, chance, train_accuracy


def _stage_files(kind: str, stage: str) -> str:
    """Glob of ``kind``'s result files of ``stage`` (the name, or it with a suffix before .json)."""
    return result_name(kind, stage).replace(".json", "*.json")


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


# The changes a lift claim rests on, per training seed: (view, measure, later stage, earlier stage).
SEED_LIFTS = (("rgb", "R@1", "cross", "init"), ("rgb", "R@1", "cross", "random"),
              ("rgb", "linear top-1", "cross", "init"), ("rgb", "linear top-1", "cross", "random"),
              ("mv", "R@1", "cross", "init"), ("mv", "linear top-1", "cross", "init"))


def seeds_table(run_dirs: list[str | os.PathLike]) -> str:
    """Markdown: one row per run folder (one training seed each) with the paired changes of
    :data:`SEED_LIFTS` and their 95 % intervals, a row with the mean change over seeds and, per
    column, in how many seeds the interval excludes zero on the positive side."""
    header = [f"{v} {m}: {STAGES[a].split(' (')[0]} − {STAGES[b].split(' (')[0]}" for v, m, a, b in SEED_LIFTS]
    lines = ["| run | " + " | ".join(header) + " |", "|---|" + "---|" * len(SEED_LIFTS)]
    per_col: list[list[Lift]] = [[] for _ in SEED_LIFTS]
    for run in run_dirs:
        table, _ = load_results(Path(run) / "results")
        by = {(x.view, x.measure, x.later, x.earlier): x for x in lifts(table)}
        cells = []
        for i, key in enumerate(SEED_LIFTS):
            x = by.get(key)
            if x is None:
                cells.append("–")
                continue
            per_col[i].append(x)
            mark = " *" if x.low > 0 or x.high < 0 else ""
            cells.append(f"{100 * x.diff:+.1f} [{100 * x.low:+.1f}, {100 * x.high:+.1f}]{mark}")
        lines.append(f"| {Path(run).name} | " + " | ".join(cells) + " |")
    mean = [f"{100 * sum(x.diff for x in col) / len(col):+.1f}" if col else "–" for col in per_col]
    lines.append(f"| mean of {len(run_dirs)} | " + " | ".join(mean) + " |")
    above = [f"{sum(x.low > 0 for x in col)} of {len(col)}" if col else "–" for col in per_col]
    lines.append("| interval above 0 | " + " | ".join(above) + " |")
    return "\n".join(lines)


# The cross stage's figures a recipe comparison rests on: (view, measure).
RECIPE_MEASURES = (("rgb", "R@1"), ("rgb", "linear top-1"), ("mv", "R@1"), ("mv", "linear top-1"))


def recipe_table(run_dirs: list[str | os.PathLike], recipe: str) -> str:
    """Markdown: the lift study's ``recipe`` (``RUN/study/<recipe>``, examples/lift_study.sh) against each
    run's own cross stage, paired over the same test videos: one row per run (training seed) with
    recipe − run and its 95 % interval, the mean over runs, and a pooled row whose interval
    resamples videos (each video's change averaged over the runs first, so a video counts once).

    Both sides share data, random init and stage 1: only the cross recipe differs, so this is the
    direct comparison behind "intersection beats union" or "stage 1 helps", where the stage-to-stage
    tables compare each recipe with stage 1 separately."""
    header = [f"{v} {m}: {recipe} − run" for v, m in RECIPE_MEASURES]
    lines = ["| run | " + " | ".join(header) + " |", "|---|" + "---|" * len(RECIPE_MEASURES)]
    per_video: list[dict[str, list[tuple[int, int]]]] = [{} for _ in RECIPE_MEASURES]  # key -> [(run, recipe)]
    diffs: list[list[float]] = [[] for _ in RECIPE_MEASURES]
    for run in run_dirs:
        base, _ = load_results(Path(run) / "results")
        other, _ = load_results(Path(run) / "study" / recipe / "results")
        cells = []
        for i, (view, measure) in enumerate(RECIPE_MEASURES):
            a, b = base.get(("cross", view, measure)), other.get(("cross", view, measure))
            keys = sorted(set(a.hits) & set(b.hits)) if a is not None and b is not None else []
            if not keys:
                cells.append("–")
                continue
            d, lo, hi = paired_difference([a.hits[k] for k in keys], [b.hits[k] for k in keys])
            diffs[i].append(d)
            for k in keys:
                per_video[i].setdefault(k, []).append((a.hits[k], b.hits[k]))
            cells.append(f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{' *' if lo > 0 or hi < 0 else ''}")
        lines.append(f"| {Path(run).name} | " + " | ".join(cells) + " |")
    mean = [f"{100 * sum(col) / len(col):+.1f}" if col else "–" for col in diffs]
    lines.append(f"| mean of {len(run_dirs)} | " + " | ".join(mean) + " |")
    pooled = []
    for videos in per_video:
        if not videos:
            pooled.append("–")
            continue
        a = [sum(x for x, _ in pairs) / len(pairs) for pairs in videos.values()]
        b = [sum(y for _, y in pairs) / len(pairs) for pairs in videos.values()]
        d, lo, hi = paired_difference(a, b)
        pooled.append(f"{100 * d:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]{' *' if lo > 0 or hi < 0 else ''}")
    lines.append("| pooled over videos | " + " | ".join(pooled) + " |")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell(o: Outcomes | None) -> str:
    if o is None:
        return "–"
    lo, hi = o.interval()
    return f"{_pct(o.value)} [{_pct(lo)}, {_pct(hi)}]"


def results_table(table: dict[tuple[str, str, str], Outcomes], chance: dict[str, float],
                  train_accuracy: dict[tuple[str, str], float] | None = None) -> str:
    """Markdown: one row per (stage, view), each measure with its 95 % interval, and the linear
    probe's training accuracy (an encoder whose probe cannot fit its training set shows here)."""
    train_accuracy = train_accuracy or {}
    lines = ["| stage | view | " + " | ".join(f"{m} % [95 % CI]" for m in MEASURES)
             + " | linear train top-1 % | test videos |",
             "|---|---|" + "---|" * len(MEASURES) + "---|---|"]
    for stage, label in STAGES.items():
        for view in VIEWS:
            cells = [table.get((stage, view, m)) for m in MEASURES]
            if not any(cells):
                continue
            n = max(c.n for c in cells if c is not None)
            fit = train_accuracy.get((stage, view))
            lines.append(f"| {label} | {view} | " + " | ".join(_cell(c) for c in cells)
                         + f" | {_pct(fit) if fit is not None else '–'} | {n} |")
    if chance:
        lines.append("| chance | – | " + " | ".join(_pct(chance[m]) if m in chance else "–" for m in MEASURES)
                     + " | | |")
    return "\n".join(lines)


def lift_table(rows: list[Lift]) -> str:
    """Markdown: paired change in points with its 95 % bootstrap interval; * where it excludes 0."""
    lines = ["| view | measure | change | points [95 % CI] | test videos |", "|---|---|---|---|---|"]
    for r in rows:
        mark = " *" if r.low > 0 or r.high < 0 else ""
        lines.append(f"| {r.view} | {r.measure} | {STAGES[r.later]} − {STAGES[r.earlier]} | "
                     f"{100 * r.diff:+.1f} [{100 * r.low:+.1f}, {100 * r.high:+.1f}]{mark} | {r.n} |")
    return "\n".join(lines)


def _read_json(path: Path):
    """``path``'s JSON; a broken file is one :class:`ResultsError`."""
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise ResultsError(f"{path} is not valid JSON ({e}); was it cut off? write it again (re-run the "
                           "command that made it) or remove it") from e


def supervised_fit(runs_dir: Path) -> list[tuple[str, int, float]]:
    """``(run, epochs, training accuracy of its last epoch)`` for every supervised run (augmented clips)."""
    out = []
    for metrics in sorted(runs_dir.glob(f"*/{METRICS_NAME}")):
        ends = [m for m in read_metrics(metrics) if isinstance(m, EpochEndRecord) and m.train_accuracy is not None]
        if ends:
            out.append((metrics.parent.name, ends[-1].epoch + 1, ends[-1].train_accuracy))
    return out


MINING_FIELDS = ("mined_per_query", "queries_with_mined", "mined_same_class", "rgb_topk_same_class",
                 "mv_topk_same_class")


def mining_by_epoch(metrics: Path) -> dict[int, dict[str, float]]:
    """Per epoch, the mean of each mining statistic over the steps that logged it."""
    sums: dict[int, dict[str, list[float]]] = {}
    for m in read_metrics(metrics):
        for name, value in ((m.mining if isinstance(m, StepRecord) else None) or {}).items():
            if value is not None:
                sums.setdefault(m.epoch, {}).setdefault(name, []).append(value)
    return {e: {k: sum(v) / len(v) for k, v in d.items()} for e, d in sorted(sums.items())}


def mining_table(runs_dir: Path) -> str:
    """Markdown: mining statistics of each cross-stage run, first and last epoch with mining."""
    lines = ["| run | epoch | mined positives per query | queries with any | mined: same class | "
             "RGB top-k: same class | MV top-k: same class |", "|---|---|---|---|---|---|---|"]
    for metrics in sorted(runs_dir.glob(f"*/{METRICS_NAME}")):
        epochs = mining_by_epoch(metrics)
        for e in sorted({min(epochs), max(epochs)}) if epochs else ():
            d = epochs[e]
            cells = [f"{d['mined_per_query']:.2f}" if "mined_per_query" in d else "–"]
            cells += [f"{100 * d[k]:.1f} %" if k in d else "–" for k in MINING_FIELDS[1:]]
            lines.append(f"| {metrics.parent.name} | {e + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _run_configs(runs_dir: Path) -> list[tuple[str, dict]]:
    out = []
    order = {"random": 0, "init": 1, "cross": 2, "supervised": 3}  # runs in pipeline order
    for cfg in sorted(runs_dir.glob(f"*/{CONFIG_NAME}"), key=lambda p: (order.get(p.parent.name.split("-")[0], 3),
                                                                         p.parent.name)):
        out.append((cfg.parent.name, RunConfig.from_dict(_read_json(cfg), source=str(cfg)).config))
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
    table, chance, train_accuracy = load_results_with_train(run_dir / "results")
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
    curves = [run_dir / "runs" / name / LOSS_PLOT_NAME for name, _ in configs]
    have_curves = stack_images(curves, out / "loss-curves.png", captions=[n for n, _ in configs]) is not None
    mv_png = run_dir / "results" / "motion-vectors.png"
    if mv_png.is_file():
        shutil.copyfile(mv_png, out / "motion-vectors.png")

    parts = [f"# {title}", "",
             "Every figure is a share of the test videos (retrieval: test videos query the train videos; "
             "linear probe: frozen backbone, tested with crops × sliding windows). Brackets: 95 % Wilson "
             "interval of that share. Training seed-to-seed noise is not included.", "",
             "![results](results.png)", "", "## Results", "", results_table(table, chance, train_accuracy), "",
             "## Change between stages (paired over the same test videos)", "",
             "Mean per-video change in points with a 95 % bootstrap interval over test videos; `*` marks an "
             "interval that excludes zero.", "", lift_table(lift_rows), ""]
    fits = supervised_fit(run_dir / "runs")
    if fits:
        parts += ["## Supervised ceiling: does the encoder fit its labels?", "",
                  "The same encoder trained from random weights with the labels, on the pretraining clips and "
                  "augmentations (`mvcgc pretrain --stage supervised`); its R@1 and linear rows above use the "
                  "same protocol as every other row. Training accuracy of its last epoch, on augmented clips:", "",
                  "| run | epochs | train top-1 % |", "|---|---|---|"]
        parts += [f"| {name} | {epochs} | {_pct(acc)} |" for name, epochs, acc in fits] + [""]
    mining = mining_table(run_dir / "runs")
    if mining:
        parts += ["## Mining in the cross stage", "",
                  "Per query: extra positives mined from the queues (top-k of each view, intersected or "
                  "united), the share of queries that got any, and -- labels used for this diagnostic "
                  "only -- the share of mined rows of the query's own class beside the same share for each "
                  "view's own top-k. Mining helps where the mined share beats both views' shares.", "",
                  mining, ""]
    parts += ["## Runs", "", _config_table(configs), ""]
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
