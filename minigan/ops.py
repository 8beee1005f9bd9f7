"""Top-level tensor functions with torch's names and arguments (torch.sum, torch.tanh, ...).

Each is the Tensor method of the same name, so `mg.mean(x, dim=0)` and `x.mean(dim=0)`
are one code path.
"""

from __future__ import annotations

from .autograd import Tensor, lerp, matmul, maximum, minimum

__all__ = ["sum", "mean", "var", "std", "amax", "amin", "argmax", "norm", "pow", "abs",
           "clamp", "tanh", "sigmoid", "matmul", "maximum", "minimum", "lerp", "clone"]


def sum(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.sum(dim, keepdim, **aliases)


def mean(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.mean(dim, keepdim, **aliases)


def var(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False,
        **kwargs) -> Tensor:
    return input.var(dim, unbiased, keepdim, **kwargs)


def std(input: Tensor, dim=None, unbiased: bool | None = None, keepdim: bool = False,
        **kwargs) -> Tensor:
    return input.std(dim, unbiased, keepdim, **kwargs)


def amax(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.amax(dim, keepdim, **aliases)


def amin(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.amin(dim, keepdim, **aliases)


def argmax(input: Tensor, dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.argmax(dim, keepdim, **aliases)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, **aliases) -> Tensor:
    return input.norm(p, dim, keepdim, **aliases)


def tanh(input: Tensor) -> Tensor:
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    return input.sigmoid()


def pow(input: Tensor, exponent) -> Tensor:
    return input.pow(exponent)


def abs(input: Tensor) -> Tensor:
    return input.abs()


def clamp(input: Tensor, min=None, max=None) -> Tensor:
    return input.clamp(min, max)


def clone(input: Tensor) -> Tensor:
    return input.clone()
