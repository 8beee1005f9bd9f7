"""minigan: a minimal GAN engine built from scratch.

Tensors with reverse-mode autograd (gradients of gradients included), layers, optimizers,
GAN objectives and a trainer, over kernels that come in three flavours: NumPy (the
readable reference), Numba (CPU) and CUDA (GPU).
"""

import os as _os

# Numba's parallel loops run on GNU OpenMP threads, matrix products on OpenBLAS's own
# threads. By default both keep spinning after their work, so on a small machine each
# steals the cores the other needs: a 64K-element Numba loop interleaved with a 512x128x128
# matmul took 30 ms per pair on 2 cores, 0.11 ms with OpenMP told to sleep when idle.
# OpenBLAS's threads likewise spin about 2^25 cycles by default; 2^4 lets them yield the
# core at once. Measured on 2 busy cores, MLP-2D iteration median: 232-244 ms -> 9-56 ms.
# Set before NumPy and Numba load their libraries (so it takes effect when minigan is
# imported first, as the minigan command does); a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from .autograd import (
    Function,
    Tensor,
    cat,
    concat,
    enable_grad,
    exp,
    grad,
    is_grad_enabled,
    log,
    no_grad,
    set_grad_enabled,
    sqrt,
    stack,
    where,
)
from .backend import DeviceUnavailable, available_devices, default_device, set_default_device
from .creation import (
    arange,
    full,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from .random import Generator, manual_seed

__version__ = "0.1.0"

float32 = "float32"
float64 = "float64"

__all__ = [
    "Function", "Tensor", "cat", "concat", "enable_grad", "exp", "grad", "is_grad_enabled",
    "log", "no_grad", "set_grad_enabled", "sqrt", "stack", "where", "DeviceUnavailable",
    "available_devices", "default_device", "set_default_device", "arange", "full", "ones",
    "ones_like", "rand", "randn", "tensor", "zeros", "zeros_like", "Generator",
    "manual_seed", "__version__",
]
