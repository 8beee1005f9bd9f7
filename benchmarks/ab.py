"""Two checkouts of minigan against each other: the same training iteration in processes
of their own, in alternation, so that a change can be measured on a noisy machine.

    git worktree add ../before HEAD~1
    python -m benchmarks.ab ../before . --model dcgan28 --processes 4 --iterations 12

Each process imports minigan (and minigan.kernels) from its own checkout, builds the
model of benchmarks/train_step.py on the cpu device, runs 20 untimed iterations, then
three blocks of --iterations timed ones, and reports the median of its block medians. The
checkouts take turns process by process (A, B, A, B, ...): a slow spell of a shared
machine then falls on both. A process starts with its own environment (each checkout's
minigan/_environment.py makes its own settings).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from minigan.cli import at_least

# Run in each child: import minigan and minigan.kernels from the checkout given, not from
# wherever minigan is installed (an editable install maps minigan.kernels to its own
# folder), then time the iteration.
_CHILD = r'''
import importlib.abc, importlib.util, json, os, sys, time
tree, key, count = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Checkout(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if parts[0] != "minigan":
            return None
        folder = ([tree, "kernels"] + parts[2:] if parts[1:2] == ["kernels"]
                  else [tree, "minigan"] + parts[1:])
        base = os.path.join(*folder)
        if os.path.isfile(os.path.join(base, "__init__.py")):
            return importlib.util.spec_from_file_location(
                name, os.path.join(base, "__init__.py"), submodule_search_locations=[base])
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(name, base + ".py")
        return None


sys.meta_path.insert(0, Checkout())
sys.path.insert(0, tree)
import minigan  # noqa: E402
from benchmarks import train_step  # noqa: E402

iteration = train_step.minigan_iteration(train_step.MODELS[key], "cpu")
for _ in range(20):
    iteration()
medians = []
for _ in range(3):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - start)
    times.sort()
    medians.append(times[len(times) // 2])
medians.sort()
import minigan.kernels  # noqa: E402

print(json.dumps({"ms": medians[1] * 1e3, "from": [os.path.dirname(minigan.__file__),
                                                    os.path.dirname(minigan.kernels.__file__)]}))
'''


def run_once(tree: str, key: str, iterations: int) -> float:
    """The median iteration time (ms) of one fresh process on checkout `tree`."""
    from minigan import _environment

    env = {k: v for k, v in os.environ.items() if k not in _environment.SET_HERE}
    done = subprocess.run([sys.executable, "-c", _CHILD, tree, key, str(iterations)],
                          capture_output=True, text=True, env=env, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks.ab: the process on {tree} failed:\n{done.stderr}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for folder, expected in zip(report["from"], ("minigan", "kernels")):
        if os.path.realpath(folder) != os.path.realpath(os.path.join(tree, expected)):
            raise SystemExit(f"benchmarks.ab: the process on {tree} imported {folder}")
    return report["ms"]


def main(argv: list[str] | None = None) -> None:
    from benchmarks.train_step import MODELS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the first checkout (a folder with minigan/ and kernels/)")
    parser.add_argument("b", help="the second checkout")
    parser.add_argument("--model", choices=list(MODELS), default="dcgan28")
    parser.add_argument("--processes", type=at_least(1), default=4, help="processes per checkout")
    parser.add_argument("--iterations", type=at_least(1), default=12, help="timed per block")
    args = parser.parse_args(argv)
    trees = [os.path.abspath(t) for t in (args.a, args.b)]
    for tree in trees:
        if not os.path.isdir(os.path.join(tree, "minigan")):
            parser.error(f"{tree} is not a minigan checkout (no minigan/ folder in it)")
    results: dict[str, list[float]] = {tree: [] for tree in trees}
    for _ in range(args.processes):
        for tree in trees:
            results[tree].append(run_once(tree, args.model, args.iterations))
    print(f"{args.model}, medians of {args.processes} processes per checkout "
          f"(each: the median of 3 blocks of {args.iterations} iterations)")
    for tree, values in results.items():
        values.sort()
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {tree}: median {values[len(values) // 2]:.2f} ms  (all: {listed})")


if __name__ == "__main__":
    main()
