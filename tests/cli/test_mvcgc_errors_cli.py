"""``mvcgc``'s one exit path: an expected error of any kind is one line ``mvcgc CMD: error: MESSAGE`` on
stderr with exit status 1; a bad flag is click's usage message with status 2; a bug keeps its traceback."""

import json
import sys

import pytest
from click.testing import CliRunner

from cli.mvcgc import main, one_line
from mvcgc.testing_protocol import PREDICTIONS_FORMAT

SMALL = ["--preset", "tiny-cpu", "--synthetic-videos", "8", "--batch-size", "4", "--num-frames", "4", "--size", "16",
         "--queue-size", "8", "--device", "cpu", "--steps", "2"]
NO_WORLD = {"WORLD_SIZE": None, "RANK": None, "LOCAL_RANK": None}


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env={**NO_WORLD, **(env or {})}, catch_exceptions=False)


def error_line(result, command: str, *, alone: bool = True) -> str:
    """The single ``mvcgc COMMAND: error: ...`` line, the last one on stderr (``alone``: the only one)."""
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(f"mvcgc {command}: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert not alone or lines == errors, result.stderr
    return errors[0]


@pytest.mark.parametrize("kind,args,env,needle", [
    ("InvalidArgumentError", ["--stage", "init", "--view", "mv", "--data", "synthetic", *SMALL, "--queue-size", "6"],
     None, "queue size 6 must be a positive multiple of the global batch 4"),
    ("InputNotFoundError", ["--stage", "init", "--view", "rgb", "--data", "{tmp}/missing-{{000..001}}.tar", *SMALL],
     None, "2 of 2 shard(s) not found"),
    ("CheckpointNotFoundError", ["--stage", "cross", "--init-mv", "{tmp}/missing.pt", "--data", "synthetic", *SMALL],
     None, "missing.pt does not exist"),
    ("DataError", ["--stage", "supervised", "--view", "rgb", "--num-classes", "2", "--data", "synthetic", *SMALL],
     None, "needs a class label in 0..1 for every video"),
    ("DistributedSetupError", ["--stage", "init", "--view", "rgb", "--data", "synthetic", *SMALL],
     {"WORLD_SIZE": "2"}, "environment variable RANK expected"),
    ("CompvidError", ["--stage", "init", "--view", "rgb", "--data", " ", *SMALL], None, "no shard URLs"),
])
def test_pretrain_errors_are_one_line_and_exit_1(tmp_path, kind, args, env, needle):
    r = run("pretrain", *[a.format(tmp=tmp_path) for a in args], "--out", tmp_path / "run", env=env)
    assert r.exit_code == 1, r.output
    assert needle in error_line(r, "pretrain"), kind


def test_a_diverged_run_is_one_line_after_its_progress(tmp_path):
    # Adam moves every weight by about lr: 1e30 overflows the activations at the second step
    r = run("pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", *SMALL, "--lr", "1e30",
            "--out", tmp_path / "run")
    assert r.exit_code == 1, r.output
    line = error_line(r, "pretrain", alone=False)  # the progress bar of the steps before it may be above
    assert "loss became nan at step 2" in line and "Try a lower --lr" in line


def test_a_bad_checkpoint_is_one_line(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    r = run("retrieve", "--ckpt", tmp_path / "x.pt", "--train", tmp_path, "--test", tmp_path, "--device", "cpu")
    assert r.exit_code == 1 and "x.pt is not a readable mvcgc checkpoint" in error_line(r, "retrieve")


def predictions(path, keys, labels):
    path.write_text(json.dumps({"format": PREDICTIONS_FORMAT, "probs": [[0.5, 0.5]] * len(keys), "labels": labels,
                                "keys": keys}))
    return path


def test_fuse_errors_are_one_line(tmp_path):
    (tmp_path / "a.json").write_text('{"probs": [[0.5')  # cut off
    r = run("fuse", tmp_path / "a.json", tmp_path / "a.json")
    assert r.exit_code == 1 and "a.json is not a readable predictions file" in error_line(r, "fuse")  # ResultsError
    r = run("fuse", predictions(tmp_path / "p.json", ["v1"], [0]), predictions(tmp_path / "q.json", ["v2"], [0]))
    assert r.exit_code == 1 and "share no video key" in error_line(r, "fuse")  # EmptyDataError


def test_report_and_seeds_errors_are_one_line(tmp_path):
    r = run("report", tmp_path)
    assert r.exit_code == 1 and "no retrieve-<stage>.json" in error_line(r, "report")  # InputNotFoundError
    results = tmp_path / "results"
    results.mkdir()
    (results / "retrieve-init.json").write_text(json.dumps({"queries": {
        "keys": ["a", "b"], "labels": [0, 1], "gallery_labels": [0, 1], "first_hit_rank": {"rgb": [0, None]}}}))
    out = tmp_path / "no-such-folder" / "seeds.md"
    r = run("seeds", tmp_path, "--out", out)
    assert r.exit_code == 1 and f"No such file or directory: '{out}'" in error_line(r, "seeds")  # OSError


def test_a_missing_dependency_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    (tmp_path / "a.mp4").write_bytes(b"")
    r = run("efficiency", tmp_path / "a.mp4")
    assert r.exit_code == 1 and "pip install opencv" in error_line(r, "efficiency")


@pytest.mark.parametrize("size,needle", [
    ("96x128", "--size='96x128': clips are square (H = W); pass one side, e.g. 128"),
    ("16xA", "--size='16xA': expected a positive number of pixels"),
    ("0", "--size='0': expected a positive number of pixels"),
])
def test_efficiency_size_goes_through_compvids_crop_parser(tmp_path, size, needle):
    (tmp_path / "a.mp4").write_bytes(b"")
    r = run("efficiency", tmp_path / "a.mp4", "--size", size)
    assert r.exit_code == 2 and needle in r.output and "Traceback" not in r.output, r.output


def test_efficiency_takes_a_square_size_as_side_x_side(tmp_path, monkeypatch):
    import mvcgc.efficiency

    seen = {}

    def record(data, **kw):
        seen.update(kw)
        raise mvcgc.efficiency.EmptyDataError("stop here")

    monkeypatch.setattr(mvcgc.efficiency, "measure_efficiency", record)
    (tmp_path / "a.mp4").write_bytes(b"")
    r = run("efficiency", tmp_path / "a.mp4", "--size", "48x48")
    assert r.exit_code == 1 and seen["size"] == 48 and type(seen["size"]) is int


def test_a_bad_learning_rate_is_mvcgcs_usage_error_not_torchs(tmp_path):
    # the options record refuses it before any work: a bad flag, so click's usage message and status 2
    r = run("pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", *SMALL, "--lr", "nan",
            "--out", tmp_path / "run")
    assert r.exit_code == 2 and "lr and weight_decay must be finite numbers >= 0" in r.stderr
    assert "Traceback" not in r.output and not (tmp_path / "run").exists()


def test_a_broken_preset_is_a_usage_error(tmp_path):
    (tmp_path / "p.toml").write_text("lr = [")
    r = run("pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", "--preset", tmp_path / "p.toml",
            "--out", tmp_path / "run")
    assert r.exit_code == 2 and "is not valid TOML" in r.stderr and "Traceback" not in r.output


def test_an_unexpected_error_keeps_its_traceback(tmp_path, monkeypatch):
    import mvcgc.report

    def bug(run_dirs):
        raise ValueError("a bug, not bad input")  # a bare builtin: what mvcgc raises on purpose is typed

    monkeypatch.setattr(mvcgc.report, "seeds_table", bug)
    with pytest.raises(ValueError, match="a bug"):  # not turned into one line
        run("seeds", tmp_path)


def test_one_line_joins_the_message_lines_and_the_notes():
    e = ValueError("weights do not fit:\n\tMissing key(s) in state_dict: head.w")  # torch's messages span lines
    e.add_note("video /data/a.mp4")  # compvid's datasets say where with a note
    assert one_line(e) == "weights do not fit: Missing key(s) in state_dict: head.w; video /data/a.mp4"
