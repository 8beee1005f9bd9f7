"""Losses: BCE from logits (exact at +-1000), BCE from probabilities (PyTorch's clamps),
mse, l1, log_softmax / softmax / nll / cross-entropy; values against hand computations,
gradients of first and second order, errors, and PyTorch when it is installed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigan as mg
import minigan.functional as F
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import arrays, random_array, seeds

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, max_side=3)
REDUCTIONS = st.sampled_from(["mean", "sum", "none"])
# float64 hand computations of the same formulas: agreement to ~1e-12
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def t64(array, requires_grad=False):
    return mg.tensor(array, dtype=np.float64, requires_grad=requires_grad, device="numpy")


def reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


# ----------------------------------------------------------------------------- BCE with logits


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_exact_at_plus_minus_1000(dtype):
    x = np.array([1000.0, 1000.0, -1000.0, -1000.0], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = K.bce_with_logits(x, t)
    # the exact limits: a confident right answer costs 0, a confident wrong one costs |x|
    np.testing.assert_array_equal(loss, [0.0, 1000.0, 0.0, 1000.0])
    assert loss.dtype == dtype
    logits = mg.tensor(x, requires_grad=True, device="numpy")
    F.binary_cross_entropy_with_logits(logits, mg.tensor(t, device="numpy"),
                                       reduction="sum").backward()
    # gradient sigmoid(x) - t, exactly 0 or +-1 at these logits
    np.testing.assert_array_equal(logits.grad.numpy(), [0.0, 1.0, 0.0, -1.0])


@given(shape=SHAPES, seed=seeds(), reduction=REDUCTIONS, weighted=st.booleans())
def test_bce_with_logits_values(shape, seed, reduction, weighted):
    x, t = random_array(seed, shape, scale=3.0), np.random.default_rng(seed).uniform(size=shape)
    w = np.random.default_rng(seed + 1).uniform(size=shape[-1:]) if weighted else None
    p = 1 / (1 + np.exp(-x))  # |x| is O(10) at most here, so the naive form is accurate
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)) * (1.0 if w is None else w)
    loss = F.binary_cross_entropy_with_logits(t64(x), t64(t), None if w is None else t64(w),
                                              reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce(expected, reduction), rtol=1e-9, atol=1e-12)


def test_bce_with_logits_number_target():
    x = t64(random_array(1, (3, 2)))
    np.testing.assert_array_equal(
        F.binary_cross_entropy_with_logits(x, 1.0).numpy(),
        F.binary_cross_entropy_with_logits(x, t64(np.ones((3, 2)))).numpy(),
    )
    x32 = mg.tensor(random_array(1, (3, 2), np.float32), device="numpy")
    assert F.binary_cross_entropy_with_logits(x32, 0.0).dtype == np.float32


@given(shape=SHAPES, reduction=REDUCTIONS, weighted=st.booleans(), data=st.data())
def test_bce_with_logits_gradients(shape, reduction, weighted, data):
    # unweighted, the loss and its reduction are one node (its own backward); weighted, the
    # elementwise node, a product and mean() or sum()
    x, t = data.draw(arrays(shape, low=-4, high=4)), data.draw(arrays(shape, low=0, high=1))
    if weighted:
        w = data.draw(arrays(shape, low=0, high=2))
        check_gradients(lambda x, t, w: F.binary_cross_entropy_with_logits(
            x, t, w, reduction=reduction), x, t, w)
    else:
        check_gradients(lambda x, t: F.binary_cross_entropy_with_logits(
            x, t, reduction=reduction), x, t)


@settings(max_examples=10)
@given(shape=SHAPES, reduction=REDUCTIONS, data=st.data())
def test_bce_with_logits_double_gradients(shape, reduction, data):
    x, t = data.draw(arrays(shape, low=-4, high=4)), data.draw(arrays(shape, low=0, high=1))
    check_double_gradients(
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction), x, t
    )


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("reduction", REDUCTIONS.elements)
def test_bce_with_logits_backward_kernel_gives_the_tensor_ops_bits(device, reduction):
    """A plain backward() runs bce_with_logits_grad in one kernel; with create_graph the
    same node runs Tensor ops (sigmoid, -, *), as the loss composed with mean() did before
    it took its reduction in. The two must be the same bits, so a run does not depend on
    whether a penalty asked for a graph; the reduced value too is Tensor.mean's."""
    x = random_array(3, (64, 1), np.float32, scale=4.0)
    t = (random_array(4, (64, 1), np.float64) > 0).astype(np.float32)
    grads, values = [], []
    for create_graph in (False, True):
        logits = mg.tensor(x, device=device, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(logits, mg.tensor(t, device=device),
                                                  reduction=reduction)
        assert type(loss._ctx).__name__ == "BCEWithLogits"  # one node, reduction included
        seed = mg.tensor(np.full(loss.shape, 0.7, np.float32), device=device)
        grads.append(mg.grad(loss, logits, seed, create_graph=create_graph)[0].numpy())
        values.append(loss.numpy())
    np.testing.assert_array_equal(grads[0], grads[1])
    composed = F.binary_cross_entropy_with_logits(
        mg.tensor(x, device=device), mg.tensor(t, device=device), mg.tensor(
            np.ones(1, np.float32), device=device), reduction="none")
    composed = reduce(composed, reduction) if reduction == "none" else getattr(
        composed, reduction)()
    np.testing.assert_array_equal(values[0], composed.numpy())


# ----------------------------------------------------------------------------- BCE, mse, l1


@given(shape=SHAPES, reduction=REDUCTIONS, data=st.data())
def test_binary_cross_entropy_values_and_gradients(shape, reduction, data):
    p = data.draw(arrays(shape, low=0.05, high=0.95))  # finite-difference steps stay in (0, 1)
    t = data.draw(arrays(shape, low=0, high=1))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(F.binary_cross_entropy(t64(p), t64(t), reduction=reduction)
                               .numpy(), reduce(expected, reduction), **TIGHT)
    check_gradients(lambda p, t: F.binary_cross_entropy(p, t, reduction=reduction), p, t)


def test_binary_cross_entropy_clamps_like_pytorch():
    p = t64(np.array([0.0, 1.0, 0.0, 1.0]), requires_grad=True)
    t = t64(np.array([1.0, 0.0, 0.0, 1.0]), requires_grad=True)
    loss = F.binary_cross_entropy(p, t, reduction="none")
    # log(0) is clamped at -100: a certain wrong answer costs 100, a certain right one 0
    np.testing.assert_array_equal(loss.numpy(), [100.0, 100.0, 0.0, 0.0])
    loss.sum().backward()
    # (p - t) / max(p (1 - p), 1e-12) and log(1 - p) - log(p) with the same clamps
    np.testing.assert_allclose(p.grad.numpy(), [-1e12, 1e12, 0.0, 0.0])
    np.testing.assert_array_equal(t.grad.numpy(), [100.0, -100.0, 100.0, -100.0])


@given(shape=SHAPES, reduction=REDUCTIONS, data=st.data())
def test_mse_and_l1(shape, reduction, data):
    x = data.draw(arrays(shape))
    # targets at least 0.01 from x: |x - t| has a kink where they meet
    t = x + data.draw(arrays(shape, away_from_zero=0.01))
    np.testing.assert_allclose(F.mse_loss(t64(x), t64(t), reduction=reduction).numpy(),
                               reduce((x - t) ** 2, reduction), **TIGHT)
    np.testing.assert_allclose(F.l1_loss(t64(x), t64(t), reduction=reduction).numpy(),
                               reduce(np.abs(x - t), reduction), **TIGHT)
    check_gradients(lambda x, t: F.mse_loss(x, t, reduction=reduction), x, t)
    check_gradients(lambda x, t: F.l1_loss(x, t, reduction=reduction), x, t)


# ----------------------------------------------------------------------------- classes


def test_log_softmax_is_stable_for_huge_logits():
    x = t64(np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]]))
    with np.errstate(over="raise", invalid="raise"):
        out = F.log_softmax(x, dim=1).numpy()
        probabilities = F.softmax(x, dim=-1).numpy()
    # exact: exp(-1000) and exp(-2000) vanish next to exp(0) = 1 in float64
    np.testing.assert_array_equal(out[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(out[1], np.full(3, -np.log(3)), rtol=1e-15)
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-15)


@given(shape=SHAPES, data=st.data())
def test_log_softmax_gradients(shape, data):
    x = data.draw(arrays(shape, low=-3, high=3))
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    expected = x - np.log(np.exp(x).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(F.log_softmax(t64(x), dim).numpy(), expected, **TIGHT)
    check_gradients(lambda t: F.log_softmax(t, dim), x)
    check_gradients(lambda t: F.softmax(t, dim), x)


@settings(max_examples=8)
@given(shape=SHAPES, data=st.data())
def test_log_softmax_double_gradients(shape, data):
    x = data.draw(arrays(shape, low=-3, high=3))
    check_double_gradients(lambda t: F.log_softmax(t, -1), x)


@given(n=st.integers(1, 4), c=st.integers(1, 5), extra=st.sampled_from([(), (3,), (2, 2)]),
       seed=seeds(), reduction=REDUCTIONS)
def test_cross_entropy_values_and_gradients(n, c, extra, seed, reduction):
    logits = random_array(seed, (n, c) + extra, scale=2.0)
    labels = np.random.default_rng(seed).integers(0, c, size=(n,) + extra)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    picked = np.take_along_axis(log_p, labels[:, None], axis=1)[:, 0]
    loss = F.cross_entropy(t64(logits), mg.tensor(labels, device="numpy"),
                           reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce(-picked, reduction), **TIGHT)
    check_gradients(lambda x: F.cross_entropy(x, labels, reduction=reduction), logits)


def test_cross_entropy_accepts_lists_and_keeps_float32():
    logits = mg.tensor(random_array(2, (3, 4), np.float32), requires_grad=True, device="numpy")
    loss = F.cross_entropy(logits, [0, 3, 1])
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    # each row's gradient is (softmax - onehot) / N: it sums to zero
    np.testing.assert_allclose(logits.grad.numpy().sum(axis=1), 0.0, atol=1e-7)


# ----------------------------------------------------------------------------- errors


def test_errors_name_op_and_shapes():
    x = mg.zeros(4, 1, device="numpy")
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target shape "
                                         r"\(4,\) does not match input shape \(4, 1\)"):
        F.binary_cross_entropy_with_logits(x, mg.zeros(4, device="numpy"))
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(4, 2\)"):
        F.mse_loss(x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="l1_loss: reduction must be one of"):
        F.l1_loss(x, 0.0, reduction="avg")
    with pytest.raises(ValueError, match="binary_cross_entropy: input values must be"):
        F.binary_cross_entropy(x + 1.5, 1.0)
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: weight shape \(3,\)"):
        F.binary_cross_entropy_with_logits(x, 1.0, weight=mg.ones(3, device="numpy"))
    logits = mg.zeros(2, 3, device="numpy")
    with pytest.raises(ValueError, match="cross_entropy|nll_loss: target must hold integer"):
        F.cross_entropy(logits, mg.zeros(2, device="numpy"))
    with pytest.raises(ValueError, match=r"nll_loss: target class indices must be in \[0, 3\)"):
        F.cross_entropy(logits, [0, 3])
    with pytest.raises(ValueError, match=r"nll_loss: target shape \(3,\) does not match input"):
        F.cross_entropy(logits, [0, 1, 2])


# ----------------------------------------------------------------------------- PyTorch


def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(30)
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(size=(4, 3))
    p, w = rng.uniform(0.01, 0.99, size=(4, 3)), rng.uniform(size=(3,))
    labels = rng.integers(0, 3, size=4)
    cases = [
        ("bce_logits", lambda a, b: F.binary_cross_entropy_with_logits(a, b, t64(w)),
         lambda a, b: tf.binary_cross_entropy_with_logits(a, b, torch.tensor(w)), x, t),
        ("bce", F.binary_cross_entropy, tf.binary_cross_entropy, p, t),
        ("mse", lambda a, b: F.mse_loss(a, b, reduction="sum"), lambda a, b: tf.mse_loss(a, b,
                                                                              reduction="sum"),
         x, t),
        ("l1", F.l1_loss, tf.l1_loss, x, t),
        ("cross_entropy", lambda a, b: F.cross_entropy(a, labels) * b.sum(),
         lambda a, b: tf.cross_entropy(a, torch.tensor(labels)) * b.sum(), x, t),
    ]
    for name, ours_fn, torch_fn, a, b in cases:
        ours = [t64(v, requires_grad=True) for v in (a, b)]
        theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
        loss, torch_loss = ours_fn(*ours), torch_fn(*theirs)
        np.testing.assert_allclose(loss.numpy(), torch_loss.detach().numpy(), **TIGHT,
                                   err_msg=name)
        loss.backward()
        torch_loss.backward()
        for mine, ref in zip(ours, theirs):
            np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(), **TIGHT, err_msg=name)
