"""Pictures of motion-vector fields: colour maps, arrows, and a PNG grid.

Fields follow compvid's convention (README, "The motion-vector convention"): ``mv[0]`` = dx, ``mv[1]`` = dy,
forward displacement in pixels per frame step, x right +, y down +.
Colours come from torchvision's ``flow_to_image`` (the Middlebury colour
wheel): white is no motion, the hue is the direction, saturation grows with
the magnitude up to ``max_magnitude``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import flow_to_image

from compvid.errors import InvalidArgumentError

#: Magnitude (pixels per frame step) that maps to full saturation by default.
#: Fixed, so colours mean the same in every frame and every picture.
DEFAULT_MAX_MAGNITUDE = 8.0

ARROW_COLOR = (255, 40, 40)
ARROW_OUTLINE = (0, 0, 0)
#: Height in pixels of the text band above each row of the PNG grid (and of the header).
LABEL_HEIGHT = 14
NO_MV_LABEL_COLOR = (200, 0, 0)


def _check_field(mv: np.ndarray, what: str = "mv") -> np.ndarray:
    mv = np.asarray(mv)
    if mv.ndim != 3 or mv.shape[0] != 2:
        raise InvalidArgumentError(f"{what} must have shape (2, H, W), got {mv.shape}")
    return mv.astype(np.float32, copy=False)


def mv_to_color(mv: np.ndarray, max_magnitude: float = DEFAULT_MAX_MAGNITUDE) -> np.ndarray:
    """Colour image uint8 (H, W, 3) of the field ``mv`` float (2, H, W).

    Unlike a bare ``flow_to_image`` call, which scales each field by its own
    largest vector, the scale is ``max_magnitude`` pixels: the same vector gets
    the same colour in every frame. Longer vectors are clipped to it (same hue,
    full saturation). A zero field is white.
    """
    mv = _check_field(mv)
    if not (max_magnitude > 0 and math.isfinite(max_magnitude)):
        raise InvalidArgumentError(f"max_magnitude must be a positive finite number, got {max_magnitude!r}")
    _, h, w = mv.shape
    flow = np.nan_to_num(mv, nan=0.0, posinf=0.0, neginf=0.0)
    mag = np.sqrt(flow[0] ** 2 + flow[1] ** 2)
    over = mag > max_magnitude
    if over.any():
        flow = flow.copy()
        flow[:, over] *= max_magnitude / mag[over]
    # flow_to_image divides by the largest norm present; one extra column holding a
    # vector of exactly max_magnitude pins that divisor, and is cut off afterwards.
    padded = np.zeros((2, h, w + 1), np.float32)
    padded[:, :, :w] = flow
    padded[0, 0, w] = max_magnitude
    img = flow_to_image(torch.from_numpy(padded))
    return np.ascontiguousarray(img[:, :, :w].permute(1, 2, 0).numpy())


def colour_wheel(diameter: int, max_magnitude: float, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """The key to :func:`mv_to_color`: uint8 (diameter, diameter, 3), a disc in image axes.

    The pixel at offset (x, y) from the centre (x right +, y down +, as in the
    fields) shows the colour of the vector (x, y) scaled so the rim is
    ``max_magnitude`` px: the right-hand side is the colour of motion to the
    right, the bottom that of motion down. Outside the disc: ``background``.
    """
    if not (isinstance(diameter, int) and diameter >= 3):
        raise InvalidArgumentError(f"diameter must be an integer >= 3, got {diameter!r}")
    radius = diameter / 2
    offsets = np.arange(diameter, dtype=np.float32) + 0.5 - radius  # pixel centres, in pixels
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    field = np.stack([x, y]) * (max_magnitude / radius)
    img = mv_to_color(field, max_magnitude)
    img[np.hypot(x, y) > radius] = background
    return img


def robust_max_magnitude(
    fields: np.ndarray | Sequence[np.ndarray],
    *,
    percentile: float = 99.0,
    still_below: float = 0.25,
    floor: float = 1.0,
) -> float:
    """A colour/arrow scale (pixels per frame step) that a few huge outliers cannot set.

    The ``percentile`` of the magnitudes of the moving vectors (``>= still_below``
    px) of ``fields``: one array (2, ...) or a sequence of (2, H, W) fields.
    Still pixels are left out so a small moving object still sets the scale.
    At least ``floor`` px, which is also the answer when nothing moves.
    """
    if not 0 < percentile <= 100:
        raise InvalidArgumentError(f"percentile must lie in (0, 100], got {percentile!r}")
    arrays = [fields] if isinstance(fields, np.ndarray) else list(fields)
    magnitudes = []
    for f in arrays:
        f = np.nan_to_num(np.asarray(f, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if f.shape[:1] != (2,):
            raise InvalidArgumentError(f"a field must have shape (2, ...), got {f.shape}")
        mag = np.hypot(f[0], f[1]).ravel()
        magnitudes.append(mag[mag >= still_below])
    moving = np.concatenate(magnitudes) if magnitudes else np.zeros(0, np.float32)
    if moving.size == 0:
        return float(floor)
    return max(float(floor), float(np.percentile(moving, percentile)))


def _block_means(mv: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Block centres (cx, cy) and mean vectors (dx, dy) of step×step cells covering the frame."""
    _, h, w = mv.shape
    ny, nx = -(-h // step), -(-w // step)
    pad = np.zeros((2, ny * step, nx * step), np.float32)
    pad[:, :h, :w] = mv
    count = np.zeros((ny * step, nx * step), np.float32)
    count[:h, :w] = 1
    sums = pad.reshape(2, ny, step, nx, step).sum(axis=(2, 4))
    n = count.reshape(ny, step, nx, step).sum(axis=(1, 3))
    mean = sums / n
    # Cell centres; the last cell may be clipped by the frame edge.
    ys = np.array([(y0 + min(y0 + step, h)) / 2 for y0 in range(0, h, step)])
    xs = np.array([(x0 + min(x0 + step, w)) / 2 for x0 in range(0, w, step)])
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    return cx, cy, mean[0], mean[1]


def draw_arrows(
    rgb: np.ndarray,
    mv: np.ndarray,
    *,
    step: int = 16,
    scale: float = 1.0,
    width: int = 1,
    max_length: float | None = None,
    outline: bool = False,
) -> np.ndarray:
    """Arrows over a copy of ``rgb`` uint8 (H, W, 3): one per ``step``×``step`` cell.

    Each arrow starts at the cell centre and points along the cell's mean
    displacement times ``scale`` (a cell whose arrow would be shorter than half
    a pixel gets none). ``mv`` is (2, H, W) at the resolution of ``rgb``.
    ``width``: line width in pixels; ``max_length``: longer arrows are cut to
    it (same direction); ``outline``: a black edge, so arrows stand out on
    bright and red backgrounds alike.
    """
    rgb = np.asarray(rgb)
    mv = _check_field(mv)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InvalidArgumentError(f"rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if rgb.shape[:2] != mv.shape[1:]:
        raise InvalidArgumentError(f"rgb is {rgb.shape[:2]} but mv is {mv.shape[1:]}; they must match")
    if not isinstance(step, int) or step < 1:
        raise InvalidArgumentError(f"step must be a positive integer, got {step!r}")
    mv = np.nan_to_num(mv, nan=0.0, posinf=0.0, neginf=0.0)
    img = Image.fromarray(np.ascontiguousarray(rgb))
    draw = ImageDraw.Draw(img)
    cx, cy, dx, dy = _block_means(mv, step)
    ex, ey = dx * scale, dy * scale
    length = np.hypot(ex, ey)
    # Keep absurd vectors from sending PIL along a line of 1e30 pixels.
    limit = float(2 * max(rgb.shape[:2]))
    if max_length is not None:
        limit = min(limit, float(max_length))
    too_long = length > limit
    if too_long.any():
        ex = np.where(too_long, ex * limit / np.maximum(length, 1e-12), ex)
        ey = np.where(too_long, ey * limit / np.maximum(length, 1e-12), ey)
        length = np.minimum(length, limit)
    for x, y, vx, vy, n in zip(cx.ravel(), cy.ravel(), ex.ravel(), ey.ravel(), length.ravel()):
        if n < 0.5:
            continue
        tx, ty = x + vx, y + vy
        # Head length in pixels: grows with the arrow, and with the line width to stay visible.
        head = min(max(1.0 + width, 0.35 * n), 3.0 + 3.0 * width)
        ux, uy = vx / n, vy / n
        # Two barbs at ±30° back from the tip.
        c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
        b1 = (tx - head * (ux * c - uy * s), ty - head * (uy * c + ux * s))
        b2 = (tx - head * (ux * c + uy * s), ty - head * (uy * c - ux * s))
        if outline:
            draw.line([(x, y), (tx, ty)], fill=ARROW_OUTLINE, width=width + 2)
            draw.line([b1, (tx, ty), b2], fill=ARROW_OUTLINE, width=width + 2, joint="curve")
        draw.line([(x, y), (tx, ty)], fill=ARROW_COLOR, width=width)
        draw.line([b1, (tx, ty), b2], fill=ARROW_COLOR, width=width)
        draw.point([(x, y)], fill=ARROW_OUTLINE)
    return np.asarray(img, dtype=np.uint8).copy()


def _resample_field(mv: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of (2, h0, w0) to (2, h, w), vectors scaled to the new pixels."""
    _, h0, w0 = mv.shape
    if (h0, w0) == (h, w):
        return mv
    iy = np.minimum((np.arange(h) + 0.5) * h0 / h, h0 - 1).astype(int)
    ix = np.minimum((np.arange(w) + 0.5) * w0 / w, w0 - 1).astype(int)
    out = mv[:, iy][:, :, ix].copy()
    out[0] *= w / w0
    out[1] *= h / h0
    return out


def _default_frames(t: int, most: int = 8) -> list[int]:
    if t <= most:
        return list(range(t))
    return sorted({int(round(i)) for i in np.linspace(0, t - 1, most)})


def save_mv_png(
    path: str | os.PathLike,
    rgb: np.ndarray | None,
    mv: np.ndarray,
    has_mv: np.ndarray,
    *,
    frames: Sequence[int] | None = None,
    max_magnitude: float | None = None,
    step: int = 16,
    scale: float = 1.0,
) -> Path:
    """Write one PNG: a row per chosen frame with RGB, MV colour map, arrows over RGB.

    ``rgb`` uint8 (T, H, W, 3) or None (then the RGB column is left out and the
    arrows are drawn over mid-grey); ``mv`` float (2, T, H', W') — resampled to
    (H, W) if it differs; ``has_mv`` bool (T,). ``frames`` picks the rows
    (default: all frames, or 8 spread over the clip when T > 8). Each row is
    labelled with its frame index and, where ``has_mv`` is False, "no MV";
    colours use ``max_magnitude`` (default: the largest vector among the rows
    shown, at least 1 px), written in the header. The file appears atomically
    (written to a temporary file in the same folder, then renamed).
    """
    mv = np.asarray(mv)
    if mv.ndim != 4 or mv.shape[0] != 2:
        raise InvalidArgumentError(f"mv must have shape (2, T, H, W), got {mv.shape}")
    t = mv.shape[1]
    has_mv = np.asarray(has_mv, dtype=bool)
    if has_mv.shape != (t,):
        raise InvalidArgumentError(f"has_mv must have shape ({t},), got {has_mv.shape}")
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.ndim != 4 or rgb.shape[0] != t or rgb.shape[3] != 3 or rgb.dtype != np.uint8:
            raise InvalidArgumentError(f"rgb must be uint8 ({t}, H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[1:3]
    else:
        h, w = mv.shape[2:]
    if h == 0 or w == 0 or t == 0:
        raise InvalidArgumentError(f"nothing to draw: mv has shape {mv.shape}")
    rows = _default_frames(t) if frames is None else [int(i) for i in frames]
    if not rows:
        raise InvalidArgumentError("frames is empty")
    bad = [i for i in rows if not -t <= i < t]
    if bad:
        raise InvalidArgumentError(f"frames {bad} lie outside the clip of {t} frames")
    rows = [i % t for i in rows]

    fields = {i: _resample_field(np.nan_to_num(mv[:, i].astype(np.float32)), h, w) for i in rows}
    if max_magnitude is None:
        peak = max(float(np.hypot(f[0], f[1]).max()) for f in fields.values())
        max_magnitude = max(1.0, peak)

    label_h = LABEL_HEIGHT
    columns = ["RGB", f"MV colour (full = {max_magnitude:.3g} px)", "arrows"]
    if rgb is None:
        columns = columns[1:]
    ncol = len(columns)
    canvas = Image.new("RGB", (ncol * w, label_h + len(rows) * (label_h + h)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"  # crisp, un-antialiased text: labels keep their exact colour
    for c, title in enumerate(columns):
        draw.text((c * w + 2, 1), title, fill=(0, 0, 0))
    for r, i in enumerate(rows):
        top = label_h + r * (label_h + h)
        label = f"frame {i}" + ("" if has_mv[i] else "  no MV (I-frame / none)")
        draw.text((2, top + 1), label, fill=(0, 0, 0) if has_mv[i] else NO_MV_LABEL_COLOR)
        base = rgb[i] if rgb is not None else np.full((h, w, 3), 128, np.uint8)
        tiles = [] if rgb is None else [base]
        tiles.append(mv_to_color(fields[i], max_magnitude))
        tiles.append(draw_arrows(base, fields[i], step=step, scale=scale))
        for c, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile), (c * w, top + label_h))

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            canvas.save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
