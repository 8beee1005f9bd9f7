"""Quality trials of the dcgan-mnist recipe: one training run, scored at several step counts.

    python -m benchmarks.digit_trials --label "lr_g 4e-4" --set lr_g=4e-4 --eval-at 600,1200 \
        --seed 0 --threads 1 --out benchmarks/digit_trials.jsonl

Each score is the one `minigan eval --n 5000` gives: `Trainer.evaluate(5000)`, the bundled
classifier's Frechet distance against its 4,000 real training images and the classes covered
(here with evaluate's default noise seed 12345; the command's --seed defaults to 0). One JSON
line per evaluation point is appended to --out, with the training seconds so far (evaluation
excluded), the mean milliseconds per step, and the mean CPU milliseconds per step (process
time: with one thread, steadier than wall time on a shared machine). With --ema DECAYS, EMAs
of G are kept beside the run (they do not change it) and scored too, also with averaged
batch-norm statistics with --ema-bn-average. --grid writes the sample grids.
"""

from __future__ import annotations

import argparse
import json
import time

import minigan
from minigan.gan import Trainer, recipe
from minigan.gan.ema import GeneratorEMA
from minigan.io.images import picture_format
from minigan.cli import at_least


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    return text


def _track_emas(trainer, decays: list[float], bn_average: bool) -> dict:
    """EMAs of G kept beside the run (they do not change its training): for each decay one
    with recomputed batch-norm statistics (the trainer's) and, if asked, one with averaged
    statistics."""
    emas = {}
    for decay in decays:
        emas[f"ema{decay}"] = GeneratorEMA(trainer.generator, decay)
        if bn_average:
            emas[f"ema{decay}_bn_average"] = GeneratorEMA(trainer.generator, decay, "average")
    step = trainer.step

    def step_and_update():
        record = step()
        started, cpu_started = time.perf_counter(), time.process_time()
        for ema in emas.values():
            ema.update(trainer.generator)
        trainer.ema_seconds += time.perf_counter() - started  # not counted as training
        trainer.ema_cpu_seconds += time.process_time() - cpu_started
        return record

    trainer.ema_seconds = trainer.ema_cpu_seconds = 0.0

    trainer.step = step_and_update
    return emas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="dcgan-mnist")
    parser.add_argument("--label", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--eval-at", default="1200")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--ema", default="", help="decays of EMAs to score too")
    parser.add_argument("--ema-bn-average", action="store_true",
                        help="also score each EMA with averaged batch-norm statistics")
    parser.add_argument("--grid", help="write the fixed-noise sample grid at each point to this "
                        "path ({steps} is replaced by the step count)")
    parser.add_argument("--grid-ema", default="", help="... from this EMA (e.g. ema0.999)")
    parser.add_argument("--n", type=at_least(1), default=5000)
    parser.add_argument("--out", default="benchmarks/digit_trials.jsonl")
    args = parser.parse_args(argv)
    minigan.set_num_threads(args.threads)
    overrides = {}
    for pair in args.set:
        key, value = pair.split("=", 1)
        overrides[key] = [float(v) for v in value.split(",")] if key == "betas" else _value(value)
    eval_at = sorted(int(s) for s in args.eval_at.split(","))
    if args.grid:  # refused now, not after the first hour of training
        try:
            picture_format(args.grid)
        except ValueError as error:
            parser.error(f"--grid {error}")
        if len(eval_at) > 1 and "{steps}" not in args.grid:
            parser.error("--grid needs {steps} in its path when --eval-at has several points")
    config = recipe(args.recipe, seed=args.seed, steps=eval_at[-1], **overrides)
    trainer = Trainer(config, out=None, quiet=True)
    decays = [float(d) for d in args.ema.split(",")] if args.ema else []
    emas = _track_emas(trainer, decays, args.ema_bn_average)
    trained = cpu = 0.0
    for steps in eval_at:
        started, cpu_started = time.perf_counter(), time.process_time()
        trainer.fit(steps)
        cpu += time.process_time() - cpu_started - trainer.ema_cpu_seconds
        trainer.ema_cpu_seconds = 0.0
        trained += time.perf_counter() - started - trainer.ema_seconds
        trainer.ema_seconds = 0.0
        scores = trainer.evaluate(args.n)
        record = {
            "label": args.label, "set": overrides, "seed": args.seed, "steps": steps,
            "threads": args.threads, "fd": round(scores["frechet_distance"], 2),
            "classes": scores["classes_covered"],
            "share_1": round(scores["class_histogram"][1], 4),
            "train_s": round(trained, 1), "ms_per_step": round(1000 * trained / steps, 1),
            "cpu_ms_per_step": round(1000 * cpu / steps, 1),
        }
        for name, ema in emas.items():
            trainer.ema = ema
            other = trainer.evaluate(args.n)
            trainer.ema = None
            record[f"fd_{name}"] = round(other["frechet_distance"], 2)
            record[f"classes_{name}"] = other["classes_covered"]
        print(json.dumps(record), flush=True)
        with open(args.out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if args.grid:  # after the record: a score is never lost to a picture
            trainer.ema = emas.get(args.grid_ema)
            trainer.save_samples(args.grid.format(steps=steps))
            trainer.ema = None


if __name__ == "__main__":
    main()
