"""Where arrays live and which kernels run on them.

A device name picks two things: the array module (numpy or cupy) and the kernel set.

    "numpy"  numpy arrays, the reference kernels (kernels/reference): the readable truth.
    "cpu"    numpy arrays, the Numba kernels (kernels/cpu), reference for the rest.
    "cuda"   cupy arrays, the GPU kernels (kernels/cuda), reference (on cupy) for the rest.

Everything above this file asks `backend.get(name)` and never branches on the name.
"""

from __future__ import annotations

import importlib
import os
from types import SimpleNamespace

import numpy as np

DEVICES = ("numpy", "cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """The requested device cannot be used on this machine; the message says why."""


class device(str):
    """A device as torch.device spells it: device("cuda"), device("cuda:0"),
    device("cuda", 0), device("cpu"), with `.type` and `.index`. It is the device's name (a
    str: "numpy", "cpu" or "cuda"), so it goes wherever a name goes and equals it. minigan
    drives one GPU: an index other than 0 is refused, naming what was asked."""

    def __new__(cls, type, index=None):
        if isinstance(type, device) and index is None:
            return type
        spec = type if index is None else f"{type}:{index}"
        name, index = _parse_device(spec)
        made = super().__new__(cls, name)
        made._index = index
        return made

    @property
    def type(self) -> str:
        return str(self)

    @property
    def index(self):
        return self._index

    def __reduce__(self):
        return (device, (str(self), self._index))


def _parse_device(spec) -> tuple:
    """(name, index) of a device spec: a name, "name:index", or an object with .type and
    .index (a torch.device)."""
    if not isinstance(spec, str) and isinstance(getattr(spec, "type", None), str):
        index = getattr(spec, "index", None)
        spec = spec.type if index is None else f"{spec.type}:{index}"
    if not isinstance(spec, str):
        raise TypeError(f"device: expected a device name such as 'cpu' or 'cuda:0', got "
                        f"{type(spec).__name__} {spec!r}")
    name, colon, number = spec.partition(":")
    if name not in DEVICES or (colon and not number.isdigit()):
        raise ValueError(f"unknown device {spec!r}: expected one of {', '.join(DEVICES)} "
                         "(optionally with the index 0, as in 'cuda:0')")
    index = int(number) if colon else None
    if index not in (None, 0):
        raise ValueError(f"device {spec!r}: minigan drives one device of each kind, index 0; "
                         f"use '{name}' or '{name}:0'")
    return name, index


class Backend:
    """A device: its array module `xp` and its kernels `K` (one namespace of functions)."""

    def __init__(self, name: str, xp, kernels: SimpleNamespace):
        self.name = device(name)
        self.xp = xp
        self.K = kernels

    def asarray(self, data, dtype=None):
        if self.name == "cuda":
            return self.xp.asarray(data, dtype=dtype)
        if hasattr(data, "get") and not isinstance(data, np.ndarray):  # a cupy array
            data = data.get()
        return np.asarray(data, dtype=dtype)

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def __reduce__(self):  # copy/deepcopy/pickle of a Tensor refer to the device by name
        return (get, (str(self.name),))


_cache: dict[str, Backend] = {}
_default: list[str] = []


def _kernel_set(*module_names: str) -> SimpleNamespace:
    """Later modules override earlier ones, name by name."""
    merged: dict = {}
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            merged[name] = getattr(module, name)
    return SimpleNamespace(**merged)


def cuda_problem() -> str | None:
    """Why the cuda device cannot be used here, or None when it can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'minigan[cuda]')"
    except Exception as error:  # a broken CUDA install raises many kinds of errors
        return f"CuPy failed to import: {error}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:
        return f"no usable NVIDIA GPU ({error})"
    if count == 0:
        return "no NVIDIA GPU was found"
    return None


def numba_problem() -> str | None:
    try:
        import numba  # noqa: F401
    except ImportError:
        return "Numba is not installed (pip install numba)"
    return None


def get(name: str | Backend | None = None) -> Backend:
    """The backend for a device name; None means the default device."""
    if isinstance(name, Backend):
        return name
    if name is None:
        name = default_device()
    if name in _cache:
        return _cache[name]
    if name not in DEVICES:  # "cuda:0", a torch.device, or a name that is not a device
        name = _parse_device(name)[0]
        if name in _cache:
            return _cache[name]
    if name == "numpy":
        result = Backend("numpy", np, _kernel_set("minigan.kernels.reference"))
    elif name == "cpu":
        problem = numba_problem()
        if problem:
            raise DeviceUnavailable(f"device 'cpu' is unavailable: {problem}")
        result = Backend(
            "cpu", np, _kernel_set("minigan.kernels.reference", "minigan.kernels.cpu")
        )
    else:
        problem = cuda_problem()
        if problem:
            raise DeviceUnavailable(f"device 'cuda' is unavailable: {problem}")
        import cupy

        result = Backend(
            "cuda", cupy, _kernel_set("minigan.kernels.reference", "minigan.kernels.cuda")
        )
    _cache[name] = result
    return result


def available_devices() -> list[str]:
    found = ["numpy"]
    if numba_problem() is None:
        found.append("cpu")
    if cuda_problem() is None:
        found.append("cuda")
    return found


def host_device() -> str:
    """The device for tensors in host memory (Tensor.cpu, from_numpy): cpu when Numba is
    installed, else numpy."""
    return "cpu" if numba_problem() is None else "numpy"


def default_device() -> str:
    """The device set by set_default_device, else the fastest one this machine has."""
    if not _default:
        _default.append(available_devices()[-1])
    return _default[0]


def set_default_device(name: str) -> None:
    _default[:] = [get(name).name]  # fails now, with the reason, if the device is unusable


_threads: list[int] = []  # the count set_num_threads was given


def get_num_threads() -> int:
    """The thread count set by set_num_threads, else the default: one per core Numba
    sees (torch.get_num_threads). Asking does not start any threads."""
    if _threads:
        return _threads[0]
    if numba_problem() is None:
        import numba

        return int(numba.config.NUMBA_NUM_THREADS)
    return os.cpu_count() or 1


def set_num_threads(n: int) -> None:
    """Use at most n threads for the host's parallel work: BLAS matrix products (every
    device's NumPy side) and the cpu device's Numba loops, like torch.set_num_threads.

    On a machine whose cores are shared with other jobs, fewer threads can be much faster:
    with the second of 2 cores busy, a CycleGAN iteration took 3.9 s with 2 BLAS threads
    and 0.3 s with 1 (benchmarks/RESULTS.md), since a parallel product waits for its
    slowest thread."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive whole number of threads, "
                         f"got {n!r}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(n, user_api="blas")
    _threads[:] = [n]
    if numba_problem() is None:
        import numba

        from ._environment import start_numba_threads

        start_numba_threads()  # Numba's pool starts here otherwise, without its settings
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
