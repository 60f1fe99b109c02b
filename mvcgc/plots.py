"""Report pictures (loss curves, bar charts) drawn with Pillow (installed with torchvision; no matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageDraw

from mvcgc.run_files import EpochEndRecord, StepRecord, read_metrics

_W, _H, _MARGIN = 720, 420, 56


def save_loss_curve(metrics_path: str | os.PathLike, png_path: str | os.PathLike, *, title: str = "loss",
                    chance: tuple[float, str] | None = None) -> Path | None:
    """Plot per-step loss (grey) and epoch-mean loss (blue) from ``metrics.jsonl``; None if no steps.

    ``chance``: ``(loss, label)`` of a model that has learnt nothing, drawn dashed red, so a flat
    curve near it reads as what it is."""
    records = read_metrics(metrics_path)
    steps = [r.step for r in records if isinstance(r, StepRecord)]
    losses = [r.loss for r in records if isinstance(r, StepRecord)]
    epoch_steps = [r.step for r in records if isinstance(r, EpochEndRecord)]
    epoch_means = [r.mean_loss for r in records if isinstance(r, EpochEndRecord)]
    if not steps:
        return None
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = min(losses), max(losses)
    if chance is not None:
        y0, y1 = min(y0, chance[0]), max(y1, chance[0])
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = _MARGIN + (x - x0) / (x1 - x0) * (_W - 2 * _MARGIN)
        py = _H - _MARGIN - (y - y0) / (y1 - y0) * (_H - 2 * _MARGIN)
        return px, py

    img = Image.new("RGB", (_W, _H), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([_MARGIN, _MARGIN, _W - _MARGIN, _H - _MARGIN], outline="black")
    for i in range(5):  # y ticks
        y = y0 + (y1 - y0) * i / 4
        _, py = to_px(x0, y)
        draw.line([_MARGIN - 4, py, _MARGIN, py], fill="black")
        draw.text((4, py - 6), f"{y:.3g}", fill="black")
    for i in range(5):  # x ticks
        x = x0 + (x1 - x0) * i / 4
        px, _ = to_px(x, y0)
        draw.line([px, _H - _MARGIN, px, _H - _MARGIN + 4], fill="black")
        draw.text((px - 10, _H - _MARGIN + 8), f"{x:.0f}", fill="black")
    draw.text((_MARGIN, 16), f"{title} -- grey: step loss, blue: epoch mean", fill="black")
    draw.text((_W // 2 - 40, _H - 20), "optimiser step", fill="black")
    draw.text((4, _MARGIN - 20), "loss", fill="black")
    if chance is not None:
        _, py = to_px(x0, chance[0])
        for px in range(_MARGIN, _W - _MARGIN, 12):  # dashed
            draw.line([px, py, min(px + 6, _W - _MARGIN), py], fill=(214, 39, 40), width=1)
        draw.text((_MARGIN + 6, py - 14), chance[1], fill=(214, 39, 40))
    if len(steps) > 1:
        draw.line([to_px(x, y) for x, y in zip(steps, losses)], fill=(160, 160, 160), width=1)
    if len(epoch_steps) > 1:
        draw.line([to_px(x, y) for x, y in zip(epoch_steps, epoch_means)], fill=(31, 119, 180), width=2)
    for x, y in zip(epoch_steps, epoch_means):
        px, py = to_px(x, y)
        draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=(31, 119, 180))
    png_path = Path(png_path)
    img.save(png_path)
    return png_path


# Colours of the series in a bar chart, in order (colour-blind-safe palette).
_SERIES_COLOURS = [(153, 153, 153), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]


def save_bar_chart(
    panels: dict[str, dict[str, dict[str, tuple[float, float, float]]]],
    png_path: str | os.PathLike,
    *,
    title: str,
    chance: dict[str, float] | None = None,
) -> Path:
    """Grouped bars with interval whiskers, one panel per measure.

    ``panels``: ``{panel title: {group: {series: (value, low, high)}}}``, values in [0, 1] drawn as %;
    ``chance``: ``{panel title: level}`` drawn as a dashed line. Series keep their order of appearance.
    """
    series = list(dict.fromkeys(s for groups in panels.values() for bars in groups.values() for s in bars))
    pw, ph, m = 420, 360, 48
    img = Image.new("RGB", (pw * max(1, len(panels)), ph + 60), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 6), title, fill="black")
    for s_i, name in enumerate(series):  # legend
        x = 10 + s_i * 130
        draw.rectangle([x, ph + 36, x + 12, ph + 48], fill=_SERIES_COLOURS[s_i % len(_SERIES_COLOURS)])
        draw.text((x + 16, ph + 36), name, fill="black")
    for p_i, (panel, groups) in enumerate(panels.items()):
        x0, y0, x1, y1 = p_i * pw + m, 30, (p_i + 1) * pw - 12, ph  # plot box, y in % from y1 (0) to y0 (100)

        def y_of(v: float) -> float:
            return y1 - v * (y1 - y0)

        draw.rectangle([x0, y0, x1, y1], outline="black")
        draw.text((x0 + 4, y0 + 4), panel, fill="black")
        for t in range(0, 101, 25):
            draw.line([x0 - 4, y_of(t / 100), x0, y_of(t / 100)], fill="black")
            draw.text((x0 - 30, y_of(t / 100) - 6), f"{t}%", fill="black")
        gw = (x1 - x0) / max(1, len(groups))
        bw = gw * 0.8 / max(1, len(series))
        for g_i, (group, bars) in enumerate(groups.items()):
            gx = x0 + g_i * gw + gw * 0.1
            draw.text((gx + gw * 0.3, y1 + 6), group, fill="black")
            for s_i, name in enumerate(series):
                if name not in bars:
                    continue
                value, low, high = bars[name]
                bx = gx + s_i * bw
                draw.rectangle([bx, y_of(value), bx + bw - 2, y1], fill=_SERIES_COLOURS[s_i % len(_SERIES_COLOURS)])
                cx = bx + (bw - 2) / 2
                draw.line([cx, y_of(low), cx, y_of(high)], fill="black", width=1)
                for y in (low, high):
                    draw.line([cx - 3, y_of(y), cx + 3, y_of(y)], fill="black")
        if chance and panel in chance:
            y = y_of(chance[panel])
            for x in range(int(x0), int(x1), 8):
                draw.line([x, y, min(x + 4, x1), y], fill=(214, 39, 40))
            draw.text((x1 - 60, y - 14), "chance", fill=(214, 39, 40))
    png_path = Path(png_path)
    img.save(png_path)
    return png_path


def stack_images(paths: list[str | os.PathLike], png_path: str | os.PathLike, *, captions: list[str]) -> Path | None:
    """Put PNGs side by side (scaled to a common height) with a caption above each; None if none exist."""
    images = [(Image.open(p).convert("RGB"), c) for p, c in zip(paths, captions) if Path(p).is_file()]
    if not images:
        return None
    h = min(im.height for im, _ in images)
    scaled = [(im.resize((round(im.width * h / im.height), h)), c) for im, c in images]
    out = Image.new("RGB", (sum(im.width for im, _ in scaled), h + 20), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for im, caption in scaled:
        out.paste(im, (x, 20))
        draw.text((x + 8, 4), caption, fill="black")
        x += im.width
    png_path = Path(png_path)
    out.save(png_path)
    return png_path
