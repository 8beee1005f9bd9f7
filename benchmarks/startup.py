"""Start-up: from a fresh process to the first finished training step, cold and warm.

    python -m benchmarks.startup --recipes dcgan-mnist mlp-ring8 --rounds 3

Each round and recipe runs two fresh processes on one new, empty Numba cache folder
(NUMBA_CACHE_DIR): the first compiles every kernel the step needs (cold, as after an
install), the second loads them from that cache (warm, every later run). Each process
builds the recipe's trainer on the cpu device and runs one training step, as `minigan
train --recipe R --steps 1` does before it writes anything, and reports the wall time
from the process's start (the interpreter's own start-up included) to the end of the
step, split into importing minigan, building the trainer and the step itself, with the
seconds Numba spent compiling and the number of functions it compiled (each one a
separate LLVM compilation; functions compiled inside another one are not counted again),
and the CPU time of the whole process (all threads; steadier than wall time on a
shared machine, and what a quiet machine's wall time would be for this mostly serial
work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from minigan.cli import at_least

# Run in each child: the phases of a start, timed from the moment the parent started it
# (passed in as a time.time() stamp, since the child's own clock starts after Python).
_CHILD = r'''
import json, resource, sys, time
spawned, recipe_name = float(sys.argv[1]), sys.argv[2]
import minigan
from minigan.compilation import CompileWatch
imported = time.time()
compiled = []
with CompileWatch() as watch:
    from numba.core import event

    class Count(event.Listener):
        depth = 0

        def on_start(self, event):
            if self.depth == 0:
                data = event.data
                compiled.append([data["dispatcher"].py_func.__qualname__,
                                 ", ".join(str(a) for a in data["args"]), time.time()])
            self.depth += 1

        def on_end(self, _event):
            self.depth -= 1
            if self.depth == 0:
                compiled[-1][2] = time.time() - compiled[-1][2]

    counter = Count()
    event.register("numba:compile", counter)
    from minigan.gan import Trainer, recipe
    trainer = Trainer(recipe(recipe_name), device="cpu", out=None, quiet=True)
    built = time.time()
    build_compile = watch.new_seconds()
    trainer.step()
    stepped = time.time()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "import": imported - spawned,
                  "build": built - imported, "step": stepped - built, "total": stepped - spawned,
                  "compile": watch.seconds, "build_compile": build_compile,
                  "functions": len(compiled), "compiled": compiled}))
'''


def one_start(recipe: str, cache: str, threads: int | None) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    if threads is not None:
        env["NUMBA_NUM_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-c", _CHILD, repr(time.time()), recipe],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from minigan.gan.recipes import RECIPES  # the names only: the children start afresh

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["dcgan-mnist", "mlp-ring8"],
                        choices=sorted(RECIPES), metavar="RECIPE")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--list", action="store_true",
                        help="list each compiled function (cold starts) with its seconds")
    parser.add_argument("--threads", type=at_least(1), default=None,
                        help="NUMBA_NUM_THREADS for the children (default: Numba's)")
    args = parser.parse_args()
    results: dict[tuple[str, str], list[dict]] = {}
    for round_ in range(args.rounds):
        for recipe in args.recipes:
            with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
                for kind in ("cold", "warm"):
                    r = one_start(recipe, cache, args.threads)
                    results.setdefault((recipe, kind), []).append(r)
                    print(f"round {round_ + 1} {recipe} {kind}: total {r['total']:.2f} s, "
                          f"CPU {r['cpu']:.2f} s "
                          f"(import {r['import']:.2f}, build {r['build']:.2f}, step "
                          f"{r['step']:.2f}; compiling {r['compile']:.2f} s, "
                          f"{r['functions']} functions)", flush=True)
                    if args.list:
                        for name, types, seconds in sorted(r["compiled"], key=lambda c: -c[2]):
                            print(f"    {seconds:6.2f} s  {name}({types})")
    print(f"medians ({os.getloadavg()[0]:.1f} load at the end):")
    for (recipe, kind), runs in results.items():
        median = {key: statistics.median(r[key] for r in runs) for key in runs[0]
                  if key != "compiled"}
        print(f"  {recipe} {kind}: total {median['total']:.2f} s, CPU {median['cpu']:.2f} s "
              f"(import "
              f"{median['import']:.2f}, build {median['build']:.2f}, step "
              f"{median['step']:.2f}; compiling {median['compile']:.2f} s, "
              f"{median['functions']:.0f} functions; {len(runs)} runs)")


if __name__ == "__main__":
    main()
