"""Loss-curve PNG drawn with Pillow (already installed with torchvision; no matplotlib needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image, ImageDraw

_W, _H, _MARGIN = 720, 420, 56


def save_loss_curve(metrics_path: str | os.PathLike, png_path: str | os.PathLike, *, title: str = "loss") -> Path | None:
    """Plot per-step loss (grey) and epoch-mean loss (blue) from ``metrics.jsonl``; None if no steps."""
    steps, losses, epoch_steps, epoch_means = [], [], [], []
    for line in Path(metrics_path).read_text().splitlines():
        rec = json.loads(line)
        if rec["event"] == "step":
            steps.append(rec["step"])
            losses.append(rec["loss"])
        elif rec["event"] == "epoch_end":
            epoch_steps.append(rec["step"])
            epoch_means.append(rec["mean_loss"])
    if not steps:
        return None
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = min(losses), max(losses)
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
    draw.text((_W // 2 - 10, _H - 20), "step", fill="black")
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
