"""Clip decoding throughput: compvid against plain PyAV, one thread, same windows.

    python bench/bench_decode.py [--repeat 5] [--media DIR] [--sizes all|none|WxH,...]

32-frame clips, every sliding window of a video: generated 320x240 videos of
128 frames (H.264 with B-frames, MPEG-4 Part 2 with B-frames, HEVC whose fields
are estimated) and, where ``--media`` (default ../shared/media) holds them,
the real B-frame clips h264_high_bframes_bikes_640x272.mp4 and
mpeg4asp_xvid_bframes_megamind_720x528.avi. Baselines, measured in the same
process on the same windows:
  floor   PyAV seek + decode with MV export, no colour conversion
  pyav    PyAV seek + decode + rgb24 conversion at native size
  pyav + raw MV   the same with MV export and each frame's vector table read
          into numpy: what a user gets from PyAV alone, no dense field
  bound   the floor plus the least output work any loader must do (vector
          tables to numpy, the float32 field and uint8 RGB clip written,
          RGB conversion at 128 px): what no implementation can go below
  torchcodec   RGB only, if it is installed
Frame sizes: compvid MV-only per pixel at sizes with a small power-of-two
factor (854x480, 426x240 H.264; 600x450 MPEG-2) against a neighbour size
(848x480, 432x240, 592x448), 96-frame generated videos cropped from one
panned texture; also compvid's ratio to the floor at each size (the decoder's
own cost per pixel differs between sizes too: coded width 864 for 854 ...).
Printed: CPU ms per clip (median of interleaved rounds) and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from compvid import decode_clip, probe
from compvid.decode import output_size
from compvid.rgb import RgbConverter
from compvid.sampling import sliding_window_starts
from compvid.synthetic import RECIPES, encode_frames, moving_frames, write_moving_video

NUM_FRAMES = 32
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MEDIA = ROOT.parent / "shared" / "media"
# Generated videos (recipe names of compvid.synthetic), 320x240, 128 frames.
GENERATED = ("h264", "mpeg4", "hevc")
# Real clips with B-frames, if present in --media: label -> file.
REAL = {"h264-real": "h264_high_bframes_bikes_640x272.mp4",
        "mpeg4-real": "mpeg4asp_xvid_bframes_megamind_720x528.avi"}
# Frame sizes whose sides have a small power-of-two factor, each beside a neighbour size: (recipe, size, neighbour).
SIZE_PAIRS = (("h264", (854, 480), (848, 480)), ("h264", (426, 240), (432, 240)), ("mpeg2", (600, 450), (592, 448)))


def pyav_windows(path, info, starts, *, rgb: bool, export_mvs: bool, bound: str | None = None,
                 raw_mvs: bool = False) -> None:
    """Seek to each window and decode its frames with PyAV alone.

    ``raw_mvs``: read each frame's vector table into numpy (as exported: no
    reference distances, no dense field).

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
                    if (bound or raw_mvs) and side is not None:
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


def interleaved_rounds(cases: dict, windows: int, repeat: int) -> dict[str, list[float]]:
    """CPU seconds of this thread per case in each of ``repeat`` rounds; ``cases[name](k)`` decodes
    window k (0 .. windows - 1).

    Each case first decodes every window once untimed (what a long-running loader pays once:
    numba's compiled loops loaded on the first clip, ~0.6 s, would otherwise weigh on one of a
    few rounds). Within a round the cases take turns window by window (floor on window 0,
    compvid on window 0, ..., floor on window 1, ...), so that a slow spell of the machine, which
    on shared cores lasts seconds, hits every case alike: a ratio of two cases compares the same
    windows decoded within milliseconds of each other. Thread CPU time (user + system, page
    faults included) leaves out time the virtual machine lost to its host and to other
    processes. Decoding here is single-threaded by construction.

    Each case pays for its own garbage: a frame whose side data was read (every case that exports
    vectors) is in a reference cycle with PyAV's side-data objects, freed with its picture
    buffers only by the cyclic garbage collector, which otherwise runs whenever allocations add
    up, often in the next case (a case of many small objects, compvid's, trips it most). So the
    objects alive before timing are frozen (the collector no longer walks torch's and numpy's
    objects) and every timed call ends with a collection, counted in its time: ~0.1 ms. Without
    it Megamind's MV-only clip read 1.48x the floor, with it 1.10x (bench/reads_bound.py, one run).
    """
    for fn in cases.values():  # one untimed pass: imports, numba's cache, swscale contexts, file cache
        for k in range(windows):
            fn(k)
    gc.collect()
    gc.freeze()
    times: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(repeat):
            spent = dict.fromkeys(cases, 0.0)
            for k in range(windows):
                for name, fn in cases.items():
                    t = time.thread_time()
                    fn(k)
                    gc.collect()  # this case's frames and decoders, freed now, on its time
                    spent[name] += time.thread_time() - t
            for name, t in spent.items():
                times[name].append(t)
    finally:
        gc.unfreeze()
    return times


