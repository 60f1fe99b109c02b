"""A small labelled action dataset whose classes are defined by motion alone (``compvid synth``).

Every video shows one or two textured, coloured shapes over a textured
background seen by a drifting camera. The class says only how the shapes move
*relative to the background*: translate right/left/up/down, rotate
clockwise/counter-clockwise (as seen on screen, y down), grow (zoom in) or
shrink (zoom out). Everything else — background and object textures, colours,
shapes, number of objects, sizes, starting positions and orientations, speeds
within the class's range, and the camera drift — is drawn from the same
distributions for every class, so appearance says nothing about the class and
a single frame cannot tell it (the per-frame distributions of position, size
and angle are the same for every class). Codecs are assigned round-robin by
clip index, the same way in every class.

Output (UCF101 layout, parsed by :func:`compvid.layouts.parse_layout`)::

    OUT/classInd.txt                       "1 MoveRight" ...
    OUT/trainlist01.txt                    "MoveRight/v_MoveRight_g05_c01.mp4 1" ...
    OUT/testlist01.txt                     "MoveRight/v_MoveRight_g01_c01.mp4" ...
    OUT/<Class>/v_<Class>_gXX_cYY.<ext>

Groups ``gXX`` (``clips_per_group`` clips each) go wholly into one split: the
first ``test_groups`` groups of every class are the test set, as in UCF101's
split 1. Each clip's scene is drawn independently (groups are the unit of the
split, not shared scenes).

Scene bias (``scene_bias`` > 0, off by default): in real data the scene correlates with the
action (pools with swimming) while the motion defines it. With probability ``scene_bias`` a
video's background takes its class's colour (:func:`scene_colour`: hues spread evenly over the
classes) instead of a random one, so appearance becomes a partial cue to the class. The other
draws are unchanged: ``scene_bias=0`` gives exactly the motion-only videos.

Determinism: all randomness comes from ``numpy.random.default_rng`` seeded by
``(seed, class, group, clip)``, so the rendered frames depend only on the
options; encoders run single-threaded, so the same options with the same
FFmpeg/encoder build give byte-identical files (decoded frames identical too).

Units: positions and sizes in pixels, speeds in pixels per frame, angles in
degrees (positive = clockwise on screen), zoom as the natural log of the
scale change per frame.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
import multiprocessing
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from compvid.errors import InvalidArgumentError
from compvid.synthetic import RECIPES, EncoderRecipe, encode_frames, texture

ProgressFn = Callable[[str, int, int], None]
"""``on_progress(stage, done, total)``; stage is 'write' (one call per video)."""


@dataclass(frozen=True)
class MotionClass:
    """How the objects of a class move relative to the background.

    ``direction``: unit (x, y) of translation (y down) or (0, 0); ``spin``: +1
    clockwise on screen, -1 counter-clockwise, 0 none; ``zoom``: +1 grow,
    -1 shrink, 0 none.
    """

    direction: tuple[int, int] = (0, 0)
    spin: int = 0
    zoom: int = 0
    description: str = ""


MOTION_CLASSES: dict[str, MotionClass] = {
    "MoveRight": MotionClass(direction=(1, 0), description="objects translate to the right"),
    "MoveLeft": MotionClass(direction=(-1, 0), description="objects translate to the left"),
    "MoveUp": MotionClass(direction=(0, -1), description="objects translate upwards"),
    "MoveDown": MotionClass(direction=(0, 1), description="objects translate downwards"),
    "RotateClockwise": MotionClass(spin=1, description="objects spin clockwise in place"),
    "RotateCounterclockwise": MotionClass(spin=-1, description="objects spin counter-clockwise in place"),
    "ZoomIn": MotionClass(zoom=1, description="objects grow in place"),
    "ZoomOut": MotionClass(zoom=-1, description="objects shrink in place"),
}
DEFAULT_CLASSES: tuple[str, ...] = tuple(MOTION_CLASSES)

# Codecs that encode any even frame size deterministically when single-threaded.
SYNTH_CODECS: tuple[str, ...] = ("h264", "h264-nopyramid", "mpeg4", "mpeg2", "hevc", "vp9")
DEFAULT_CODECS: tuple[str, ...] = ("h264", "mpeg4", "hevc")

SHAPES: tuple[str, ...] = ("disk", "square", "triangle", "diamond", "ellipse", "cross")
Shape = Literal["disk", "square", "triangle", "diamond", "ellipse", "cross"]

MIN_WIDTH, MIN_HEIGHT, MIN_FRAMES = 32, 32, 4

# Ranges of the random draws, as fractions of the frame (the same for every class).
_BASE_SIZE = (0.26, 0.36)  # object diameter / short side, at the middle of its size range
_ZOOM_FACTOR = (2.0, 3.0)  # total scale change of a zooming object over the video
_TRAVEL = (0.55, 0.85)  # translation over the video / free room along the axis
_TURN_DEGREES = (120.0, 240.0)  # total rotation of a spinning object over the video
_DRIFT = 0.1  # camera drift over the video, at most this fraction of the frame per axis
_OBJECT_TEXTURE = 32  # texture side of an object, px (sampled bilinearly)


@dataclass(frozen=True)
class ObjectSpec:
    """One moving object: centre ``(x, y)`` at frame t = centre + velocity * t,
    angle = angle + spin * t (degrees, clockwise), diameter = size * exp(zoom * t)."""

    shape: Shape
    texture_seed: int
    colour: tuple[int, int, int]
    size: float
    centre: tuple[float, float]
    velocity: tuple[float, float]
    angle: float
    spin: float
    zoom: float


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render and encode one video (see :func:`render_frames`).

    ``path`` is relative to the output folder (POSIX); ``drift`` is the camera's
    image-plane drift, px/frame (background content at p in frame t-1 is at
    p + drift in frame t); object velocities include it.
    """

    path: str
    class_name: str
    label: int
    split: Literal["train", "test"]
    group: int
    clip: int
    codec: str
    width: int
    height: int
    num_frames: int
    fps: int
    background_seed: int
    background_colour: tuple[int, int, int]
    drift: tuple[float, float]
    objects: tuple[ObjectSpec, ...]

    def relative_velocity(self) -> tuple[float, float]:
        """Mean object velocity relative to the background, px/frame."""
        vx = np.mean([o.velocity[0] for o in self.objects]) - self.drift[0]
        vy = np.mean([o.velocity[1] for o in self.objects]) - self.drift[1]
        return float(vx), float(vy)


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_synth` wrote: the folder, classes, one spec per video, timing."""

    out: Path
    classes: tuple[str, ...]
    videos: tuple[VideoSpec, ...]
    annotation_files: tuple[str, ...]
    bytes: int
    seconds: float

    @property
    def num_train(self) -> int:
        return sum(v.split == "train" for v in self.videos)

    @property
    def num_test(self) -> int:
        return sum(v.split == "test" for v in self.videos)


# --------------------------------------------------------------------------- planning


def _check_options(
    *, classes, videos_per_class, clips_per_group, test_groups, num_frames, width, height, fps, codecs,
    scene_bias=0.0,
) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    if isinstance(scene_bias, bool) or not isinstance(scene_bias, (int, float)) or not 0 <= scene_bias <= 1:
        raise InvalidArgumentError(f"scene_bias={scene_bias!r}: must be a probability in [0, 1] (0: appearance "
                                   "independent of the class)")
    classes = tuple(classes)
    if not classes:
        raise InvalidArgumentError(f"classes: none given; choose at least one of {list(MOTION_CLASSES)}")
    unknown = [c for c in classes if c not in MOTION_CLASSES]
    if unknown:
        raise InvalidArgumentError(f"classes: unknown {unknown}; allowed values are {list(MOTION_CLASSES)}")
    if len(set(classes)) != len(classes):
        raise InvalidArgumentError(f"classes: {list(classes)} names a class twice")
    codecs = tuple(codecs)
    if not codecs:
        raise InvalidArgumentError(f"codecs: none given; choose from {list(SYNTH_CODECS)}")
    bad = [c for c in codecs if c not in SYNTH_CODECS]
    if bad:
        raise InvalidArgumentError(f"codecs: unknown {bad}; allowed values are {list(SYNTH_CODECS)}")
    for name, value, least in (("videos_per_class", videos_per_class, 1), ("clips_per_group", clips_per_group, 1),
                               ("num_frames", num_frames, MIN_FRAMES), ("fps", fps, 1),
                               ("test_groups", test_groups, 0)):  # fmt: skip
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise InvalidArgumentError(f"{name}={value!r}: must be an integer >= {least}")
    for name, value, least in (("width", width, MIN_WIDTH), ("height", height, MIN_HEIGHT)):
        if not isinstance(value, (int, np.integer)) or value < least or value % 2:
            raise InvalidArgumentError(
                f"{name}={value!r}: must be an even number of pixels >= {least} (frame {width}x{height} is too "
                f"small or odd; the codecs store 4:2:0 colour and the objects need room to move)"
            )
    groups = math.ceil(videos_per_class / clips_per_group)
    if test_groups >= groups:
        raise InvalidArgumentError(
            f"test_groups={test_groups}: only {groups} groups per class ({videos_per_class} videos in groups of "
            f"{clips_per_group}); at least one group must stay for training"
        )
    return classes, codecs, groups


def plan_synth(
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    videos_per_class: int = 24,
    clips_per_group: int = 4,
    test_groups: int = 2,
    num_frames: int = 32,
    width: int = 96,
    height: int = 72,
    fps: int = 25,
    codecs: Sequence[str] = DEFAULT_CODECS,
    seed: int = 0,
    scene_bias: float = 0.0,
) -> list[VideoSpec]:
    """Draw every video's parameters (nothing is rendered or written).

    Videos come in class order, then group, then clip. Arguments as in
    :func:`write_synth`.
    """
    classes, codecs, groups = _check_options(
        classes=classes, videos_per_class=videos_per_class, clips_per_group=clips_per_group,
        test_groups=test_groups, num_frames=num_frames, width=width, height=height, fps=fps, codecs=codecs,
        scene_bias=scene_bias,
    )  # fmt: skip
    digits = max(2, len(str(groups)))
    clip_digits = max(2, len(str(clips_per_group)))
    specs = []
    for label, name in enumerate(classes):
        for i in range(videos_per_class):
            group, clip = i // clips_per_group + 1, i % clips_per_group + 1
            codec = codecs[i % len(codecs)]
            stem = f"v_{name}_g{group:0{digits}d}_c{clip:0{clip_digits}d}"
            # The class name (not its index) seeds the draws, so a video does not
            # change when the class list is reordered or shortened.
            rng = np.random.default_rng([seed & (2**63 - 1), _name_key(name), group, clip])
            spec = _draw_video(
                rng, MOTION_CLASSES[name], path=f"{name}/{stem}{RECIPES[codec].suffix}", class_name=name,
                label=label, split="test" if group <= test_groups else "train", group=group, clip=clip,
                codec=codec, width=width, height=height, num_frames=num_frames, fps=fps,
            )  # fmt: skip
            # Scene bias draws from a stream of its own, so the other draws (and scene_bias=0) are unchanged.
            scene_rng = np.random.default_rng([seed & (2**63 - 1), _name_key(name), group, clip, _SCENE_STREAM])
            if scene_bias > 0 and scene_rng.random() < scene_bias:
                spec = dataclasses.replace(spec, background_colour=scene_colour(label, len(classes)))
            specs.append(spec)
    return specs


_SCENE_STREAM = 1  # the fifth seed word of the scene-bias draws


def scene_colour(label: int, num_classes: int) -> tuple[int, int, int]:
    """The background colour (RGB 0-255) of class ``label``'s biased scenes: saturated hues spread
    evenly around the colour wheel, one per class."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(label / num_classes, 0.8, 0.9)
    return (round(255 * r), round(255 * g), round(255 * b))


def _name_key(name: str) -> int:
    return int.from_bytes(name.encode("utf-8")[:16].ljust(16, b"\0"), "little") % (2**63)


def _fit(rng: np.random.Generator, lo: float, hi: float, displacement: float) -> float:
    """A start coordinate so that start .. start + displacement stays in [lo, hi]."""
    first, last = lo - min(0.0, displacement), hi - max(0.0, displacement)
    if first > last:  # cannot fit: centre the path (the object leaves the frame a little)
        return (lo + hi - displacement) / 2
    return float(rng.uniform(first, last))


def _draw_video(rng: np.random.Generator, motion: MotionClass, **fields) -> VideoSpec:
    w, h, t_last = fields["width"], fields["height"], fields["num_frames"] - 1
    short = min(w, h)
    # Appearance and camera: the same draws for every class.
    background_seed = int(rng.integers(2**31))
    background_colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    drift = (float(rng.uniform(-_DRIFT, _DRIFT) * w / t_last), float(rng.uniform(-_DRIFT, _DRIFT) * h / t_last))
    objects = []
    for _ in range(int(rng.integers(1, 3))):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        texture_seed = int(rng.integers(2**31))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        base = float(rng.uniform(*_BASE_SIZE)) * short
        log_factor = math.log(float(rng.uniform(*_ZOOM_FACTOR)))
        u = float(rng.uniform(-1.0, 1.0))  # where in its size range a non-zooming object sits
        angle = float(rng.uniform(0.0, 360.0))
        travel = float(rng.uniform(*_TRAVEL))
        turn = float(rng.uniform(*_TURN_DEGREES))
        # Class-specific motion. Sizes: a zooming object sweeps base*f^(-1/2) .. base*f^(1/2);
        # the others sit at a uniform point of that range, so one frame's size says nothing.
        if motion.zoom:
            zoom = motion.zoom * log_factor / t_last
            size = base * math.exp(-motion.zoom * log_factor / 2)
            biggest = base * math.exp(log_factor / 2)
        else:
            zoom = 0.0
            size = biggest = base * math.exp(u * log_factor / 2)
        spin = motion.spin * turn / t_last
        margin = 0.15 * biggest  # most of the object stays inside
        velocity, centre = [], []
        for axis, dim in ((0, w), (1, h)):
            room = dim - 2 * margin
            v = motion.direction[axis] * travel * room / t_last + drift[axis]
            velocity.append(v)
            centre.append(_fit(rng, margin, dim - margin, v * t_last))
        objects.append(ObjectSpec(shape, texture_seed, colour, size, (centre[0], centre[1]),
                                  (velocity[0], velocity[1]), angle, spin, zoom))  # fmt: skip
    return VideoSpec(background_seed=background_seed, background_colour=background_colour, drift=drift,
                     objects=tuple(objects), **fields)  # fmt: skip


# --------------------------------------------------------------------------- rendering


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample float32 (H, W, C) at float coordinates (clamped to the image) → (..., C)."""
    h, w = img.shape[:2]
    x = np.clip(x, 0.0, w - 1.0)
    y = np.clip(y, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(np.int64), w - 2)
    y0 = np.minimum(np.floor(y).astype(np.int64), h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx
    bottom = img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _signed_distance(shape: str, qx: np.ndarray, qy: np.ndarray) -> np.ndarray:
    """Approximate signed distance to the shape's edge in units of its radius (< 0 inside)."""
    ax, ay = np.abs(qx), np.abs(qy)
    if shape == "disk":
        return np.hypot(qx, qy) - 1.0
    if shape == "square":
        return np.maximum(ax, ay) - 0.8
    if shape == "diamond":
        return (ax + ay - 1.0) / math.sqrt(2.0)
    if shape == "ellipse":
        return (np.hypot(qx, qy / 0.6) - 1.0) * 0.6
    if shape == "cross":
        return np.minimum(np.maximum(ax - 1.0, ay - 0.38), np.maximum(ax - 0.38, ay - 1.0))
    if shape == "triangle":  # equilateral, circumradius 1
        return np.maximum(np.maximum(qy, -0.866 * qx - 0.5 * qy), 0.866 * qx - 0.5 * qy) - 0.5
    raise InvalidArgumentError(f"shape {shape!r}: allowed values are {list(SHAPES)}")


def _tinted_texture(height: int, width: int, seed: int, colour: tuple[int, int, int], weight: float) -> np.ndarray:
    tex = texture(height, width, seed=seed).astype(np.float32)
    return (1.0 - weight) * tex + weight * np.asarray(colour, np.float32)


def render_frames(spec: VideoSpec, indices: Sequence[int] | None = None) -> np.ndarray:
    """The frames of ``spec`` (all, or those at ``indices``): uint8 (T, H, W, 3) RGB."""
    w, h, t_count = spec.width, spec.height, spec.num_frames
    indices = list(range(t_count)) if indices is None else [int(t) for t in indices]
    if any(not 0 <= t < t_count for t in indices):
        raise InvalidArgumentError(f"indices {indices}: frames run from 0 to {t_count - 1}")
    span_x = abs(spec.drift[0]) * (t_count - 1)
    span_y = abs(spec.drift[1]) * (t_count - 1)
    big_w, big_h = w + int(math.ceil(span_x)) + 4, h + int(math.ceil(span_y)) + 4
    background = _tinted_texture(big_h, big_w, spec.background_seed, spec.background_colour, 0.35)
    # Background content at p in frame t-1 is at p + drift in frame t.
    off_x = 1.0 + max(spec.drift[0], 0.0) * (t_count - 1)
    off_y = 1.0 + max(spec.drift[1], 0.0) * (t_count - 1)
    textures = [_tinted_texture(_OBJECT_TEXTURE, _OBJECT_TEXTURE, o.texture_seed, o.colour, 0.5)
                for o in spec.objects]  # fmt: skip
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames = np.empty((len(indices), h, w, 3), np.uint8)
    for n, t in enumerate(indices):
        img = _bilinear(background, xs - spec.drift[0] * t + off_x, ys - spec.drift[1] * t + off_y)
        for o, tex in zip(spec.objects, textures):
            cx, cy = o.centre[0] + o.velocity[0] * t, o.centre[1] + o.velocity[1] * t
            radius = 0.5 * o.size * math.exp(o.zoom * t)
            theta = math.radians(o.angle + o.spin * t)
            c, s = math.cos(theta), math.sin(theta)
            # Only the object's bounding box (every shape lies within 1.2 radii of its centre).
            reach = 1.2 * radius + 2.0
            x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 1, w)
            y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 1, h)
            if x0 >= x1 or y0 >= y1:
                continue
            dx, dy = xs[y0:y1, x0:x1] - cx, ys[y0:y1, x0:x1] - cy
            # Object coordinates: rotate the image offset back by theta (clockwise on screen, y down).
            qx = (c * dx + s * dy) / radius
            qy = (-s * dx + c * dy) / radius
            alpha = np.clip(0.5 - _signed_distance(o.shape, qx, qy) * radius, 0.0, 1.0)[..., None]
            scale = (_OBJECT_TEXTURE - 1) / 2.0
            colour = _bilinear(tex, (qx + 1.0) * scale, (qy + 1.0) * scale)
            box = img[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = box * (1.0 - alpha) + colour * alpha
        frames[n] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return frames


# --------------------------------------------------------------------------- encoding and writing


def synth_recipe(codec: str) -> EncoderRecipe:
    """``RECIPES[codec]`` with single-threaded encoding, so the output bytes are reproducible."""
    if codec not in SYNTH_CODECS:
        raise InvalidArgumentError(f"codec {codec!r}: allowed values are {list(SYNTH_CODECS)}")
    base = RECIPES[codec]
    options = dict(base.options, threads="1")
    if base.codec == "libx264":
        # Measured here: x264 with threads=1 still wrote different bytes for the same frames
        # on about half of the runs at 96x72; cpu-independent=1 made 25 of 25 runs identical.
        params = options.get("x264-params", "")
        options["x264-params"] = ":".join(p for p in (params, "cpu-independent=1") if p)
    if base.codec == "libx265":
        params = options.get("x265-params", "")
        options["x265-params"] = ":".join(p for p in (params, "pools=none", "frame-threads=1") if p)
    return EncoderRecipe(base.codec, base.suffix, options, base.container_format, base.pix_fmt)


def write_video(spec: VideoSpec, out: str | os.PathLike) -> int:
    """Render and encode ``spec`` under ``out``; returns the file size in bytes."""
    path = Path(out) / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    encode_frames(render_frames(spec), path, recipe=synth_recipe(spec.codec), fps=spec.fps)
    return path.stat().st_size


_SYNTH_FILE = re.compile(r"v_(?P<cls>[A-Za-z0-9]+)_g\d+_c\d+\.[a-z0-9]+(\.part)?")
_ANNOTATIONS = ("classInd.txt", "trainlist01.txt", "testlist01.txt")


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite``; then remove only earlier synth files."""
    if out.exists() and not out.is_dir():
        raise InvalidArgumentError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise InvalidArgumentError(f"{out}: folder is not empty; pass overwrite=True (--overwrite) to replace "
                                   "an earlier synthetic set there, or choose another folder")
    foreign = []
    for child in sorted(out.iterdir()):
        if child.is_file() and child.name in _ANNOTATIONS:
            continue
        if child.is_dir() and not child.is_symlink():
            if all(p.is_file() and (m := _SYNTH_FILE.fullmatch(p.name)) and m["cls"] == child.name
                   for p in child.iterdir()):  # fmt: skip
                continue
        foreign.append(child.name)
    if foreign:
        raise InvalidArgumentError(f"{out}: holds files that compvid synth did not write ({', '.join(foreign[:5])}); "
                                   "refusing to overwrite; choose an empty folder")
    for child in out.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write_annotations(out: Path, classes: Sequence[str], specs: Sequence[VideoSpec]) -> None:
    files = {
        "classInd.txt": "".join(f"{i} {name}\n" for i, name in enumerate(classes, 1)),
        "trainlist01.txt": "".join(f"{s.path} {s.label + 1}\n" for s in specs if s.split == "train"),
        "testlist01.txt": "".join(f"{s.path}\n" for s in specs if s.split == "test"),
    }
    for name, text in files.items():
        tmp = out / (name + ".part")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, out / name)


def write_synth(
    out: str | os.PathLike,
    *,
    classes: Sequence[str] = DEFAULT_CLASSES,
    videos_per_class: int = 24,
    clips_per_group: int = 4,
    test_groups: int = 2,
    num_frames: int = 32,
    width: int = 96,
    height: int = 72,
    fps: int = 25,
    codecs: Sequence[str] = DEFAULT_CODECS,
    seed: int = 0,
    scene_bias: float = 0.0,
    workers: int = 0,
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
) -> SynthResult:
    """Write a motion-labelled action dataset in the UCF101 layout to ``out``.

    ``classes``: names from :data:`MOTION_CLASSES` (label = position). Each
    class gets ``videos_per_class`` videos of ``num_frames`` frames of
    ``width`` x ``height`` px at ``fps``, in groups of ``clips_per_group``; the
    first ``test_groups`` groups of each class form ``testlist01.txt``, the
    rest ``trainlist01.txt``. ``codecs`` (from :data:`SYNTH_CODECS`) are
    assigned round-robin by clip index within each class. ``workers`` > 1
    renders and encodes in that many spawned processes (0 or 1: this process).
    ``scene_bias``: probability that a video's background has its class's
    colour (appearance correlated with the class, as scenes are in real data;
    0: motion-only). ``out`` must be empty or missing, or hold an earlier
    synthetic set and ``overwrite`` be set. ``on_progress("write", done, total)`` after each video.
    """
    started = time.perf_counter()
    specs = plan_synth(
        classes=classes, videos_per_class=videos_per_class, clips_per_group=clips_per_group,
        test_groups=test_groups, num_frames=num_frames, width=width, height=height, fps=fps,
        codecs=codecs, seed=seed, scene_bias=scene_bias,
    )  # fmt: skip
    if not isinstance(workers, int) or workers < 0:
        raise InvalidArgumentError(f"workers={workers!r}: must be an integer >= 0")
    out = Path(out)
    _prepare_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    total, done, sizes = len(specs), 0, 0
    if on_progress:
        on_progress("write", 0, total)
    if workers > 1:
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            for future in cf.as_completed([pool.submit(write_video, s, out) for s in specs]):
                sizes += future.result()
                done += 1
                if on_progress:
                    on_progress("write", done, total)
    else:
        for s in specs:
            sizes += write_video(s, out)
            done += 1
            if on_progress:
                on_progress("write", done, total)
    classes = tuple(classes)
    _write_annotations(out, classes, specs)
    return SynthResult(out=out, classes=classes, videos=tuple(specs), annotation_files=_ANNOTATIONS,
                       bytes=sizes, seconds=time.perf_counter() - started)  # fmt: skip

