"""`minigan.cuda`, in the shape of `torch.cuda`: whether the GPU device can be used, and the
legacy typed constructors that make tensors on it.

Scripts written for PyTorch choose their device with `torch.cuda.is_available()` and then
name `torch.cuda.FloatTensor` only when it said yes; so these names always exist, and using
one on a machine without a usable GPU fails only when it is called, saying why.
"""

from __future__ import annotations

import numpy as np

from . import backend, creation
from .autograd import Tensor


def is_available() -> bool:
    """True when minigan's cuda device works here (CuPy imports, a GPU answers, the GPU
    kernels load); False otherwise, never an error."""
    try:
        backend.get("cuda")
    except (backend.DeviceUnavailable, ImportError):
        return False
    return True


def manual_seed(seed: int) -> None:
    """Accepted so that seeding code written for PyTorch runs; it changes nothing. minigan
    draws every device's random numbers on the host, from the generator that
    minigan.manual_seed seeds, so a seed already fixes what lands on the GPU. (PyTorch, too,
    ignores this call on a machine without a GPU.)"""
    int(seed)  # a seed that is not a number is still an error


manual_seed_all = manual_seed


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without a usable one)."""
    if not is_available():
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


class _CudaTensorType(type):
    """isinstance(t, minigan.cuda.FloatTensor): dtype float32 and on the GPU, as in PyTorch."""

    def __instancecheck__(cls, obj) -> bool:
        return (isinstance(obj, Tensor) and obj.device == "cuda"
                and obj.dtype == getattr(cls, "dtype", None))


class _CudaLegacyTensor(metaclass=_CudaTensorType):
    """FloatTensor(data) or FloatTensor(*sizes) on the GPU; `t.type(cuda.FloatTensor)`
    moves t there."""

    dtype: np.dtype
    device = "cuda"

    def __new__(cls, *data) -> Tensor:
        try:
            backend.get("cuda")
        except backend.DeviceUnavailable as error:
            raise RuntimeError(f"minigan.cuda.{cls.__name__}: {error}") from None
        return Tensor(*data, device="cuda", dtype=cls.dtype)


def _on_the_gpu(cpu_type: type) -> type:
    """The cuda twin of one of minigan's legacy typed constructors: its name and dtype."""
    return _CudaTensorType(cpu_type.__name__, (_CudaLegacyTensor,),
                           {"dtype": cpu_type.dtype, "__module__": __name__,
                            "__qualname__": cpu_type.__name__})


FloatTensor, DoubleTensor, LongTensor, IntTensor, BoolTensor = (
    _on_the_gpu(cpu_type) for cpu_type in (creation.FloatTensor, creation.DoubleTensor,
                                           creation.LongTensor, creation.IntTensor,
                                           creation.BoolTensor))


__all__ = ["is_available", "device_count", "manual_seed", "manual_seed_all", "FloatTensor",
           "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor"]
