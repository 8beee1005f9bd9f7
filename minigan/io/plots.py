"""A loss-curve plot drawn with Pillow, so the trainer needs no plotting library."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .images import _save_png

COLOURS = [(31, 90, 200), (220, 90, 30), (40, 150, 60), (150, 60, 170), (120, 120, 120)]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def save_loss_plot(records: list[dict], path, keys=("loss_d", "loss_g"), width: int = 720,
                   height: int = 400) -> None:
    """Plot each key of the metric records against "step" (lightly smoothed) as a PNG."""
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    left, right, top, bottom = 60, width - 20, 30, height - 40
    series = {}
    for key in keys:
        pairs = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
        pairs = [(s, v) for s, v in pairs if np.isfinite(v)]
        if pairs:
            steps, values = map(np.asarray, zip(*pairs))
            series[key] = (steps, _smooth(values.astype(float), max(1, len(values) // 50)))
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    if not series:
        draw.text((left + 10, top + 10), "no finite values to plot yet", fill=(0, 0, 0))
        _save_png(picture, path)
        return
    all_steps = np.concatenate([s for s, _ in series.values()])
    all_values = np.concatenate([v for _, v in series.values()])
    x0, x1 = float(all_steps.min()), float(max(all_steps.max(), all_steps.min() + 1))
    y0, y1 = np.percentile(all_values, [0.5, 99.5])
    y0, y1 = float(y0), float(max(y1, y0 + 1e-6))
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def to_pixel(x, y):
        px = left + (x - x0) / (x1 - x0) * (right - left)
        py = bottom - (np.clip(y, y0, y1) - y0) / (y1 - y0) * (bottom - top)
        return px, py

    for i in range(5):  # axis ticks and labels
        value = y0 + (y1 - y0) * i / 4
        _, py = to_pixel(x0, value)
        draw.line([(left - 4, py), (left, py)], fill=(0, 0, 0))
        draw.text((4, py - 6), f"{value:.3g}", fill=(0, 0, 0))
        step = x0 + (x1 - x0) * i / 4
        px, _ = to_pixel(step, y0)
        draw.line([(px, bottom), (px, bottom + 4)], fill=(0, 0, 0))
        draw.text((px - 12, bottom + 8), f"{step:.0f}", fill=(0, 0, 0))
    draw.text(((left + right) // 2 - 12, height - 16), "step", fill=(0, 0, 0))
    for i, (key, (steps, values)) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        draw.line([to_pixel(s, v) for s, v in zip(steps, values)], fill=colour, width=2)
        draw.text((left + 10 + 110 * i, 8), key, fill=colour)
    _save_png(picture, path)
