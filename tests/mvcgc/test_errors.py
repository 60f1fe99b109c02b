"""mvcgc's typed errors: every error raised on purpose is an ``MvcgcError`` and also the builtin it
replaces (so ``except ValueError`` keeps working); no bare builtin raise comes back into ``mvcgc/``."""

import ast
import builtins
import inspect
import json
import sys
from pathlib import Path

import pytest
import torch

import mvcgc.errors as errors
from mvcgc.errors import MvcgcError

REPO = Path(__file__).resolve().parents[2]
SCANNED = sorted((REPO / "mvcgc").rglob("*.py")) + [REPO / "cli" / "mvcgc.py"]

# (file relative to the repo, builtin name) -> why a bare builtin is right there. Empty: none is.
ALLOWED_BUILTIN_RAISES: dict[tuple[str, str], str] = {
    ("mvcgc/__init__.py", "AttributeError"): "a module __getattr__ must raise AttributeError for unknown names",
}

# Each class and the builtin a caller may catch it as.
BUILTIN_OF = {
    errors.InvalidArgumentError: ValueError,
    errors.InputNotFoundError: FileNotFoundError,
    errors.CheckpointNotFoundError: FileNotFoundError,
    errors.CheckpointError: ValueError,
    errors.DataError: ValueError,
    errors.EmptyDataError: ValueError,
    errors.ClassMismatchError: ValueError,
    errors.MissingViewError: KeyError,
    errors.ResultsError: ValueError,
    errors.NonFiniteLossError: FloatingPointError,
    errors.RunExistsError: FileExistsError,
    errors.DistributedSetupError: RuntimeError,
    errors.MissingDependencyError: ImportError,
}


