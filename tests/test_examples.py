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


def test_ceiling_study_trains_with_labels_and_reports_per_class(tmp_path):
    import json

    from compvid.synth import write_synth

    write_synth(tmp_path / "data", classes=("MoveRight", "MoveLeft"), videos_per_class=4, clips_per_group=1,
                test_groups=1, num_frames=12, width=64, height=48, codecs=("mpeg4",))
    done = subprocess.run([sys.executable, str(EXAMPLES / "ceiling_study.py"), str(tmp_path / "data"),
                           "--arch", "motion", "--epochs", "2", "--batch-size", "2", "--num-frames", "8",
                           "--size", "32", "--flip-p", "0", "--threads", "1", "--head-lr", "1e-2"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["per_class_top1"]) == {"MoveRight", "MoveLeft"}
    assert result["head_lr"] == 1e-2 and result["lr"] == 1e-3  # the classifier trains at its own rate
    assert 0 <= result["test_top1"] <= 100 and 0 <= result["train_top1_last_epoch"] <= 100
    # two test videos, one per class: each class is 0 or 100 %, and the mean is test top-1
    assert all(v in (0, 100) for v in result["per_class_top1"].values())
    assert result["test_top1"] == sum(result["per_class_top1"].values()) / 2
