"""`load_dataset`: one entry point for the built-in sets and the files people bring.

Images come out as float32 (N, C, H, W) scaled to [-1, 1] (the range of a tanh generator).
Toy points come out as float32 (N, 2) in the coordinates their source publishes, so the
mixture's mode centers and std (attached to the Dataset) apply to them unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..random import Generator
from . import formats
from .mixtures import MIXTURES, sample_mixture

DATA_DIR = Path(__file__).resolve().parent
MNIST5K_FILE = DATA_DIR / "mnist_5k.npz"
DIGITS8X8_FILE = DATA_DIR / "digits_8x8.npz"

# A points dataset is one fixed draw, so every run of a toy experiment sees the same data.
POINTS_PER_DATASET = 20_000
POINTS_SEED = 0
# The same mixtures at the size PacGAN trained on (Lin et al. 2018, released code
# synthetic_data_experiments/2DGrid_GAN&PacGAN/config.py: num_sample = 100000), for the
# paper-protocol recipes; the smaller default draw above keeps the quick recipes' start fast.
PAPER_POINTS = 100_000
PAPER_SIZED = {"ring8-100k": "ring8", "grid25-100k": "grid25"}

BUILTIN = ("mnist5k", "digits8x8") + tuple(MIXTURES) + tuple(PAPER_SIZED)
ALIASES = {"mnist-bundled": "mnist5k"}


@dataclass
class Dataset:
    """Data ready for training.

    x: float32, images (N, C, H, W) in [-1, 1] or points (N, 2).
    y: int64 labels (N,) or None. kind: "images" or "points".
    modes, mode_std: for a mixture of Gaussians, its centers (n_modes, 2) and std.
    classes: class names when known (folder names, digits).
    """

    x: np.ndarray
    y: np.ndarray | None
    kind: str
    name: str
    modes: np.ndarray | None = None
    mode_std: float | None = None
    classes: list[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        labels = "" if self.y is None else ", labelled"
        return f"Dataset({self.name!r}, {self.kind}, x {self.x.shape}{labels})"


def images_to_float(
    images: np.ndarray, image_size: int | None = None, channels: int | None = None
) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 (N, C, H, W) in [-1, 1],
    resized/center-cropped to image_size and converted to the requested channel count."""
    if images.dtype != np.uint8:
        raise TypeError(f"images_to_float: expected uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"images_to_float: expected (N, H, W) or (N, H, W, C) with C in 1, 3, 4; "
            f"got {images.shape}"
        )
    images = images[..., :3] if images.shape[-1] == 4 else images  # drop alpha
    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if channels == 3 and images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif channels == 1 and images.shape[-1] == 3:
        # ITU-R 601-2 luma, the weights Pillow uses for convert("L").
        luma = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        images = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    if image_size is not None:
        squeezed = images[..., 0] if images.shape[-1] == 1 else images
        images = formats.resize_images(squeezed, image_size)
        images = images[..., None] if images.ndim == 3 else images
    x = images.transpose(0, 3, 1, 2).astype(np.float32)
    return x / np.float32(127.5) - np.float32(1.0)


def _array_to_dataset(x: np.ndarray, y, name: str, image_size, channels,
                      float_range: tuple[float, float] = (0.0, 1.0)) -> Dataset:
    """A Dataset from an array the user brought: (N, 2) points, or images (uint8 0..255,
    or floats in float_range)."""
    if x.ndim == 2 and x.shape[1] == 2:
        return Dataset(x.astype(np.float32), _labels(y), "points", name)
    is_images = x.ndim == 3 or (x.ndim == 4 and (x.shape[1] in (1, 3) or x.shape[-1] in (1, 3, 4)))
    if not is_images or len(x) == 0:
        raise formats.DataFormatError(
            f"{name}: data of shape {x.shape} is neither (N, 2) points nor images (N, H, W), "
            "(N, H, W, C) or (N, C, H, W) with 1 or 3 channels"
        )
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3, 4):
        x = x.transpose(0, 2, 3, 1)  # stored (N, C, H, W): the readers expect channels last
    if x.dtype != np.uint8:
        if x.dtype.kind not in "fiu":
            raise formats.DataFormatError(f"{name}: unsupported dtype {x.dtype}")
        low, high = float(x.min()), float(x.max())
        lowest, highest = float_range if x.dtype.kind == "f" else (0.0, 255.0)
        if not (lowest <= low and high <= highest):
            raise formats.DataFormatError(
                f"{name}: image values must be uint8 0..255 or floats in "
                f"[{lowest:g}, {highest:g}]; found values in [{low:g}, {high:g}]"
            )
        if x.dtype.kind == "f":  # floats in float_range, the file's convention, to 0..255
            x = np.rint((x - lowest) * (255.0 / (highest - lowest)))
        x = x.astype(np.uint8)
    return Dataset(images_to_float(x, image_size, channels), _labels(y), "images", name)


