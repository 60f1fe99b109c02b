"""The evaluation result files: one type each, shared by the writer (the CLI) and the reader (the report)."""

import json
import math
import re
from pathlib import Path

import pytest

from mvcgc.errors import ResultsError
from mvcgc.evaluate import RetrievalResult
from mvcgc.results import LinearFile, QueryOutcomes, RetrievalFile, result_name

REPO = Path(__file__).resolve().parents[2]


def test_a_retrieval_result_becomes_json_and_back_with_unreached_ranks_as_null():
    r = RetrievalResult(recall={1: 0.5, 5: 1.0}, per_view={"rgb": {1: 0.5, 5: 1.0}}, num_queries=2, num_gallery=3,
                        failed_test=[{"key": "bad.mp4", "reason": "not a video"}], failed_train=[],
                        meta={"view": "rgb", "crops": "center"}, query_keys=["a", "b"], query_labels=[0, 1],
                        gallery_labels=[0, 0, 2], first_hit={"rgb": [0.0, math.inf]})
    doc = json.loads(json.dumps(RetrievalFile.from_result(r, train="tr", test="te").to_dict()))
    assert doc["queries"]["first_hit_rank"] == {"rgb": [0, None]} and doc["view"] == "rgb" and doc["test"] == "te"
    back = RetrievalFile.from_dict(doc)
    assert back.to_dict() == doc and back.meta == {"view": "rgb", "crops": "center"}
    assert back.queries.hits("rgb", 1) == {"a": 1, "b": 0}  # b's class is not in the gallery: never a hit


def test_hits_at_k_follow_the_rank_of_the_first_same_class_video():
    q = QueryOutcomes(["a", "b", "c"], [0, 0, 0], [0], {"mv": [0, 4, None]})
    assert [q.hits("mv", k) for k in (1, 5)] == [{"a": 1, "b": 0, "c": 0}, {"a": 1, "b": 1, "c": 0}]


@pytest.mark.parametrize("reader, doc, needle", [
    (RetrievalFile, {"recall": {"1": 0.5}}, "no per-query results"),
    (RetrievalFile, {"queries": {"keys": ["a"]}}, "per-query results are incomplete"),
    (LinearFile, {"rgb": {"top1": 0.5}}, r"\(rgb\): no per-video results"),
    (LinearFile, [1, 2], "not a mapping of views"),
])
def test_a_file_of_an_older_version_is_one_results_error_saying_how_to_write_it_again(reader, doc, needle):
    with pytest.raises(ResultsError, match=needle) as info:
        reader.from_dict(doc, source="x.json")
    assert "re-run `mvcgc" in str(info.value) and "x.json" in str(info.value)


def test_the_demo_writes_the_file_names_the_report_reads():
    demo = (REPO / "examples" / "demo.sh").read_text()
    for kind in ("retrieve", "linear"):
        written = re.search(rf'--json "\$OUT/results/({kind}-\$stage\.json)"', demo)
        assert written and written[1] == result_name(kind, "$stage")
