"""Mode coverage of the 2-D recipes over seeds, beside PacGAN's Table 1.

    python -m benchmarks.mode_coverage [--seeds 3] [--recipes ...] [--set KEY=VALUE ...]
    python -m benchmarks.mode_coverage --paper [--curve benchmarks/paper_protocol.jsonl]

The first form trains each recipe once per seed (0, 1, ...) and prints modes captured, the
high-quality fraction and the reverse KL as mean ± std over seeds (and each seed's value),
with the iteration count and the median wall and CPU time of a run; `--jsonl FILE` appends one
record per run. The second trains nothing: it reads the long paper-protocol runs' curve
(benchmarks/paper_protocol.py) and prints, for each row of PacGAN's Table 1, the paper's
numbers next to minigan's at the last iteration every seed of that row has reached.

PacGAN's protocol (Lin et al. 2018, section 5.1): 2,500 generated samples; a sample is high
quality when it lies within 3 standard deviations of its nearest mode; a mode is captured
when it has at least one high-quality sample; reverse KL of the mode histogram to uniform.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from minigan.gan import Trainer, recipe
from minigan.io import save_points_plot

from .paper_protocol import DEFAULT_CURVE, read_curve
from minigan.cli import at_least

# PacGAN (Lin et al. 2018, arXiv:1712.04086), Table 1: mean over 10 trials of modes
# captured, percentage of high-quality samples and reverse KL, at 400 epochs.
PAPER_TABLE = {
    ("ring8", 1): ("GAN", 6.3, 98.2, 0.45),
    ("ring8", 2): ("PacGAN2", 7.9, 95.6, 0.07),
    ("ring8", 3): ("PacGAN3", 7.8, 97.7, 0.10),
    ("ring8", 4): ("PacGAN4", 7.8, 95.9, 0.07),
    ("grid25", 1): ("GAN", 17.3, 94.8, 0.70),
    ("grid25", 2): ("PacGAN2", 23.8, 91.3, 0.13),
    ("grid25", 3): ("PacGAN3", 24.6, 94.2, 0.06),
    ("grid25", 4): ("PacGAN4", 24.8, 93.6, 0.04),
}

DEFAULT_RECIPES = ["mlp-ring8", "wgan-gp-ring8", "mlp-grid25", "wgan-gp-grid25",
                   "pacgan-grid25"]


def _mixture(data: str) -> str:
    return data.split("-")[0]  # "grid25-100k" is grid25 at the paper's size


def _spread(values, digits: int) -> str:
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def run(name: str, seed: int, device: str, overrides: dict, plot=None) -> dict:
    trainer = Trainer(recipe(name, seed=seed, **overrides), device=device, quiet=True)
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit()
    seconds = time.perf_counter() - start
    scores = trainer.evaluate()
    scores["seconds"] = seconds
    # CPU seconds of this (single-threaded) process: close to the wall time on an idle
    # core, and not inflated by other jobs sharing the machine, unlike `seconds`
    scores["cpu_seconds"] = time.process_time() - cpu_start
    scores["steps"] = trainer.step_count
    if plot is not None:  # the very samples that were scored (evaluate's default seed)
        save_points_plot(trainer.sample(2500, seed=12345), plot, real=trainer.data.x[:2000])
    return scores


def paper_row(data: str, pack: int) -> str:
    row = PAPER_TABLE.get((_mixture(data), pack))
    if row is None:
        return ""
    label, modes, hq, kl = row
    return f"{label}: {modes} modes, {hq}%, KL {kl}"


def quick_table(args) -> None:
    overrides = dict(pair.split("=", 1) for pair in args.set)
    print("| recipe | iterations | modes captured | high quality % | reverse KL | "
          "wall s/run | CPU s/run | per seed (modes / HQ %) | paper |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.recipes:
        results = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            plot = None
            if args.plots:
                args.plots.mkdir(parents=True, exist_ok=True)
                plot = args.plots / f"{args.label or name}-{name}-seed{seed}.png"
            scores = run(name, seed, args.device, overrides, plot)
            results.append(scores)
            if args.jsonl:
                record = {"recipe": name, "set": overrides, "seed": seed,
                          "label": args.label or name,
                          **{k: v for k, v in scores.items() if k != "mode_counts"}}
                with open(args.jsonl, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
        config = recipe(name, **overrides)
        modes = [r["modes_captured"] for r in results]
        hq = [100 * r["high_quality_fraction"] for r in results]
        kl = [r["reverse_kl"] for r in results]
        seeds = ", ".join(f"{m} / {h:.1f}" for m, h in zip(modes, hq))
        print(f"| {args.label or name} | {config.steps} | {_spread(modes, 1)} / "
              f"{results[0]['n_modes']} | {_spread(hq, 1)} | {_spread(kl, 3)} | "
              f"{statistics.median(r['seconds'] for r in results):.0f} | "
              f"{statistics.median(r['cpu_seconds'] for r in results):.0f} | {seeds} | "
              f"{paper_row(config.data, config.pack)} |", flush=True)


def paper_table(curve: Path) -> None:
    """Each (data, pack) row of the curve at the last iteration all its seeds reached."""
    records = read_curve(curve)
    rows: dict = {}
    for r in records:
        rows.setdefault((_mixture(r["data"]), r["pack"]), {}).setdefault(r["seed"], {})[
            r["step"]] = r
    print("| paper row | paper: modes / HQ % / KL | minigan (paper protocol): modes | "
          "HQ % | reverse KL | seeds | iterations | minutes per run (mean) |")
    print("|---|---|---|---|---|---|---|---|")
    for (mixture, pack), by_seed in sorted(rows.items()):
        common = set.intersection(*(set(steps) for steps in by_seed.values()))
        if not common:
            continue
        step = max(common)
        last = [steps[step] for steps in by_seed.values()]
        label, modes, hq, kl = PAPER_TABLE.get((mixture, pack), (f"pack {pack}", "", "", ""))
        print(f"| {mixture} {label} | {modes} / {hq} / {kl} | "
              f"{_spread([r['modes'] for r in last], 1)} | "
              f"{_spread([100 * r['high_quality'] for r in last], 1)} | "
              f"{_spread([r['reverse_kl'] for r in last], 2)} | {len(last)} | {step} | "
              f"{statistics.mean(r['train_seconds'] for r in last) / 60:.0f} |")
    print("\nThe curves (one row per evaluation):\n")
    print("| run | iteration | modes | HQ % | reverse KL | minutes |")
    print("|---|---|---|---|---|---|")
    for r in sorted(records, key=lambda r: (r["run"], r["step"])):
        print(f"| {r['run']} | {r['step']} | {r['modes']} / {r['n_modes']} | "
              f"{100 * r['high_quality']:.1f} | {r['reverse_kl']:.2f} | "
              f"{r['train_seconds'] / 60:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=at_least(1), default=3, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", nargs="*", default=DEFAULT_RECIPES)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field of every recipe run")
    parser.add_argument("--label", default="", help="the row's name (default: the recipe)")
    parser.add_argument("--jsonl", type=Path, help="append one record per run to this file")
    parser.add_argument("--plots", type=Path, help="save each run's scored samples here")
    parser.add_argument("--threads", type=at_least(1), default=1)
    parser.add_argument("--paper", action="store_true",
                        help="print the paper-protocol runs' table from --curve; train nothing")
    parser.add_argument("--curve", type=Path, default=DEFAULT_CURVE)
    args = parser.parse_args()
    if args.paper:
        paper_table(args.curve)
        return
    import minigan

    minigan.set_num_threads(args.threads)
    quick_table(args)


if __name__ == "__main__":
    main()
