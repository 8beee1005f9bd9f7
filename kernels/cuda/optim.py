"""CUDA optimizer updates: Adam/AdamW, RMSprop and SGD, each ONE launch over all parameters.

Same names, signatures and semantics as kernels/reference/optim.py (PyTorch's update math,
operation by operation). The optimizer packs every parameter of a device and dtype into one
flat array, so one launch updates the whole model: each thread reads its parameter, gradient
and state once and writes them once. Scalars that depend only on the step (Adam's bias
corrections) are computed once on the host, in float64; per-element arithmetic is float64
too, rounded when stored.
"""

from __future__ import annotations

import math

from numba import cuda

from .. import reference
from ..reference._util import array_module
from ._launch import elementwise_grid, launch

__all__ = ["adam_update", "rmsprop_update", "sgd_update"]


@cuda.jit(cache=True)
def _adam_kernel(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                 decoupled, step_size, bias_correction2_sqrt):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, param.size, stride):
        p = float(param[i])
        g = float(grad[i])
        if weight_decay != 0:
            if decoupled:
                p *= 1 - lr * weight_decay
            else:
                g += weight_decay * p
        m = exp_avg[i] + (1 - beta1) * (g - exp_avg[i])
        v = beta2 * exp_avg_sq[i] + (1 - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        # read back the stored (rounded) moments, as the reference's in-place arrays are
        p -= step_size * exp_avg[i] / (math.sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + eps)
        param[i] = p


@cuda.jit(cache=True)
def _rmsprop_kernel(param, grad, square_avg, momentum_buffer, lr, alpha, eps, weight_decay,
                    momentum):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, param.size, stride):
        p = float(param[i])
        g = float(grad[i])
        if weight_decay != 0:
            g += weight_decay * p
        square_avg[i] = alpha * square_avg[i] + (1 - alpha) * g * g
        avg = math.sqrt(square_avg[i]) + eps
        if momentum > 0:
            momentum_buffer[i] = momentum * momentum_buffer[i] + g / avg
            param[i] = p - lr * momentum_buffer[i]
        else:
            param[i] = p - lr * g / avg


@cuda.jit(cache=True)
def _sgd_kernel(param, grad, momentum_buffer, lr, momentum, weight_decay, nesterov):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, param.size, stride):
        p = float(param[i])
        g = float(grad[i])
        if weight_decay != 0:
            g += weight_decay * p
        if momentum != 0:
            momentum_buffer[i] = momentum * momentum_buffer[i] + g
            if nesterov:
                g += momentum * momentum_buffer[i]
            else:
                g = float(momentum_buffer[i])
        param[i] = p - lr * g


def _check_flat(op: str, **arrays) -> None:
    """The update kernels walk flat arrays in place: reshaping a copy would lose the update."""
    size = arrays["param"].size
    for name, array in arrays.items():
        if array is None:
            continue
        if array.ndim != 1 or not array.flags.c_contiguous or array.size != size:
            shapes = ", ".join(f"{k} {tuple(a.shape)}" for k, a in arrays.items() if a is not None)
            raise ValueError(
                f"{op}: every array must be flat, contiguous and of one size ({name} is not; "
                f"{shapes})"
            )


def _buffer_or_placeholder(buffer, param):
    """A state array, or a 1-element stand-in when the state is unused (momentum == 0)."""
    return buffer if buffer is not None else array_module(param).zeros(1, dtype=param.dtype)


def adam_update(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float, decoupled: bool,
                max_exp_avg_sq=None) -> None:
    """One Adam (decoupled=False) or AdamW (decoupled=True) step in place, step from 1.
    AMSGrad (max_exp_avg_sq given) runs the reference's CuPy code: no recipe needs it fast."""
    if max_exp_avg_sq is not None:
        return reference.adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2,
                                     eps, weight_decay, decoupled, max_exp_avg_sq)
    _check_flat("adam_update", param=param, grad=grad, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    launch(
        _adam_kernel, elementwise_grid(param.size), "adam_update",
        param, grad, exp_avg, exp_avg_sq, float(lr), float(beta1), float(beta2), float(eps),
        float(weight_decay), bool(decoupled), float(step_size), float(bias_correction2_sqrt),
    )


def rmsprop_update(param, grad, square_avg, momentum_buffer, lr: float, alpha: float,
                   eps: float, weight_decay: float, momentum: float) -> None:
    """One RMSprop step in place (eps outside the square root, as in PyTorch);
    momentum_buffer may be None when momentum == 0."""
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("rmsprop_update: momentum > 0 needs a momentum_buffer")
    _check_flat("rmsprop_update", param=param, grad=grad, square_avg=square_avg,
                momentum_buffer=momentum_buffer if momentum > 0 else None)
    launch(
        _rmsprop_kernel, elementwise_grid(param.size), "rmsprop_update",
        param, grad, square_avg, _buffer_or_placeholder(momentum_buffer, param), float(lr),
        float(alpha), float(eps), float(weight_decay), float(momentum),
    )


def sgd_update(param, grad, momentum_buffer, lr: float, momentum: float, weight_decay: float,
               nesterov: bool) -> None:
    """One SGD step in place, heavy-ball or Nesterov momentum as in PyTorch;
    momentum_buffer may be None when momentum == 0."""
    if momentum != 0 and momentum_buffer is None:
        raise ValueError("sgd_update: momentum != 0 needs a momentum_buffer")
    _check_flat("sgd_update", param=param, grad=grad,
                momentum_buffer=momentum_buffer if momentum != 0 else None)
    launch(
        _sgd_kernel, elementwise_grid(param.size), "sgd_update",
        param, grad, _buffer_or_placeholder(momentum_buffer, param), float(lr),
        float(momentum), float(weight_decay), bool(nesterov),
    )
