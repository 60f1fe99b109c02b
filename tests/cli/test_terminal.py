"""In a real terminal (a tmux pane): a running ``mvcgc retrieve`` shows exactly one bar line with
done / total, and the warnings it logs meanwhile sit on their own lines above it."""

import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bar_frames import WITH_TOTAL, WITHOUT_TOTAL
from pan_folders import write_pan_folders
from mvcgc.data import SyntheticClips
from mvcgc.train import pretrain

REPO = Path(__file__).resolve().parents[2]
# The real CLI, each window slowed down so that the screen can be read mid-run (numbers do not depend on it).
SLOW_RETRIEVE = """
import sys, time
import compvid.datasets

get = compvid.datasets.WindowFiles.__getitem__

def slow(self, index):
    time.sleep(0.25)
    return get(self, index)

compvid.datasets.WindowFiles.__getitem__ = slow
from cli.mvcgc import main
main(prog_name="mvcgc")
"""

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_a_running_retrieve_shows_one_bar_with_done_and_total_in_a_real_terminal(tmp_path):
    # Recipe: libx264 defaults, 16 frames of 48×64 panning left or right: 3 windows of 8 frames each.
    write_pan_folders(tmp_path)
    (tmp_path / "test" / "right" / "broken.mp4").write_bytes(b"not a video" * 30)  # logged as left out
    ckpt = pretrain(SyntheticClips(num_videos=4, batch_size=4, num_frames=8, size=(32, 32)), stage="cross",
                    out_dir=tmp_path / "run", steps=1, arch="tiny", queue_size=8, dim=16, device="cpu").checkpoint
    script = tmp_path / "slow_retrieve.py"
    script.write_text(SLOW_RETRIEVE)
    command = shlex.join(["env", f"PYTHONPATH={REPO}", "OMP_NUM_THREADS=1", sys.executable, str(script),
                          "retrieve", "--ckpt", str(ckpt), "--view", "both", "--train", str(tmp_path / "train"),
                          "--test", str(tmp_path / "test"), "--device", "cpu", "--cache-dir", str(tmp_path / "c")])
    socket = f"mvcgc-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own, never the user's

    def tmux(*args):
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=True).stdout

    tmux("new-session", "-d", "-x", "150", "-y", "40", "-s", "t", f"cd {shlex.quote(str(REPO))} && {command}; "
         "echo EXIT=$?; sleep 600")
    screens = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            screens.append(tmux("capture-pane", "-p", "-t", "t"))
            if "EXIT=" in screens[-1]:
                break
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
    final = screens[-1]
    assert "EXIT=0" in final, final
    bar_lines = [[ln for ln in s.splitlines() if WITH_TOTAL.search(ln)] for s in screens]
    assert max(map(len, bar_lines)) <= 1, next(s for s, b in zip(screens, bar_lines) if len(b) > 1)
    assert not any(WITHOUT_TOTAL.search(ln) for s in screens for ln in s.splitlines())
    running = [b[0] for b in bar_lines if len(b) == 1]
    assert running, "no bar seen while the command ran:\n" + final
    counts = {(WITH_TOTAL.search(ln)["n"], WITH_TOTAL.search(ln)["total"]) for ln in running}
    assert {total for _, total in counts} == {"7"}  # 4 train + 3 test videos, one bar for both splits and views
    assert any(n not in ("0", "7") for n, _ in counts)  # caught mid-run
    # the warning logged while the bar was up starts its own line; the bar is gone at the end
    warned = [ln for ln in final.splitlines() if "mvcgc.features: left out" in ln]
    assert warned and all(re.match(r"WARNING mvcgc\.features: left out ", ln) for ln in warned), final
    assert not any(WITH_TOTAL.search(ln) for ln in final.splitlines())
    assert "retrieval: 2 test queries, 4 train videos" in final
