"""Training curves drawn with Pillow, so the trainer needs no plotting library.

`save_loss_plot` draws one panel per group of metrics found in the records: the losses,
the discriminator's mean outputs on real and generated batches, and the gradient norms,
each with a title, a labelled y axis, round tick values and a legend.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .images import _font, _save_picture

COLOURS = [(31, 90, 200), (220, 90, 30), (40, 150, 60), (150, 60, 170), (120, 120, 120)]
GREY, BLACK = (200, 200, 200), (0, 0, 0)

# Names people read, for the keys the trainers log to metrics.jsonl.
LABELS = {
    "loss_d": "discriminator loss", "loss_g": "generator loss", "loss_cycle": "cycle loss",
    "d_real": "D(x), real batch", "d_fake": "D(G(z)), generated batch",
    "grad_norm_d": "discriminator", "grad_norm_g": "generator",
}


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2, 2.5 or 5 times a power of ten apart) in [low, high]."""
    if not high > low:
        return [low]
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks]


def _tick_text(value: float, ticks: list[float]) -> str:
    """A tick value with as many decimals as the tick spacing needs, and no more."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    if step >= 1e-4 and max(abs(t) for t in ticks) < 1e6:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) > 1e-6:  # 2.5, 0.25, ...
            decimals += 1
        return f"{value:.{decimals}f}"
    return f"{value:.3g}"


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    head = np.cumsum(values[: window - 1]) / np.arange(1, window)
    return np.concatenate([head, np.convolve(values, kernel, mode="valid")])


def _series(records: list[dict], keys) -> dict:
    """key -> (steps, lightly smoothed finite values), for the keys the records hold."""
    series = {}
    for key in keys:
        pairs = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        pairs = [(s, v) for s, v in pairs if np.isfinite(v)]
        if pairs:
            steps, values = map(np.asarray, zip(*pairs))
            series[key] = (steps, _smooth(values.astype(float), max(1, len(values) // 50)))
    return series


def _vertical_text(picture: Image.Image, xy, text: str, typeface) -> None:
    """Text rotated a quarter turn, read bottom to top, centred on xy."""
    box = typeface.getbbox(text)
    strip = Image.new("RGB", (box[2] - box[0] + 2, box[3] - box[1] + 4), "white")
    ImageDraw.Draw(strip).text((1 - box[0], 2 - box[1]), text, fill=BLACK, font=typeface)
    strip = strip.rotate(90, expand=True)
    picture.paste(strip, (int(xy[0] - strip.width / 2), int(xy[1] - strip.height / 2)))


def _panel(picture: Image.Image, box, title: str, ylabel: str, series: dict,
           x_range: tuple[float, float]) -> None:
    """One plot in box (left, top, right, bottom) of the picture."""
    draw = ImageDraw.Draw(picture)
    small, large = _font(12), _font(14)
    left, top, right, bottom = box
    plot_left, plot_top, plot_right, plot_bottom = left + 78, top + 28, right - 16, bottom - 40
    draw.text((plot_left, top + 4), title, fill=BLACK, font=large)
    _vertical_text(picture, (left + 12, (plot_top + plot_bottom) / 2), ylabel, small)
    draw.rectangle([plot_left, plot_top, plot_right, plot_bottom], outline=BLACK)
    if not series:
        draw.text((plot_left + 10, plot_top + 10), "no finite values to plot yet", fill=BLACK,
                  font=small)
        return
    values = np.concatenate([v for _, v in series.values()])
    y0, y1 = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5 * max(abs(y0), 1e-3), y1 + 0.5 * max(abs(y1), 1e-3)
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    x0, x1 = x_range

    def to_pixel(x, y):
        px = plot_left + (x - x0) / (x1 - x0) * (plot_right - plot_left)
        py = plot_bottom - (np.clip(y, y0, y1) - y0) / (y1 - y0) * (plot_bottom - plot_top)
        return px, py

    y_ticks = nice_ticks(y0, y1)
    for value in y_ticks:
        _, py = to_pixel(x0, value)
        draw.line([(plot_left + 1, py), (plot_right - 1, py)], fill=(235, 235, 235))
        draw.line([(plot_left - 4, py), (plot_left, py)], fill=BLACK)
        text = _tick_text(value, y_ticks)
        width = draw.textlength(text, font=small)
        draw.text((plot_left - 8 - width, py - 7), text, fill=BLACK, font=small)
    x_ticks = [t for t in nice_ticks(x0, x1) if t == int(t)]
    for step in x_ticks:
        px, _ = to_pixel(step, y0)
        draw.line([(px, plot_bottom), (px, plot_bottom + 4)], fill=BLACK)
        text = f"{step:.0f}"
        draw.text((px - draw.textlength(text, font=small) / 2, plot_bottom + 6), text,
                  fill=BLACK, font=small)
    label = "generator step"
    draw.text(((plot_left + plot_right - draw.textlength(label, font=small)) / 2,
               plot_bottom + 22), label, fill=BLACK, font=small)
    legend_x = plot_right - 8
    for i, (steps, ys) in reversed(list(enumerate(series.values()))):
        colour = COLOURS[i % len(COLOURS)]
        points = [to_pixel(s, v) for s, v in zip(steps, ys)]
        if len(points) == 1:
            px, py = points[0]
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        else:
            draw.line(points, fill=colour, width=2)
    for i, key in reversed(list(enumerate(series))):  # legend, right-aligned, on top
        colour = COLOURS[i % len(COLOURS)]
        text = LABELS.get(key, key)
        width = draw.textlength(text, font=small)
        legend_x -= width + 28
        draw.rectangle([legend_x - 4, plot_top + 4, legend_x + width + 24, plot_top + 20],
                       fill="white")
        draw.line([(legend_x, plot_top + 12), (legend_x + 16, plot_top + 12)], fill=colour,
                  width=3)
        draw.text((legend_x + 20, plot_top + 5), text, fill=BLACK, font=small)


def save_loss_plot(records: list[dict], path, keys=("loss_d", "loss_g"),
                   score_label: str = "mean D output", width: int = 760,
                   panel_height: int = 260) -> None:
    """Plot the metric records of a run against their "step" (lightly smoothed) as a PNG:
    `keys` (the losses) in a first panel, then D(x) and D(G(z)) ("d_real", "d_fake";
    score_label names what D outputs) and the gradient norms ("grad_norm_d",
    "grad_norm_g") in panels of their own when the records hold them."""
    panels = [("Losses", "loss", _series(records, keys))]
    scores = _series(records, ("d_real", "d_fake"))
    if scores:
        panels.append(("Discriminator on real and generated batches", score_label, scores))
    norms = _series(records, ("grad_norm_d", "grad_norm_g"))
    if norms:
        panels.append(("Gradient norms (all parameters of each network)", "L2 norm", norms))
    steps = [s for _, _, series in panels for s, _ in series.values()]
    if steps:
        all_steps = np.concatenate(steps)
        x_range = (float(all_steps.min()), float(max(all_steps.max(), all_steps.min() + 1)))
    else:
        x_range = (0.0, 1.0)
    picture = Image.new("RGB", (width, panel_height * len(panels)), "white")
    for i, (title, ylabel, series) in enumerate(panels):
        box = (0, i * panel_height, width, (i + 1) * panel_height)
        _panel(picture, box, title, ylabel, series, x_range)
    _save_picture(picture, path)
