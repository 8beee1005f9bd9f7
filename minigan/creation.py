"""Making tensors: PyTorch's factory functions."""

from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor
from .random import Generator, resolve


def _shape(shape) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor holding a copy of data (lists, numbers, arrays, tensors)."""
    if isinstance(data, Tensor):
        device = device or data.device
        data = data.array if device == data.device else data.numpy()
    if hasattr(data, "copy") and not isinstance(data, (list, tuple)):
        data = data.copy()
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _filled(fill, shape, dtype, requires_grad, device) -> Tensor:
    b = backend.get(device)
    array = b.xp.full(_shape(shape), fill, dtype=dtype or np.float32)
    out = Tensor._wrap(array, b)
    return out.requires_grad_(requires_grad) if requires_grad else out


def zeros(*shape, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    return _filled(0, shape, dtype, requires_grad, device)


def ones(*shape, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    return _filled(1, shape, dtype, requires_grad, device)


def full(shape, fill_value, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    return _filled(fill_value, (shape,), dtype, requires_grad, device)


def zeros_like(t: Tensor, dtype=None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device)


def ones_like(t: Tensor, dtype=None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device)


def randn(*shape, generator: Generator | None = None, dtype=None, requires_grad=False,
          device=None) -> Tensor:
    """Standard normal samples from the generator (the default one if None)."""
    values = resolve(generator).normal(_shape(shape), dtype or np.float32)
    return Tensor(values, requires_grad=requires_grad, device=device)


def rand(*shape, generator: Generator | None = None, dtype=None, requires_grad=False,
         device=None) -> Tensor:
    """Uniform samples in [0, 1) from the generator (the default one if None)."""
    values = resolve(generator).uniform(_shape(shape), dtype or np.float32)
    return Tensor(values, requires_grad=requires_grad, device=device)


def arange(*args, dtype=None, device=None) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype), device=device)
