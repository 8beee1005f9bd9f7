"""Every process-wide effect minigan has, in one place.

minigan changes nothing outside itself but what this list says; each item is kept because
it measurably helps minigan (benchmarks/RESULTS.md), and a value the user set always wins.
`minigan.set_num_threads(n)` is the one knob for threads.

1. NumPy's OpenBLAS, when `import minigan` comes before NumPy is first imported (as in
   the `minigan` command): `OPENBLAS_THREAD_TIMEOUT=4` (its idle threads yield their core
   at once instead of spinning ~2^25 cycles after each call) and, on AMD Zen 4,
   `OPENBLAS_CORETYPE=Haswell` (its AVX2 sgemm; Zen 4 runs 512-bit FMAs as two halves).
   OpenBLAS reads them when it loads, which this module makes happen at once; then they
   are taken out of `os.environ` again, so child processes and libraries loaded later see
   the user's environment. After NumPy, they change nothing.
2. Numba's threads, when the cpu kernels first run (device "cpu"): Intel TBB's, from the
   `tbb` wheel (a dependency on x86-64), whose library minigan loads by its full path
   (the wheel puts it outside the loader's search path) so that Numba's TBB threading
   layer can start. TBB's pool is minigan's own: it shares nothing with the GNU OpenMP
   runtime that PyTorch (and other libraries) use, so neither library's thread settings
   or waiting reach the other's, in one process. It is also as fast or faster than
   Numba's OpenMP layer here (benchmarks/RESULTS.md). `NUMBA_THREADING_LAYER` set by the
   user wins; without TBB, Numba runs on GNU OpenMP as below.
   OpenMP waiting, when Numba runs on GNU OpenMP: Numba's OpenMP threads poll for at most
   `GOMP_SPINCOUNT=1000` rounds (~15 us) after a parallel loop, then sleep, instead of GNU
   OpenMP's default 300000 (~4.5 ms). Spinning saves the wake-up of the next loop on a
   quiet machine, but on a machine whose cores are busy a spinning thread holds a core
   that the thread it waits for needs: with another job on one of 2 cores, mlp-ring8 took
   2360 ms an iteration at 100000 polls, 7-130 ms at 1000 or 0 polls, 65-115 ms on one
   thread (benchmarks/RESULTS.md). The variable is set only while Numba loads its OpenMP
   runtime, which reads it then. GNU OpenMP is one runtime per process: when PyTorch (or
   anything else using it) was imported first, Numba runs on that runtime as it is, and a
   library imported after minigan's first cpu loop shares minigan's (import it first, or
   set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself, to choose otherwise).
3. OpenMP thread counts, on Numba's OpenMP layer: Numba starts its threads with
   omp_set_num_threads(its count), which would change the count of a runtime already
   loaded (PyTorch's `get_num_threads()` went from 1 to 2). `start_numba_threads` puts
   every loaded OpenMP runtime's count back as it was.
4. OpenBLAS's thread count is 1 while a cpu product runs on Numba's threads (one OpenBLAS
   call per thread), then back to what it was (kernels/cpu/blas.py).
5. glibc's malloc, only with `MINIGAN_MALLOC_TUNING=1`: it then keeps freed memory
   (kernels/cpu/_util.py, `keep_freed_memory`), for every library in the process. By
   default malloc is left alone; the cpu kernels' results come from buffers they keep
   themselves (`_util.fresh`), which touch nothing outside minigan.
"""

import os as _os
import threading as _threading

SET_HERE: dict[str, str] = {}  # the variables this module applied (the user had set none)

# GNU OpenMP's spin count for Numba's threads (item 2). Without OpenBLAS the cpu products
# stay on the BLAS library's own threads (kernels/cpu/blas.py), and two pools must not
# spin beside each other: then 0.
OPENMP_SPIN_COUNT = "1000"


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


