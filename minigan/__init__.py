"""minigan: a minimal GAN engine built from scratch.

Tensors with reverse-mode autograd (gradients of gradients included), layers, optimizers,
GAN objectives and a trainer, over kernels that come in three flavours: NumPy (the
readable reference), Numba (CPU) and CUDA (GPU).
"""

from . import _environment  # noqa: F401  (first: before NumPy loads BLAS)
from .autograd import (
    Function,
    Tensor,
    Variable,
    cat,
    concat,
    enable_grad,
    exp,
    grad,
    inference_mode,
    is_anomaly_enabled,
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
    device,
    available_devices,
    default_device,
    get_num_threads,
    set_default_device,
    set_num_threads,
)
from .creation import (
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    IntTensor,
    LongTensor,
    arange,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .ops import (
    abs,
    allclose,
    amax,
    amin,
    argmax,
    chunk,
    clamp,
    clone,
    flatten,
    isfinite,
    isinf,
    isnan,
    lerp,
    matmul,
    maximum,
    mean,
    minimum,
    max,
    min,
    mm,
    norm,
    normal,
    permute,
    reshape,
    squeeze,
    transpose,
    unsqueeze,
    bernoulli,
    pow,
    sigmoid,
    split,
    std,
    sum,
    tanh,
    var,
)
from .random import Generator, manual_seed
from . import autograd  # noqa: E402  (already loaded above; named for mg.autograd)

_LAZY_SUBPACKAGES = ("cuda", "functional", "nn", "optim", "utils")


def __getattr__(name: str):
    """mg.nn, mg.optim, mg.functional, mg.cuda, mg.utils as with torch, loaded on first use so that
    `import minigan` stays as quick as before."""
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    if name in ("save", "load"):  # safetensors files, as torch.save / torch.load
        from .io import weights

        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"

float32 = "float32"
float64 = "float64"
int32 = "int32"
int64 = long = "int64"
uint8 = "uint8"
# torch's short names (mg.float is float32, as torch.float); kept out of __all__ so that
# `from minigan import *` does not hide Python's float, int and bool
float = float32
double = float64
int = int32
bool = "bool"

__all__ = [
    "Function", "Tensor", "cat", "concat", "enable_grad", "exp", "grad", "is_grad_enabled",
    "log", "no_grad", "set_grad_enabled", "sqrt", "stack", "where", "DeviceUnavailable",
    "available_devices", "default_device", "set_default_device", "set_num_threads", "arange",
    "full", "ones",
    "ones_like", "rand", "randn", "tensor", "zeros", "zeros_like", "Generator",
    "manual_seed", "__version__", "inference_mode", "BoolTensor", "DoubleTensor",
    "FloatTensor", "IntTensor", "LongTensor", "eye", "from_numpy", "is_tensor", "linspace",
    "rand_like", "randint", "randn_like", "abs", "amax", "amin", "argmax", "clamp", "clone",
    "lerp", "matmul", "maximum", "mean", "minimum", "norm", "pow", "sigmoid", "std", "sum",
    "tanh", "var", "autograd", "cuda", "functional", "nn", "optim", "utils", "save", "load",
    "Variable", "device", "empty", "empty_like", "full_like", "randperm", "allclose", "chunk",
    "flatten", "isfinite", "isinf", "isnan", "mm", "split", "max", "min", "normal", "permute",
    "reshape", "squeeze", "transpose", "unsqueeze", "bernoulli", "get_num_threads",
    "is_anomaly_enabled", "float32", "float64", "int32", "int64", "long", "uint8",
]
