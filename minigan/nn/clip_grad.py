"""Gradient clipping with torch.nn.utils' names: clip_grad_norm_ and clip_grad_value_.

Both change the parameters' .grad in place, between backward() and optimizer.step():

    loss.backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..autograd import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]

# PyTorch's guard in clip_grad_norm_: the scale is max_norm / (total_norm + 1e-6)
_NORM_EPS = 1e-6


def _gradients(parameters) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(array, norm_type: float):
    """The norm_type-norm of one gradient array, in its own dtype (as PyTorch's
    vector_norm), on its own device."""
    flat = abs(array.reshape(-1))
    if norm_type == math.inf:
        return flat.max() if flat.size else flat.dtype.type(0)
    if norm_type == 0:
        return (flat != 0).sum().astype(flat.dtype)
    return (flat ** norm_type).sum() ** (1.0 / norm_type)


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach: bool | None = None) -> Tensor:
    """Scale all gradients together so that their total norm is at most max_norm.

    The total norm is the norm_type-norm of the per-gradient norms (the norm of all
    gradients as one vector); when it exceeds max_norm every gradient is multiplied by
    max_norm / (total + 1e-6), else left as is. Returns the total norm before clipping, a
    0-d Tensor of the gradients' dtype. foreach is accepted for PyTorch compatibility (there
    is one code path). error_if_nonfinite: raise instead of scaling by a NaN/inf norm.
    """
    grads = _gradients(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor(np.float32(0.0))
    first = grads[0]
    norms = np.array([float(_norm(g.array, norm_type)) for g in grads], dtype=first.dtype)
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{float(total)}, so it cannot be clipped; set error_if_nonfinite=False to scale "
            "the gradients by it anyway"
        )
    scale = min(float(max_norm) / (float(total) + _NORM_EPS), 1.0)
    if scale < 1.0 or not math.isfinite(scale):
        for g in grads:
            g.array *= g.array.dtype.type(scale)
    return Tensor(first._backend.asarray(np.asarray(total, dtype=first.dtype)),
                  device=first.device, dtype=first.dtype)


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float,
                     foreach: bool | None = None) -> None:
    """Clip every gradient value to [-clip_value, clip_value], in place."""
    limit = float(clip_value)
    for g in _gradients(parameters):
        g.array[...] = g.array.clip(-limit, limit)
