"""The examples run: examples/library_api.py end to end on CPU (about 12 s here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_library_api_example_runs(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "library_api.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "16 written, 0 skipped" in done.stdout
    assert (tmp_path / "motion.png").stat().st_size > 0
    assert (tmp_path / "run" / "last.pt").is_file()


def test_recipes_exist_and_name_existing_commands():
    for name in ("README.md", "ucf101.md", "hmdb51.md", "kinetics400.md"):
        text = (EXAMPLES / name).read_text()
        assert "compvid" in text
