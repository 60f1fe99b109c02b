"""Does a change to compvid.decode serve the very same clips? Save every ``Clip`` of a fixed set, compare later.

Run once on the code before a change (``--save``), once after (``--compare``): every array of every
``Clip`` must be equal (``np.array_equal``, same dtype and shape), and frame types, flags, counts,
``unsure_fraction`` and warnings identical. The videos are encoded once into ``--videos`` and reused,
so both runs read the same bytes. Covers each motion-vector strategy: H.264 with B-frames (reference
matching), one reference frame, interlaced H.264 (field hypothesis), HEVC (estimated motion), MPEG-4
Part 2 with B-frames (GOP rule + direct-mode fill, AVI and MP4), H.264 with open GOPs, MPEG-2 (GOP rule, program stream,
interlaced field readings), plus starts past key frames, frame steps, padding past the end, raw
vectors, RGB on/off, sizes, display rotation, and the real clips the media tests use, when present.

    python bench/decode_identity.py --save /tmp/decode-before.npz
    python bench/decode_identity.py --compare /tmp/decode-before.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from compvid import decode_clip
from compvid.synthetic import EncoderRecipe, encode_frames, interlaced_frames, moving_frames

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"

# name -> (recipe, moving_frames / interlaced_frames keywords, interlaced?, rotation degrees)
VIDEOS: dict[str, tuple[str | EncoderRecipe, dict, bool, int]] = {
    "h264.mp4": ("h264", dict(num_frames=48, width=160, height=120, dx=3, dy=-2), False, 0),
    "h264-obj.mp4": ("h264-nopyramid", dict(num_frames=40, width=192, height=144, dx=2, dy=1, motion="object"),
                     False, 0),
    "h264-shortgop.mp4": ("h264-shortgop", dict(num_frames=48, width=160, height=120, dx=-2, dy=3), False, 0),
    "h264-ref1.mp4": ("h264-ref1", dict(num_frames=48, width=160, height=120, dx=4, dy=1), False, 0),
    "h264-mbaff.mp4": ("h264-mbaff", dict(num_frames=24, width=160, height=128, dx=2, dy=-4), True, 0),
    "h264-rot90.mp4": ("h264", dict(num_frames=24, width=160, height=96, dx=2, dy=1), False, 90),
    # open GOPs: key frames that are no IDR pictures (recovery points), B-frames and 4 references
    "h264-opengop.mkv": (EncoderRecipe("libx264", ".mkv", {"x264-params": "keyint=12:min-keyint=12:scenecut=0:"
                                                                          "open-gop=1:bframes=3:ref=4"}),
                         dict(num_frames=48, width=160, height=120, dx=3, dy=1), False, 0),
    "hevc.mp4": ("hevc", dict(num_frames=32, width=160, height=120, dx=3, dy=1), False, 0),
    "mpeg4.avi": ("mpeg4", dict(num_frames=48, width=160, height=120, dx=3, dy=-2), False, 0),
    "mpeg4-obj.mp4": ("mpeg4-mp4", dict(num_frames=40, width=192, height=144, dx=-3, dy=2, motion="object"),
                      False, 0),
    "mpeg2.mpg": ("mpeg2", dict(num_frames=48, width=160, height=120, dx=2, dy=2), False, 0),
    "mpeg2-interlaced.mpg": (EncoderRecipe("mpeg2video", ".mpg", {"bf": "2", "g": "12", "flags": "+ilme+ildct",
                                                                  "top": "1", "sc_threshold": "1000000000"},
                                           container_format="mpeg"),
                             dict(num_frames=24, width=192, height=128, dx=-2, dy=6), True, 0),
    "mpeg4-interlaced.avi": (EncoderRecipe("mpeg4", ".avi", {"bf": "2", "g": "12", "flags": "+ilme+ildct"}),
                             dict(num_frames=16, width=128, height=96, dx=4, dy=-4), True, 0),
}

# Requests per video: (start, num_frames, frame_step, size, with_rgb, with_mv, mv_mode).
REQUESTS = [
    (0, 16, 1, None, True, True, "normalized"),
    (0, 16, 1, None, False, True, "raw"),
    (13, 8, 2, 64, False, True, "normalized"),
    (27, 8, 1, (48, 80), True, True, "normalized"),
    (21, 12, 3, None, False, True, "normalized"),  # runs past the end of the shorter videos: padded
    (5, 6, 1, 72, True, False, "normalized"),
    (30, 6, 1, None, True, True, "raw"),
]
MEDIA_REQUESTS = [
    (0, 12, 1, 96, False, True, "normalized"),
    (40, 8, 2, None, False, True, "normalized"),
    (17, 6, 1, 112, True, True, "raw"),
]


def make_videos(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (recipe, kw, interlaced, rotation) in VIDEOS.items():
        path = folder / name
        if not path.exists():
            frames = interlaced_frames(**kw, seed=1) if interlaced else moving_frames(**kw)[0]
            encode_frames(frames, path, recipe=recipe, rotation_degrees=rotation)
        paths[name] = path
    if SHARED_MEDIA.is_dir():
        for path in sorted(SHARED_MEDIA.glob("*.*")):
            if path.suffix in (".mp4", ".avi", ".mpg"):
                paths[f"media/{path.name}"] = path
    return paths


def clip_record(clip) -> dict[str, object]:
    """Every field of a Clip: arrays as they are, the rest as JSON-able values."""
    record = {}
    for f in dataclasses.fields(clip):
        value = getattr(clip, f.name)
        record[f.name] = value if isinstance(value, np.ndarray) or value is None else (
            list(value) if isinstance(value, tuple) else value)
    return record


def decode_all(folder: Path) -> dict[str, dict[str, object]]:
    out = {}
    for name, path in make_videos(folder).items():
        for request in (MEDIA_REQUESTS if name.startswith("media/") else REQUESTS):
            start, num_frames, step, size, with_rgb, with_mv, mv_mode = request
            key = f"{name}|{start},{num_frames},{step},{size},{int(with_rgb)},{int(with_mv)},{mv_mode}"
            try:
                clip = decode_clip(path, start=start, num_frames=num_frames, frame_step=step, size=size,
                                   with_rgb=with_rgb, with_mv=with_mv, mv_mode=mv_mode)
            except Exception as e:  # noqa: BLE001 - a failure is a result too: compared by type and text
                out[key] = {"error": f"{type(e).__name__}: {e}"}
                continue
            out[key] = clip_record(clip)
    return out


def save(results: dict[str, dict[str, object]], path: Path) -> None:
    arrays, meta = {}, {}
    for key, record in results.items():
        meta[key] = {}
        for name, value in record.items():
            if isinstance(value, np.ndarray):
                arrays[f"{key}|{name}"] = value
                meta[key][name] = "<array>"
            else:
                meta[key][name] = value
    np.savez_compressed(path, __meta__=np.array(json.dumps(meta)), **arrays)


def compare(results: dict[str, dict[str, object]], path: Path) -> list[str]:
    saved = np.load(path, allow_pickle=False)
    meta = json.loads(str(saved["__meta__"]))
    problems = []
    if sorted(meta) != sorted(results):
        problems.append(f"different clip sets: {sorted(set(meta) ^ set(results))}")
    for key in sorted(set(meta) & set(results)):
        now = results[key]
        for name, was in meta[key].items():
            value = now.get(name)
            if was == "<array>":
                before = saved[f"{key}|{name}"]
                same = (isinstance(value, np.ndarray) and value.dtype == before.dtype
                        and value.shape == before.shape and np.array_equal(value, before))
            else:
                same = json.loads(json.dumps(value)) == was
            if not same:
                problems.append(f"{key}: {name} differs")
        if set(now) != set(meta[key]):
            problems.append(f"{key}: fields differ: {sorted(set(now) ^ set(meta[key]))}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", type=Path, help="write every clip to this .npz")
    action.add_argument("--compare", type=Path, help="compare every clip with this .npz")
    parser.add_argument("--videos", type=Path, default=Path("/tmp/compvid-decode-identity"),
                        help="folder of the encoded videos (made once, reused)")
    args = parser.parse_args(argv)
    results = decode_all(args.videos)
    errors = sum("error" in r for r in results.values())
    if args.save:
        save(results, args.save)
        print(f"saved {len(results)} clips ({errors} requests failed, kept as results) to {args.save}")
        return 0
    problems = compare(results, args.compare)
    for line in problems:
        print(line)
    print(f"{len(results)} clips compared ({errors} failed requests compared by their errors): "
          f"{'IDENTICAL' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
