"""Ctrl-C in ``mvcgc``: pretrain saves and prints the command that resumes exactly; the evaluation
commands stop with one line on what was kept."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from cli.mvcgc import main, with_resume

REPO = Path(__file__).resolve().parents[2]

# The real CLI in a fresh interpreter, its synthetic batches slowed down so that a signal sent after
# step 1 surely lands before the run's last step (the numbers do not depend on the delay).
THROTTLED_CLI = """
import time
import mvcgc.data

class Throttled(mvcgc.data.SyntheticClips):
    def __iter__(self):
        for batch in super().__iter__():
            time.sleep(0.2)
            yield batch

mvcgc.data.SyntheticClips = Throttled
from cli.mvcgc import main
main(prog_name="mvcgc")
"""
STEPS = 8  # 16 videos / batch 4: two epochs, so the resumed run crosses an epoch end
PRETRAIN = ["pretrain", "--stage", "init", "--view", "rgb", "--data", "synthetic", "--arch", "tiny",
            "--synthetic-videos", "16", "--batch-size", "4", "--num-frames", "4", "--size", "16", "--queue-size",
            "8", "--dim", "16", "--lr", "1e-3", "--device", "cpu", "--steps", str(STEPS)]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args):
    return [sys.executable, "-c", THROTTLED_CLI, *args]


def logged(run_dir):
    keep = ("event", "step", "epoch", "loss", "lr", "queue_fill", "mean_loss")
    return [{k: x.get(k) for k in keep} for x in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())]


def wait_for_first_step(proc, metrics, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before its first step:\n{proc.communicate()[1]}"
        if metrics.is_file() and '"event": "step"' in metrics.read_text():
            return
        time.sleep(0.01)
    raise AssertionError("no step logged in time")


def test_ctrl_c_saves_prints_the_resume_command_and_that_command_finishes_the_run_exactly(tmp_path):
    reference = subprocess.run(cli(*PRETRAIN, "--out", str(tmp_path / "ref")), cwd=REPO, env=ENV,
                               capture_output=True, text=True)
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "cut"
    proc = subprocess.Popen(cli(*PRETRAIN, "--out", str(out)), cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_first_step(proc, out / "metrics.jsonl")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    stopped = [x for x in logged(out) if x["event"] == "step"]
    assert 1 <= len(stopped) < STEPS
    assert f"stopped by SIGINT after step {len(stopped)}; saved {out / 'last.pt'}" in err
    resume_lines = [ln for ln in err.splitlines() if ln.startswith("resume with: ")]
    assert len(resume_lines) == 1, err
    command = shlex.split(resume_lines[0][len("resume with: "):])
    assert command == ["mvcgc", *PRETRAIN, "--out", str(out), "--resume", str(out / "last.pt")]

    resumed = subprocess.run(cli(*command[1:]), cwd=REPO, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert logged(out) == logged(tmp_path / "ref")  # every step's loss, lr and queue, epoch ends included


def test_the_resume_command_replaces_resume_and_drops_overwrite():
    args = ["pretrain", "--overwrite", "--resume", "old.pt", "--out", "my run", "--resume=older.pt"]
    assert with_resume(args, Path("my run/last.pt")) == ["pretrain", "--out", "my run", "--resume", "my run/last.pt"]


def test_finetune_and_linear_stop_with_one_line_on_what_is_kept(tmp_path, monkeypatch):
    import mvcgc.classify
    import mvcgc.evaluate

    def ctrl_c(*a, **kw):
        raise KeyboardInterrupt

    def sigterm(*a, **kw):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(mvcgc.classify, "finetune", ctrl_c)
    monkeypatch.setattr(mvcgc.evaluate, "run_linear", sigterm)
    ckpt, data = str(tmp_path / "x.pt"), str(tmp_path)
    runner = CliRunner()
    r = runner.invoke(main, ["finetune", "--ckpt", ckpt, "--view", "rgb", "--train", data, "--test", data])
    assert r.exit_code == 130 and "Traceback" not in r.output
    assert r.output.strip() == "mvcgc finetune: stopped by SIGINT; no state was saved: run the same command again"
    before = signal.getsignal(signal.SIGTERM)
    r = runner.invoke(main, ["linear", "--ckpt", ckpt, "--train", data, "--test", data, "--cache-dir",
                             str(tmp_path / "cache")])
    assert r.exit_code == 143 and "Traceback" not in r.output
    assert r.output.strip().startswith("mvcgc linear: stopped by SIGTERM; the features finished so far")
    assert str(tmp_path / "cache") in r.output and len(r.output.strip().splitlines()) == 1
    assert signal.getsignal(signal.SIGTERM) == before

    import mvcgc.efficiency

    monkeypatch.setattr(mvcgc.efficiency, "measure_efficiency", sigterm)
    r = runner.invoke(main, ["efficiency", data])
    assert r.exit_code == 143 and "Traceback" not in r.output
    assert r.output.strip() == "mvcgc efficiency: stopped by SIGTERM; nothing is kept: the same command measures again"


def test_finetune_ctrl_c_saves_prints_the_resume_command_and_that_command_gives_the_uninterrupted_result(
        tmp_path, monkeypatch):
    import cli.mvcgc
    from pan_folders import write_pan_folders
    from mvcgc.data import SyntheticClips
    from mvcgc.train import pretrain

    # Recipe: libx264 defaults, 16 frames of 48×64, the class pans left or right.
    write_pan_folders(tmp_path)
    ckpt = pretrain(SyntheticClips(num_videos=4, batch_size=4, num_frames=8, size=(32, 32), views=("rgb",)),
                    stage="init", view="rgb", out_dir=tmp_path / "run", steps=1, arch="tiny", queue_size=8,
                    dim=16, device="cpu").checkpoint
    args = ["finetune", "--ckpt", str(ckpt), "--view", "rgb", "--train", str(tmp_path / "train"), "--test",
            str(tmp_path / "test"), "--epochs", "3", "--batch-size", "2", "--test-crops", "center", "--device",
            "cpu", "--state-dir", str(tmp_path / "states")]
    runner = CliRunner()
    full = runner.invoke(main, [*args, "--predictions", str(tmp_path / "full.json")], prog_name="mvcgc")
    assert full.exit_code == 0, full.output

    step = cli.mvcgc._FinetuneBar.step

    def ctrl_c_after_step_2(self, r):
        step(self, r)
        if r.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(cli.mvcgc._FinetuneBar, "step", ctrl_c_after_step_2)
    cut = runner.invoke(main, args, prog_name="mvcgc")
    monkeypatch.undo()
    assert cut.exit_code == 130 and "Traceback" not in cut.output
    saved = next((tmp_path / "states").iterdir())
    assert f"mvcgc finetune: stopped by SIGINT after step 2; saved {saved}" in cut.stderr
    resume_lines = [ln for ln in cut.stderr.splitlines() if ln.startswith("resume with: ")]
    assert len(resume_lines) == 1, cut.stderr
    command = shlex.split(resume_lines[0][len("resume with: "):])
    assert command == ["mvcgc", *args, "--resume", str(saved)]
    resumed = runner.invoke(main, [*command[1:], "--predictions", str(tmp_path / "resumed.json")])
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.split("wrote")[0] == full.stdout.split("wrote")[0]  # the same accuracy table
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("full", "resumed"))
    assert a["probs"] == b["probs"] and a["keys"] == b["keys"]
    assert not saved.exists()
