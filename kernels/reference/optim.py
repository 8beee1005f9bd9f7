"""Reference optimizer updates: the update math of Adam/AdamW, RMSprop and SGD, written out.

Each kernel updates its arrays in place (param and the optimizer's state; grad is only read),
so the optimizer can hand it one flat array holding every parameter and make one call per
step. The arithmetic follows PyTorch's single-tensor code path operation by operation, in
the same order, so float32 results agree with torch.optim to rounding.
"""

from __future__ import annotations

import math

from ._util import array_module

__all__ = ["adam_update", "rmsprop_update", "sgd_update"]


def adam_update(param, grad, exp_avg, exp_avg_sq, step: int, lr: float, beta1: float,
                beta2: float, eps: float, weight_decay: float, decoupled: bool,
                max_exp_avg_sq=None) -> None:
    """One Adam step (Kingma & Ba 2015, Algorithm 1), `step` counting from 1.

    decoupled=False: weight decay is L2, added to the gradient (torch.optim.Adam).
    decoupled=True: weight decay shrinks the parameter directly, AdamW (Loshchilov & Hutter
    2019, Algorithm 2, with the schedule multiplier folded into lr as PyTorch does).
    max_exp_avg_sq given: AMSGrad (Reddi et al. 2018, Algorithm 2): the step divides by the
    running maximum of v instead of v, so the effective step size never grows; the maximum
    is of the uncorrected v, and the bias correction applies to it, as in PyTorch.
    """
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    # moments: m <- b1 m + (1 - b1) g ; v <- b2 v + (1 - b2) g^2
    exp_avg += (1 - beta1) * (grad - exp_avg)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    # bias correction, split as in the paper's "efficient version" (end of section 2):
    # theta <- theta - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    step_size = lr / (1 - beta1**step)
    bias_correction2_sqrt = math.sqrt(1 - beta2**step)
    xp = array_module(param)
    second_moment = exp_avg_sq
    if max_exp_avg_sq is not None:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    denom = xp.sqrt(second_moment) / bias_correction2_sqrt + eps
    param -= step_size * exp_avg / denom


def rmsprop_update(param, grad, square_avg, momentum_buffer, lr: float, alpha: float,
                   eps: float, weight_decay: float, momentum: float) -> None:
    """One RMSprop step (Tieleman & Hinton 2012, lecture 6.5), in PyTorch's form: eps is
    added outside the square root. momentum_buffer may be None when momentum == 0."""
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    avg = array_module(param).sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += grad / avg
        param -= lr * momentum_buffer
    else:
        param -= lr * grad / avg


def sgd_update(param, grad, momentum_buffer, lr: float, momentum: float, weight_decay: float,
               nesterov: bool) -> None:
    """One SGD step with optional heavy-ball or Nesterov momentum (Sutskever et al. 2013),
    in PyTorch's form: buf <- momentum * buf + g, starting from buf = 0 (so the first step's
    buffer is g, as in PyTorch). momentum_buffer may be None when momentum == 0."""
    if weight_decay != 0:
        grad = grad + weight_decay * param
    if momentum != 0:
        momentum_buffer *= momentum
        momentum_buffer += grad
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * grad
