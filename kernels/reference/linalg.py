"""Matrix products: NumPy's (or CuPy's) own. The cpu kernels run the same product on their
own thread pool (kernels/cpu/blas.py)."""

from __future__ import annotations

from .activation import activation, activation_grad_bias, bias_activation

__all__ = ["linear_act", "linear_grads", "matmul"]


def matmul(a, b):
    """a @ b for 2-D arrays a (m, k) and b (k, n)."""
    return a @ b


def linear_act(x, w, bias, kind: str, slope: float = 0.0):
    """act(x @ w.T + bias) for x (N, in), w (out, in), bias (out,) or None: a linear
    layer and its activation (kind as in activation; "none" for the plain layer)."""
    z = x @ w.T
    if bias is not None:
        return bias_activation(z, bias, kind, slope)
    return z if kind == "none" else activation(z, kind, slope)


def linear_grads(g, y, x, w, kind: str, slope: float, need_input: bool, need_weight: bool):
    """The gradients of a linear layer y = act(x @ w.T + b), x (N, in), w (out, in), from
    g = dL/dy (N, out) and its output y: (gx, gw, gb), gx None unless need_input and gw
    None unless need_weight. With gz = dL/d(pre-activation) = activation_grad(g, y):
    gx = gz @ w, gw = gz.T @ x, gb = the column sums of gz (kind "none": gz = g)."""
    gz, gb = activation_grad_bias(g, y, kind, slope)
    return (gz @ w if need_input else None, gz.T @ x if need_weight else None, gb)
