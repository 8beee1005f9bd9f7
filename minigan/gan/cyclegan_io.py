"""Translating image files with a trained CycleGAN run: `minigan translate`.

Inputs and outputs are an image file, a folder of images (translated one to one, names
kept, subfolders too) or a .npy array of (N, C, H, W) in [-1, 1]. Only the run's
checkpoint is read, never its training data, so a run translates wherever it is copied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import backend
from ..data import images_to_float
from ..data.formats import IMAGE_SUFFIXES, DataFormatError
from ..io import CheckpointError, atomic_write, load_checkpoint
from ..io.images import image_grid
from ..random import Generator
from .cyclegan import build_cyclegan, translate_images
from .recipes import TrainConfig
from .trainer import _check_state_matches, latest_checkpoint


def load_translator(run, direction: str, device=None):
    """(generator, image_shape) of a CycleGAN run folder or checkpoint, without the
    training data (only the checkpoint is read)."""
    state = load_checkpoint(latest_checkpoint(run))
    if state.get("kind") != "cyclegan":
        raise CheckpointError(
            f"{run} is not a CycleGAN run (its checkpoint is of kind {state.get('kind')!r}); "
            "train one with minigan train --recipe cyclegan-mnist-inverted"
        )
    if direction not in ("a2b", "b2a"):
        raise ValueError(f"direction must be a2b or b2a, got {direction!r}")
    config = TrainConfig.from_dict(state["config"])
    shape = tuple(state["image_shape"])
    name = "g_ab" if direction == "a2b" else "g_ba"
    generator = build_cyclegan(config, shape[0], Generator(0))[name]
    generator.to(backend.get(device).name)
    _check_state_matches(name, generator.state_dict(), state[name])
    generator.load_state_dict(state[name])
    return generator, shape


def _read_image(path: Path, shape: tuple) -> np.ndarray:
    """One image file as float32 (C, H, W) in [-1, 1], converted to the run's channels and
    resized (and center-cropped) to its size."""
    from PIL import Image

    channels, size = shape[0], shape[1]
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    except OSError as error:
        raise DataFormatError(f"{path}: not a readable image ({error})") from error
    return images_to_float(pixels[None], image_size=size, channels=channels)[0]


def read_translation_input(path, shape: tuple) -> tuple[np.ndarray, list[str]]:
    """(images (N, C, H, W) in [-1, 1], names) from an image file, a folder of images or a
    .npy array of (N, C, H, W) in [-1, 1]."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"translate: {path} does not exist")
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DataFormatError(f"{path}: not a readable .npy file ({error})") from error
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
            expected = ", ".join(str(extent) for extent in shape)
            raise DataFormatError(f"{path}: expected images of shape (N, {expected}), got "
                                  f"{x.shape}")
        if x.dtype.kind != "f":
            raise DataFormatError(f"{path}: expected floats in [-1, 1], got dtype {x.dtype}")
        if x.size and (x.min() < -1.0 or x.max() > 1.0):
            raise DataFormatError(f"{path}: expected values in [-1, 1], found values in "
                                  f"[{x.min():g}, {x.max():g}]")
        return x.astype(np.float32), [f"{i:06d}" for i in range(len(x))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataFormatError(f"{path}: no images found ({', '.join(IMAGE_SUFFIXES)})")
        names = [str(p.relative_to(path).with_suffix("")) for p in files]
        return np.stack([_read_image(p, shape) for p in files]), names
    return _read_image(path, shape)[None], [path.stem]


def write_translation_output(images: np.ndarray, names: list[str], out) -> list[Path]:
    """Write translated images: to a .npy array, to one image file (a single image), or as
    one PNG per image, named after its input, into a folder."""
    out = Path(out)
    if out.suffix == ".npy":
        atomic_write(out, lambda f: np.save(f, images))
        return [out]
    if out.suffix.lower() in IMAGE_SUFFIXES:
        if len(images) != 1:
            raise DataFormatError(f"translate: {len(images)} images cannot go into one image "
                                  f"file {out}; give a folder or a .npy file")
        targets = [out]
    else:
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / f"{name}.png" for name in names]
    from PIL import Image

    for image, target in zip(images, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = image_grid(image[None], nrow=1, padding=0)
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(target)
    return targets


def translate_files(run, direction: str, source, out, device=None) -> list[Path]:
    """`minigan translate`: read images from source, translate them with a trained run,
    write them to out. Returns the paths written."""
    generator, shape = load_translator(run, direction, device)
    images, names = read_translation_input(source, shape)
    return write_translation_output(
        translate_images(generator, images, backend.get(device).name), names, out)
