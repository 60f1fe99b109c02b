"""Clip decoding throughput: compvid against plain PyAV, one thread, same windows.

    python bench/bench_decode.py [--repeat 3]

32-frame clips from 320x240 videos (H.264 with B-frames, MPEG-4 Part 2 with
B-frames), every sliding window of a 128-frame video. Baselines, measured in
the same process on the same windows:
  floor   PyAV seek + decode with MV export, no colour conversion
  pyav    PyAV seek + decode + rgb24 conversion at native size
  bound   the floor plus the least output work any loader must do (vector
          tables to numpy, the float32 field and uint8 RGB clip written,
          RGB conversion at 128 px): what no implementation can go below
  torchcodec   RGB only, if it is installed
Printed: CPU ms per clip (best of interleaved rounds) and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from compvid import decode_clip, probe
from compvid.decode import output_size
from compvid.rgb import RgbConverter
from compvid.sampling import sliding_window_starts
from compvid.synthetic import RECIPES, write_moving_video

NUM_FRAMES = 32


def pyav_windows(path, info, starts, *, rgb: bool, export_mvs: bool, bound: str | None = None) -> None:
    """Seek to each window and decode its frames with PyAV alone.

    ``bound``: also do the least work any PyAV-based loader must do to hand out
    compvid's outputs at a 128-px short side, and nothing else: "mv" reads each
    frame's vector table into numpy and fills a float32 (2, T, H', W') field;
    "rgb_mv" also converts each frame to RGB at H' x W' (compvid.rgb, the
    cheapest swscale path) into a uint8 (T, H', W', 3) clip. No reference
    distances, no rasterisation: a lower bound for compvid, not a loader.
    """
    out_h, out_w = output_size(info.width, info.height, 128)
    to_rgb = RgbConverter()
    for start in starts:
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            s.thread_type = "SLICE"
            s.codec_context.thread_count = 1
            if export_mvs:
                s.codec_context.options = {"flags2": "+export_mvs"}
            if start:
                c.seek(int((info.start_seconds + start / info.fps) / s.time_base), stream=s, backward=True)
            got = 0
            frames: list[np.ndarray] = []
            for f in c.decode(s):
                idx = round((f.time - info.start_seconds) * info.fps)
                if idx < start:
                    continue
                if export_mvs:
                    side = f.side_data.get("MOTION_VECTORS")
                    if bound and side is not None:
                        side.to_ndarray()
                if rgb:
                    f.to_ndarray(format="rgb24", threads=1)  # one swscale thread, like compvid
                if bound == "rgb_mv":
                    frames.append(to_rgb(f, out_h, out_w))
                got += 1
                if got == NUM_FRAMES:
                    break
            if bound:
                np.full((2, NUM_FRAMES, out_h, out_w), 0.5, np.float32)  # the field, written once
            if frames:
                np.stack(frames)


def compvid_windows(path, info, starts, **kw) -> None:
    for start in starts:
        decode_clip(path, start=start, num_frames=NUM_FRAMES, info=info, **kw)


def torchcodec_windows(path, info, starts):  # pragma: no cover - optional
    from torchcodec.decoders import VideoDecoder

    for start in starts:
        # Default ("exact") seek mode: it indexes the file on open, as compvid's probe does.
        VideoDecoder(str(path), num_ffmpeg_threads=1).get_frames_in_range(start, start + NUM_FRAMES)


def timed_rounds(cases: dict, repeat: int) -> dict[str, float]:
    """Best CPU seconds of this thread per case over ``repeat`` rounds.

    Rounds interleave the cases (floor, compvid, floor, ...) so that a slow
    spell of the machine hits all of them alike; thread CPU time (user + system,
    page faults included) leaves out time the virtual machine lost to its host
    and to other processes. Decoding here is single-threaded by construction.
    """
    best = {name: float("inf") for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            t = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", metavar="PATH", help="also write the printed figures (and raw ms/clip) here")
    args = parser.parse_args()
    try:
        import torchcodec  # noqa: F401
        have_torchcodec = True
    except Exception:
        have_torchcodec = False
    rows = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in ("h264", "mpeg4"):
            path = write_moving_video(Path(tmp) / f"bench{RECIPES[recipe].suffix}", recipe=recipe, num_frames=128,
                                      width=320, height=240, motion="pan")
            info = probe(path)
            starts = sliding_window_starts(info.num_frames, num_frames=NUM_FRAMES)
            cases = {
                "floor: PyAV decode + MV export": lambda: pyav_windows(path, info, starts, rgb=False, export_mvs=True),
                "PyAV RGB decode (native size)": lambda: pyav_windows(path, info, starts, rgb=True, export_mvs=False),
                "bound: floor + MV outputs": lambda: pyav_windows(
                    path, info, starts, rgb=False, export_mvs=True, bound="mv"),
                "bound: floor + MV + RGB outputs": lambda: pyav_windows(
                    path, info, starts, rgb=False, export_mvs=True, bound="rgb_mv"),
                "compvid RGB+MV, 128 px": lambda: compvid_windows(path, info, starts, size=128),
                "compvid MV only, 128 px": lambda: compvid_windows(path, info, starts, size=128, with_rgb=False),
                "compvid RGB only, 128 px": lambda: compvid_windows(path, info, starts, size=128, with_mv=False),
            }
            if have_torchcodec:
                try:
                    torchcodec_windows(path, info, starts)
                    cases["torchcodec RGB (native size)"] = lambda: torchcodec_windows(path, info, starts)
                except RuntimeError as e:  # e.g. the last frames of AVI with packed B-frames
                    notes.append(f"torchcodec failed on the {recipe} video: {e}")
            times = {name: t / len(starts) for name, t in timed_rounds(cases, args.repeat).items()}
            floor = times["floor: PyAV decode + MV export"]
            for name, t in times.items():
                rows.append((recipe, name, t * 1e3, t / floor))
    print(f"{'video':8s} {'case':34s} {'ms/clip':>9s} {'x floor':>8s}")
    for recipe, name, ms, ratio in rows:
        print(f"{recipe:8s} {name:34s} {ms:9.1f} {ratio:8.2f}")
    for recipe, case, bound_case, ratio in bound_ratios(rows):
        print(f"{recipe:8s} {case} over {bound_case}: {ratio:.2f}x")
    for note in notes:
        print(note)
    if not have_torchcodec:
        print("torchcodec: not installed (pip install torchcodec needs a matching torch and system FFmpeg)")
    if args.json:
        write_json(args.json, args, rows)


def case_id(name: str) -> str:
    """Stable id of a printed case name ("compvid MV only, 128 px" -> "mv_only"); run_all's goals key on it."""
    for key, slug in (("RGB+MV", "rgb_mv"), ("MV only", "mv_only"), ("RGB only", "rgb_only")):
        if name.startswith("compvid") and key in name:
            return slug
    if name.startswith("PyAV RGB"):
        return "pyav_rgb"
    if name.startswith("bound"):
        return "bound_rgb_mv" if "RGB" in name else "bound_mv"
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def bound_ratios(rows: list) -> list[tuple[str, str, str, float]]:
    """(video, compvid case, bound case, ratio): compvid against the least work its outputs need."""
    ms = {(recipe, case_id(name)): (name, value) for recipe, name, value, _ in rows}
    out = []
    for recipe in dict.fromkeys(r[0] for r in rows):
        for case, bound in (("rgb_mv", "bound_rgb_mv"), ("mv_only", "bound_mv")):
            if (recipe, case) in ms and (recipe, bound) in ms:
                out.append((recipe, ms[recipe, case][0], ms[recipe, bound][0], ms[recipe, case][1] / ms[recipe, bound][1]))
    return out