def builtin_raises(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every ``raise X(...)`` / ``raise X`` whose X is a builtin exception class."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name):
                obj = getattr(builtins, target.id, None)
                if isinstance(obj, type) and issubclass(obj, BaseException):
                    found.append((node.lineno, target.id))
    return sorted(found)


def test_the_scan_finds_bare_builtin_raises():
    source = ("def f(x):\n    if x:\n        raise ValueError(\n            'multi-line'\n        )\n"
              "    raise KeyError\n\ndef g():\n    raise InvalidArgumentError('typed')\n\ndef h():\n    raise\n")
    assert builtin_raises(source) == [(3, "ValueError"), (6, "KeyError")]


def test_no_bare_builtin_raise_in_mvcgc():
    assert len(SCANNED) > 20  # the scan sees the package
    bare = [f"{path.relative_to(REPO)}:{line}: raise {name}"
            for path in SCANNED for line, name in builtin_raises(path.read_text())
            if (str(path.relative_to(REPO)), name) not in ALLOWED_BUILTIN_RAISES]
    assert not bare, "raise a class of mvcgc.errors instead (it can also be the builtin):\n" + "\n".join(bare)


def test_every_error_class_is_also_its_builtin():
    declared = {cls for _, cls in inspect.getmembers(errors, inspect.isclass)
                if issubclass(cls, MvcgcError) and cls is not MvcgcError}
    assert declared == set(BUILTIN_OF)  # a new class needs a row here, with its builtin
    for cls, builtin in BUILTIN_OF.items():
        with pytest.raises(builtin):
            raise cls("message")
        with pytest.raises(MvcgcError):
            raise cls("message")
        assert str(cls("the message")) == "the message"  # KeyError's kind included: no quotes around it
    # the interrupts are no errors: `except Exception` lets them through, like Ctrl-C
    assert not issubclass(errors.TrainingInterrupted, Exception)
    assert not issubclass(errors.SignalInterrupt, Exception)


# One real call per kind, as ``case(tmp_path, monkeypatch)``: it raises the typed class, which is caught as the
# builtin, with a word of its message.


def queue_not_a_multiple(tmp, mp):
    from mvcgc.queue import check_queue_size

    check_queue_size(6, 4)


def unknown_stage(tmp, mp):
    from mvcgc.options import PretrainOptions

    PretrainOptions(stage="both", steps=1)


def missing_video_folder(tmp, mp):
    from mvcgc.efficiency import find_videos

    find_videos(tmp / "missing")


def missing_checkpoint(tmp, mp):
    from mvcgc.checkpoint import load_checkpoint

    load_checkpoint(tmp / "missing.pt")


def garbage_checkpoint(tmp, mp):
    from mvcgc.checkpoint import load_checkpoint

    (tmp / "x.pt").write_bytes(b"not a checkpoint")
    load_checkpoint(tmp / "x.pt")


def single_class_train_set(tmp, mp):
    from mvcgc.classify import _check_sets

    _check_sets(torch.tensor([0, 0]), torch.tensor([0]))


def empty_gallery(tmp, mp):
    from mvcgc.stats import chance_recall

    chance_recall([0], [], 1)


def disjoint_classes(tmp, mp):
    from mvcgc.retrieval import check_shared_classes

    check_shared_classes(torch.tensor([0, 1]), torch.tensor([2, 3]), what="query and gallery")


def queue_without_the_view(tmp, mp):
    from mvcgc.queue import KeyQueue

    KeyQueue(views=("rgb",), size=4, dim=2)["mv"]


def cut_off_predictions(tmp, mp):
    from mvcgc.testing_protocol import Predictions

    (tmp / "p.json").write_text('{"probs": [[0.5, ')
    Predictions.load(tmp / "p.json")


def cut_off_results(tmp, mp):
    from mvcgc.report import load_results

    (tmp / "retrieve-init.json").write_text('{"queries": {"keys": ["a"')  # a write cut off
    load_results(tmp)


def no_opencv(tmp, mp):
    from mvcgc.efficiency import resolve_flow

    mp.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    resolve_flow("auto")


def negative_classifier_lr(tmp, mp):
    from mvcgc.classify import ClassifierTrainer, VideoClassifier
    from mvcgc.models import create_encoder

    ClassifierTrainer(VideoClassifier(create_encoder("tiny", 3), 2), mode="linear", lr=-1.0)


def zero_batch_size(tmp, mp):
    from mvcgc.classify import epoch_batches

    epoch_batches(8, 0, seed=0, epoch=0)


def world_without_rank(tmp, mp):
    from mvcgc import distributed

    mp.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        mp.delenv(name, raising=False)
    distributed.init_from_env(backend="gloo")


REAL_RAISES = [
    (queue_not_a_multiple, errors.InvalidArgumentError, ValueError, "multiple of the global batch 4"),
    (unknown_stage, errors.InvalidArgumentError, ValueError, "init, cross"),
    (missing_video_folder, errors.InputNotFoundError, FileNotFoundError, "neither a video file nor a folder"),
    (missing_checkpoint, errors.CheckpointNotFoundError, FileNotFoundError, "does not exist"),
    (garbage_checkpoint, errors.CheckpointError, ValueError, "not a readable mvcgc checkpoint"),
    (negative_classifier_lr, errors.InvalidArgumentError, ValueError, "got lr=-1.0"),
    (zero_batch_size, errors.InvalidArgumentError, ValueError, "batch_size must be >= 1"),
    (single_class_train_set, errors.DataError, ValueError, "single class"),
    (empty_gallery, errors.EmptyDataError, ValueError, "non-empty gallery"),
    (disjoint_classes, errors.ClassMismatchError, ValueError, "share no class"),
    (queue_without_the_view, errors.MissingViewError, KeyError, "no queue for view 'mv'"),
    (cut_off_predictions, errors.ResultsError, ValueError, "not a readable predictions file"),
    (cut_off_results, errors.ResultsError, ValueError, "retrieve-init.json is not valid JSON"),
    (no_opencv, errors.MissingDependencyError, ImportError, "pip install"),
    (world_without_rank, errors.DistributedSetupError, RuntimeError, "environment variable RANK"),
]


@pytest.mark.parametrize("case,typed,builtin,needle", REAL_RAISES, ids=[c.__name__ for c, *_ in REAL_RAISES])
def test_library_raises_the_typed_error_that_is_also_the_builtin(tmp_path, monkeypatch, case, typed, builtin, needle):
    with pytest.raises(builtin) as info:
        case(tmp_path, monkeypatch)
    assert type(info.value) is typed and needle in str(info.value), (type(info.value), str(info.value))


def test_a_bad_world_size_is_a_setup_error(monkeypatch):
    from mvcgc import distributed

    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(errors.DistributedSetupError, match="WORLD_SIZE='two' is not an integer"):
        distributed.init_from_env()
    assert not distributed.is_distributed()


def test_a_cut_off_metrics_line_names_file_and_line(tmp_path):
    from mvcgc.report import supervised_fit

    run = tmp_path / "sup-rgb"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"event": "epoch_end", "epoch": 0, "mean_loss": 1.0, "step": 4,
                                                   "train_accuracy": 0.5}) + '\n{"event": "st\n')
    with pytest.raises(errors.ResultsError, match=r"metrics\.jsonl line 2 is not valid JSON"):
        supervised_fit(tmp_path)


def test_an_unknown_evaluation_option_is_named_before_any_checkpoint_or_video_is_read(tmp_path):
    from mvcgc.evaluate import FEATURE_OPTIONS, run_linear, run_retrieval

    missing = tmp_path / "nowhere"  # neither data nor checkpoints exist: an error about them would come later
    for run in (run_retrieval, run_linear):
        with pytest.raises(errors.InvalidArgumentError, match=r"unknown option\(s\) num_frame; ") as info:
            run(missing, missing, checkpoints=[tmp_path / "a.pt"], num_frame=8)
        assert all(name in str(info.value) for name in FEATURE_OPTIONS)
