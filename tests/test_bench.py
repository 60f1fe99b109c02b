"""bench/run_all.py: the table of ratios (on canned results), failure isolation, and one real script."""

from __future__ import annotations

import gc
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def run_all():
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fig(id, value, base, unit="ms/clip", **kw):
    return dict(id=id, measured=id.split(".")[-1], value=value, unit=unit, baseline="floor", baseline_value=base, **kw)


CANNED = {
    # ratio = value / baseline: 40/50 = 0.8 meets "<= 1.0" (inverted, 1.25 would not);
    # 70/50 = 1.4 misses "<= 1.25" (inverted, 0.714 would meet it).
    "decode": {"ok": True, "data": {"figures": [fig("decode.h264.rgb_mv_over_pyav", 40.0, 50.0),
                                                fig("decode.h264-real.mv_only", 70.0, 50.0),
                                                fig("decode.h264.rgb_only", 75.0, 50.0, ratio=1.5)]}},
    "data": {"ok": True, "data": {"figures": [fig("data.stream_2.vs_0_workers", 10.0, 20.0, unit="clips/s")]}},
    "train": {"ok": True, "data": {"figures": [fig("train.tiny.cross_step", 1.03, 1.0, unit="s/step",
                                                   ratio=1 / 1.03)]}},  # a script that printed it inverted
    "eval": {"ok": False, "error": "exit 1: boom"},
}


def test_table_ratios_and_goals(run_all):
    rows = run_all.table_rows(CANNED)
    by_id = {r["id"]: r for r in rows if r["id"]}
    rgb_mv = by_id["decode.h264.rgb_mv_over_pyav"]
    assert rgb_mv["ratio"] == pytest.approx(0.8) and (rgb_mv["goal"], rgb_mv["met"]) == ("≤ 1×", "yes")
    mv_only = by_id["decode.h264-real.mv_only"]  # real clips share the codec's goals
    assert mv_only["ratio"] == pytest.approx(1.4) and (mv_only["goal"], mv_only["met"]) == ("≤ 1.25×", "**no**")
    assert by_id["decode.h264.rgb_only"]["ratio"] == pytest.approx(1.5)
    assert (by_id["decode.h264.rgb_only"]["goal"], by_id["decode.h264.rgb_only"]["met"]) == ("—", "—")
    assert by_id["data.stream_2.vs_0_workers"]["ratio"] == pytest.approx(0.5)  # rates: same direction
    train = by_id["train.tiny.cross_step"]
    assert train["ratio"] == pytest.approx(1.03) and train["met"] == "yes"
    assert "script printed ratio 0.971" in train["measured"]  # disagreement with the script is shown
    assert "script printed" not in by_id["decode.h264.rgb_only"]["measured"]
    failed = [r for r in rows if r["benchmark"] == "eval"]
    assert len(failed) == 1 and failed[0]["measured"] == "FAILED: exit 1: boom" and failed[0]["ratio"] is None
    # Goals without a figure are listed as not measured; those matched are not.
    missing = [r for r in rows if r["met"] == "not measured"]
    matched = {"decode.h264*.rgb_mv_over_pyav", "decode.h264*.mv_only", "train.*.cross_step"}
    assert len(missing) == len(run_all.GOALS) - len(matched)
    assert not any(p in r["measured"] for r in missing for p in matched)

    table = run_all.markdown_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| benchmark | measured | baseline (named) | ratio | goal | met? |"
    assert len(lines) == 2 + len(rows) == 2 + 6 + len(missing)
    assert "| 0.800× | ≤ 1× | yes |" in lines[2] and "| 1.400× | ≤ 1.25× | **no** |" in lines[3]


def test_goal_without_figure_is_not_measured(run_all):
    rows = run_all.table_rows({"decode": CANNED["decode"]})
    missing = [r for r in rows if r["met"] == "not measured"]
    train = [r for r in missing if r["benchmark"] == "train"]
    assert len(train) == 1 and train[0]["goal"] == "≤ 1.05×"


def test_one_crash_or_hang_does_not_stop_the_others(run_all, tmp_path, monkeypatch):
    good = """import json, sys
path = sys.argv[sys.argv.index("--json") + 1]
print("fine")
json.dump({"figures": [{"id": "good.x", "measured": "x", "value": 3.0, "unit": "s", "baseline": "b",
                        "baseline_value": 2.0}]}, open(path, "w"))
"""
    (tmp_path / "good.py").write_text(good)
    (tmp_path / "bad.py").write_text("print('starting'); raise SystemExit('crashed here')\n")
    (tmp_path / "hang.py").write_text("import time; time.sleep(60)\n")
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(run_all, "BENCHES", {"bad": ("bad.py", [], []), "hang": ("hang.py", [], []),
                                             "good": ("good.py", [], [])})
    monkeypatch.setattr(run_all, "GOALS", [])
    out = tmp_path / "res" / "r.md"
    assert run_all.main(["--out", str(out), "--timeout", "3"]) == 1
    md = out.read_text()
    assert "| bad | FAILED: exit 1: crashed here |" in md
    assert "| hang | FAILED: timed out after 3 s |" in md
    assert "| good | x: 3 s | b: 2 s | 1.500× | — | — |" in md
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["results"]["good"]["ok"] and not raw["results"]["bad"]["ok"]
    assert (tmp_path / "res" / "r" / "good.json").is_file()


