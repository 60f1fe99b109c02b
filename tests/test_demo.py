"""The README's main job, small: examples/demo.sh end to end with few videos and one epoch per stage
(about 2-3 minutes on 2 cores). Checks that every stage wrote its files and numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_small_demo_writes_every_stage_and_the_report(tmp_path):
    env = {**os.environ, "BIN": str(Path(sys.executable).parent), "DEMO_VIDEOS_PER_CLASS": "8",
           "DEMO_TEST_GROUPS": "1", "DEMO_EPOCHS": "1", "DEMO_SUPERVISED_EPOCHS": "1", "DEMO_LINEAR_EPOCHS": "2",
           "DEMO_WORKERS": "1", "DEMO_SEED": "3"}
    out = tmp_path / "demo"
    # The subprocess timeouts below guard against a hang, not against slowness: ~4 min quiet, far more loaded.
    done = subprocess.run(["bash", str(ROOT / "examples" / "demo.sh"), str(out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for run in ("random-rgb", "random-mv", "init-rgb", "init-mv", "cross", "supervised-rgb", "supervised-mv"):
        assert (out / "runs" / run / "last.pt").is_file(), run
    for stage in ("random", "init", "cross", "supervised"):
        retrieve = json.loads((out / "results" / f"retrieve-{stage}.json").read_text())
        assert retrieve["num_queries"] == 32 and set(retrieve["queries"]["first_hit_rank"]) == {"rgb", "mv", "both"}
        linear = json.loads((out / "results" / f"linear-{stage}.json").read_text())
        assert set(linear) == {"rgb", "mv", "both"} and len(linear["rgb"]["correct"]) == 32
    report = (out / "report" / "report.md").read_text()
    for row in ("| random init | rgb |", "| stage 1 (init) | mv |", "| stage 2 (cross) | both |",
                "| supervised ceiling | rgb |", "| supervised-mv | 1 |", "| chance |"):
        assert row in report, row
    assert "stage 2 (cross) − stage 1 (init)" in report
    for png in ("results.png", "loss-curves.png", "motion-vectors.png"):
        assert (out / "report" / png).stat().st_size > 0, png
    steps = [line.split("\t")[0] for line in (out / "results" / "timings.tsv").read_text().splitlines()]
    assert steps[:3] == ["synth", "shard", "verify"] and steps[-1] == "inspect"
    assert "| stage 1 (init) | rgb |" in done.stdout  # the table is printed, too

    # the lift study re-runs only the cross stage on top of this demo, sharing stage 1 and its seed
    study_env = {k: v for k, v in env.items() if k != "DEMO_SEED"}  # the study reads the seed from the base run
    study = subprocess.run(["bash", str(ROOT / "examples" / "lift_study.sh"), str(out)],
                           env={**study_env, "STUDY_RECIPES": "union|--mode union\nfrom-random|--topk 2|random"}, cwd=ROOT,
                           capture_output=True, text=True, timeout=3600)  # fmt: skip
    assert study.returncode == 0, study.stderr[-4000:]
    union = out / "study" / "union"
    assert (union / "runs" / "init-rgb").resolve() == (out / "runs" / "init-rgb").resolve()
    union_config = json.loads((union / "runs" / "cross" / "config.json").read_text())["config"]
    assert union_config["mode"] == "union" and union_config["seed"] == 3
    assert (union / "results" / "linear-supervised.json").is_file()  # the ceiling travels with stage 1
    assert "| union | rgb | R@1 | stage 2 − stage 1 |" in study.stdout and "| base (demo) | rgb | R@1 |" in study.stdout
    assert "| union | rgb | R@1 | stage 2 − random init |" in study.stdout
    # "no stage 1": the cross stage starts from the random-init weights
    config = json.loads((out / "study" / "from-random" / "runs" / "cross" / "config.json").read_text())["config"]
    assert config["init_rgb"].endswith("runs/random-rgb/last.pt") and config["topk"] == 2
    assert "| from-random | mv | linear top-1 |" in study.stdout