def write_json(path: str, args: argparse.Namespace, rows: list) -> None:
    """Figures as ``bench/run_all.py`` reads them: ms per clip against the floor (lower is better)."""
    import json

    floor = {recipe: (name, ms) for recipe, name, ms, _ in rows if name.startswith("floor")}
    figures = [dict(id=f"decode.{recipe}.{case_id(name)}", measured=f"{name} ({recipe})", value=ms, unit="ms/clip",
                    baseline=floor[recipe][0], baseline_value=floor[recipe][1], ratio=ratio, higher_is_better=False)
               for recipe, name, ms, ratio in rows if not name.startswith("floor")]
    ms_of = {(recipe, name): ms for recipe, name, ms, _ in rows}
    figures += [dict(id=f"decode.{recipe}.{case_id(case)}_over_bound", measured=f"{case} ({recipe})",
                     value=ms_of[recipe, case], unit="ms/clip", baseline=bound, baseline_value=ms_of[recipe, bound],
                     ratio=ratio, higher_is_better=False)
                for recipe, case, bound, ratio in bound_ratios(rows)]
    out = dict(benchmark="decode", config=vars(args), num_frames=NUM_FRAMES,
               rows=[dict(video=recipe, case=name, ms_per_clip=ms, x_floor=ratio) for recipe, name, ms, ratio in rows],
               figures=figures)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
