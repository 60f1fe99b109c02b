"""Seconds per video of evaluation feature extraction (RGB + MV, every sliding window × crop) on CPU.

Runs mvcgc's extraction pass (:func:`mvcgc.features.window_outputs`, the code behind ``mvcgc
retrieve``/``linear``) with each ``--arch`` encoder (random weights: time does not depend on them),
against the named baseline measured in the same process: the same pass with a no-op model (decoding
and cropping only). Passes alternate (decode-only, arch, decode-only, ...) so load drift hits all.

    python bench/bench_eval.py --arch tiny --arch s3d                 # generated 320x240 videos
    python bench/bench_eval.py --data ../shared/media --arch s3d --crops center
    python bench/bench_eval.py --arch tiny --videos 2 --json eval.json   # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from compvid.request import ClipRequest
from compvid.synthetic import write_moving_video
from mvcgc.efficiency import find_videos
from mvcgc.features import window_outputs
from mvcgc.models import create_encoder


class DecodeOnly(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], 1)  # (N, 1): touches nothing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", default=None, help="encoder(s) to time (default: tiny, s3d)")
    ap.add_argument("--data", default=None, help="folder of videos (default: 4 generated 320x240, 64 frames)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--crops", choices=["center", "three", "ten"], default="ten")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--videos", type=int, default=4, help="generated videos (without --data)")
    ap.add_argument("--json", metavar="PATH", help="also write the printed figures (and raw medians) here")
    args = ap.parse_args()
    archs = args.arch or ["tiny", "s3d"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            paths = find_videos(args.data)
        else:
            paths = [write_moving_video(Path(tmp) / f"v{i}.mp4", num_frames=64, seed=i) for i in range(args.videos)]
        items = [(p, 0) for p in paths]
        opts = dict(request=ClipRequest(num_frames=args.frames, crop_px=args.size), crops=args.crops, device="cpu")
        models = {"decode only": {"rgb": DecodeOnly(), "mv": DecodeOnly()}}
        models.update({a: {"rgb": create_encoder(a, 3), "mv": create_encoder(a, 2)} for a in archs})
        times: dict[str, list[float]] = {name: [] for name in models}
        windows = 0
        for _ in range(args.repeats):
            for name, mods in models.items():
                t0 = time.perf_counter()
                out = window_outputs(items, mods, **opts)
                times[name].append((time.perf_counter() - t0) / len(paths))
                windows = len(out["rgb"].window_video)
        base = statistics.median(times["decode only"])
        print(f"{len(paths)} videos, {windows} windows x {args.crops} crops, {args.frames} frames at {args.size}px, "
              f"RGB + MV, CPU, torch threads {torch.get_num_threads()}, median of {args.repeats}")
        print(f"{'pass':<14}{'s/video':>10}{'x decode only':>15}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:<14}{med:10.2f}{med / base:15.2f}")
    if args.json:
        meds = {name: statistics.median(ts) for name, ts in times.items()}
        figures = [dict(id=f"eval.{name}.extract", measured=f"{name} feature extraction (RGB + MV, {args.crops} crops)",
                        value=meds[name], unit="s/video", baseline="decode only (no-op model, same pass)",
                        baseline_value=base, ratio=meds[name] / base, higher_is_better=False) for name in archs]
        out = dict(benchmark="eval", config=vars(args), videos=len(paths), windows=windows,
                   threads=torch.get_num_threads(), median_s_per_video=meds, figures=figures)
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
