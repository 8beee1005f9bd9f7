"""Elementwise layers: ReLU, LeakyReLU, Tanh, Sigmoid and Dropout, thin wrappers of the
functional ops with PyTorch's constructor arguments and reprs."""

from __future__ import annotations

from .. import functional as F
from ..autograd import Tensor
from ..random import Generator
from .module import ACTIVATION_KIND, Module


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
