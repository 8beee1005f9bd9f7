"""Matrix products: NumPy's (or CuPy's) own. The cpu kernels run the same product on their
own thread pool (kernels/cpu/blas.py)."""

from __future__ import annotations

__all__ = ["matmul"]


def matmul(a, b):
    """a @ b for 2-D arrays a (m, k) and b (k, n)."""
    return a @ b
