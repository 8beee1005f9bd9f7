"""Sample grids of images and scatter plots of 2-D points, as PNG (or JPEG) files."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_write

# A picture's format comes from its file name, as a person reading the name expects.
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def picture_format(path) -> str:
    """The Pillow format for a picture file name; ValueError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in PICTURE_FORMATS:
        raise ValueError(f"{path}: pictures are written as {', '.join(PICTURE_FORMATS)}; "
                         f"got {suffix or 'no suffix'!r}")
    return PICTURE_FORMATS[suffix]


def _save_picture(image: Image.Image, path) -> None:
    """Write a picture atomically, as PNG or JPEG (quality 95) by the file's suffix."""
    kind = picture_format(path)
    buffer = io.BytesIO()
    if kind == "JPEG":
        image.convert("L" if image.mode == "L" else "RGB").save(buffer, format=kind, quality=95)
    else:
        image.save(buffer, format=kind)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _font(size: int):
    """Pillow's built-in font at `size` (older Pillow: its fixed small bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one size only
        return ImageFont.load_default()


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2) -> np.ndarray:
    """(N, C, H, W) images in [-1, 1] tiled into one uint8 (H', W', C) array."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected (N, 1|3, H, W) images, got shape {images.shape}")
    n, c, h, w = images.shape
    nrow = nrow or int(math.ceil(math.sqrt(n)))
    ncol = int(math.ceil(n / nrow))
    pixels = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    grid = np.full((ncol * (h + padding) + padding, nrow * (w + padding) + padding, c), 255,
                   dtype=np.uint8)
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = pixels[i].transpose(1, 2, 0)
    return grid


def save_image_grid(images: np.ndarray, path, nrow: int | None = None, scale: int = 2,
                    column_labels: list[str] | None = None) -> None:
    """Write (N, C, H, W) images in [-1, 1] as one grid picture, enlarged `scale` times;
    column_labels (one per column, nrow of them) are written above the columns."""
    grid = image_grid(images, nrow)
    picture = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    if column_labels:
        picture = _label_columns(picture, column_labels, images.shape[-1] * scale, 2 * scale)
    _save_picture(picture, path)


def _label_columns(picture: Image.Image, labels: list[str], cell: int, padding: int):
    """The picture under a white strip that names each column, centred over it."""
    size = 12
    typeface = _font(size)
    draw = ImageDraw.Draw(picture)
    while size > 7 and max(draw.textlength(t, font=typeface) for t in labels) > cell + padding:
        size -= 1  # narrow columns: a smaller font rather than overlapping names
        typeface = _font(size)
    labelled = Image.new(picture.mode, (picture.width, picture.height + size + 8), "white")
    labelled.paste(picture, (0, size + 8))
    draw = ImageDraw.Draw(labelled)
    ink = 0 if picture.mode == "L" else (0, 0, 0)
    for i, text in enumerate(labels):
        middle = padding + i * (cell + padding) + cell / 2
        draw.text((middle - draw.textlength(text, font=typeface) / 2, 4), text, fill=ink,
                  font=typeface)
    return labelled


def save_points_plot(points: np.ndarray, path, real: np.ndarray | None = None,
                     size: int = 480, extent: float | None = None) -> None:
    """Scatter plot of generated 2-D points (blue) over real ones (grey), with a legend
    saying which is which, as a PNG (or JPEG)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"save_points_plot: expected (N, 2) points, got shape {points.shape}")
    both = points if real is None else np.concatenate([points, np.asarray(real)])
    finite = both[np.isfinite(both).all(axis=1)]
    if extent is None:
        extent = float(np.abs(finite).max()) * 1.15 if len(finite) else 1.0
        extent = max(extent, 1e-3)
    picture = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(picture)
    middle = size / 2
    draw.line([(middle, 0), (middle, size)], fill=(225, 225, 225))
    draw.line([(0, middle), (size, middle)], fill=(225, 225, 225))

    def scatter(xy, colour):
        for x, y in xy:
            if np.isfinite(x) and np.isfinite(y):
                px, py = middle + x / extent * middle, middle - y / extent * middle
                draw.ellipse([px - 1.5, py - 1.5, px + 1.5, py + 1.5], fill=colour)

    real_colour, generated_colour = (170, 170, 170), (31, 90, 200)
    if real is not None:
        scatter(np.asarray(real), real_colour)
    scatter(points, generated_colour)
    typeface = _font(13)
    entries = [(f"generated ({len(points)})", generated_colour)]
    if real is not None:
        entries.insert(0, (f"real data ({len(real)})", real_colour))
    width = max(draw.textlength(text, font=typeface) for text, _ in entries)
    draw.rectangle([4, 4, 30 + width, 10 + 18 * len(entries)], fill="white",
                   outline=(200, 200, 200))
    for i, (text, colour) in enumerate(entries):
        top = 8 + 18 * i
        draw.ellipse([10, top + 3, 18, top + 11], fill=colour)
        draw.text((24, top), text, fill=(0, 0, 0), font=typeface)
    draw.text((6, size - 20), f"axes from -{extent:.2f} to {extent:.2f}", fill=(80, 80, 80),
              font=typeface)
    _save_picture(picture, path)
