"""Optimizer updates for the CPU: each step is one Numba loop over the flat parameter buffer.

The optimizer packs every parameter (and its state) into one flat array, so one call
updates a whole model, reading each of param, grad and the state once and writing param
and the state once. PyTorch's default per-tensor Adam makes ~10 passes per tensor and is
~38% of a small model's step (shared/PERFORMANCE.md).

The arithmetic repeats the reference (kernels/reference/optim.py) operation by operation,
in the array's dtype: the Python-float coefficients are rounded to that dtype before the
loop, as NumPy does with a Python scalar, so float32 results match the reference (and
PyTorch) to rounding. Arrays that are not contiguous cannot be updated in place through a
flat view; they go to the reference update.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..reference import optim as reference
from ._util import by_size, serial_and_parallel

__all__ = ["adam_update", "rmsprop_update", "sgd_update"]


def _adam_loop(param, grad, exp_avg, exp_avg_sq, step_size, bias_correction2_sqrt,
               one_minus_beta1, beta2, one_minus_beta2, eps, l2_decay, decoupled_decay):
    # no branch in the loop, so that it vectorises: Adam passes decoupled_decay = 1 and
    # AdamW l2_decay = 0, which leave p and g exactly as they are
    for i in prange(param.size):
        p = param[i] * decoupled_decay
        g = grad[i] + l2_decay * p
        m = exp_avg[i] + one_minus_beta1 * (g - exp_avg[i])
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] = p - step_size * m / (math.sqrt(v) / bias_correction2_sqrt + eps)


def _rmsprop_loop(param, grad, square_avg, momentum_buffer, lr, alpha, one_minus_alpha, eps,
                  weight_decay, momentum):
    use_momentum = momentum > 0
    for i in prange(param.size):
        p = param[i]
        g = grad[i] + weight_decay * p
        s = square_avg[i] * alpha + one_minus_alpha * g * g
        square_avg[i] = s
        avg = math.sqrt(s) + eps
        if use_momentum:
            b = momentum_buffer[i] * momentum + g / avg
            momentum_buffer[i] = b
            param[i] = p - lr * b
        else:
            param[i] = p - lr * g / avg


def _sgd_loop(param, grad, momentum_buffer, lr, momentum, weight_decay, nesterov):
    use_momentum = momentum != 0
    for i in prange(param.size):
        p = param[i]
        g = grad[i] + weight_decay * p
        if use_momentum:
            b = momentum_buffer[i] * momentum + g
            momentum_buffer[i] = b
            g = g + momentum * b if nesterov else b
        param[i] = p - lr * g


_adam_loops = serial_and_parallel(_adam_loop)
_rmsprop_loops = serial_and_parallel(_rmsprop_loop)
_sgd_loops = serial_and_parallel(_sgd_loop)


def _flat(*arrays) -> bool:
    """True when every array can be updated in place through a flat contiguous view."""
    return all(a is None or a.flags.c_contiguous for a in arrays)


def adam_update(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float, decoupled: bool,
                max_exp_avg_sq=None) -> None:
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place, `step` from 1.
    AMSGrad (max_exp_avg_sq given) runs the reference's NumPy code: no recipe needs it fast."""
    if max_exp_avg_sq is not None or not _flat(param, exp_avg, exp_avg_sq):
        return reference.adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2,
                                     eps, weight_decay, decoupled, max_exp_avg_sq)
    typed = param.dtype.type
    l2_decay, decoupled_decay = (0.0, 1 - lr * weight_decay) if decoupled else (weight_decay, 1.0)
    by_size(_adam_loops, param.size)(
        param.reshape(-1), np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1),
        exp_avg.reshape(-1), exp_avg_sq.reshape(-1),
        typed(lr / (1 - beta1**step)), typed(math.sqrt(1 - beta2**step)),
        typed(1 - beta1), typed(beta2), typed(1 - beta2), typed(eps),
        typed(l2_decay), typed(decoupled_decay),
    )


def rmsprop_update(param, grad, square_avg, momentum_buffer, lr: float, alpha: float,
                   eps: float, weight_decay: float, momentum: float) -> None:
    """One RMSprop step in place (eps outside the square root, as PyTorch); momentum_buffer
    may be None when momentum == 0."""
    if not _flat(param, square_avg, momentum_buffer):
        return reference.rmsprop_update(param, grad, square_avg, momentum_buffer, lr, alpha,
                                        eps, weight_decay, momentum)
    typed = param.dtype.type
    buffer = square_avg if momentum_buffer is None else momentum_buffer  # unread then
    by_size(_rmsprop_loops, param.size)(
        param.reshape(-1), np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1),
        square_avg.reshape(-1), buffer.reshape(-1),
        typed(lr), typed(alpha), typed(1 - alpha), typed(eps), typed(weight_decay),
        typed(momentum),
    )


def sgd_update(param, grad, momentum_buffer, lr: float, momentum: float, weight_decay: float,
               nesterov: bool) -> None:
    """One SGD step in place, with optional heavy-ball or Nesterov momentum; momentum_buffer
    may be None when momentum == 0."""
    if not _flat(param, momentum_buffer):
        return reference.sgd_update(param, grad, momentum_buffer, lr, momentum, weight_decay,
                                    nesterov)
    typed = param.dtype.type
    buffer = param if momentum_buffer is None else momentum_buffer  # unread then
    by_size(_sgd_loops, param.size)(
        param.reshape(-1), np.ascontiguousarray(grad, dtype=param.dtype).reshape(-1),
        buffer.reshape(-1), typed(lr), typed(momentum), typed(weight_decay), bool(nesterov),
    )
