"""minigan: a minimal GAN engine built from scratch.

Tensors with reverse-mode autograd (gradients of gradients included), layers, optimizers,
GAN objectives and a trainer, over kernels that come in three flavours: NumPy (the
readable reference), Numba (CPU) and CUDA (GPU).
"""

from . import _environment  # noqa: F401  (first: before NumPy loads BLAS)
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
from .backend import (
    DeviceUnavailable,
    available_devices,
    default_device,
    set_default_device,
    set_num_threads,
)
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
    "available_devices", "default_device", "set_default_device", "set_num_threads", "arange",
    "full", "ones",
    "ones_like", "rand", "randn", "tensor", "zeros", "zeros_like", "Generator",
    "manual_seed", "__version__",
]
