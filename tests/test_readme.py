"""Claims the README makes about behaviour measured or checked elsewhere, kept in step with their sources."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_demo_time_is_the_measured_one_in_the_readme_and_the_script():
    script_header = "".join(line for line in (ROOT / "examples" / "demo.sh").read_text().splitlines(True)
                            if line.startswith("#"))
    quiet = re.search(r"took (\d+ min \d+ s) on\s+2 CPU cores", re.sub(r"#\s*", " ", script_header))
    assert quiet, "examples/demo.sh's header states the measured time on 2 quiet cores"
    for text in (README, script_header):
        flat = re.sub(r"\s+", " ", text)
        assert quiet.group(1) in flat  # the same figure in both places
        assert "depends on the core count and the machine's load" in flat


def test_pretraining_outputs_as_the_trainer_writes_them():
    flat = re.sub(r"\s+", " ", README)
    # mvcgc.train draws loss.png only at the end of a run with steps (tests/mvcgc/test_train.py)
    assert "a `--steps 0` (random-init) run has none" in flat
    demo_steps = flat.split("## The two commands")[1].split("## Install")[0]
    assert "--resume RUN/last.pt" in demo_steps  # where pretraining is introduced


def test_the_periodic_checkpoint_default_is_the_trainers():
    from mvcgc.options import DEFAULT_CHECKPOINT_EVERY

    flat = re.sub(r"\s+", " ", README)
    assert f"written every {DEFAULT_CHECKPOINT_EVERY} steps (`--checkpoint-every N`" in flat


def test_the_readme_names_every_mvcgc_error_and_the_exit_statuses():
    import inspect

    import mvcgc.errors

    paragraph = re.sub(r"\s+", " ", README.split("Errors end a command one way.")[1].split("\n\n")[0])
    declared = [name for name, cls in inspect.getmembers(mvcgc.errors, inspect.isclass)
                if issubclass(cls, mvcgc.errors.MvcgcError)]
    assert [name for name in declared if f"`{name}`" not in paragraph] == []
    assert "`mvcgc COMMAND: error: MESSAGE`, and exits with status 1" in paragraph
    assert "click's usage message and status 2" in paragraph
