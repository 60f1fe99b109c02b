"""Pictures of motion-vector fields: colour maps and their colour-wheel key, arrows, and a PNG
with a title, the key and a row per frame (RGB, colour map, arrows), drawn with Pillow.

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


def _nearest_resize(field: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resize of (C, h0, w0) to (C, h, w); values are copied, not rescaled."""
    _, h0, w0 = field.shape
    if (h0, w0) == (h, w):
        return field
    iy = np.minimum((np.arange(h) + 0.5) * h0 / h, h0 - 1).astype(int)
    ix = np.minimum((np.arange(w) + 0.5) * w0 / w, w0 - 1).astype(int)
    return field[:, iy][:, :, ix]


def _default_frames(t: int, most: int = 8) -> list[int]:
    if t <= most:
        return list(range(t))
    return sorted({int(round(i)) for i in np.linspace(0, t - 1, most)})


# ---------------------------------------------------------------- the PNG picture

#: Width of the PNG in pixels by default; the frames are scaled to fill it.
DEFAULT_PNG_WIDTH = 1400
#: Tallest a frame tile gets, in pixels (portrait videos get narrower tiles instead).
MAX_TILE_HEIGHT = 520
#: Arrows across one tile when the grid spacing is chosen automatically.
ARROW_CELLS_ACROSS = 24
#: Percentile of the moving vectors' magnitudes that saturates colours and arrows.
SCALE_PERCENTILE = 99.0

_MARGIN = 16  # px around the picture
_GAP = 12  # px between tiles, and between the header's text and key
_KEY_DIAMETER = 130  # px
_TEXT = (0, 0, 0)
_GREY_TEXT = (90, 90, 90)
_BACKGROUND = (255, 255, 255)


