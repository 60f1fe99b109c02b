"""mvcgc.report on result files written by hand: table values, paired changes, files, bad input."""

import json

import pytest

from mvcgc.report import lift_table, lifts, load_results, results_table, write_report
from mvcgc.run_files import EpochEndRecord, StepRecord


def step(number, epoch, loss, **diagnostics):
    """A step's line as the trainer logs it (the numbers the report does not read are placeholders)."""
    return StepRecord(step=number, total_steps=None, epoch=epoch, loss=loss, lr=1e-3, queue_fill=1.0,
                      samples_per_s=1.0, **diagnostics)

KEYS = [f"v{i}" for i in range(8)]
LABELS = [i % 4 for i in range(8)]
GALLERY = [i % 4 for i in range(16)]


def write_stage(results, stage, *, rgb_ranks, mv_ranks, both_ranks, rgb_correct, mv_correct):
    retrieve = {"queries": {"keys": KEYS, "labels": LABELS, "gallery_labels": GALLERY,
                            "first_hit_rank": {"rgb": rgb_ranks, "mv": mv_ranks, "both": both_ranks}}}
    (results / f"retrieve-{stage}.json").write_text(json.dumps(retrieve))
    linear = {v: {"keys": KEYS, "correct": c, "num_classes": 4, "top1": sum(c) / 8}
              for v, c in (("rgb", rgb_correct), ("mv", mv_correct))}
    (results / f"linear-{stage}.json").write_text(json.dumps(linear))


@pytest.fixture
def run_dir(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    # rgb R@1: random 2/8, init 2/8, cross 6/8 (the cross stage adds hits on v2..v5, loses none)
    write_stage(results, "random", rgb_ranks=[0, 0, 3, 3, 3, 3, 9, None], mv_ranks=[0] * 8, both_ranks=[1] * 8,
                rgb_correct=[1, 0, 0, 0, 0, 0, 0, 0], mv_correct=[1] * 8)
    write_stage(results, "init", rgb_ranks=[0, 0, 4, 4, 4, 4, 9, None], mv_ranks=[0] * 8, both_ranks=[1] * 8,
                rgb_correct=[1, 1, 0, 0, 0, 0, 0, 0], mv_correct=[1] * 8)
    write_stage(results, "cross", rgb_ranks=[0, 0, 0, 0, 0, 0, 9, None], mv_ranks=[0] * 8, both_ranks=[0] * 8,
                rgb_correct=[1, 1, 1, 0, 0, 0, 0, 0], mv_correct=[1] * 7 + [0])
    run = tmp_path / "runs" / "init-rgb"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"config": {"stage": "init", "arch": "tiny", "epochs": 3}}))
    (results / "timings.tsv").write_text("synth\t10\nstage 1 rgb\t30\n")
    return tmp_path


def test_table_values_come_from_the_per_video_outcomes(run_dir):
    table, chance = load_results(run_dir / "results")
    assert table[("random", "rgb", "R@1")].value == 2 / 8
    assert table[("random", "rgb", "R@5")].value == 6 / 8  # ranks 0,0,3,3,3,3 < 5; 9 and none are misses
    assert table[("cross", "rgb", "R@1")].value == 6 / 8
    assert table[("cross", "both", "R@1")].value == 1.0 and table[("init", "both", "R@1")].value == 0.0
    assert table[("cross", "mv", "linear top-1")].value == 7 / 8
    assert chance["linear top-1"] == 0.25 and chance["R@1"] == pytest.approx(0.25)  # 4 of 16 per class
    md = results_table(table, chance)
    assert "| stage 2 (cross) | rgb | 75.0 [" in md and "| random init | rgb | 25.0 [" in md


def test_changes_are_paired_over_the_same_videos(run_dir):
    table, _ = load_results(run_dir / "results")
    by = {(x.view, x.measure, x.later, x.earlier): x for x in lifts(table)}
    up = by[("rgb", "R@1", "cross", "init")]
    assert up.diff == pytest.approx(4 / 8) and up.n == 8
    assert up.low > 0  # every change is a gain: the paired interval excludes zero
    same = by[("rgb", "R@1", "init", "random")]
    assert same.diff == 0 and same.low == same.high == 0  # identical outcomes: no change, no noise
    assert "+50.0 [" in lift_table(list(by.values())) and "*" in lift_table([up])


def test_write_report_files(run_dir):
    md = write_report(run_dir, title="unit")
    text = md.read_text()
    assert (md.parent / "results.png").stat().st_size > 0
    assert "## Results" in text and "## Change between stages" in text and "| stage 1 rgb | 30 | 75 % |" in text


