"""What ``compvid inspect`` reports: container facts, GOP structure, motion statistics.

Library half of the command: returns plain dicts and writes PNGs; printing
belongs to cli/.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from compvid.decode import decode_clip
from compvid.probe import probe
from compvid.source import VideoSource

# Frames per decode window while gathering statistics (bounded memory).
_WINDOW = 128
# Short side of the fields used for statistics; magnitudes are converted back
# to pixels of the source.
_STATS_SHORT_SIDE = 96


def summarize(
    source: VideoSource,
    *,
    max_frames: int | None = 1000,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Probe ``source`` and decode up to ``max_frames`` frames for GOP and MV statistics.

    Magnitudes are in pixels of the source per frame step. ``on_progress(done,
    total)`` is called before the first and after each decoded window.
    """
    info = probe(source)
    total = info.num_frames if max_frames is None else min(info.num_frames, max_frames)
    types: list[str] = []
    counts: list[int] = []
    has_mv: list[bool] = []
    filled: list[bool] = []
    magnitudes: list[np.ndarray] = []
    unsure_weighted = 0.0
    warnings = list(info.warnings)
    if on_progress is not None:
        on_progress(0, total)
    for start in range(0, total, _WINDOW):
        n = min(_WINDOW, total - start)
        clip = decode_clip(source, start=start, num_frames=n, with_rgb=False, info=info,
                           size=min(_STATS_SHORT_SIDE, min(info.width, info.height)))
        types.extend(clip.frame_types)
        counts.extend(int(c) for c in clip.vector_counts)
        has_mv.extend(bool(h) for h in clip.has_mv)
        filled.extend(bool(f) for f in clip.mv_filled)
        # Field pixels per source pixel along each displayed axis.
        disp_w, disp_h = ((info.width, info.height) if info.rotation_degrees % 180 == 0
                          else (info.height, info.width))
        sx, sy = clip.mv.shape[3] / disp_w, clip.mv.shape[2] / disp_h
        mv = clip.mv[:, clip.has_mv]
        magnitudes.append(np.hypot(mv[0] / sx, mv[1] / sy).ravel())
        unsure_weighted += clip.unsure_fraction * n
        warnings.extend(w for w in clip.warnings if w not in warnings)
        if on_progress is not None:
            on_progress(start + n, total)
    mag = np.concatenate(magnitudes) if magnitudes else np.zeros(0, np.float32)
    keys = list(info.keyframe_indices)
    gaps = np.diff(keys + [info.num_frames]) if keys else np.array([info.num_frames])
    with_vectors = [c for c, h in zip(counts, has_mv) if h]
    return {
        "video": info.to_dict(),
        "frames_inspected": total,
        "gop": {
            "I": types.count("I"),
            "P": types.count("P") + types.count("S"),
            "B": types.count("B"),
            "other": sum(1 for t in types if t not in "IPBS"),
            "pattern": "".join(types[:48]),
            "keyframes": len(keys),
            "keyframe_interval_mean": float(np.mean(gaps)) if len(gaps) else None,
            "keyframe_interval_max": int(np.max(gaps)) if len(gaps) else None,
        },
        "motion": {
            "mv_source": info.mv_source,
            "frames_with_vectors": int(sum(has_mv)),
            "frames_filled_from_neighbours": int(sum(filled)),
            "vectors_per_frame_mean": float(np.mean(with_vectors)) if with_vectors else 0.0,
            "vectors_per_frame_max": int(max(with_vectors)) if with_vectors else 0,
            "magnitude_mean_px": float(mag.mean()) if mag.size else 0.0,
            "magnitude_max_px": float(mag.max()) if mag.size else 0.0,
            "zero_share": float((mag < 0.25).mean()) if mag.size else 1.0,
            "reference_unsure_share": unsure_weighted / total if total else 0.0,
        },
        "warnings": warnings,
    }


def write_inspection_png(
    source: VideoSource,
    path: str | os.PathLike,
    *,
    num_frames: int = 4,
    short_side: int | None = 256,
) -> list[int]:
    """Write a PNG of ``num_frames`` frames with vectors: RGB, MV colour map, arrows.

    Frames are spread over the video, preferring frames that carry vectors, and
    labelled with their display index and type as ``compvid inspect`` prints
    them; the title names the video (and its class folder); magnitudes are in
    pixels of the video as displayed. Returns the display indices shown.
    """
    from compvid.visualize import save_mv_png, video_title  # deferred: imports torchvision

    info = probe(source)
    size = None if short_side is None or short_side >= min(info.width, info.height) else short_side
    picks = np.linspace(1 if info.num_frames > 1 else 0, info.num_frames - 1, num_frames).round().astype(int)
    picks = sorted(set(int(i) for i in picks))
    clips = [decode_clip(source, start=i, num_frames=1, size=size, info=info) for i in picks]
    # Swap key frames (no vectors) for their successor where one exists.
    for n, (i, clip) in enumerate(zip(picks, clips)):
        if not clip.has_mv[0] and i + 1 < info.num_frames:
            clips[n] = decode_clip(source, start=i + 1, num_frames=1, size=size, info=info)
            picks[n] = i + 1
    rgb = np.concatenate([c.rgb for c in clips])
    mv = np.concatenate([c.mv for c in clips], axis=1)
    has_mv = np.concatenate([c.has_mv for c in clips])
    displayed = (info.width, info.height) if info.rotation_degrees % 180 == 0 else (info.height, info.width)
    save_mv_png(path, rgb, mv, has_mv, title=video_title(source), frame_numbers=picks,
                frame_types=[c.frame_types[0] for c in clips], source_size=displayed)
    return picks