def test_decode_bench_quick_through_run_all(tmp_path):
    """The real bench_decode.py at its smallest setting, through run_all (seconds)."""
    out = tmp_path / "bench.md"
    proc = subprocess.run([sys.executable, "bench/run_all.py", "--quick", "--only", "decode", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "bench" / "decode.json").read_text())
    figs = {f["id"]: f for f in data["figures"]}
    for recipe in ("h264", "mpeg4"):
        for case in ("rgb_mv", "mv_only", "rgb_only", "pyav_rgb", "pyav_rgb_mv", "bound_mv", "bound_rgb_mv"):
            f = figs[f"decode.{recipe}.{case}"]
            assert f["value"] > 0 and f["baseline_value"] > 0
            assert f["ratio"] == pytest.approx(f["value"] / f["baseline_value"], rel=1e-3)
        for case, base, suffix in (("rgb_mv", "bound_rgb_mv", "bound"), ("mv_only", "bound_mv", "bound"),
                                   ("rgb_mv", "pyav_rgb_mv", "pyav")):  # compvid over its lower bound and PyAV
            f = figs[f"decode.{recipe}.{case}_over_{suffix}"]
            assert (f["value"], f["baseline_value"]) == (figs[f"decode.{recipe}.{case}"]["value"],
                                                         figs[f"decode.{recipe}.{base}"]["value"])
    size = figs["decode.size.h264.426x240"]  # per pixel against 432x240
    (row,) = data["sizes"]
    assert size["value"] == pytest.approx(row["mv_only_ms"] / (426 * 240) * 1e6)
    assert size["baseline_value"] == pytest.approx(row["neighbour_mv_only_ms"] / (432 * 240) * 1e6)
    over = figs["decode.size_over_floor.h264.426x240"]  # and over each size's own floor
    assert over["value"] == pytest.approx(row["mv_only_ms"] / row["floor_ms"])
    assert sum(r["case"].startswith("floor") for r in data["rows"]) == 2
    md = out.read_text()
    optional = sum(f["id"].split(".")[-1].startswith("torchcodec") for f in data["figures"])  # if installed
    assert md.count("| decode |") == 22 + optional and "not measured" in md  # the train goal: not run here


def load_ab():
    spec = importlib.util.spec_from_file_location("ab_decode", ROOT / "bench" / "ab_decode.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ab_paired_differences_and_their_interval():
    """bench/ab_decode.py's figures on canned per-process results: after is 10 % faster than before
    in every pair, on top of a machine that drifts by 40 % between pairs (paired, so it cancels)."""
    ab = load_ab()
    before, after = [], []
    for drift in (1.0, 1.4, 0.8, 1.2, 1.1):
        floor = [20.0 * drift] * 3
        before.append({"v.mp4": {"floor": floor, "bound_rgb_mv": [f * 1.2 for f in floor],
                                 "mv_only": [f * 1.5 for f in floor], "rgb_mv": [f * 1.8 for f in floor]}})
        after.append({"v.mp4": {"floor": floor, "bound_rgb_mv": [f * 1.2 for f in floor],
                                "mv_only": [f * 1.35 for f in floor], "rgb_mv": [f * 1.8 for f in floor]}})
    rows = {figure: rest for video, figure, *rest in ab.paired_table(before, after)}
    b, a, d, low, high = rows["mv_only / floor"]
    assert (b, a) == pytest.approx((1.5, 1.35)) and d == pytest.approx(-0.15)
    assert low == pytest.approx(-0.15) and high == pytest.approx(-0.15)  # the same difference in every pair
    b, a, d, low, high = rows["rgb_mv / bound_rgb_mv"]
    assert (b, a, d, low, high) == pytest.approx((1.5, 1.5, 0.0, 0.0, 0.0))


def test_ab_refuses_to_compare_a_checkout_with_itself_by_accident(tmp_path):
    """A side whose processes import compvid from elsewhere (here: the installed one, as the
    'before' directory holds no compvid) stops the comparison and says so."""
    from compvid.synthetic import write_moving_video

    video = write_moving_video(tmp_path / "v.mp4", recipe="h264", num_frames=34, width=96, height=64)
    empty = tmp_path / "not-a-checkout"
    empty.mkdir()
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ab_decode.py"), str(empty), str(ROOT),
                           str(video), "--pairs", "1", "--rounds", "1"], capture_output=True, text=True)
    assert done.returncode != 0
    assert "before: compvid imported from" in done.stderr and str(empty) in done.stderr


