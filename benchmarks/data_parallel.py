"""Data-parallel training steps on 1 and N MPI processes: time per iteration, scaling
efficiency, and the all-reduce's share of the step (minigan/distributed.py).

    python -m benchmarks.data_parallel                       # one process
    .venv/bin/mpiexec -n 2 python -m benchmarks.data_parallel   # two, same global batch
    .venv/bin/mpiexec -n 2 python -m benchmarks.data_parallel --batch-per-process 64

Each process runs one thread (threads pinned, so N processes use N cores). The trainer's
own step is timed (`Trainer.step`: D step and G step, data, noise, metrics), after warm-up
iterations. The group's all_reduce is wrapped in a timer, so the time spent inside it is
measured in the real step: that includes waiting for the slowest rank to arrive. A second
measurement times the same all-reduces alone after a barrier (the wire and copy cost with no
waiting). Rank 0 prints one JSON line (and appends it to --results if given).

--batch N fixes the global batch (strong scaling: each process gets N / world);
--batch-per-process fixes each process's share (weak scaling: the global batch grows).
Efficiency: strong, t_1 / (world * t_world) with the same global batch; weak, t_1 / t_world
at the same per-process batch, where t is the time per iteration. Run the 1-process case
with the same flags to get t_1.

    python -m benchmarks.data_parallel --paper-model T1_MS [--parameters P]

prints the cost model of benchmarks/RESULTS.md for 8-64 nodes instead: the ring all-reduce
time 2 (N-1)/N * bytes / bandwidth + 2 (N-1) * latency per collective, at 10 and 100 Gbit/s,
against the compute time of one step (T1_MS on one node, split N ways at a fixed global
batch, or kept whole when each node keeps its own batch).
"""

from __future__ import annotations

import argparse
import json
import os
import time

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before NumPy loads BLAS

import numpy as np  # noqa: E402

import minigan  # noqa: E402
from minigan import distributed  # noqa: E402
from minigan.gan import Trainer, recipe  # noqa: E402
from minigan.cli import at_least  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="dcgan-mnist")
    parser.add_argument("--batch", type=at_least(1), default=64,
                        help="global batch (strong scaling)")
    parser.add_argument("--batch-per-process", type=int, default=0,
                        help="each process's batch (weak scaling); overrides --batch")
    parser.add_argument("--steps", type=at_least(1), default=20)
    parser.add_argument("--warmup", type=at_least(0), default=3)
    parser.add_argument("--reduce-repeats", type=at_least(1), default=50)
    parser.add_argument("--results", default="", help="append the JSON line to this file")
    parser.add_argument("--paper-model", type=float, default=0.0, metavar="T1_MS",
                        help="print the 8-64 node cost model for this 1-node step time")
    parser.add_argument("--parameters", type=int, default=1_920_194,
                        help="parameters reduced per step (dcgan-mnist: G 1,781,505 + D "
                             "138,689)")
    args = parser.parse_args()
    if args.paper_model:
        paper_model(args.paper_model / 1000, args.parameters)
        return

    minigan.set_num_threads(1)
    world = distributed.launched_world_size()
    batch = args.batch_per_process * world if args.batch_per_process else args.batch
    trainer = Trainer(recipe(args.recipe, batch_size=batch), device="cpu", out=None,
                      quiet=True)
    group = trainer.world
    reduce_seconds = [0.0]
    if group.world_size > 1:
        plain_all_reduce = group.all_reduce

        def timed_all_reduce(array, average=False):
            start = time.perf_counter()
            plain_all_reduce(array, average)
            reduce_seconds[0] += time.perf_counter() - start
            return array

        group.all_reduce = timed_all_reduce
    for _ in range(args.warmup):
        trainer.step()
    reduce_seconds[0] = 0.0
    group.barrier()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - start)
    in_step = reduce_seconds[0] / args.steps
    alone = _all_reduce_alone(trainer, group, args.reduce_repeats)
    parameters = sum(p.numel() for m in (trainer.generator, trainer.discriminator)
                     for p in m.parameters())
    result = {
        "recipe": args.recipe, "processes": group.world_size, "global_batch": batch,
        "batch_per_process": batch // group.world_size, "steps": args.steps,
        "median_ms": round(1000 * float(np.median(times)), 1),
        "mean_ms": round(1000 * float(np.mean(times)), 1),
        "all_reduce_in_step_ms": round(1000 * in_step, 2),
        "all_reduce_share": round(in_step / float(np.mean(times)), 4),
        "all_reduce_alone_ms": round(1000 * alone, 2),
        "parameters": parameters, "bytes_reduced_per_step": 4 * parameters,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average": os.getloadavg()[0],
    }
    if group.rank == 0:
        line = json.dumps(result)
        print(line, flush=True)
        if args.results:
            with open(args.results, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def _all_reduce_alone(trainer, group, repeats: int) -> float:
    """Seconds for one step's all-reduces (G's and D's flat gradients) with every rank
    already waiting: a barrier first, so no rank's lateness is counted."""
    if group.world_size == 1:
        return 0.0
    flats = trainer.optimizer_d.flat_grads() + trainer.optimizer_g.flat_grads()
    total = 0.0
    for _ in range(repeats):
        group.barrier()
        start = time.perf_counter()
        for flat in flats:
            group.all_reduce(flat, average=True)
        total += time.perf_counter() - start
    return total / repeats


# Link assumptions of the paper model: bandwidth in bytes/s, and a per-message latency
# (one hop of the ring): ~20 us for TCP over 10 Gbit/s Ethernet, ~5 us for RDMA at 100 Gbit/s
# (order-of-magnitude figures, not measurements).
LINKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}
COLLECTIVES_PER_STEP = 2  # D's flat gradient, then G's (n_critic = 1)


def ring_all_reduce_seconds(nbytes: float, nodes: int, bandwidth: float, latency: float
                            ) -> float:
    """Ring all-reduce (reduce-scatter then all-gather): each node sends and receives
    2 (N-1)/N of the array, in 2 (N-1) messages one after the other."""
    return 2 * (nodes - 1) / nodes * nbytes / bandwidth + 2 * (nodes - 1) * latency


def paper_model(t1: float, parameters: int) -> None:
    nbytes = 4 * parameters / COLLECTIVES_PER_STEP  # float32, split over the two collectives
    print(f"bytes reduced per step: {4 * parameters:,} ({parameters:,} float32 parameters)")
    print("| nodes | link | all-reduce per step (ms) | fixed global batch: compute, "
          "efficiency | batch per node: efficiency |")
    print("|---|---|---|---|---|")
    for nodes in (8, 16, 32, 64):
        for link, (bandwidth, latency) in LINKS.items():
            comm = COLLECTIVES_PER_STEP * ring_all_reduce_seconds(nbytes, nodes, bandwidth,
                                                                  latency)
            strong = t1 / nodes
            print(f"| {nodes} | {link} | {1000 * comm:.1f} | {1000 * strong:.1f} ms, "
                  f"{strong / (strong + comm):.0%} | {t1 / (t1 + comm):.0%} |")


if __name__ == "__main__":
    main()
