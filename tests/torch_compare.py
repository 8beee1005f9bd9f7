"""PyTorch as an outside oracle: one op's forward and backward on the same inputs.

In float64 the ops compared here take a few dozen roundings of O(1) values, so both
libraries agree to ~1e-14 relative; rtol 1e-10 (plus atol 1e-12 for values near 0) leaves
a wide margin while an error in a formula (an O(1) relative difference) cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest

import minigan as mg

RTOL = 1e-10
ATOL = 1e-12


def torch_or_skip():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


def compare_with_torch(ours, theirs, *arrays, device="numpy", seed=0, rtol=RTOL, atol=ATOL):
    """ours(*minigan tensors) and theirs(*torch tensors), float64: the same outputs, and the
    same gradients of <output, r> for a random r with respect to every input. An op that
    returns a tuple is compared on its first element (max_pool2d's values)."""
    torch = torch_or_skip()
    mine = [mg.tensor(a, dtype=np.float64, requires_grad=True, device=device) for a in arrays]
    ref = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out, expected = ours(*mine), theirs(*ref)
    if isinstance(out, tuple):
        out, expected = out[0], expected[0]
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * mg.tensor(weights, dtype=np.float64, device=device)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for i, (m, r) in enumerate(zip(mine, ref)):
        if r.grad is None:
            assert m.grad is None or not np.any(m.grad.numpy()), f"input {i}"
            continue
        np.testing.assert_allclose(m.grad.numpy(), r.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def devices() -> list[str]:
    """numpy, and cpu where Numba is installed: each new op must run on both."""
    return [d for d in ("numpy", "cpu") if d in mg.available_devices()]
