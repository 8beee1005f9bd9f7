"""Finite-difference checks of first and second derivatives, in float64.

Error budget of a central difference with step h on a function of size |f|:
truncation h^2/6 |f'''| plus rounding about u |f| / h (u = 1.1e-16 in float64).
With h = 1e-6 both terms are below 1e-9 relative to the function's scale for the smooth,
O(1)-sized functions tested here, so a tolerance of 1e-6 relative (plus 1e-7 absolute)
leaves a wide margin without letting a wrong gradient (an O(1) relative error) through.
Inputs must stay farther than h from kinks (relu, abs, max ties); the strategies do that.
"""

from __future__ import annotations

import numpy as np

import minigan as mg

STEP = 1e-6
RTOL = 1e-6
ATOL = 1e-7


def _projected(fn, tensors, weights):
    """A scalar: <fn(*tensors), weights>, so every output element is tested at once."""
    out = fn(*tensors)
    return (out * mg.tensor(weights, dtype=np.float64, device=out.device)).sum()


def numerical_gradient(scalar_fn, arrays: list[np.ndarray], index: int) -> np.ndarray:
    x = arrays[index]
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + STEP
        up = scalar_fn(arrays)
        flat[i] = keep - STEP
        down = scalar_fn(arrays)
        flat[i] = keep
        gflat[i] = (up - down) / (2 * STEP)
    return grad


def _assert_close(analytic, numeric, what):
    scale = max(1.0, float(np.abs(numeric).max(initial=0.0)))
    np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def check_gradients(fn, *arrays, device="numpy", seed=0, wrt=None):
    """Compare grad of <fn(*inputs), r> with central differences, for each input in wrt."""
    arrays = [np.array(a, dtype=np.float64, order="C") for a in arrays]  # reshape(-1) views
    wrt = range(len(arrays)) if wrt is None else wrt
    tensors = [mg.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in arrays]
    out_shape = fn(*tensors).shape
    weights = np.random.default_rng(seed).standard_normal(out_shape)

    def scalar(values):
        ts = [mg.tensor(v, dtype=np.float64, device=device) for v in values]
        return float(_projected(fn, ts, weights).item())

    loss = _projected(fn, tensors, weights)
    grads = mg.grad(loss, [tensors[i] for i in wrt], allow_unused=True)
    for i, g in zip(wrt, grads):
        analytic = np.zeros_like(arrays[i]) if g is None else g.numpy()
        _assert_close(analytic, numerical_gradient(scalar, arrays, i), f"d/d input {i}")


def check_double_gradients(fn, *arrays, device="numpy", seed=0, wrt=None):
    """Second derivatives: differentiate s(x) = <grad_x <fn(x), r>, v> and compare with
    central differences of s, which uses only first derivatives built with create_graph."""
    arrays = [np.array(a, dtype=np.float64, order="C") for a in arrays]  # reshape(-1) views
    wrt = list(range(len(arrays)) if wrt is None else wrt)
    rng = np.random.default_rng(seed)
    probe = [mg.tensor(a, dtype=np.float64, device=device) for a in arrays]
    weights = rng.standard_normal(fn(*probe).shape)
    directions = [rng.standard_normal(arrays[i].shape) for i in wrt]

    def second_scalar(tensors):
        loss = _projected(fn, tensors, weights)
        grads = mg.grad(loss, [tensors[i] for i in wrt], create_graph=True, allow_unused=True)
        total = None
        for g, v in zip(grads, directions):
            if g is None or not g.requires_grad:
                continue
            term = (g * mg.tensor(v, dtype=np.float64, device=device)).sum()
            total = term if total is None else total + term
        return total

    def scalar(values):
        ts = [mg.tensor(v, dtype=np.float64, requires_grad=True, device=device) for v in values]
        with mg.enable_grad():
            s = second_scalar(ts)
        return 0.0 if s is None else float(s.item())

    tensors = [mg.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in arrays]
    s = second_scalar(tensors)
    for i in range(len(arrays)):
        if s is None:
            analytic = np.zeros_like(arrays[i])
        else:
            (g,) = mg.grad(s, tensors[i], retain_graph=True, allow_unused=True)
            analytic = np.zeros_like(arrays[i]) if g is None else g.numpy()
        _assert_close(analytic, numerical_gradient(scalar, arrays, i), f"d2/d input {i}")
