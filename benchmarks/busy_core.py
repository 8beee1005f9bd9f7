"""Thread settings on a machine whose cores are busy with other work.

    python -m benchmarks.busy_core --recipe mlp-ring8 --rounds 7
    python -m benchmarks.busy_core --recipe dcgan-mnist --rounds 5 --steps 6 --no-busy

Runs `minigan bench --recipe R` in fresh processes, one per configuration per round, the
configurations taking turns (A, B, C, A, B, C, ...) so that a slow spell of a shared
machine falls on all of them, and prints each process's median ms/iteration and the
median over the rounds. Unless --no-busy, a busy loop pinned on core 0 (`taskset -c 0 sh
-c 'while :; do :; done'`) runs the whole time: the case where another job holds one of
the cores. The loop is started and stopped by this script (its own process id only).

A configuration is a name, extra environment variables and extra `minigan bench`
arguments (see CONFIGS); --configs picks some.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
from minigan.cli import at_least

CONFIGS: dict[str, tuple[dict[str, str], list[str]]] = {
    "default": ({}, []),
    "threads-1": ({}, ["--threads", "1"]),
    "threads-2": ({}, ["--threads", "2"]),
    # OpenMP threads sleep at once when idle (GNU OpenMP: spin count 0)
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, []),
    # GNU OpenMP's own default spin count when no wait policy is set (libgomp's env.c)
    "spin-300k": ({"GOMP_SPINCOUNT": "300000"}, []),
    "spin-100k": ({"GOMP_SPINCOUNT": "100000"}, []),
    "spin-10k": ({"GOMP_SPINCOUNT": "10000"}, []),
    "spin-1k": ({"GOMP_SPINCOUNT": "1000"}, []),
    "spin-0": ({"GOMP_SPINCOUNT": "0"}, []),
    # Numba's GNU OpenMP layer instead of TBB (minigan's default where the tbb wheel is)
    "openmp": ({"NUMBA_THREADING_LAYER": "omp"}, []),
}

_MEDIAN = re.compile(r"median ([0-9.]+) ms/iteration")


def run_once(recipe: str, steps: int, warmup: int, env: dict[str, str],
             args: list[str], timeout: float) -> float | None:
    """One `minigan bench` process: its median ms/iteration, None if it failed."""
    command = [sys.executable, "-m", "minigan.cli", "bench", "--recipe", recipe,
               "--steps", str(steps), "--warmup", str(warmup), *args]
    try:
        done = subprocess.run(command, env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    found = _MEDIAN.search(done.stdout)
    if done.returncode != 0 or not found:
        sys.stderr.write(done.stderr[-2000:])
        return None
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mlp-ring8")
    parser.add_argument("--rounds", type=at_least(1), default=5)
    parser.add_argument("--steps", type=at_least(1), default=30)
    parser.add_argument("--warmup", type=at_least(0), default=3)
    parser.add_argument("--configs", nargs="+", default=["default", "threads-1", "passive"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--no-busy", action="store_true", help="no busy loop on core 0")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds before one process is given up")
    args = parser.parse_args()

    busy = None
    if not args.no_busy:
        busy = subprocess.Popen(["taskset", "-c", "0", "sh", "-c", "while :; do :; done"],
                                start_new_session=True)
    results: dict[str, list[float]] = {name: [] for name in args.configs}
    try:
        for round_ in range(args.rounds):
            for name in args.configs:
                env, extra = CONFIGS[name]
                ms = run_once(args.recipe, args.steps, args.warmup, env, extra, args.timeout)
                print(f"round {round_ + 1} {name:>10}: "
                      + ("failed" if ms is None else f"{ms:.1f} ms"), flush=True)
                if ms is not None:
                    results[name].append(ms)
    finally:
        if busy is not None:
            os.killpg(busy.pid, signal.SIGTERM)
            busy.wait()
    where = "busy loop on core 0" if busy is not None else "no busy loop"
    print(f"{args.recipe}, {where}, {os.getloadavg()[0]:.1f} load at the end:")
    for name, values in results.items():
        if values:
            print(f"  {name:>10}: median {statistics.median(values):.1f} ms "
                  f"(range {min(values):.1f}-{max(values):.1f}, {len(values)} processes)")


if __name__ == "__main__":
    main()