def timed_rounds(cases: dict, windows: int, repeat: int) -> dict[str, float]:
    """Median CPU seconds per case over the rounds of :func:`interleaved_rounds`."""
    return {name: statistics.median(ts) for name, ts in interleaved_rounds(cases, windows, repeat).items()}


FLOOR = "floor: PyAV decode + MV export"
PYAV_RGB_MV = "PyAV RGB + raw MV export (native size)"


def video_cases(path, info, starts, *, estimated: bool, torchcodec: bool) -> dict:
    """The cases measured on one video, floor first: name -> function of a window index."""
    def one(k):
        return starts[k:k + 1]

    cases = {
        FLOOR: lambda k: pyav_windows(path, info, one(k), rgb=False, export_mvs=True),
        "PyAV RGB decode (native size)": lambda k: pyav_windows(path, info, one(k), rgb=True, export_mvs=False),
    }
    if not estimated:  # no vectors to export: the PyAV + MV and bound cases would measure nothing more
        cases[PYAV_RGB_MV] = lambda k: pyav_windows(path, info, one(k), rgb=True, export_mvs=True, raw_mvs=True)
        cases["bound: floor + MV outputs"] = lambda k: pyav_windows(path, info, one(k), rgb=False, export_mvs=True,
                                                                    bound="mv")
        cases["bound: floor + MV + RGB outputs"] = lambda k: pyav_windows(path, info, one(k), rgb=False,
                                                                         export_mvs=True, bound="rgb_mv")
    cases["compvid RGB+MV, 128 px"] = lambda k: compvid_windows(path, info, one(k), size=128)
    cases["compvid MV only, 128 px"] = lambda k: compvid_windows(path, info, one(k), size=128, with_rgb=False)
    cases["compvid RGB only, 128 px"] = lambda k: compvid_windows(path, info, one(k), size=128, with_mv=False)
    if torchcodec:
        cases["torchcodec RGB (native size)"] = lambda k: torchcodec_windows(path, info, one(k))
    return cases


def size_rows(tmp: Path, pairs, repeat: int) -> list[tuple]:
    """(recipe, (w, h), (w', h'), ms/clip compvid MV only, ms/clip neighbour, floor ms, floor ms neighbour)."""
    out = []
    for recipe, size, neighbour in pairs:
        videos = {}
        # Both videos are crops of one panned texture, so that they differ in size, not in content.
        frames, _ = moving_frames(num_frames=96, width=max(size[0], neighbour[0]), height=max(size[1], neighbour[1]),
                                  dx=3, dy=-2, motion="pan")
        for w, h in (size, neighbour):
            path = encode_frames(frames[:, :h, :w], tmp / f"size-{recipe}-{w}x{h}{RECIPES[recipe].suffix}",
                                 recipe=recipe)
            info = probe(path)
            videos[w, h] = (path, info, sliding_window_starts(info.num_frames, num_frames=NUM_FRAMES))
        cases = {}
        for (w, h), (path, info, starts) in videos.items():
            cases[f"floor {w}x{h}"] = (lambda k, p=path, i=info, s=starts:
                                       pyav_windows(p, i, s[k:k + 1], rgb=False, export_mvs=True))
            cases[f"mv {w}x{h}"] = (lambda k, p=path, i=info, s=starts:
                                    compvid_windows(p, i, s[k:k + 1], size=128, with_rgb=False))
        assert len(videos[size][2]) == len(videos[neighbour][2])  # window k of both in turn
        times = timed_rounds(cases, len(videos[size][2]), repeat)
        per_clip = {k: v / len(videos[size][2]) * 1e3 for k, v in times.items()}  # same window count for both
        (w, h), (w2, h2) = size, neighbour
        out.append((recipe, size, neighbour, per_clip[f"mv {w}x{h}"], per_clip[f"mv {w2}x{h2}"],
                    per_clip[f"floor {w}x{h}"], per_clip[f"floor {w2}x{h2}"]))
    return out


