"""Elementwise layers: ReLU, LeakyReLU, Tanh, Sigmoid, ELU, GELU, SiLU, Softplus, PReLU,
Softmax, LogSoftmax, Dropout and Dropout2d, thin wrappers of the functional ops with
PyTorch's constructor arguments and reprs."""

from __future__ import annotations

import numpy as np

from .. import creation
from .. import functional as F
from ..functional.activation import GELU_APPROXIMATIONS
from ..autograd import Tensor
from ..random import Generator
from . import init
from .module import ACTIVATION_KIND, Module, Parameter


class ReLU(Module):
    """max(x, 0). `inplace` is accepted for PyTorch compatibility; the op is never in place
    here, since autograd keeps the input."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise (Maas et al. 2013)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace
                                                          else "")


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class _SoftmaxOver(Module):
    """Softmax or its log along dim. Without a dim (older scripts' `nn.Softmax()`), torch's
    implicit choice, with its warning: dim 0 for 0-, 1- and 3-d inputs, else 1."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _dim(self, input: Tensor) -> int:
        if self.dim is not None:
            return self.dim
        import warnings

        warnings.warn(f"{type(self).__name__} without dim: taking dim "
                      f"{0 if input.ndim in (0, 1, 3) else 1} for a {input.ndim}-d input, as "
                      "PyTorch does; pass dim= to choose", UserWarning, stacklevel=3)
        return 0 if input.ndim in (0, 1, 3) else 1

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxOver):
    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self._dim(input))


class LogSoftmax(_SoftmaxOver):
    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self._dim(input))


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest by
    1 / (1 - p) (inverted dropout, Srivastava et al. 2014); the identity in eval mode.
    `generator` seeds the masks (the default generator when None)."""

    def __init__(self, p: float = 0.5, inplace: bool = False,
                 generator: Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.inplace, self.generator = p, inplace, generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


ACTIVATION_KIND.update({
    ReLU: lambda module: ("relu", 0.0),
    LeakyReLU: lambda module: ("leaky_relu", module.negative_slope),
    Tanh: lambda module: ("tanh", 0.0),
    Sigmoid: lambda module: ("sigmoid", 0.0),
})


class ELU(Module):
    """x for x > 0, alpha (exp(x) - 1) otherwise (Clevert et al. 2016)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x Phi(x) (Hendrycks & Gimpel 2016); approximate="tanh" for their tanh form."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in GELU_APPROXIMATIONS:
            raise ValueError(f"GELU: approximate must be one of {GELU_APPROXIMATIONS}, "
                             f"got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x sigmoid(x) (Elfwing et al. 2018), also known as Swish."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Softplus(Module):
    """log(1 + exp(beta x)) / beta, x itself where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """max(0, x) + a min(0, x) with a learnable slope a (He et al. 2015): one for all
    channels (num_parameters=1) or one per channel (num_parameters=C), each starting at
    `init` (0.25, the paper's and PyTorch's)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(creation.full((num_parameters,), init,
                                              dtype=dtype or np.float32, device=device))

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Dropout2d(Module):
    """In training mode, zero whole channels of (N, C, H, W) input with probability p and
    scale the rest by 1 / (1 - p) (Tompson et al. 2015: neighbouring pixels are correlated,
    so dropping single ones regularises little); the identity in eval mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False,
                 generator: Generator | None = None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1), got {p}")
        self.p, self.inplace, self.generator = p, inplace, generator

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"
