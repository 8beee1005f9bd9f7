"""Side-by-side timings of minigan against PyTorch: `python -m benchmarks.kernels` (conv
layers) and `python -m benchmarks.train_step` (whole GAN iterations). Results and the
machine they were measured on: benchmarks/RESULTS.md."""
