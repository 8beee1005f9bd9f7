"""The process environment minigan sets before NumPy and Numba load their libraries.

Imported first by minigan/__init__.py, so it takes effect when minigan is imported before
NumPy (as the minigan command does); a value the user set is always kept.
"""

import os as _os

SET_HERE: dict[str, str] = {}  # the variables this module set (the user had not)


def _default(name: str, value: str) -> None:
    if name not in _os.environ:
        _os.environ[name] = SET_HERE[name] = value


# Numba's parallel loops run on GNU OpenMP threads, and so do the cpu kernels' matrix
# products (kernels/cpu/blas.py calls OpenBLAS single-threaded from inside them): one pool.
# OpenMP threads that finished a loop spin for GOMP_SPINCOUNT polls (100000: about 1.5 ms
# here) before they sleep, so the next loop or product of a training step starts without
# a wake-up (~50 us each): DCGAN-28 iterations 8-17% faster than with
# OMP_WAIT_POLICY=PASSIVE and products on OpenBLAS's own threads (benchmarks/RESULTS.md).
# GNU OpenMP lets GOMP_SPINCOUNT override OMP_WAIT_POLICY, so a wait policy the user
# chose is left alone.
if "OMP_WAIT_POLICY" not in _os.environ:
    _default("GOMP_SPINCOUNT", "100000")
# NumPy's own products (user code, the numpy device) still run on OpenBLAS's threads,
# which by default spin about 2^25 cycles after each call and would steal the cores that
# OpenMP needs; 2^4 lets them yield the core at once.
_default("OPENBLAS_THREAD_TIMEOUT", "4")


def _is_amd_zen4() -> bool:
    """AMD family 19h with AVX-512: Zen 4, whose AVX-512 units are 256 bits wide."""
    try:
        with open("/proc/cpuinfo") as info:
            head = info.read(1 << 14)
    except OSError:
        return False
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in head.splitlines())
    )
    return (fields.get("vendor_id") == "AuthenticAMD" and fields.get("cpu family") == "25"
            and "avx512f" in fields.get("flags", "").split())


# On Zen 4 OpenBLAS picks its AVX-512 (SkylakeX) sgemm, but Zen 4 executes 512-bit FMAs as
# two 256-bit halves, and OpenBLAS's AVX2 (Haswell) kernel was faster at the shapes of our
# conv layers: 161 -> 195 GFLOP/s for (3136 x 128) @ (128 x 1024), 168 -> 193 for
# (256 x 3136) @ (3136 x 2048), 2 threads; a DCGAN-28 iteration 8% faster
# (benchmarks/RESULTS.md).
if _is_amd_zen4():
    _default("OPENBLAS_CORETYPE", "Haswell")
