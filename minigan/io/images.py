"""Sample grids of images and scatter plots of 2-D points, as PNG files."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from .atomic import atomic_write


def _save_png(image: Image.Image, path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


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


def save_image_grid(images: np.ndarray, path, nrow: int | None = None, scale: int = 2) -> None:
    """Write (N, C, H, W) images in [-1, 1] as one PNG grid, enlarged `scale` times."""
    grid = image_grid(images, nrow)
    picture = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    _save_png(picture, path)


def save_points_plot(points: np.ndarray, path, real: np.ndarray | None = None,
                     size: int = 480, extent: float | None = None) -> None:
    """Scatter plot of generated 2-D points (blue) over real ones (grey), as a PNG."""
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

    if real is not None:
        scatter(np.asarray(real), (170, 170, 170))
    scatter(points, (31, 90, 200))
    draw.text((6, 4), f"extent +-{extent:.2f}", fill=(80, 80, 80))
    _save_png(picture, path)
