"""Mode coverage of generated 2-D points, with the protocol of VEEGAN and PacGAN.

VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018) count a sample as
high quality when it lies within three standard deviations of its nearest mode, and a mode
as captured when it is the nearest mode of at least one high-quality sample; they score
2,500 generated samples. PacGAN's released code (synthetic_data_experiments/PacGAN/pacgan/
extensions.py, MetricLogger) measures the distance in units of the mode's std,
sqrt(sum((x - mean)^2 / variance)), with threshold `dis_thre = 3` and a strict `<`, and
counts a mode as covered when its histogram bin is non-zero; this module does the same.
PacGAN also reports the reverse KL divergence KL(generated || real) between the histograms
of samples over modes; the real histogram of an equal-weight mixture is uniform.
"""

from __future__ import annotations

import math

import numpy as np

# PacGAN config.py: num_log_figure_sample = 2500; VEEGAN: "We generate 2500 samples".
N_EVAL_SAMPLES = 2500
HIGH_QUALITY_STDS = 3.0


def mode_coverage(samples, modes, std: float, threshold: float = HIGH_QUALITY_STDS) -> dict:
    """How many modes of a Gaussian mixture the samples capture, and how well.

    samples: (N, 2) array or Tensor (score N_EVAL_SAMPLES = 2500 of them to compare with
    the papers). modes: (n_modes, 2) centers. std: the per-coordinate std of every mode.

    Returns modes_captured, n_modes, high_quality_fraction, reverse_kl (of the histogram of
    high-quality samples over modes to uniform; 0 is perfectly balanced, log(n_modes) all
    in one mode, inf when no sample is high quality), mode_counts (high-quality samples per
    mode) and n_samples.
    """
    points = np.asarray(samples, dtype=np.float64)
    centers = np.asarray(modes, dtype=np.float64)
    if points.ndim != 2 or centers.ndim != 2 or points.shape[1] != centers.shape[1]:
        raise ValueError(
            f"mode_coverage: samples {points.shape} and modes {centers.shape} must be "
            "(N, D) and (n_modes, D) with the same D"
        )
    if not std > 0:
        raise ValueError(f"mode_coverage: std must be positive, got {std}")
    n_modes = len(centers)
    # (N, n_modes) distances in units of std; N = 2500 and n_modes <= 25 keep this small.
    gaps = points[:, None, :] - centers[None, :, :]
    distances = np.sqrt((gaps * gaps).sum(axis=-1)) / std
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(len(points)), nearest] < threshold
    counts = np.bincount(nearest[high_quality], minlength=n_modes)
    total = int(counts.sum())
    if total == 0:
        reverse_kl = math.inf
    else:
        share = counts[counts > 0] / total
        reverse_kl = float(np.sum(share * np.log(share * n_modes)))
    return {
        "modes_captured": int((counts > 0).sum()),
        "n_modes": n_modes,
        "high_quality_fraction": float(high_quality.mean()) if len(points) else 0.0,
        "reverse_kl": reverse_kl,
        "mode_counts": counts.tolist(),
        "n_samples": len(points),
    }
