"""Checkpoints: one .npz file holding arrays plus a JSON description, loaded without pickle.

A state is a tree of dicts and lists whose leaves are numbers, strings, None or NumPy arrays.
The arrays go into the archive as members `a0`, `a1`, ...; the tree, with each array replaced
by {"__array__": "a7"}, goes in as JSON under `__tree__`. Loading uses allow_pickle=False, so
a checkpoint from a stranger cannot run code, and reads every member (verifying each zip
CRC) before returning, so a damaged file is rejected whole, never applied half-way.

Why checkpoints are not safetensors files (weights.py writes those, for PyTorch to read):
a checkpoint is a tree (optimizer moments, random-number states, the loader's position, the
config), and safetensors holds flat named arrays plus a str -> str table, so the tree would
still be JSON beside the arrays, as here. And safetensors carries no checksum: a flipped bit
in its data loads silently, while every member here is CRC-checked and the description
SHA-256-checked, which a bit-exact resume depends on. Both formats are free of pickle.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write

FORMAT = "minigan-checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, damaged, or not a minigan checkpoint."""


def _split(tree, arrays: dict):
    if isinstance(tree, dict):
        return {str(k): _split(v, arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split(v, arrays) for v in tree]
    if hasattr(tree, "__array__") and not isinstance(tree, (int, float, bool, str)):
        array = np.asarray(tree)
        if array.ndim == 0 and array.dtype.kind in "fiub":
            return array.item()
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {"__array__": name}
    if isinstance(tree, (np.integer, np.floating, np.bool_)):
        return tree.item()
    return tree


def _join(tree, arrays):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            return arrays[tree["__array__"]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


def save_checkpoint(path, state: dict) -> None:
    """Write `state` to `path` atomically."""
    arrays: dict[str, np.ndarray] = {}
    tree = _split(state, arrays)
    text = json.dumps({"format": FORMAT, "version": VERSION, "state": tree})
    digest = hashlib.sha256(text.encode()).hexdigest()
    buffer = io.BytesIO()
    np.savez(buffer, __tree__=np.frombuffer(text.encode(), dtype=np.uint8),
             __sha256__=np.frombuffer(digest.encode(), dtype=np.uint8), **arrays)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by save_checkpoint; CheckpointError if it is not whole."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as error:
        raise CheckpointError(
            f"checkpoint {path} is damaged or truncated ({type(error).__name__}: {error})"
        ) from None
    if "__tree__" not in members or "__sha256__" not in members:
        raise CheckpointError(f"{path} is not a minigan checkpoint (no __tree__ member)")
    text = members.pop("__tree__").tobytes().decode("utf-8", errors="replace")
    digest = members.pop("__sha256__").tobytes().decode("ascii", errors="replace")
    if hashlib.sha256(text.encode()).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path} is damaged: its description fails its checksum")
    document = json.loads(text)
    if document.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minigan checkpoint")
    if document.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {document.get('version')}, "
            f"this minigan reads version {VERSION}"
        )
    try:
        return _join(document["state"], members)
    except KeyError as error:
        raise CheckpointError(f"checkpoint {path} is damaged: array {error} is missing") from None
