"""Reading the data formats people bring: IDX files (MNIST, Fashion-MNIST), folders of
PNG/JPEG images, and .npz / .npy arrays. Each reader returns raw arrays (uint8 images as
(N, H, W) or (N, H, W, C), integer labels or None); dataset.py turns them into a Dataset.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np


class DataFormatError(ValueError):
    """A data file is not what it claims to be; the message names the file and says why."""


# ----------------------------------------------------------------------------- IDX

# The IDX header (LeCun et al., "THE MNIST DATABASE of handwritten digits", file formats
# section): two zero bytes, a type code, the number of dimensions, then one big-endian
# uint32 size per dimension, then the values in C order.
IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (count, rows, columns)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (count)


def _read_bytes(path: Path) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as error:  # gzip raises these for a cut or corrupt stream
        raise DataFormatError(f"{path}: cannot be read ({error})") from error


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """The array stored in an IDX file (raw, or gzip-compressed when the name ends in .gz).

    With expected_magic (2051 for images, 2049 for labels), any other magic number is an
    error. The data length must match the header exactly.
    """
    path = Path(path)
    raw = _read_bytes(path)
    what = {IDX_IMAGES_MAGIC: "IDX images", IDX_LABELS_MAGIC: "IDX labels"}.get(
        expected_magic, "an IDX file"
    )
    if len(raw) < 4:
        raise DataFormatError(
            f"{path}: truncated: {len(raw)} bytes, too short for the 4-byte magic number "
            f"of {what}"
        )
    magic = int.from_bytes(raw[:4], "big")
    type_code, ndim = raw[2], raw[3]
    if expected_magic is not None and magic != expected_magic:
        raise DataFormatError(
            f"{path}: bad magic number {magic} (0x{magic:08x}); expected {expected_magic} "
            f"(0x{expected_magic:08x}) for {what}"
        )
    if raw[0] != 0 or raw[1] != 0 or type_code not in IDX_TYPES or ndim == 0:
        raise DataFormatError(
            f"{path}: bad magic number {magic} (0x{magic:08x}); not an IDX file "
            "(expected two zero bytes, a type code and a dimension count)"
        )
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataFormatError(
            f"{path}: truncated: the header declares {ndim} dimensions "
            f"({header_size} header bytes) but the file has {len(raw)} bytes"
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape)) * dtype.itemsize
    found = len(raw) - header_size
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise DataFormatError(
            f"{path}: {problem}: the header declares shape {shape} of {dtype.name} "
            f"({expected} data bytes) but the file holds {found} data bytes"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """uint8 images (N, rows, columns) from an IDX images file (magic 2051)."""
    return read_idx(path, IDX_IMAGES_MAGIC)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """uint8 labels (N,) from an IDX labels file (magic 2049)."""
    return read_idx(path, IDX_LABELS_MAGIC)


def idx_labels_beside(images_path: Path) -> Path | None:
    """The labels file that goes with an images file (train-images-idx3-ubyte[.gz] ->
    train-labels-idx1-ubyte[.gz]), if it exists."""
    name = images_path.name
    if "images-idx3" not in name:
        return None
    stem = name.replace("images-idx3", "labels-idx1")
    for candidate in (stem, stem + ".gz", stem.removesuffix(".gz")):
        path = images_path.with_name(candidate)
        if path.exists():
            return path
    return None


def read_idx_pair(images_path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and (when a labels file sits beside them) labels, counts checked."""
    images = read_idx_images(images_path)
    labels_path = idx_labels_beside(images_path)
    if labels_path is None:
        return images, None
    labels = read_idx_labels(labels_path)
    if len(labels) != len(images):
        raise DataFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds "
            f"{len(labels)} labels; expected the same count"
        )
    return images, labels


def find_idx_images(directory: Path) -> Path | None:
    """train-images-idx3-ubyte (or .gz) inside a directory, if present."""
    for name in ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"):
        if (directory / name).exists():
            return directory / name
    return None