def _openblas_settings() -> dict[str, str]:
    # OpenBLAS's threads spin about 2^25 cycles after each call by default and would take
    # the cores that Numba's threads need; 2^4 lets them yield at once.
    wanted = {"OPENBLAS_THREAD_TIMEOUT": "4"}
    # On Zen 4 OpenBLAS picks its AVX-512 (SkylakeX) sgemm, but its AVX2 (Haswell) kernel
    # was faster at the shapes of our conv layers: 161 -> 195 GFLOP/s for (3136 x 128) @
    # (128 x 1024), 168 -> 193 for (256 x 3136) @ (3136 x 2048), 2 threads; a DCGAN-28
    # iteration 8% faster (benchmarks/RESULTS.md).
    if _is_amd_zen4():
        wanted["OPENBLAS_CORETYPE"] = "Haswell"
    return {name: value for name, value in wanted.items() if name not in _os.environ}


class _Scoped:
    """Environment variables set for the duration of a `with` block, then removed."""

    def __init__(self, variables: dict[str, str]):
        self.variables = variables

    def __enter__(self):
        _os.environ.update(self.variables)

    def __exit__(self, *exc):
        for name, value in self.variables.items():
            if _os.environ.get(name) == value:
                del _os.environ[name]


def _load_numpy() -> None:
    """Import NumPy (and so its BLAS library) under item 1's settings."""
    import sys

    if "numpy" in sys.modules:
        return  # loaded already: its BLAS has read the environment
    settings = _openblas_settings()
    with _Scoped(settings):
        import numpy

        numpy.ones(1) @ numpy.ones(1)  # OpenBLAS reads its settings when first used too
    SET_HERE.update(settings)


_load_numpy()

_started = []
_starting = _threading.Lock()


# The name Numba's TBB layer asks the loader for (oneTBB's interface version 12).
_TBB_LIBRARY = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib", "win32": "tbb12.dll"}


def _load_tbb() -> bool:
    """Load the `tbb` wheel's library by its full path, so that Numba's TBB threading layer
    (which asks for it by name) finds it; unless the user chose a layer that does not use
    TBB. Returns whether it is loaded."""
    import sys

    if _os.environ.get("NUMBA_THREADING_LAYER", "default") not in (
            "default", "tbb", "safe", "threadsafe"):
        return False
    import ctypes
    from importlib import metadata

    name = _TBB_LIBRARY.get("linux" if sys.platform.startswith("linux") else sys.platform)
    try:
        for entry in metadata.files("tbb") or []:
            if entry.name == name:
                path = entry.locate()
                if sys.platform == "win32":
                    _os.add_dll_directory(str(path.parent))
                ctypes.CDLL(str(path), mode=getattr(ctypes, "RTLD_GLOBAL", 0))
                return True
    except (OSError, metadata.PackageNotFoundError):
        pass
    return False


def start_numba_threads() -> None:
    """Start Numba's thread pool (once) on TBB, else under item 2's spin count, keeping
    every OpenMP runtime's thread count as it was (item 3). Called before minigan's first
    parallel loop and before it sets Numba's thread count."""
    with _starting:
        if _started:
            return
        _started.append(True)
        import numba
        from threadpoolctl import ThreadpoolController

        libraries = ThreadpoolController()
        runtimes = libraries.select(user_api="openmp").lib_controllers
        counts = [(runtime, runtime.get_num_threads()) for runtime in runtimes]
        spin = {}
        if not runtimes and "OMP_WAIT_POLICY" not in _os.environ and \
                "GOMP_SPINCOUNT" not in _os.environ:
            # a new runtime reads it now; GNU OpenMP lets GOMP_SPINCOUNT override a wait
            # policy, so one the user chose is left alone
            openblas = libraries.select(internal_api="openblas").lib_controllers
            spin = {"GOMP_SPINCOUNT": OPENMP_SPIN_COUNT if openblas else "0"}
        _load_tbb()
        with _Scoped(spin):
            numba.get_num_threads()  # starts the pool (numba.np.ufunc.parallel)
        if numba.threading_layer() == "omp":
            SET_HERE.update(spin)  # (on TBB, no OpenMP runtime loaded to read it)
        for runtime, count in counts:
            if runtime.get_num_threads() != count:
                runtime.set_num_threads(count)
