"""Making tensors: PyTorch's factory functions."""

from __future__ import annotations

import numpy as np

from . import backend
from .autograd import Tensor
from .random import Generator, resolve


def _shape(shape) -> tuple:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor holding a copy of data (lists, numbers, arrays, tensors). An array's or
    tensor's dtype is kept; Python floats become float32, ints int64 (torch.tensor's rule)."""
    if isinstance(data, Tensor):
        device = device or data.device
        data = data.array if device == data.device else data.numpy()
    if hasattr(data, "copy") and not isinstance(data, (list, tuple)):
        data = data.copy()
    if isinstance(data, np.generic) or not hasattr(data, "dtype"):
        # numbers and lists as an array first: Tensor(2) would read a bare int as a size
        # (torch.Tensor's rule), where torch.tensor(2) is the number 2
        array = np.asarray(data)
        if dtype is None:
            python_float = array.dtype == np.float64 and not hasattr(data, "dtype")
            dtype = np.float32 if python_float else array.dtype
        data = array
    elif dtype is None:
        dtype = data.dtype
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor over a NumPy array's memory (changes show through both), keeping its
    dtype, on the host device (torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor._wrap(array, backend.get(backend.host_device()))


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


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
    """A tensor of fill_value; without a dtype, the value's, as torch.full: bool for a
    bool, int64 for an int, float32 for a float."""
    if dtype is None and isinstance(fill_value, (bool, np.bool_)):
        dtype = np.bool_
    elif dtype is None and isinstance(fill_value, (int, np.integer)):
        dtype = np.int64
    return _filled(fill_value, (shape,), dtype, requires_grad, device)


def empty(*shape, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor of the shape, to be filled by the caller (an init function, fill_):
    zeros here, where torch leaves the memory as it finds it."""
    return zeros(*shape, dtype=dtype, requires_grad=requires_grad, device=device)


def empty_like(t: Tensor, dtype=None) -> Tensor:
    return zeros_like(t, dtype)


def full_like(t: Tensor, fill_value, dtype=None) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=t.device)


def zeros_like(t: Tensor, dtype=None) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=t.device)


def ones_like(t: Tensor, dtype=None) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=t.device)


def randn(*shape, generator: Generator | None = None, dtype=None, requires_grad=False,
          device=None) -> Tensor:
    """Standard normal samples from the generator (the default one if None)."""
    values = resolve(generator).normal(_shape(shape), dtype or np.float32)
    return Tensor(values, requires_grad=requires_grad, device=device, dtype=values.dtype)


def rand(*shape, generator: Generator | None = None, dtype=None, requires_grad=False,
         device=None) -> Tensor:
    """Uniform samples in [0, 1) from the generator (the default one if None)."""
    values = resolve(generator).uniform(_shape(shape), dtype or np.float32)
    return Tensor(values, requires_grad=requires_grad, device=device, dtype=values.dtype)


def arange(*args, dtype=None, device=None) -> Tensor:
    values = np.arange(*args, dtype=dtype)
    if dtype is None and values.dtype == np.float64:
        values = values.astype(np.float32)  # float bounds give the default float dtype
    return Tensor(values, device=device, dtype=values.dtype)


def randn_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
               generator: Generator | None = None) -> Tensor:
    return randn(input.shape, generator=generator, dtype=dtype or input.dtype,
                 requires_grad=requires_grad, device=device or input.device)


def rand_like(input: Tensor, *, dtype=None, device=None, requires_grad: bool = False,
              generator: Generator | None = None) -> Tensor:
    return rand(input.shape, generator=generator, dtype=dtype or input.dtype,
                requires_grad=requires_grad, device=device or input.device)


def randint(*args, size=None, high=None, generator: Generator | None = None, dtype=None,
            device=None) -> Tensor:
    """Integers uniform in [low, high): randint(high, size) or randint(low, high, size),
    int64 by default (torch.randint)."""
    args = list(args) + [a for a in (high, size) if a is not None]
    if len(args) == 2:
        args.insert(0, 0)
    if len(args) != 3:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    low, high, size = args
    values = resolve(generator).integers(int(low), int(high), _shape(tuple(size)))
    return Tensor(values, device=device, dtype=dtype or np.int64)


def randperm(n: int, *, generator: Generator | None = None, dtype=None, device=None) -> Tensor:
    """A random permutation of 0 .. n - 1, int64 by default (torch.randperm)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: expected a whole number n >= 0, got {n!r}")
    return Tensor(resolve(generator).permutation(int(n)), device=device,
                  dtype=dtype or np.int64)


def linspace(start: float, end: float, steps: int, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """steps evenly spaced values from start to end, both included (torch.linspace)."""
    values = np.linspace(start, end, steps)
    return Tensor(values, device=device, dtype=dtype or np.float32,
                  requires_grad=requires_grad)


def eye(n: int, m: int | None = None, *, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m), device=device, dtype=dtype or np.float32,
                  requires_grad=requires_grad)


class _TensorType(type):
    """isinstance(t, minigan.FloatTensor) asks for the dtype, as in PyTorch."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == getattr(cls, "dtype", None)


class _LegacyTensor(metaclass=_TensorType):
    """PyTorch's legacy typed constructors: FloatTensor(data) or FloatTensor(*sizes)
    (zeros); `t.type(FloatTensor)` converts."""

    dtype: np.dtype

    def __new__(cls, *data, device=None) -> Tensor:
        return Tensor(*data, device=device, dtype=cls.dtype)


class FloatTensor(_LegacyTensor):
    dtype = np.dtype(np.float32)


class DoubleTensor(_LegacyTensor):
    dtype = np.dtype(np.float64)


class LongTensor(_LegacyTensor):
    dtype = np.dtype(np.int64)


class IntTensor(_LegacyTensor):
    dtype = np.dtype(np.int32)


class BoolTensor(_LegacyTensor):
    dtype = np.dtype(np.bool_)