def test_old_or_missing_results_are_clear_errors(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(FileNotFoundError, match="no retrieve"):
        load_results(tmp_path / "results")
    (tmp_path / "results" / "retrieve-init.json").write_text(json.dumps({"recall": {"1": 0.5}}))
    with pytest.raises(ValueError, match="no per-query results"):
        load_results(tmp_path / "results")


def test_supervised_ceiling_rows_training_accuracy_and_mining(run_dir):
    results = run_dir / "results"
    write_stage(results, "supervised", rgb_ranks=[0] * 7 + [2], mv_ranks=[0] * 8, both_ranks=[0] * 8,
                rgb_correct=[1] * 7 + [0], mv_correct=[1] * 8)
    linear = json.loads((results / "linear-init.json").read_text())
    linear["rgb"]["final_train_accuracy"] = 0.125  # an encoder whose probe cannot fit shows it
    (results / "linear-init.json").write_text(json.dumps(linear))
    sup = run_dir / "runs" / "supervised-rgb"
    sup.mkdir()
    (sup / "metrics.jsonl").write_text("".join(json.dumps(x.to_dict()) + "\n" for x in [
        step(1, 0, 2.0, train_accuracy=0.25),
        EpochEndRecord(epoch=0, step=1, mean_loss=2.0, train_accuracy=0.25),
        EpochEndRecord(epoch=1, step=2, mean_loss=1.0, train_accuracy=0.875)]))
    cross = run_dir / "runs" / "cross"
    cross.mkdir()
    steps = [step(1, 0, 9.0),  # before mining starts
             step(2, 0, 9.0, mining={"mined_per_query": 1.0, "queries_with_mined": 0.5, "mined_same_class": 0.5,
                                     "rgb_topk_same_class": 0.2, "mv_topk_same_class": 0.4}),
             step(3, 1, 8.0, mining={"mined_per_query": 2.0, "queries_with_mined": 1.0, "mined_same_class": None,
                                     "rgb_topk_same_class": 0.3, "mv_topk_same_class": 0.6}),
             step(4, 1, 8.0, mining={"mined_per_query": 4.0, "queries_with_mined": 1.0, "mined_same_class": 0.75,
                                     "rgb_topk_same_class": 0.5, "mv_topk_same_class": 0.8})]
    (cross / "metrics.jsonl").write_text("".join(json.dumps(x.to_dict()) + "\n" for x in steps))
    text = write_report(run_dir, title="unit").read_text()
    assert "| supervised ceiling | rgb | 87.5 [" in text
    assert "| stage 1 (init) | rgb | 25.0 [" in text and "| 12.5 | 8 |" in text  # probe's training accuracy
    assert "| supervised-rgb | 2 | 87.5 |" in text  # last epoch's training accuracy
    # epoch 2 averages its two steps; a share with nothing to count (None) is left out of the mean
    assert "| cross | 1 | 1.00 | 50.0 % | 50.0 % | 20.0 % | 40.0 % |" in text
    assert "| cross | 2 | 3.00 | 100.0 % | 75.0 % | 40.0 % | 70.0 % |" in text


def test_seeds_table_lists_each_seed_and_the_mean(run_dir, tmp_path):
    import shutil

    from mvcgc.report import seeds_table

    second = tmp_path / "seed-1"
    shutil.copytree(run_dir / "results", second / "results")
    # seed 1: the cross stage gains nothing on RGB R@1 (cross = init)
    init = json.loads((second / "results" / "retrieve-init.json").read_text())
    (second / "results" / "retrieve-cross.json").write_text(json.dumps(init))
    md = seeds_table([run_dir, second])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.splitlines()}
    assert "rgb R@1: stage 2 − stage 1" in md
    assert rows[run_dir.name].split(" | ")[1].startswith("+50.0 [") and rows[run_dir.name].split(" | ")[1].endswith("*")
    assert rows["seed-1"].split(" | ")[1] == "+0.0 [+0.0, +0.0]"
    assert rows["mean of 2"].split(" | ")[1] == "+25.0"
    assert rows["interval above 0"].split(" | ")[1] == "1 of 2"


def test_recipe_table_compares_a_lift_study_recipe_with_each_runs_cross_stage(run_dir, tmp_path):
    import shutil

    from click.testing import CliRunner

    from cli.mvcgc import main
    from mvcgc.report import recipe_table

    def study(run, cross_rgb_ranks):
        results = run / "study" / "union" / "results"
        shutil.copytree(run / "results", results)
        retrieve = json.loads((results / "retrieve-cross.json").read_text())
        retrieve["queries"]["first_hit_rank"]["rgb"] = cross_rgb_ranks
        (results / "retrieve-cross.json").write_text(json.dumps(retrieve))

    second = tmp_path / "seed-1"
    shutil.copytree(run_dir / "results", second / "results")
    study(run_dir, [0] * 8)  # seed 0: the recipe also finds v6 and v7 (run: 6 of 8) -> +25 points
    study(second, [0, 0, 0, 0, 0, 0, 9, None])  # seed 1: the recipe equals the run's cross stage
    md = recipe_table([run_dir, second], "union")
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in md.splitlines()}
    assert "rgb R@1: union − run" in md
    assert rows[run_dir.name][0].startswith("+25.0 [") and rows["seed-1"][0] == "+0.0 [+0.0, +0.0]"
    assert rows[run_dir.name][1].startswith("+0.0 [")  # linear top-1 unchanged by the recipe
    assert rows["mean of 2"][0] == "+12.5"
    # pooled: v6 and v7 gain in one seed of two (+0.5 each), the other six videos 0: mean 1/8
    assert rows["pooled over videos"][0].startswith("+12.5 [")
    r = CliRunner().invoke(main, ["seeds", str(run_dir), str(second), "--recipe", "union"])
    assert r.exit_code == 0 and "| pooled over videos | +12.5 [" in r.output
    r = CliRunner().invoke(main, ["seeds", str(run_dir), str(second), "--recipe", "k=3"])
    assert r.exit_code == 1 and "k=3" in r.output  # no such study: one clear line
