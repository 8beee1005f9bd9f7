"""What every benchmark shares: thread pinning, the machine's GEMM ceiling, interleaved
median timing, a description of the machine, and PyTorch when it is installed.

Import this module before NumPy is first imported: the BLAS thread count is read from the
environment when the BLAS library loads (threadpoolctl, when installed, also sets it
afterwards).
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("MINIGAN_BENCH_THREADS", "2"))
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_variable, str(THREADS))

import minigan  # noqa: E402, F401  (its OpenMP/BLAS settings, before NumPy loads BLAS)
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

_FMA_PEAK: list[float] = []


def fma_peak() -> float:
    """This machine's float32 FMA peak for THREADS threads, measured once per process
    (benchmarks/peak.py): the "% FMA peak" columns divide by it."""
    if not _FMA_PEAK:
        from .peak import fma_peak_gflops

        _FMA_PEAK.append(fma_peak_gflops(THREADS))
    return _FMA_PEAK[0]


def pin_threads(threads: int = THREADS) -> None:
    """Every thread pool to `threads`: BLAS, Numba and (when installed) PyTorch."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass  # the environment variables set above already apply
    import numba

    from minigan._environment import start_numba_threads

    start_numba_threads()  # with minigan's settings, as the cpu kernels would
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    torch = load_torch()
    if torch is not None:
        torch.set_num_threads(threads)


