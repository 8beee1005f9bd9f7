"""Top-level tensor functions with torch's names and arguments (torch.sum, torch.tanh, ...).

Each is the Tensor method of the same name, so `mg.mean(x, dim=0)` and `x.mean(dim=0)`
are one code path.
"""

from __future__ import annotations

from .autograd import Tensor, lerp, matmul, maximum, minimum

__all__ = ["sum", "mean", "var", "std", "amax", "amin", "argmax", "norm", "pow", "abs",
           "clamp", "tanh", "sigmoid", "matmul", "maximum", "minimum", "lerp", "clone",
           "flatten", "chunk", "split", "mm", "allclose", "isfinite", "isnan", "isinf", "max",
           "min", "reshape", "squeeze", "unsqueeze", "transpose", "permute", "normal",
           "bernoulli"]


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


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return input.flatten(start_dim, end_dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    return input.chunk(chunks, dim)


def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    return tensor.split(split_size_or_sections, dim)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    return input.mm(mat2)


# Tests of values (no gradient): torch.allclose's and torch.isfinite's meaning


def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """|input - other| <= atol + rtol |other| everywhere (broadcasting), as torch.allclose."""
    xp = input._backend.xp
    return bool(xp.allclose(input.array, _values(other, input), rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def isfinite(input: Tensor) -> Tensor:
    return _wrapped(input._backend.xp.isfinite(input.array), input)


def isnan(input: Tensor) -> Tensor:
    return _wrapped(input._backend.xp.isnan(input.array), input)


def isinf(input: Tensor) -> Tensor:
    return _wrapped(input._backend.xp.isinf(input.array), input)


def _values(value, like: Tensor):
    return value.array if isinstance(value, Tensor) else like._backend.asarray(value)


def _wrapped(array, like: Tensor) -> Tensor:
    return Tensor._wrap(array, like._backend)


# torch's functions over one tensor's method of the same name


def max(input: Tensor, dim=None, keepdim: bool = False, **aliases):
    """max(x): the largest element; max(x, dim): (values, indices); max(x, other): the
    elementwise maximum (torch.max's three forms)."""
    return input.max(dim, keepdim, **aliases)


def min(input: Tensor, dim=None, keepdim: bool = False, **aliases):
    return input.min(dim, keepdim, **aliases)


def reshape(input: Tensor, shape) -> Tensor:
    return input.reshape(shape)


def squeeze(input: Tensor, dim: int | None = None) -> Tensor:
    return input.squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return input.unsqueeze(dim)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return input.transpose(dim0, dim1)


def permute(input: Tensor, dims) -> Tensor:
    return input.permute(dims)


# random draws with torch's arguments


def normal(mean: float, std: float, size, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Samples of N(mean, std^2) of the given size: torch.normal(mean, std, size) with
    numbers for mean and std (tensors of means and stds are not supported)."""
    from .creation import randn

    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        raise TypeError("normal: mean and std must be numbers here (tensors of means or "
                        "stds are not supported); write mean + std * mg.randn_like(mean)")
    out = randn(size, generator=generator, dtype=dtype, device=device) * std + mean
    return out.detach().requires_grad_(requires_grad)


def bernoulli(input: Tensor, *, generator=None) -> Tensor:
    """1 with probability input[i], else 0, in input's dtype (torch.bernoulli); no
    gradient."""
    from .creation import rand

    draws = rand(input.shape, generator=generator, dtype=input.dtype, device=input.device)
    return (draws.detach() < input.detach()).to(dtype=input.dtype)