def _font(size: int):
    """Pillow's built-in font at ``size`` px (scalable where FreeType is there, else the bitmap one)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size only
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> list[str]:
    """Greedy word wrap of ``text`` to lines no wider than ``max_width`` px (a long word gets its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and _text_size(draw, f"{lines[-1]} {word}", font)[0] <= max_width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _fit_line(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    """``text`` cut (with '...') to fit ``max_width`` px, so neighbouring labels never overprint."""
    if _text_size(draw, text, font)[0] <= max_width:
        return text
    while text and _text_size(draw, text + "...", font)[0] > max_width:
        text = text[:-1]
    return text + "..."


def video_title(source) -> str:
    """Title naming the video: its file name and, where the path has one, its folder.

    The folder is called the class when the file name contains it (UCF101's
    ``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi``, HMDB51's), a plain folder
    otherwise; a video given as bytes or a stream is "video in memory".
    """
    if not isinstance(source, (str, os.PathLike)):
        return "video in memory"
    path = Path(source)
    folder = path.parent.name
    if not folder:
        return path.name
    squeeze = lambda s: "".join(c for c in s.lower() if c.isalnum())  # noqa: E731
    if squeeze(folder) and squeeze(folder) in squeeze(path.stem):
        return f"{path.name}   class {folder}"
    return f"{path.name}   in folder {folder}/"


def _row_label(number: int, frame_type: str | None, has_mv: bool) -> str:
    label = f"frame {number}" + (f"  ({frame_type}-frame)" if frame_type else "")
    if not has_mv:
        label += "  no motion vectors" + (" (key frame)" if frame_type == "I" else "")
    return label


def _scale_note(max_magnitude: float, chosen: bool, percentile: float) -> str:
    how = "chosen" if chosen else f"{percentile:g}th percentile of the moving vectors in the frames shown"
    return f"saturation at {max_magnitude:.3g} px/frame ({how})"


def _key_panel(max_magnitude: float, font) -> Image.Image:
    """The colour-wheel key with its axes named and its rim's magnitude written under it."""
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    side_w = max(_text_size(probe, s, font)[0] for s in ("right, +x", "left"))
    line_h = _text_size(probe, "Ag", font)[1] + 4
    d = _KEY_DIAMETER
    width = max(d + 2 * (side_w + 6), _text_size(probe, f"rim = {max_magnitude:.3g} px/frame", font)[0])
    height = 3 * line_h + d + line_h
    panel = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(panel)
    cx, top = width // 2, 2 * line_h
    draw.text((cx, 0), "key: motion direction", font=font, fill=_TEXT, anchor="ma")
    draw.text((cx, line_h), "up, -y", font=font, fill=_GREY_TEXT, anchor="ma")
    panel.paste(Image.fromarray(colour_wheel(d, max_magnitude, _BACKGROUND)), (cx - d // 2, top))
    draw.ellipse([cx - d // 2, top, cx - d // 2 + d - 1, top + d - 1], outline=_GREY_TEXT)
    mid = top + d // 2
    draw.text((cx + d // 2 + 6, mid), "right, +x", font=font, fill=_GREY_TEXT, anchor="lm")
    draw.text((cx - d // 2 - 6, mid), "left", font=font, fill=_GREY_TEXT, anchor="rm")
    draw.text((cx, top + d + 2), "down, +y", font=font, fill=_GREY_TEXT, anchor="ma")
    draw.text((cx, top + d + 2 + line_h), f"rim = {max_magnitude:.3g} px/frame", font=font, fill=_TEXT, anchor="ma")
    return panel


def _header(width: int, title: str, lines: Sequence[str], key: Image.Image) -> Image.Image:
    """Title and explanation on the left, the key on the right; as tall as the taller of the two."""
    title_font, font = _font(24), _font(15)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = width - 2 * _MARGIN - _GAP - key.width
    title_lines = _wrap(probe, title, title_font, text_w)
    body = [wrapped for line in lines for wrapped in _wrap(probe, line, font, text_w)]
    title_h, line_h = _text_size(probe, "Ag", title_font)[1] + 6, _text_size(probe, "Ag", font)[1] + 5
    height = _MARGIN + max(len(title_lines) * title_h + 8 + len(body) * line_h, key.height)
    header = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(header)
    y = _MARGIN
    for line in title_lines:
        draw.text((_MARGIN, y), line, font=title_font, fill=_TEXT)
        y += title_h
    y += 8
    for line in body:
        draw.text((_MARGIN, y), line, font=font, fill=_TEXT)
        y += line_h
    header.paste(key, (width - _MARGIN - key.width, _MARGIN))
    return header


class MvPicture:
    """A rendered motion-vector picture: ``image`` (PIL), ``title``, ``description`` (its text),
    ``max_magnitude`` (px/frame at full saturation) and ``tiles``: ``{(row, column): (left, top,
    right, bottom)}`` in image pixels, rows numbered from 0, columns named "rgb", "colour", "arrows"."""

    def __init__(self, image: Image.Image, title: str, description: str, max_magnitude: float,
                 tiles: dict[tuple[int, str], tuple[int, int, int, int]]) -> None:
        self.image, self.title, self.description = image, title, description
        self.max_magnitude, self.tiles = max_magnitude, tiles


def render_mv_picture(
    rgb: np.ndarray | None,
    mv: np.ndarray,
    has_mv: np.ndarray,
    *,
    frames: Sequence[int] | None = None,
    max_magnitude: float | None = None,
    step: int | None = None,
    scale: float | None = None,
    width: int = DEFAULT_PNG_WIDTH,
    title: str | None = None,
    frame_numbers: Sequence[int] | None = None,
    frame_types: Sequence[str] | None = None,
    source_size: tuple[int, int] | None = None,
    percentile: float = SCALE_PERCENTILE,
) -> MvPicture:
    """The picture :func:`save_mv_png` writes; see there for the arguments."""
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
    if h == 0 or w == 0 or t == 0 or mv.shape[2] == 0 or mv.shape[3] == 0:
        raise InvalidArgumentError(f"nothing to draw: mv has shape {mv.shape}")
    if not isinstance(width, int) or width < 400:
        raise InvalidArgumentError(f"width must be an integer of at least 400 px, got {width!r}")
    if step is not None and (not isinstance(step, int) or step < 1):
        raise InvalidArgumentError(f"step must be a positive integer, got {step!r}")
    for name, seq in (("frame_numbers", frame_numbers), ("frame_types", frame_types)):
        if seq is not None and len(seq) != t:
            raise InvalidArgumentError(f"{name} must name each of the {t} frames, got {len(seq)}")
    rows = _default_frames(t) if frames is None else [int(i) for i in frames]
    if not rows:
        raise InvalidArgumentError("frames is empty")
    bad = [i for i in rows if not -t <= i < t]
    if bad:
        raise InvalidArgumentError(f"frames {bad} lie outside the clip of {t} frames")
    rows = [i % t for i in rows]

    # Vectors in pixels of source_size (default: of the frames shown) per frame step.
    unit_w, unit_h = source_size if source_size is not None else (w, h)
    to_units = np.array([unit_w / mv.shape[3], unit_h / mv.shape[2]], np.float32)[:, None, None]
    fields = {i: np.nan_to_num(mv[:, i].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0) * to_units
              for i in rows}
    chosen = max_magnitude is not None
    if max_magnitude is None:
        max_magnitude = robust_max_magnitude(list(fields.values()), percentile=percentile)
    elif not (max_magnitude > 0 and math.isfinite(max_magnitude)):
        raise InvalidArgumentError(f"max_magnitude must be a positive finite number, got {max_magnitude!r}")

    columns = (["rgb"] if rgb is not None else []) + ["colour", "arrows"]
    ncol = len(columns)
    tile_w = min((width - 2 * _MARGIN - (ncol - 1) * _GAP) // ncol, int(MAX_TILE_HEIGHT * w / h))
    tile_h = max(1, round(tile_w * h / w))
    zoom = tile_w / w  # picture pixels per pixel of the frames shown
    # Arrow grid spacing and length, in picture pixels.
    cell = max(8, round(step * zoom)) if step is not None else max(12, round(tile_w / ARROW_CELLS_ACROSS))
    if scale is None:
        arrow_per_unit, arrow_cap = cell / max_magnitude, float(cell)  # saturation = one cell
        arrow_note = (f"Arrows: mean vector of each {cell}x{cell}-px cell of the picture; one cell spacing"
                      f" = {max_magnitude:.3g} px/frame, longer arrows cut to that.")
    else:
        arrow_per_unit, arrow_cap = scale * zoom * w / unit_w, None  # scale x true length
        arrow_note = f"Arrows: mean vector of each {cell}x{cell}-px cell, {scale:g} x its length."
    unit_note = (f"in pixels of the {unit_w}x{unit_h} video" if source_size is not None
                 else f"in pixels of the {w}x{h} frames")
    title = "Motion vectors" if title is None else title
    lines = [
        f"Motion vectors: forward displacement per frame step (x right +, y down +), {unit_note}.",
        f"Colour: hue = direction (see key), paler = shorter; {_scale_note(max_magnitude, chosen, percentile)};"
        " longer vectors keep their hue at full saturation.",
        arrow_note,
    ]

    font, label_font = _font(15), _font(16)
    header = _header(width, title, lines, _key_panel(max_magnitude, font))
    probe = ImageDraw.Draw(header)
    label_h = _text_size(probe, "Ag", label_font)[1] + 8
    col_titles = {"rgb": "RGB frame", "colour": "motion vectors, colour-coded (see key)",
                  "arrows": "arrows over the frame" if rgb is not None else "arrows (on grey)"}
    top0 = header.height + label_h  # column titles take one band
    height = top0 + len(rows) * (label_h + tile_h + _GAP) + _MARGIN - _GAP
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    canvas.paste(header, (0, 0))
    draw = ImageDraw.Draw(canvas)
    lefts = {c: _MARGIN + k * (tile_w + _GAP) for k, c in enumerate(columns)}
    for c in columns:
        draw.text((lefts[c], header.height), _fit_line(draw, col_titles[c], label_font, tile_w),
                  font=label_font, fill=_TEXT)

    tiles: dict[tuple[int, str], tuple[int, int, int, int]] = {}
    for r, i in enumerate(rows):
        label_top = top0 + r * (label_h + tile_h + _GAP)
        top = label_top + label_h
        number = int(frame_numbers[i]) if frame_numbers is not None else i
        kind = str(frame_types[i]) if frame_types is not None else None
        label = _fit_line(draw, _row_label(number, kind, bool(has_mv[i])), label_font, width - 2 * _MARGIN)
        draw.text((_MARGIN, label_top + 3), label, font=label_font,
                  fill=_TEXT if has_mv[i] else NO_MV_LABEL_COLOR)
        if rgb is not None:
            base = np.asarray(Image.fromarray(rgb[i]).resize((tile_w, tile_h), Image.Resampling.LANCZOS))
        else:
            base = np.full((tile_h, tile_w, 3), 128, np.uint8)
        # Blocks stay blocks: the colour map and the arrows' field are enlarged by nearest neighbour.
        colour = Image.fromarray(mv_to_color(fields[i], max_magnitude)).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        arrows = draw_arrows(base, _nearest_resize(fields[i], tile_h, tile_w), step=cell, scale=arrow_per_unit,
                             width=2, max_length=arrow_cap, outline=True)
        images = {"rgb": base, "colour": np.asarray(colour), "arrows": arrows}
        for c in columns:
            canvas.paste(Image.fromarray(images[c]), (lefts[c], top))
            tiles[(r, c)] = (lefts[c], top, lefts[c] + tile_w, top + tile_h)
    return MvPicture(canvas, title, " ".join(lines), float(max_magnitude), tiles)


def save_mv_png(
    path: str | os.PathLike,
    rgb: np.ndarray | None,
    mv: np.ndarray,
    has_mv: np.ndarray,
    *,
    frames: Sequence[int] | None = None,
    max_magnitude: float | None = None,
    step: int | None = None,
    scale: float | None = None,
    width: int = DEFAULT_PNG_WIDTH,
    title: str | None = None,
    frame_numbers: Sequence[int] | None = None,
    frame_types: Sequence[str] | None = None,
    source_size: tuple[int, int] | None = None,
    percentile: float = SCALE_PERCENTILE,
) -> Path:
    """Write one PNG, ``width`` px wide: a title and a colour-wheel key, then a row per chosen
    frame with the RGB frame, its motion field colour-coded, and arrows over the frame.

    ``rgb`` uint8 (T, H, W, 3) or None (then the RGB column is left out and the
    arrows are drawn over mid-grey); ``mv`` float (2, T, H', W') in pixels of
    its own grid (compvid's convention); ``has_mv`` bool (T,). ``frames`` picks
    the rows (default: all frames, or 8 spread over the clip when T > 8).

    Each row is labelled with its frame number (``frame_numbers[t]``, e.g. the
    display indices in the video; default the index t in the clip), its type
    (``frame_types[t]``: "I", "P", "B", if given), and "no motion vectors" where
    ``has_mv`` is False. Magnitudes are in pixels of ``source_size`` (width,
    height; e.g. the video's, when the frames were decoded smaller), default of
    the frames shown. Colours and arrows saturate at ``max_magnitude`` px/frame,
    default the ``percentile`` of the moving vectors of the rows shown (at least
    1 px), so one outlier cannot wash the picture out; the picture says which.

    Arrows: one per ``step``×``step`` cell (pixels of the frames shown; default
    ~24 cells across a tile); ``scale`` None makes an arrow at the saturation
    magnitude one cell long, a number draws ``scale`` × the true length.
    ``title`` heads the picture (default "Motion vectors"), and goes with the
    explanation into the PNG's Title and Description text. The file appears
    atomically (written to a temporary file in the same folder, then renamed).
    """
    from PIL.PngImagePlugin import PngInfo

    picture = render_mv_picture(
        rgb, mv, has_mv, frames=frames, max_magnitude=max_magnitude, step=step, scale=scale, width=width,
        title=title, frame_numbers=frame_numbers, frame_types=frame_types, source_size=source_size,
        percentile=percentile,
    )
    info = PngInfo()
    info.add_itxt("Title", picture.title)
    info.add_itxt("Description", picture.description)
    info.add_text("Software", "compvid")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            picture.image.save(f, format="PNG", pnginfo=info)
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