def load_torch():
    """The torch module, or None when it is not installed (it is never a requirement)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def gemm_ceiling(size: int = 4096, repeats: int = 3) -> float:
    """GFLOP/s of NumPy's float32 matrix product at size x size (the best of `repeats`):
    the rate any GEMM-based kernel here can reach at most."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    out = np.empty_like(a)
    np.matmul(a, b, out=out)  # warm: threads started, pages touched
    best = min(_seconds(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _seconds(function: Callable[[], object]) -> float:
    """Seconds one call takes; a self-timed callable (TorchProcess) reports its own."""
    start = time.perf_counter()
    result = function()
    elapsed = time.perf_counter() - start
    return result if getattr(function, "self_timed", False) else elapsed


# Idle threads keep spinning for a while after their work (OpenBLAS by default 2^28 cycles,
# ~75 ms here; minigan sets 2^4; GNU OpenMP in PyTorch's process ~300k polls, about a
# millisecond) and slow whatever runs next on the same cores. So a pause separates the
# timed calls of different candidates. It must stay short: on these virtual machines a
# process left idle for ~75 ms or more ran its next call far slower (an MLP-2D iteration
# 4.9 ms after a 50 ms pause, 48 ms after a 100 ms pause), so a longer pause times the
# wake-up of idle virtual CPUs instead of the candidate.
SETTLE_SECONDS = 0.01


class TorchProcess:
    """PyTorch callables living in a child process (benchmarks/torch_worker.py), each at
    its own OpenMP settings; `candidate(name)` gives a callable for time_interleaved that
    runs one call there and returns the time measured there."""

    def __init__(self, module: str, factory: str, *args):
        from minigan import _environment

        env = {key: value for key, value in os.environ.items()
               if key not in _environment.SET_HERE}
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.torch_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=env)
        self.names = self._ask({"module": module, "factory": factory, "args": list(args)})["names"]

    def _ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker exited (code {self.process.wait()})")
        return json.loads(line)

    def candidate(self, name: str) -> Callable[[], float]:
        def call() -> float:
            return self._ask({"run": name, "count": 1})["seconds"][0]

        call.self_timed = True
        return call

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Each turn of the round-robin starts with this many untimed calls: the first call after
# another candidate's turn pays for waking this one's sleeping threads (an MLP-2D
# iteration ran 5.3 ms as the first of its turn, 3.5 ms back to back), which a training
# loop, calling iteration after iteration, does not.
TURN_WARMUP_CALLS = 1


def time_interleaved(candidates: dict[str, Callable[[], object]], repeats: int = 7,
                     warmup: int = 1, settle: float = SETTLE_SECONDS,
                     calls_per_turn: int = 1) -> dict[str, float]:
    """Median seconds per call of each candidate, run round-robin in turns (a, b, c, a, b,
    c, ...) so that a slow spell of a shared machine hits every candidate alike. A turn is
    a pause of `settle` seconds (no candidate pays for the previous one's spinning
    threads), TURN_WARMUP_CALLS untimed calls when calls_per_turn > 1, then
    `calls_per_turn` timed calls back to back."""
    for _ in range(warmup):
        for function in candidates.values():
            function()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            time.sleep(settle)
            if calls_per_turn > 1:
                for _ in range(TURN_WARMUP_CALLS):
                    function()
            for _ in range(calls_per_turn):
                times[name].append(_seconds(function))
    return {name: float(np.median(values)) for name, values in times.items()}


SLOW_SECONDS = 1.0  # a candidate slower than this per call (the NumPy reference on convs) ...
SLOW_REPEATS = 3  # ... is timed this many times, on its own, after the others


def time_candidates(candidates: dict[str, Callable[[], object]], repeats: int,
                    interleave: bool = True, calls_per_turn: int = 1) -> dict[str, float]:
    """Median seconds per call: the fast candidates interleaved (`repeats` rounds of
    `calls_per_turn` calls each, see time_interleaved), or with interleave=False each in a
    block of its own (so that each keeps its thread pools and caches warm, as when it runs
    alone); the slow ones (over SLOW_SECONDS on a first call) SLOW_REPEATS times each, to
    keep a run short."""
    first = {}
    for name, function in candidates.items():
        function()  # compile, allocate workspaces, start thread pools
        time.sleep(SETTLE_SECONDS)
        first[name] = _seconds(function)
    slow = {name for name, value in first.items() if value > SLOW_SECONDS}
    fast = {name: f for name, f in candidates.items() if name not in slow}
    if interleave:
        seconds = time_interleaved(fast, repeats, warmup=0, calls_per_turn=calls_per_turn)
    else:
        seconds = {name: time_interleaved({name: f}, repeats, warmup=1, settle=0.0)[name]
                   for name, f in fast.items()}
    for name in slow:
        seconds[name] = time_interleaved({name: candidates[name]}, SLOW_REPEATS, warmup=0)[name]
    return {name: seconds[name] for name in candidates}


def _openmp_waiting() -> str:
    """The OpenMP wait setting in force: the user's, else the one minigan applied while
    its OpenMP runtime loaded (minigan/_environment.py; no longer in os.environ then)."""
    from minigan import _environment

    if "OMP_WAIT_POLICY" in os.environ:
        return f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    spin = os.environ.get("GOMP_SPINCOUNT") or _environment.SET_HERE.get("GOMP_SPINCOUNT")
    return f"GOMP_SPINCOUNT={spin or 'unset (GNU OpenMP default)'}"


def _numba_threads() -> str:
    """Numba's threading layer (minigan starts it: TBB where the tbb wheel is), with the
    OpenMP wait setting when it is GNU OpenMP's."""
    from minigan import _environment

    _environment.start_numba_threads()
    import numba

    layer = numba.threading_layer()
    return f"omp, {_openmp_waiting()}" if layer == "omp" else layer


def machine_description() -> dict[str, str]:
    """CPU model, cores, threads used, library versions, date and load: for the tables."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import numba

    torch = load_torch()
    info = {
        "cpu": f"{model} ({_llvm_cpu_name()})",
        "cores": str(os.cpu_count()),
        "threads": str(THREADS),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch is not None else "not installed",
        "blas": _blas_description(),
        "Numba's threads": _numba_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1 min) at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def _llvm_cpu_name() -> str:
    """The CPU as LLVM names it (znver4, znver5, sapphirerapids, ...): lscpu says only "AMD
    EPYC" on some machines."""
    try:
        import llvmlite.binding as llvm

        return llvm.get_host_cpu_name()
    except (ImportError, RuntimeError):
        return "unknown"


def _blas_description() -> str:
    """NumPy's BLAS and the kernel family it picked (OPENBLAS_CORETYPE, minigan/__init__.py)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    from minigan._environment import SET_HERE

    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            text = f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}"
            if pool.get("internal_api") != "openblas":
                return text + ")"
            # minigan takes its own settings out of os.environ once OpenBLAS has read them,
            # so a value there is the environment's (on one machine here, Haswell's AVX2
            # kernels on a Zen 5 CPU: half the sgemm rate; benchmarks/RESULTS.md)
            if "OPENBLAS_CORETYPE" in os.environ:
                return text + f", OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} " \
                    "set in the environment)"
            if "OPENBLAS_CORETYPE" in SET_HERE:
                return text + ", chosen by minigan/_environment.py)"
            return text + ", OpenBLAS's own choice)"
    return "unknown"


def markdown_table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def print_header(title: str, ceiling: float) -> None:
    print(f"## {title}\n")
    for key, value in machine_description().items():
        print(f"- {key}: {value}")
    print(f"- float32 GEMM ceiling (NumPy 4096^2, this run): {ceiling:.0f} GFLOP/s")
    print(f"- float32 FMA peak for {THREADS} thread(s) (benchmarks/peak.py, this run): "
          f"{fma_peak():.0f} GFLOP/s\n")