# ----------------------------------------------------------------------------- image folders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _resize_and_center_crop(image, size: int):
    """Scale the shorter side to size, then cut the central size x size square."""
    from PIL import Image

    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BILINEAR)
    left = (new_size[0] - size) // 2
    top = (new_size[1] - size) // 2
    return image.crop((left, top, left + size, top + size))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, C) resized and center-cropped to size x size."""
    from PIL import Image

    if images.shape[1:3] == (size, size):
        return images
    out = [
        np.asarray(_resize_and_center_crop(Image.fromarray(image), size)) for image in images
    ]
    return np.stack(out)


def read_image_folder(
    directory: Path, image_size: int | None = None, channels: int | None = None
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """uint8 images (N, H, W, C) from every PNG/JPEG/BMP under directory (sorted paths).

    When every image sits in a first-level subfolder, the subfolder names (sorted) are the
    classes and y their index, as in torchvision's ImageFolder; otherwise y is None.
    Channels: 1 (grayscale) or 3 (RGB); None picks 1 when every image is grayscale.
    """
    from PIL import Image

    paths = sorted(
        p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not paths:
        raise DataFormatError(
            f"{directory}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, "
            "and for train-images-idx3-ubyte[.gz])"
        )
    def open_image(path: Path):
        try:
            return Image.open(path)  # lazy: reads the header, decodes on first use
        except OSError as error:
            raise DataFormatError(f"{path}: not a readable image ({error})") from error

    if channels is None:
        modes = []
        for path in paths:
            with open_image(path) as image:
                modes.append(image.mode)
        channels = 1 if all(mode in _GRAY_MODES for mode in modes) else 3
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    arrays = []
    for path in paths:  # one decoded image at a time, so large folders fit in memory
        with open_image(path) as image:
            try:
                image = image.convert("L" if channels == 1 else "RGB")
            except OSError as error:
                raise DataFormatError(f"{path}: not a readable image ({error})") from error
        if image_size is not None:
            image = _resize_and_center_crop(image, image_size)
        arrays.append(np.asarray(image, dtype=np.uint8))
    sizes = sorted({a.shape[:2] for a in arrays})
    if len(sizes) > 1:
        raise DataFormatError(
            f"{directory}: images differ in size ({', '.join(f'{h}x{w}' for h, w in sizes[:4])}"
            f"{', ...' if len(sizes) > 4 else ''}); pass image_size to resize them to one size"
        )
    images = np.stack(arrays)
    if images.ndim == 3:
        images = images[..., None]
    relative = [p.relative_to(directory).parts for p in paths]
    if all(len(parts) >= 2 for parts in relative):
        classes = sorted({parts[0] for parts in relative})
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[parts[0]] for parts in relative], dtype=np.int64)
        return images, labels, classes
    return images, None, None


# ----------------------------------------------------------------------------- .npz, .npy

_X_KEYS = ("x", "images")
_Y_KEYS = ("y", "labels")


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """The data ("x" or "images") and optional labels ("y" or "labels") of an .npz file."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFormatError(f"{path}: not a readable .npz file ({error})") from error
    with archive:
        x_key = next((k for k in _X_KEYS if k in archive.files), None)
        if x_key is None:
            raise DataFormatError(
                f"{path}: no array named 'x' or 'images' (found: {', '.join(archive.files)})"
            )
        x = archive[x_key]
        y_key = next((k for k in _Y_KEYS if k in archive.files), None)
        y = archive[y_key] if y_key is not None else None
    if y is not None and len(y) != len(x):
        raise DataFormatError(
            f"{path}: '{x_key}' has {len(x)} items but '{y_key}' has {len(y)}; "
            "expected the same count"
        )
    return x, y


def read_npy(path: Path) -> np.ndarray:
    """The array of an .npy file (no pickled objects)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFormatError(f"{path}: not a readable .npy file ({error})") from error