def parse_sizes(text: str):
    if text == "all":
        return SIZE_PAIRS
    if text == "none":
        return ()
    wanted = {tuple(int(v) for v in item.split("x")) for item in text.split(",")}
    return tuple(p for p in SIZE_PAIRS if p[1] in wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--media", default=str(DEFAULT_MEDIA),
                        help="folder of the real clips (default: %(default)s; 'none' leaves them out)")
    parser.add_argument("--sizes", default="all",
                        help="frame-size pairs: all, none, or odd sizes such as 426x240 (default: %(default)s)")
    parser.add_argument("--generated", default=",".join(GENERATED), help="generated videos (default: %(default)s)")
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
        videos = []
        for recipe in [r for r in args.generated.split(",") if r]:
            path = Path(tmp) / f"bench-{recipe}{RECIPES[recipe].suffix}"  # one file per recipe (h264, hevc: .mp4)
            videos.append((recipe, write_moving_video(path, recipe=recipe, num_frames=128, width=320, height=240,
                                                      motion="pan")))
        media = Path(args.media)
        for label, name in REAL.items():
            if args.media != "none" and (media / name).is_file():
                videos.append((label, media / name))
            else:
                notes.append(f"{label}: {media / name} not found, left out")
        for label, path in videos:
            info = probe(path)
            starts = sliding_window_starts(info.num_frames, num_frames=NUM_FRAMES)
            torchcodec_ok = False
            if have_torchcodec:
                try:
                    torchcodec_windows(path, info, starts)
                    torchcodec_ok = True
                except RuntimeError as e:  # e.g. the last frames of AVI with packed B-frames
                    notes.append(f"torchcodec failed on the {label} video: {e}")
            cases = video_cases(path, info, starts, estimated=info.mv_source == "estimated", torchcodec=torchcodec_ok)
            times = {name: t / len(starts) for name, t in timed_rounds(cases, len(starts), args.repeat).items()}
            floor = times[FLOOR]
            for name, t in times.items():
                rows.append((label, name, t * 1e3, t / floor))
        sizes = size_rows(Path(tmp), parse_sizes(args.sizes), args.repeat)
    print(f"{'video':11s} {'case':40s} {'ms/clip':>9s} {'x floor':>8s}")
    for recipe, name, ms, ratio in rows:
        print(f"{recipe:11s} {name:40s} {ms:9.1f} {ratio:8.2f}")
    for recipe, case, base_case, ratio in bound_ratios(rows):
        print(f"{recipe:11s} {case} over {base_case}: {ratio:.2f}x")
    for recipe, (w, h), (w2, h2), ms, ms2, floor, floor2 in sizes:
        print(f"{recipe:11s} compvid MV only at {w}x{h}: {ms:.1f} ms/clip ({ms / floor:.2f}x its floor); "
              f"at {w2}x{h2}: {ms2:.1f} ms/clip ({ms2 / floor2:.2f}x); per pixel "
              f"{(ms / (w * h)) / (ms2 / (w2 * h2)):.2f}x the neighbour")
    for note in notes:
        print(note)
    if not have_torchcodec:
        print("torchcodec: not installed (pip install torchcodec needs a matching torch and system FFmpeg)")
    if args.json:
        write_json(args.json, args, rows, sizes)


