"""Reference kernels in NumPy: short, obvious, float64-safe. The readable truth.

They take the array module from their inputs, so they also run on CuPy arrays.
"""

__all__: list[str] = []
