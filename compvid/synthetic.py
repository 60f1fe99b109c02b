"""Videos with known motion, encoded by real codecs: ground truth for tests and demos.

A textured frame translated by a whole number of pixels per frame (a camera
pan), or a textured square moving over a static textured background, is
encoded with one of FFmpeg's encoders through PyAV. The true forward
displacement of the moving content is exactly ``(dx, dy)`` pixels per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from compvid.errors import InvalidArgumentError


@dataclass(frozen=True)
class EncoderRecipe:
    """How to encode: FFmpeg encoder, container format, file suffix, encoder options."""

    codec: str
    suffix: str
    options: dict[str, str] = field(default_factory=dict)
    container_format: str | None = None
    pix_fmt: str = "yuv420p"


# Recipes named for what they exercise. x264 defaults are 3 B-frames with
# B-pyramid (a B-frame is a reference); "h264-nopyramid" has 2 plain B-frames.
RECIPES: dict[str, EncoderRecipe] = {
    "h264": EncoderRecipe("libx264", ".mp4"),
    "h264-nopyramid": EncoderRecipe("libx264", ".mp4", {"x264-params": "bframes=2:b-pyramid=none"}),
    "h264-shortgop": EncoderRecipe("libx264", ".mp4", {"x264-params": "keyint=12:min-keyint=12:scenecut=0"}),
    "h264-slices": EncoderRecipe("libx264", ".mp4", {"x264-params": "slices=4"}),
    # One reference frame, no B-frames (phone and fast-preset streams); IDR every 20 frames.
    "h264-ref1": EncoderRecipe("libx264", ".mp4", {"x264-params": "ref=1:bframes=0:keyint=20"}),
    "h264-mbaff": EncoderRecipe("libx264", ".mp4", {"x264-params": "interlaced=1:bframes=2"}),
    "h264-high10": EncoderRecipe("libx264", ".mkv", pix_fmt="yuv420p10le"),
    "h264-444": EncoderRecipe("libx264", ".mkv", pix_fmt="yuv444p"),
    "mpeg4": EncoderRecipe("mpeg4", ".avi", {"bf": "2", "g": "12"}),
    "mpeg4-qpel": EncoderRecipe("mpeg4", ".avi", {"bf": "2", "g": "12", "flags": "+qpel"}),
    "mpeg2": EncoderRecipe("mpeg2video", ".mpg", {"bf": "2", "g": "12"}, container_format="mpeg"),
    "mpeg1": EncoderRecipe("mpeg1video", ".mpg", {"bf": "2", "g": "12"}, container_format="mpeg"),
    "h263p": EncoderRecipe("h263p", ".avi", {"g": "12"}),
    # Baseline H.263 codes only 128x96, 176x144, 352x288, 704x576 and 1408x1152.
    "h263": EncoderRecipe("h263", ".avi", {"g": "12"}),
    # The rest of FFmpeg's mpegvideo family, in the containers they are found in:
    # "DivX ;-)" AVIs (MS-MPEG4 v3), Flash video (Sorenson H.263), Windows Media (ASF).
    "msmpeg4v3": EncoderRecipe("msmpeg4", ".avi", {"g": "12"}),
    "msmpeg4v2": EncoderRecipe("msmpeg4v2", ".avi", {"g": "12"}),
    "wmv1": EncoderRecipe("wmv1", ".asf", {"g": "12"}),
    "wmv2": EncoderRecipe("wmv2", ".asf", {"g": "12"}),
    "flv1": EncoderRecipe("flv", ".flv", {"g": "12"}),
    "mpeg4-mp4": EncoderRecipe("mpeg4", ".mp4", {"bf": "2", "g": "12"}),
    "hevc": EncoderRecipe("libx265", ".mp4", {"x265-params": "log-level=error"}),
    "vp9": EncoderRecipe("libvpx-vp9", ".webm", {"deadline": "realtime", "cpu-used": "8"}),
    "av1": EncoderRecipe("libsvtav1", ".mkv", {"preset": "12"}),
}

Motion = Literal["pan", "object"]


def texture(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A detailed random colour texture, uint8 (H, W, 3).

    Octaves of random noise from 2- to 32-pixel cells, lightly box-blurred: fine
    detail makes block matching unambiguous, coarse structure keeps it natural.
    """
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for cell, weight in ((2, 0.35), (4, 0.25), (8, 0.2), (16, 0.12), (32, 0.08)):
        grid = rng.random((height // cell + 2, width // cell + 2, 3), dtype=np.float32)
        img += weight * np.repeat(np.repeat(grid, cell, 0), cell, 1)[:height, :width]
    # 3x3 box blur through shifted sums (keeps edges from aliasing).
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    img = sum(padded[i : i + height, j : j + width] for i in range(3) for j in range(3)) / 9.0
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-6)
    return (img * 255.0).round().astype(np.uint8)


def moving_frames(
    *,
    num_frames: int,
    width: int,
    height: int,
    dx: int,
    dy: int,
    motion: Motion = "pan",
    object_size: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Frames uint8 (T, H, W, 3) and the moving-content mask bool (T, H, W).

    ``pan``: the whole picture moves by (dx, dy) px per frame (content at p in
    frame t-1 is at p + (dx, dy) in frame t). ``object``: a textured square of
    ``object_size`` px (default: a third of the short side) moves by (dx, dy)
    per frame over a static background, starting where it stays inside.
    """
    if num_frames <= 0 or width <= 0 or height <= 0:
        raise InvalidArgumentError("num_frames, width and height must be positive")
    span_x, span_y = abs(dx) * num_frames, abs(dy) * num_frames
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    mask = np.zeros((num_frames, height, width), bool)
    if motion == "pan":
        big = texture(height + span_y + 2, width + span_x + 2, seed=seed)
        ox0 = span_x if dx > 0 else 0
        oy0 = span_y if dy > 0 else 0
        for t in range(num_frames):
            ox, oy = ox0 - dx * t, oy0 - dy * t
            frames[t] = big[oy : oy + height, ox : ox + width]
        mask[:] = True
        return frames, mask
    if motion != "object":
        raise InvalidArgumentError(f"motion must be 'pan' or 'object', got {motion!r}")
    size = object_size or min(width, height) // 3
    if size + span_x >= width or size + span_y >= height:
        raise InvalidArgumentError(
            f"an object of {size} px moving ({dx}, {dy}) px/frame for {num_frames} frames leaves "
            f"the {width}x{height} frame; use fewer frames, slower motion or a bigger frame"
        )
    background = texture(height, width, seed=seed)
    patch = texture(size, size, seed=seed + 1)
    x0 = (width - size - span_x) // 2 + (0 if dx >= 0 else span_x)
    y0 = (height - size - span_y) // 2 + (0 if dy >= 0 else span_y)
    for t in range(num_frames):
        x, y = x0 + dx * t, y0 + dy * t
        frames[t] = background
        frames[t, y : y + size, x : x + size] = patch
        mask[t, y : y + size, x : x + size] = True
    return frames, mask


def encode_frames(
    frames: np.ndarray,
    path: str | os.PathLike,
    *,
    recipe: str | EncoderRecipe = "h264",
    fps: int = 25,
    rotation_degrees: int = 0,
    timestamps: list[int] | None = None,
) -> Path:
    """Encode uint8 (T, H, W, 3) RGB frames to ``path`` with a recipe from RECIPES.

    ``rotation_degrees`` (counter-clockwise) is stored as display rotation
    metadata. ``timestamps``: each frame's presentation time in frame
    durations (1/fps), increasing (gaps, offsets); default 0, 1, 2 ...
    Elementary streams (.m1v, .m2v, .h264, .hevc) keep none. Written to a
    temporary name and renamed when complete.
    """
    spec = RECIPES[recipe] if isinstance(recipe, str) else recipe
    if isinstance(recipe, str) and recipe not in RECIPES:
        raise InvalidArgumentError(f"unknown recipe {recipe!r}; choose one of {sorted(RECIPES)}")
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    _, height, width, _ = frames.shape
    fmt = spec.container_format or _format_for_suffix(path.suffix)
    with av.open(os.fspath(tmp), "w", format=fmt) as container:
        stream = container.add_stream(spec.codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, spec.pix_fmt
        stream.options = dict(spec.options)
        if rotation_degrees:
            stream.set_display_rotation(rotation_degrees)
        for t, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            if timestamps is not None:
                frame.pts, frame.time_base = int(timestamps[t]), Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def _format_for_suffix(suffix: str) -> str | None:
    return {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm", ".mpg": "mpeg", ".flv": "flv",
            ".asf": "asf", ".m1v": "mpeg1video", ".m2v": "mpeg2video", ".h264": "h264", ".hevc": "hevc"}.get(suffix)


def write_moving_video(
    path: str | os.PathLike,
    *,
    recipe: str = "h264",
    dx: int = 3,
    dy: int = -2,
    num_frames: int = 32,
    width: int = 320,
    height: int = 240,
    motion: Motion = "pan",
    fps: int = 25,
    seed: int = 0,
    rotation_degrees: int = 0,
    interlaced: bool = False,
) -> Path:
    """Encode a clip whose content moves by (dx, dy) px per frame; returns the path.

    Recipe (see RECIPES): e.g. "h264" = libx264 defaults in MP4. ``interlaced``:
    true interlaced content (see :func:`interlaced_frames`), for a recipe that
    codes fields, e.g. "h264-mbaff".
    """
    if interlaced:
        frames = interlaced_frames(num_frames=num_frames, width=width, height=height, dx=dx, dy=dy,
                                   motion=motion, seed=seed)
    else:
        frames, _ = moving_frames(num_frames=num_frames, width=width, height=height, dx=dx, dy=dy,
                                  motion=motion, seed=seed)
    return encode_frames(frames, path, recipe=recipe, fps=fps, rotation_degrees=rotation_degrees)


def interlaced_frames(*, num_frames: int, width: int, height: int, dx: int, dy: int, motion: Motion = "pan",
                      seed: int = 0) -> np.ndarray:
    """True interlaced frames uint8 (T, H, W, 3), top field first: the even rows show the content
    at frame time t, the odd rows half a frame later. The content still moves (dx, dy) px per
    frame, (dx/2, dy/2) per field, so both must be even."""
    if dx % 2 or dy % 2:
        raise InvalidArgumentError(f"interlaced content moves (dx/2, dy/2) per field: dx and dy must be even, "
                                   f"got ({dx}, {dy})")
    fields, _ = moving_frames(num_frames=2 * num_frames, width=width, height=height, dx=dx // 2, dy=dy // 2,
                              motion=motion, seed=seed)  # one picture per field time
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    frames[:, 0::2] = fields[0::2, 0::2]  # top field at t
    frames[:, 1::2] = fields[1::2, 1::2]  # bottom field at t + 1/2
    return frames
