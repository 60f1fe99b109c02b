"""A run folder's config.json and metrics.jsonl: written by the trainer and read back through one type each."""

import json

import pytest

from mvcgc.errors import ResultsError
from mvcgc.run_files import (CONFIG_NAME, METRICS_NAME, EpochEndRecord, RunConfig, StepRecord, metrics_record,
                             read_metrics)
from mvcgc.train import pretrain
from mvcgc_testing import TINY, clips


@pytest.mark.parametrize("stage, extra", [("cross", dict(topk=2)), ("supervised", dict(view="rgb", num_classes=10))])
def test_every_logged_line_reads_back_as_the_record_that_wrote_it(tmp_path, stage, extra):
    # 16 videos / batch 4: two epochs; the cross stage mines from step 3 (K = 8 full)
    pretrain(clips(), stage=stage, out_dir=tmp_path, epochs=2, **extra, **TINY)
    lines = [json.loads(x) for x in (tmp_path / METRICS_NAME).read_text().splitlines()]
    records = read_metrics(tmp_path / METRICS_NAME)
    assert [r.to_dict() for r in records] == lines  # nothing lost, nothing added, same key order
    assert [json.dumps(r.to_dict()) for r in records] == (tmp_path / METRICS_NAME).read_text().splitlines()
    ends = [r for r in records if isinstance(r, EpochEndRecord)]
    assert [e.epoch for e in ends] == [0, 1] and [e.step for e in ends] == [4, 8]
    steps = [r for r in records if isinstance(r, StepRecord)]
    if stage == "cross":
        assert [s.mining is not None for s in steps] == [False] * 2 + [True] * 6
    else:
        assert all(s.train_accuracy is not None for s in steps) and all(e.train_accuracy is not None for e in ends)
    config = RunConfig.from_dict(json.loads((tmp_path / CONFIG_NAME).read_text()))
    assert config.config["stage"] == stage and config.config["epochs"] == 2 and "torch" in config.versions


@pytest.mark.parametrize("line, needle", [
    ({"event": "stop", "step": 1}, "not a metrics record"),
    ({"event": "epoch_end", "epoch": 0}, "incomplete epoch_end record"),
    ({"event": "epoch_end", "epoch": 0, "mean_loss": 1.0, "step": 4, "grad_norm": 2.0}, "unknown metrics field"),
])
def test_a_line_of_another_kind_is_one_results_error(line, needle):
    with pytest.raises(ResultsError, match=needle):
        metrics_record(line)


def test_a_config_without_its_table_is_refused():
    with pytest.raises(ResultsError, match="no 'config' table"):
        RunConfig.from_dict({"versions": {}})