def test_decode_cases_take_turns_window_by_window_after_an_untimed_pass():
    """bench_decode.interleaved_rounds: every case decodes every window once untimed, then each round
    runs the cases in turn on window 0, then on window 1 ...; one total per case per round."""
    spec = importlib.util.spec_from_file_location("bench_decode_rounds", ROOT / "bench" / "bench_decode.py")
    bd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bd)
    calls = []
    cases = {name: (lambda k, name=name: calls.append((name, k))) for name in ("floor", "compvid")}
    times = bd.interleaved_rounds(cases, windows=3, repeat=2)
    warm = [("floor", 0), ("floor", 1), ("floor", 2), ("compvid", 0), ("compvid", 1), ("compvid", 2)]
    one_round = [("floor", 0), ("compvid", 0), ("floor", 1), ("compvid", 1), ("floor", 2), ("compvid", 2)]
    assert calls == warm + one_round + one_round
    assert set(times) == {"floor", "compvid"} and all(len(ts) == 2 and min(ts) >= 0 for ts in times.values())


def test_each_decode_case_pays_for_its_own_garbage():
    """bench_decode.interleaved_rounds ends every timed call with a collection: a reference cycle a case
    leaves (as a PyAV frame whose side data was read) is freed before the next case starts, so its
    teardown counts in that case's time, not in whichever case the collector happens to run in next;
    the freeze of the objects alive before timing is undone afterwards."""
    spec = importlib.util.spec_from_file_location("bench_decode_garbage", ROOT / "bench" / "bench_decode.py")
    bd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bd)
    running: list[str] = []  # the case whose call is under way
    freed: list[tuple[str, str]] = []  # of cycles made in timed calls: (their case, the case running when freed)

    class Cycle:
        def __init__(self, owner: str, timed: bool) -> None:
            self.me, self.owner, self.timed = self, owner, timed

        def __del__(self) -> None:
            if self.timed:
                freed.append((self.owner, running[-1]))

    calls = {"floor": 0, "compvid": 0}

    def case(name: str):
        def run(k: int) -> None:
            running.append(name)
            calls[name] += 1
            Cycle(name, timed=calls[name] > 4)  # the first 4 calls: the untimed pass over 4 windows
        return run

    gc.collect()
    bd.interleaved_rounds({name: case(name) for name in calls}, windows=4, repeat=3)
    assert len(freed) == 2 * 4 * 3  # every timed call's cycle freed before the rounds ended ...
    assert all(owner == when for owner, when in freed), freed  # ... while its own case was running
    assert gc.get_freeze_count() == 0


def test_ab_says_what_is_wrong_in_one_line(tmp_path):
    """A missing video, or a measuring process that fails (here: a video that is no video), ends the
    comparison with one line naming it, not a traceback."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ab_decode.py"), str(ROOT), str(ROOT),
                           str(tmp_path / "none.mp4")], capture_output=True, text=True)
    assert done.returncode != 0 and done.stderr.strip() == f"no such video: {tmp_path / 'none.mp4'}"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ab_decode.py"), str(ROOT), str(ROOT), str(junk),
                           "--pairs", "1", "--rounds", "1"], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and "the measuring process failed" in lines[0]
    assert "CorruptVideoError" in lines[0] or "not a readable video" in lines[0]


def test_reads_bound_runs_and_reads_what_compvid_reads(tmp_path):
    """bench/reads_bound.py (README, seventh step): each packet read with the reader compvid's indexing
    uses for that stream (MPEG-4 Part 2 in AVI: coding types of its VOPs; H.264: NAL reference flags),
    and one line a case with its ratio to the floor, then what 1.25x the floor leaves."""
    import av

    from compvid.b_frame_runs import vop_types
    from compvid.nal import nal_length_size, scan_access_unit
    from compvid.synthetic import write_moving_video

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("reads_bound", ROOT / "bench" / "reads_bound.py")
        rb = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(rb)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    avi = write_moving_video(tmp_path / "m.avi", recipe="mpeg4", num_frames=40, width=96, height=64)
    mp4 = write_moving_video(tmp_path / "h.mp4", recipe="h264", num_frames=40, width=96, height=64)
    with av.open(str(avi)) as c:
        assert rb.packet_reader(c, c.streams.video[0]) is vop_types
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        read = rb.packet_reader(c, s)
        length_size = nal_length_size(s.codec_context.extradata)
        packets = [bytes(p) for p in c.demux(s) if p.size]
        assert [read(p) for p in packets] == [scan_access_unit(p, length_size) for p in packets]
        assert {r for r, _ in map(read, packets)} == {True, False}  # reference and non-reference pictures
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "reads_bound.py"), str(avi), "--repeat", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("m.avi: 2 clips, ")  # windows 0 and 8 of 40 frames
    for line, case in zip(lines[1:5], ("floor", "bound:", "reads bound:", "compvid MV only")):
        assert line.split()[0] == case.split()[0] and float(line.split()[-2].rstrip("x")) > 0
    assert lines[1].split()[-2] == "1.00x" and "1.25x the floor leaves beyond the reads bound" in lines[5]
