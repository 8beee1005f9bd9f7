"""Mode coverage of the 2-D recipes, averaged over seeds, beside PacGAN's Table 1.

    python -m benchmarks.mode_coverage [--seeds 3] [--device cpu] [--recipes ...]

PacGAN's protocol (Lin et al. 2018, section 5.1): 2,500 generated samples; a sample is high
quality when it lies within 3 standard deviations of its nearest mode; a mode is captured
when it has at least one high-quality sample; reverse KL of the mode histogram to uniform.
"""

from __future__ import annotations

import argparse
import statistics
import time

from minigan.gan import Trainer, recipe

# PacGAN (Lin et al. 2018), Table 1: vanilla GAN rows, mean over their trials.
PUBLISHED = {
    "ring8": "GAN 6.3 / 8 modes, 98.2% HQ (PacGAN Table 1)",
    "grid25": "GAN 17.3 / 25 modes, 94.8% HQ (PacGAN Table 1)",
}

DEFAULT_RECIPES = ["mlp-ring8", "wgan-gp-ring8", "mlp-grid25", "wgan-gp-grid25",
                   "pacgan-grid25"]


def run(name: str, seed: int, device: str) -> dict:
    trainer = Trainer(recipe(name, seed=seed), device=device, quiet=True)
    start = time.perf_counter()
    trainer.fit()
    scores = trainer.evaluate()
    scores["seconds"] = time.perf_counter() - start
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", nargs="*", default=DEFAULT_RECIPES)
    args = parser.parse_args()
    print("| recipe | steps | modes captured (mean, per seed) | high quality | reverse KL | "
          "s/run | published |")
    print("|---|---|---|---|---|---|---|")
    for name in args.recipes:
        results = [run(name, seed, args.device) for seed in range(args.seeds)]
        modes = [r["modes_captured"] for r in results]
        hq = [100 * r["high_quality_fraction"] for r in results]
        kl = [r["reverse_kl"] for r in results]
        data = recipe(name).data
        print(f"| {name} | {recipe(name).steps} | {statistics.mean(modes):.1f} / "
              f"{results[0]['n_modes']} ({', '.join(map(str, modes))}) | "
              f"{statistics.mean(hq):.1f}% | {statistics.mean(kl):.3f} | "
              f"{statistics.median(r['seconds'] for r in results):.0f} | "
              f"{PUBLISHED.get(data, '')} |", flush=True)


if __name__ == "__main__":
    main()
