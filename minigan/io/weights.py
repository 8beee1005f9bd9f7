"""Weights in the safetensors format: `save` and `load`, as PyTorch users write them.

    mg.save(model.state_dict(), "g.safetensors")
    model.load_state_dict(mg.load("g.safetensors"))

safetensors (Hugging Face) stores a JSON header (names, dtypes, shapes, byte offsets, and
a str -> str metadata table) followed by the raw little-endian bytes. Nothing in it is
executed on loading, unlike pickle-based .pt files, and PyTorch reads it with
`safetensors.torch.load_file` into a model of the same architecture: names and shapes follow
PyTorch's (Module.state_dict), so `load_state_dict(..., strict=True)` accepts them.

Only what the format can hold is accepted: a flat dict of name -> Tensor or array (a
state_dict). minigan's training checkpoints (checkpoint.py) hold more (optimizer moments,
random states, the data order) and keep their own format; `minigan export` writes a run's
generator here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..autograd import Tensor
from .atomic import atomic_write

SUFFIX = ".safetensors"


def _checked_path(f, what: str) -> Path:
    if not isinstance(f, (str, os.PathLike)):
        raise TypeError(f"{what}: expected a file name ending in {SUFFIX}, got "
                        f"{type(f).__name__}")
    path = Path(f)
    if path.suffix != SUFFIX:
        raise ValueError(f"{what}: {str(path)!r} does not end in {SUFFIX}; minigan reads and "
                         "writes safetensors files only (pickle-based .pt/.pth files can run "
                         "code when loaded)")
    return path


def _host_array(name: str, value) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        # (np.ascontiguousarray would turn a 0-d array, a batch count, into shape (1,))
        return value if value.flags.c_contiguous else np.ascontiguousarray(value)
    raise TypeError(f"save: the value under {name!r} is a {type(value).__name__}; expected a "
                    "flat dict of name -> Tensor or array (a state_dict)")


def save(obj: Mapping, f, metadata: Mapping[str, str] | None = None) -> None:
    """Write a state_dict (name -> Tensor or NumPy array) to a .safetensors file,
    atomically. metadata: optional str -> str pairs stored in the header."""
    path = _checked_path(f, "save")
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict of name -> Tensor (a state_dict), got "
                        f"{type(obj).__name__}")
    from safetensors.numpy import save as to_bytes

    arrays = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: names must be strings, got {name!r}")
        arrays[name] = _host_array(name, value)
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise TypeError("save: metadata must map strings to strings")
    data = to_bytes(arrays, metadata=dict(metadata) if metadata else None)
    atomic_write(path, lambda handle: handle.write(data))


def load(f, map_location=None, weights_only: bool = True) -> dict:
    """Read a .safetensors file: name -> Tensor (stored dtype kept), on map_location (a
    device name; default: the default device). weights_only is accepted for PyTorch
    compatibility: a safetensors file never holds anything else."""
    path = _checked_path(f, "load")
    if not path.is_file():
        raise FileNotFoundError(f"load: {path} does not exist")
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except Exception as error:  # the Rust reader raises its own error types
        raise ValueError(f"load: {path} is not a readable safetensors file ({error})") from None
    from ..creation import tensor

    return {name: tensor(array, dtype=array.dtype, device=map_location)
            for name, array in arrays.items()}


def load_metadata(f) -> dict[str, str]:
    """The str -> str metadata table in a .safetensors file's header ({} when none)."""
    path = _checked_path(f, "load_metadata")
    if not path.is_file():
        raise FileNotFoundError(f"load_metadata: {path} does not exist")
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as handle:
        return dict(handle.metadata() or {})