def _labels(y) -> np.ndarray | None:
    return None if y is None else np.asarray(y).astype(np.int64)


def _bundled(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise FileNotFoundError(
            f"{name}: the bundled file {path} is missing; reinstall minigan, or rebuild it "
            "with python -m minigan.data._convert_mnist5k"
        )
    with np.load(path) as archive:
        return archive["images"], archive["labels"]


def _load_builtin(name: str, image_size, channels) -> Dataset:
    digits = [str(d) for d in range(10)]
    if name == "mnist5k":
        images, labels = _bundled(MNIST5K_FILE, name)
        x = images_to_float(images, image_size, channels)
        return Dataset(x, labels.astype(np.int64), "images", name, classes=digits)
    if name == "digits8x8":
        images, labels = _bundled(DIGITS8X8_FILE, name)
        # Stored as published: counts of on pixels per 4x4 block, 0..16. Spread to 0..255.
        images = np.rint(images.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)
        x = images_to_float(images, image_size, channels)
        return Dataset(x, labels.astype(np.int64), "images", name, classes=digits)
    count = PAPER_POINTS if name in PAPER_SIZED else POINTS_PER_DATASET
    mixture = MIXTURES[PAPER_SIZED.get(name, name)]
    points = sample_mixture(mixture.name, count, Generator(POINTS_SEED))
    return Dataset(points, None, "points", name, mixture.modes, mixture.std)


def load_dataset(
    source: str | os.PathLike, image_size: int | None = None, channels: int | None = None
) -> Dataset:
    """A Dataset from a built-in name or a path.

    Built-in names: "mnist5k" (alias "mnist-bundled"), "digits8x8", and the toy mixtures
    "ring8", "grid25", "8gaussians", "25gaussians", "swissroll" (20,000 points each), and
    "ring8-100k", "grid25-100k" (PacGAN's training-set size).
    Paths: an IDX images file (raw or .gz; labels are read from the matching
    *-labels-idx1-ubyte file beside it), a directory holding train-images-idx3-ubyte[.gz],
    a directory of PNG/JPEG images (class subfolders give labels), an .npz with "x" or
    "images" (and optionally "y" or "labels"; float images in [0, 1]), or an .npy array
    (float images in [-1, 1], as `minigan sample` writes them). Arrays hold (N, 2) points,
    or uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W).
    image_size resizes (and center-crops) images to a square; channels (1 or 3) converts.
    """
    name = str(source)
    key = ALIASES.get(name, name)
    if key in BUILTIN:
        return _load_builtin(key, image_size, channels)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"load_dataset: {name!r} is neither a built-in dataset "
            f"({', '.join(BUILTIN)}, or 'mnist-bundled') nor an existing path"
        )
    if path.is_dir():
        idx = formats.find_idx_images(path)
        if idx is not None:
            images, labels = formats.read_idx_pair(idx)
            return _array_to_dataset(images, labels, path.name, image_size, channels)
        images, labels, classes = formats.read_image_folder(path, image_size, channels)
        x = images_to_float(images, None, None)
        return Dataset(x, labels, "images", path.name, classes=classes)
    if path.suffix == ".npz":
        x, y = formats.read_npz(path)
        return _array_to_dataset(x, y, path.stem, image_size, channels)
    if path.suffix == ".npy":  # as `minigan sample` writes it and `minigan translate` reads it
        x = formats.read_npy(path)
        return _array_to_dataset(x, None, path.stem, image_size, channels, (-1.0, 1.0))
    images, labels = formats.read_idx_pair(path)
    return _array_to_dataset(images, labels, path.name, image_size, channels)
