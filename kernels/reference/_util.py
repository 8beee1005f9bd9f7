"""Helpers shared by the reference kernels."""

import numpy as np


def array_module(array):
    """numpy for numpy arrays, cupy for cupy arrays (without importing cupy otherwise)."""
    if isinstance(array, np.ndarray) or not hasattr(array, "__cuda_array_interface__"):
        return np
    import cupy

    return cupy
