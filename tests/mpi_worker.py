"""A tiny training run for tests/test_distributed.py, started under `mpiexec -n N` or alone.

Trains a recipe for a few steps with one thread per process and writes, from rank 0, the
final parameters and buffers (and the initial ones) to an .npz; prints the world size and
whether mpi4py was imported. --sgd LR replaces the recipe's optimizers by plain SGD (see
test_distributed.py for why the equivalence checks use it). --fail-on-rank R raises an
error on rank R after the first step, to check that every rank then stops.
"""

import argparse
import sys

import numpy as np

import minigan
from minigan import distributed, optim
from minigan.gan import Trainer, recipe


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="mlp-ring8")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--sgd", type=float, default=0.0)
    parser.add_argument("--out", default="")
    parser.add_argument("--fail-on-rank", type=int, default=-1)
    args = parser.parse_args()

    minigan.set_num_threads(1)
    overrides = dict(pair.split("=", 1) for pair in args.set)
    config = recipe(args.recipe, steps=args.steps, batch_size=args.batch_size, log_every=1,
                    **overrides)
    trainer = Trainer(config, device="cpu", out=None, quiet=True)
    if args.sgd > 0:
        trainer.optimizer_g = optim.SGD(trainer.generator.parameters(), lr=args.sgd)
        trainer.optimizer_d = optim.SGD(trainer.discriminator.parameters(), lr=args.sgd)
    initial = _state(trainer, "initial.")
    if args.fail_on_rank >= 0:
        trainer.step()
        if distributed.get_rank() == args.fail_on_rank:
            raise RuntimeError(f"rank {args.fail_on_rank} fails on purpose")
    trainer.fit()
    print(f"world size {distributed.get_world_size()}, rank {distributed.get_rank()}, "
          f"mpi4py imported: {'mpi4py' in sys.modules}", flush=True)
    if args.out and distributed.get_rank() == 0:
        losses = np.array([r["loss_d"] for r in trainer.history])
        np.savez(args.out, **initial, **_state(trainer, ""), loss_d=losses)


def _state(trainer, prefix: str) -> dict:
    values = {}
    for name, module in (("G", trainer.generator), ("D", trainer.discriminator)):
        for key, value in module.state_dict().items():
            values[f"{prefix}{name}.{key}"] = np.array(value, copy=True)
    return values


if __name__ == "__main__":
    main()