def case_id(name: str) -> str:
    """Stable id of a printed case name ("compvid MV only, 128 px" -> "mv_only"); run_all's goals key on it."""
    for key, slug in (("RGB+MV", "rgb_mv"), ("MV only", "mv_only"), ("RGB only", "rgb_only")):
        if name.startswith("compvid") and key in name:
            return slug
    if name == PYAV_RGB_MV:
        return "pyav_rgb_mv"
    if name.startswith("PyAV RGB"):
        return "pyav_rgb"
    if name.startswith("bound"):
        return "bound_rgb_mv" if "RGB" in name else "bound_mv"
    return "_".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def bound_ratios(rows: list) -> list[tuple[str, str, str, float]]:
    """(video, compvid case, baseline case, ratio): compvid against the least work its outputs need, and
    RGB+MV against PyAV's RGB with the raw vector tables."""
    ms = {(recipe, case_id(name)): (name, value) for recipe, name, value, _ in rows}
    out = []
    for recipe in dict.fromkeys(r[0] for r in rows):
        for case, base in (("rgb_mv", "bound_rgb_mv"), ("mv_only", "bound_mv"), ("rgb_mv", "pyav_rgb_mv")):
            if (recipe, case) in ms and (recipe, base) in ms:
                (name, value), (base_name, base_value) = ms[recipe, case], ms[recipe, base]
                out.append((recipe, name, base_name, value / base_value))
    return out


def write_json(path: str, args: argparse.Namespace, rows: list, sizes: list) -> None:
    """Figures as ``bench/run_all.py`` reads them: ms per clip against the floor (lower is better)."""
    import json

    floor = {recipe: (name, ms) for recipe, name, ms, _ in rows if name == FLOOR}
    figures = [dict(id=f"decode.{recipe}.{case_id(name)}", measured=f"{name} ({recipe})", value=ms, unit="ms/clip",
                    baseline=floor[recipe][0], baseline_value=floor[recipe][1], ratio=ratio, higher_is_better=False)
               for recipe, name, ms, ratio in rows if name != FLOOR]
    ms_of = {(recipe, name): ms for recipe, name, ms, _ in rows}
    figures += [dict(id=f"decode.{recipe}.{case_id(case)}_over_{'pyav' if case_id(base) == 'pyav_rgb_mv' else 'bound'}",
                     measured=f"{case} ({recipe})", value=ms_of[recipe, case], unit="ms/clip", baseline=base,
                     baseline_value=ms_of[recipe, base], ratio=ratio, higher_is_better=False)
                for recipe, case, base, ratio in bound_ratios(rows)]
    figures += [dict(id=f"decode.size.{recipe}.{w}x{h}", measured=f"compvid MV only per pixel, {recipe} {w}x{h}",
                     value=ms / (w * h) * 1e6, unit="ns/px/clip",
                     baseline=f"the same at {w2}x{h2}", baseline_value=ms2 / (w2 * h2) * 1e6,
                     ratio=(ms / (w * h)) / (ms2 / (w2 * h2)), higher_is_better=False)
                 for recipe, (w, h), (w2, h2), ms, ms2, _, _ in sizes]
    figures += [dict(id=f"decode.size_over_floor.{recipe}.{w}x{h}",
                     measured=f"compvid MV only over its floor, {recipe} {w}x{h}", value=ms / floor_ms, unit="x floor",
                     baseline=f"the same at {w2}x{h2}", baseline_value=ms2 / floor2_ms,
                     ratio=(ms / floor_ms) / (ms2 / floor2_ms), higher_is_better=False)
                 for recipe, (w, h), (w2, h2), ms, ms2, floor_ms, floor2_ms in sizes]
    out = dict(benchmark="decode", config=vars(args), num_frames=NUM_FRAMES,
               rows=[dict(video=recipe, case=name, ms_per_clip=ms, x_floor=ratio) for recipe, name, ms, ratio in rows],
               sizes=[dict(video=recipe, size=list(a), neighbour=list(b), mv_only_ms=ms, neighbour_mv_only_ms=ms2,
                           floor_ms=f, neighbour_floor_ms=f2) for recipe, a, b, ms, ms2, f, f2 in sizes],
               figures=figures)
    Path(path).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
