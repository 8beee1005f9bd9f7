"""nn.utils.clip_grad_norm_ / clip_grad_value_ against PyTorch (when installed) and against
the definition."""

import math

import numpy as np
import pytest

import minigan as mg
from minigan import nn
from tests.strategies import random_array

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def _params(seed, scale=1.0, dtype=np.float32):
    params = [nn.Parameter(mg.tensor(random_array(seed + i, s, dtype=dtype)))
              for i, s in enumerate(SHAPES)]
    for i, p in enumerate(params):
        p.grad = mg.tensor(random_array(seed + 10 + i, p.shape, dtype=dtype, scale=scale))
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    mine = _params(0, scale=2.0)
    theirs = [torch.nn.Parameter(torch.tensor(p.numpy())) for p in mine]
    for p, q in zip(mine, theirs):
        q.grad = torch.tensor(p.grad.numpy())
    total = nn.utils.clip_grad_norm_(iter(mine), max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, mg.Tensor) and total.shape == () and total.dtype == np.float32
    # float32 sums of 36 terms in a different order: a few ulps
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-5)
    for p, q in zip(mine, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_clip_grad_norm_definition_in_float64():
    params = _params(1, scale=3.0, dtype=np.float64)
    before = np.concatenate([p.grad.numpy().ravel() for p in params])
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert total.item() == pytest.approx(np.linalg.norm(before), rel=1e-14)
    after = np.concatenate([p.grad.numpy().ravel() for p in params])
    # scaled by 1 / (total + 1e-6): the new norm falls short of 1 by about 1e-6 / total
    assert np.linalg.norm(after) == pytest.approx(1.0, abs=2e-6) and np.linalg.norm(after) < 1
    np.testing.assert_allclose(after / before, after[0] / before[0], rtol=1e-12)  # one scale
    small = _params(1, scale=1e-3, dtype=np.float64)
    kept = [p.grad.numpy().copy() for p in small]
    nn.utils.clip_grad_norm_(small, max_norm=1.0)
    for p, k in zip(small, kept):
        np.testing.assert_array_equal(p.grad.numpy(), k)  # under the limit: untouched


def test_clip_grad_norm_single_tensor_missing_grads_and_nonfinite():
    p = nn.Parameter(mg.tensor([3.0, 4.0]))
    p.grad = mg.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    assert nn.utils.clip_grad_norm_([nn.Parameter(mg.zeros(2))], 1.0).item() == 0.0  # no grads
    p.grad = mg.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.numpy(), [np.inf, 1.0])  # refused before changing


def test_clip_grad_value_matches_torch():
    mine = _params(2, scale=2.0)
    before = [p.grad.numpy().copy() for p in mine]
    assert nn.utils.clip_grad_value_(mine, 0.7) is None
    for p, b in zip(mine, before):
        np.testing.assert_array_equal(p.grad.numpy(), np.clip(b, -0.7, 0.7).astype(np.float32))
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    theirs = [torch.nn.Parameter(torch.zeros(b.shape)) for b in before]
    for q, b in zip(theirs, before):
        q.grad = torch.tensor(b)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, q in zip(mine, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
