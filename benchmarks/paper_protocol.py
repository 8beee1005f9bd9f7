"""PacGAN's Table 1 under the paper's own protocol: long, resumable runs that log a curve.

    python -m benchmarks.paper_protocol --recipe pacgan-paper-grid25 --pack 4 --seed 0 \\
        --steps 100000 [--every 5000] [--runs runs/paper] [--threads 1]

Each run trains in the folder RUNS/RECIPE-packM-seedS. Every `--every` iterations it writes
a checkpoint and appends one line to the curve file (benchmarks/paper_protocol.jsonl, or
--curve): the iteration, the PacGAN scores of 2,500 samples (modes captured, high-quality
fraction, reverse KL) and the training seconds so far. Started again with the same
arguments (or a larger --steps) it resumes from the newest checkpoint, so an interrupted
run loses at most `--every` iterations and the curve keeps one line per iteration count.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

import minigan
from minigan.gan import Trainer, recipe
from minigan.gan.interrupt import TrainingInterrupted
from minigan.gan.trainer import read_metrics
from minigan.cli import at_least

DEFAULT_CURVE = Path(__file__).resolve().parent / "paper_protocol.jsonl"


def run_name(recipe_name: str, pack: int, seed: int) -> str:
    return f"{recipe_name}-pack{pack}-seed{seed}"


def read_curve(path=DEFAULT_CURVE) -> list[dict]:
    """The curve's records (a torn last line is skipped)."""
    return read_metrics(path)


def _seconds_so_far(curve: Path, name: str, step: int) -> float:
    done = [r for r in read_curve(curve) if r["run"] == name and r["step"] <= step]
    return max((r["train_seconds"] for r in done), default=0.0)


def train(recipe_name: str, pack: int, seed: int, steps: int, every: int, runs: Path,
          curve: Path) -> None:
    name = run_name(recipe_name, pack, seed)
    folder = runs / name
    if (folder / "checkpoints").is_dir() and any((folder / "checkpoints").iterdir()):
        trainer = Trainer.resume(folder, quiet=True, steps=steps)
    else:
        config = recipe(recipe_name, pack=pack, seed=seed, steps=steps, checkpoint_every=every)
        trainer = Trainer(config, out=folder, quiet=True)
    seconds = _seconds_so_far(curve, name, trainer.step_count)
    while trainer.step_count < steps:
        target = min(steps, (trainer.step_count // every + 1) * every)
        start = time.perf_counter()
        trainer.fit(target)  # writes the checkpoint of `target` (checkpoint_every = every)
        seconds += time.perf_counter() - start
        scores = trainer.evaluate()
        record = {"run": name, "recipe": recipe_name, "data": trainer.config.data,
                  "pack": pack, "seed": seed, "step": trainer.step_count,
                  "modes": scores["modes_captured"], "n_modes": scores["n_modes"],
                  "high_quality": round(scores["high_quality_fraction"], 4),
                  "reverse_kl": round(scores["reverse_kl"], 4),
                  "train_seconds": round(seconds, 1)}
        with open(curve, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="pacgan-paper-grid25")
    parser.add_argument("--pack", type=at_least(1), default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=at_least(1), default=100_000)
    parser.add_argument("--every", type=at_least(1), default=5_000)
    parser.add_argument("--runs", type=Path, default=Path("runs/paper"))
    parser.add_argument("--curve", type=Path, default=DEFAULT_CURVE)
    parser.add_argument("--threads", type=at_least(1), default=1)
    args = parser.parse_args()
    minigan.set_num_threads(args.threads)
    try:
        train(args.recipe, args.pack, args.seed, args.steps, args.every, args.runs, args.curve)
    except TrainingInterrupted as stop:
        # the trainer checkpointed the step it finished; the same command resumes from it
        # (the seconds trained since the last curve line are not counted again)
        raise SystemExit(f"paper_protocol: stopped by {signal.Signals(stop.signum).name} at "
                         f"step {stop.step}; run the same command again to continue") from None


if __name__ == "__main__":
    main()
