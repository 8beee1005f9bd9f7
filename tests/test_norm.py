"""batch_norm, instance_norm, layer_norm: kernels and ops against hand computations,
running-statistic updates, gradients of first and second order, the kernel fast path
against the composed backward, errors, and PyTorch when it is installed."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
from minigan.kernels import reference as K
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import channel_shapes, random_array, seeds

EPS = st.floats(1e-4, 0.1)
MOMENTUM = st.floats(0.01, 0.99)
# float64 hand computations of the same formula in a different order: agreement to ~1e-12
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def t64(array, requires_grad=False):
    return mg.tensor(array, dtype=np.float64, requires_grad=requires_grad, device="numpy")


def per_channel_stats(x):
    """Mean, biased and unbiased variance of every channel, by explicit loop."""
    values = [x[:, c].ravel() for c in range(x.shape[1])]
    return (np.array([v.mean() for v in values]), np.array([v.var() for v in values]),
            np.array([v.var(ddof=1) for v in values]))


def hand_normalize(x, mean, var, weight, bias, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


# ----------------------------------------------------------------------------- kernels


@given(shape=channel_shapes(), seed=seeds(), eps=EPS, affine=st.booleans())
def test_batch_norm_kernels_match_hand_computation(shape, seed, eps, affine):
    x = random_array(seed, shape)
    c = shape[1]
    weight = random_array(seed + 1, (c,)) if affine else None
    bias = random_array(seed + 2, (c,)) if affine else None
    y, mean, var = K.batch_norm_train(x, weight, bias, eps)
    hand_mean, hand_var, _ = per_channel_stats(x)
    np.testing.assert_allclose(mean, hand_mean, **TIGHT)
    np.testing.assert_allclose(var, hand_var, **TIGHT)
    np.testing.assert_allclose(y, hand_normalize(x, hand_mean, hand_var, weight, bias, eps),
                               **TIGHT)
    running_mean, running_var = random_array(seed + 3, (c,)), random_array(seed + 4, (c,)) ** 2
    np.testing.assert_allclose(
        K.batch_norm_eval(x, running_mean, running_var, weight, bias, eps),
        hand_normalize(x, running_mean, running_var, weight, bias, eps), **TIGHT,
    )


def test_batch_norm_kernels_keep_float32():
    x = random_array(0, (4, 3, 2, 2), np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    y, mean, var = K.batch_norm_train(x, w, b, 1e-5)
    assert y.dtype == mean.dtype == var.dtype == np.float32
    assert K.batch_norm_eval(x, mean, var, w, b, 1e-5).dtype == np.float32
    assert all(g.dtype == np.float32 for g in K.batch_norm_backward(x, x, w, mean, var, 1e-5))
    assert K.batch_norm_backward(x, x, None, mean, var, 1e-5)[1:] == (None, None)


# ----------------------------------------------------------------------------- batch_norm


@given(shape=channel_shapes(), seed=seeds(), eps=EPS, momentum=MOMENTUM)
def test_batch_norm_training_output_and_running_stats(shape, seed, eps, momentum):
    x = random_array(seed, shape)
    c = shape[1]
    weight, bias = random_array(seed + 1, (c,)), random_array(seed + 2, (c,))
    start_mean, start_var = random_array(seed + 3, (c,)), 1 + random_array(seed + 4, (c,)) ** 2
    running_mean, running_var = t64(start_mean), t64(start_var)
    y = F.batch_norm(t64(x), running_mean, running_var, t64(weight), t64(bias),
                     training=True, momentum=momentum, eps=eps)
    mean, var, unbiased = per_channel_stats(x)
    np.testing.assert_allclose(y.numpy(), hand_normalize(x, mean, var, weight, bias, eps),
                               **TIGHT)
    # PyTorch semantics: exponential average with the UNBIASED batch variance
    np.testing.assert_allclose(running_mean.numpy(), (1 - momentum) * start_mean + momentum * mean,
                               **TIGHT)
    np.testing.assert_allclose(running_var.numpy(),
                               (1 - momentum) * start_var + momentum * unbiased, **TIGHT)


def test_batch_norm_eval_uses_running_stats_and_leaves_them():
    x = random_array(0, (5, 3, 2, 2))
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([0.25, 4.0, 1.0])
    running_mean, running_var = t64(mean), t64(var)
    y = F.batch_norm(t64(x), running_mean, running_var, training=False, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), hand_normalize(x, mean, var, None, None, 1e-5), **TIGHT)
    np.testing.assert_array_equal(running_mean.numpy(), mean)
    np.testing.assert_array_equal(running_var.numpy(), var)


def test_batch_norm_without_running_buffers_and_three_dims():
    x = random_array(1, (4, 3, 5))  # (N, C, L), normalized over N and L
    y = F.batch_norm(t64(x), None, None, training=True)
    mean, var, _ = per_channel_stats(x)
    np.testing.assert_allclose(y.numpy(), hand_normalize(x, mean, var, None, None, 1e-5), **TIGHT)
    assert y.shape == x.shape


def test_batch_norm_float32_running_buffers_stay_float32():
    x = mg.tensor(random_array(2, (8, 3), np.float32), device="numpy")
    running_mean, running_var = mg.zeros(3, device="numpy"), mg.ones(3, device="numpy")
    y = F.batch_norm(x, running_mean, running_var, training=True)
    assert y.dtype == running_mean.dtype == running_var.dtype == np.float32


def _affine_variants(c, seed):
    """(weight, bias) with each present or absent: the Function's optional inputs."""
    w, b = random_array(seed, (c,)), random_array(seed + 1, (c,))
    return [(w, b), (None, None), (w, None), (None, b)]


@pytest.mark.parametrize("variant", range(4))
@given(shape=channel_shapes(min_per_channel=3), seed=seeds(), eps=EPS)
def test_batch_norm_training_gradients(variant, shape, seed, eps):
    weight, bias = _affine_variants(shape[1], seed + 1)[variant]
    given_arrays = [a for a in (weight, bias) if a is not None]

    def fn(x, *affine):
        it = iter(affine)
        w = next(it) if weight is not None else None
        b = next(it) if bias is not None else None
        return F.batch_norm(x, None, None, w, b, training=True, eps=eps)

    check_gradients(fn, random_array(seed, shape), *given_arrays)


@given(shape=channel_shapes(min_per_channel=1), seed=seeds(), eps=EPS)
def test_batch_norm_eval_gradients(shape, seed, eps):
    c = shape[1]
    mean, var = t64(random_array(seed + 3, (c,))), t64(random_array(seed + 4, (c,)) ** 2)
    check_gradients(
        lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False, eps=eps),
        random_array(seed, shape), random_array(seed + 1, (c,)), random_array(seed + 2, (c,)),
    )


@settings(max_examples=8)
@given(shape=channel_shapes(min_per_channel=3, max_size=2), seed=seeds(), eps=EPS)
def test_batch_norm_training_double_gradients(shape, seed, eps):
    c = shape[1]
    check_double_gradients(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=eps),
        random_array(seed, shape), random_array(seed + 1, (c,)), random_array(seed + 2, (c,)),
    )


@pytest.mark.parametrize("variant", range(4))
def test_fast_path_equals_composed_backward(variant):
    """First-order backward calls K.batch_norm_backward; with create_graph it is the
    Tensor-op composition. Same formula, float64: equal to ~1e-12."""
    weight, bias = _affine_variants(3, 10)[variant]
    x = t64(random_array(11, (4, 3, 2, 3)), requires_grad=True)
    w = t64(weight, requires_grad=True) if weight is not None else None
    b = t64(bias, requires_grad=True) if bias is not None else None
    r = t64(random_array(12, (4, 3, 2, 3)))
    leaves = [t for t in (x, w, b) if t is not None]

    def loss():
        return (F.batch_norm(x, None, None, w, b, training=True, eps=1e-3) * r).sum()

    fast = mg.grad(loss(), leaves)
    composed = mg.grad(loss(), leaves, create_graph=True)
    for a, c in zip(fast, composed):
        np.testing.assert_allclose(a.numpy(), c.numpy(), **TIGHT)


# ----------------------------------------------------------------------------- instance_norm


@given(shape=channel_shapes(min_per_channel=2, ndims=(4,)), seed=seeds(), eps=EPS,
       momentum=MOMENTUM)
def test_instance_norm_matches_hand_computation(shape, seed, eps, momentum):
    n, c, h, w = shape
    shape = (n, c, max(h, 2), w)  # at least two spatial values per instance
    x = random_array(seed, shape)
    weight, bias = random_array(seed + 1, (c,)), random_array(seed + 2, (c,))
    running_mean, running_var = t64(np.zeros(c)), t64(np.ones(c))
    y = F.instance_norm(t64(x), running_mean, running_var, t64(weight), t64(bias),
                        momentum=momentum, eps=eps)
    flat = x.reshape(n, c, -1)
    mean, var = flat.mean(axis=2, keepdims=True), flat.var(axis=2, keepdims=True)
    expected = (flat - mean) / np.sqrt(var + eps) * weight[:, None] + bias[:, None]
    np.testing.assert_allclose(y.numpy(), expected.reshape(shape), **TIGHT)
    # PyTorch: the batch average of the per-instance mean and unbiased variance
    np.testing.assert_allclose(running_mean.numpy(), momentum * mean[..., 0].mean(axis=0),
                               **TIGHT)
    unbiased = flat.var(axis=2, ddof=1).mean(axis=0)
    np.testing.assert_allclose(running_var.numpy(), (1 - momentum) + momentum * unbiased, **TIGHT)


def test_instance_norm_with_running_stats():
    x = random_array(3, (2, 3, 4))
    mean, var = np.array([0.1, 0.2, -0.3]), np.array([1.5, 0.5, 2.0])
    y = F.instance_norm(t64(x), t64(mean), t64(var), use_input_stats=False, eps=1e-5)
    np.testing.assert_allclose(y.numpy(), hand_normalize(x, mean, var, None, None, 1e-5), **TIGHT)


@given(shape=channel_shapes(min_per_channel=2, ndims=(4,), max_batch=2), seed=seeds(),
       eps=EPS, use_input_stats=st.booleans())
def test_instance_norm_gradients(shape, seed, eps, use_input_stats):
    n, c, h, w = shape
    shape = (n, c, max(h, 2), w)  # at least two spatial values per instance
    mean, var = t64(random_array(seed + 3, (c,))), t64(1 + random_array(seed + 4, (c,)) ** 2)
    check_gradients(
        lambda x, w, b: F.instance_norm(x, mean, var, w, b, use_input_stats=use_input_stats,
                                        eps=eps),
        random_array(seed, shape), random_array(seed + 1, (c,)), random_array(seed + 2, (c,)),
    )


@settings(max_examples=5)
@given(seed=seeds(), eps=EPS)
def test_instance_norm_double_gradients(seed, eps):
    check_double_gradients(
        lambda x, w: F.instance_norm(x, weight=w, eps=eps),
        random_array(seed, (2, 2, 3)), random_array(seed + 1, (2,)),
    )


# ----------------------------------------------------------------------------- layer_norm


@given(seed=seeds(), eps=EPS)
def test_layer_norm_values_and_gradients(seed, eps):
    x = random_array(seed, (2, 3, 4))
    w, b = random_array(seed + 1, (3, 4)), random_array(seed + 2, (3, 4))
    flat = x.reshape(2, -1)
    expected = ((flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + eps))
    y = F.layer_norm(t64(x), (3, 4), t64(w), t64(b), eps=eps)
    np.testing.assert_allclose(y.numpy(), expected.reshape(x.shape) * w + b, **TIGHT)
    check_gradients(lambda x, w, b: F.layer_norm(x, (3, 4), w, b, eps=eps), x, w, b)


# ----------------------------------------------------------------------------- errors


def test_errors_name_op_and_shapes():
    x = mg.zeros(4, 3, 2, 2, device="numpy")
    with pytest.raises(ValueError, match=r"batch_norm: input has 3 channels, weight has shape "
                                         r"\(4,\) \(input \(4, 3, 2, 2\)"):
        F.batch_norm(x, None, None, mg.ones(4, device="numpy"), training=True)
    with pytest.raises(ValueError, match="batch_norm: input has 3 channels, running_mean"):
        F.batch_norm(x, mg.zeros(2, device="numpy"), mg.ones(3, device="numpy"))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(mg.zeros(1, 3, device="numpy"), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are needed"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"instance_norm: expected input .* got \(4, 3\)"):
        F.instance_norm(mg.zeros(4, 3, device="numpy"))
    with pytest.raises(ValueError, match="instance_norm: expected more than 1 spatial element"):
        F.instance_norm(mg.zeros(4, 3, 1, 1, device="numpy"))
    with pytest.raises(ValueError, match=r"layer_norm: input's trailing dimensions must be \(3,"):
        F.layer_norm(x, (3, 2))


# ----------------------------------------------------------------------------- PyTorch


def test_against_torch():
    torch = pytest.importorskip("torch")
    x = random_array(20, (4, 3, 5, 5))
    w, b = random_array(21, (3,)), random_array(22, (3,))
    r = random_array(23, x.shape)
    for name in ("batch_norm", "instance_norm"):
        ours = [t64(a, requires_grad=True) for a in (x, w, b)]
        theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        rm, rv = t64(np.zeros(3)), t64(np.ones(3))
        trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        if name == "batch_norm":
            y = F.batch_norm(ours[0], rm, rv, ours[1], ours[2], training=True, momentum=0.3)
            ty = torch.nn.functional.batch_norm(theirs[0], trm, trv, theirs[1], theirs[2],
                                                training=True, momentum=0.3)
        else:
            y = F.instance_norm(ours[0], rm, rv, ours[1], ours[2], momentum=0.3)
            ty = torch.nn.functional.instance_norm(theirs[0], trm, trv, theirs[1], theirs[2],
                                                   momentum=0.3)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), **TIGHT, err_msg=name)
        np.testing.assert_allclose(rm.numpy(), trm.numpy(), **TIGHT, err_msg=name)
        np.testing.assert_allclose(rv.numpy(), trv.numpy(), **TIGHT, err_msg=name)
        (y * t64(r)).sum().backward()
        (ty * torch.tensor(r)).sum().backward()
        for a, ta in zip(ours, theirs):
            np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), **TIGHT, err_msg=name)


# ----------------------------------------------------------------------------- + activation
# F.batch_norm_act is the op nn.Sequential runs for BatchNorm followed by an activation.
# Relu's kink: draws whose normalized output comes within 1e-3 of 0 are skipped, so no
# finite-difference step (1e-6, moving the output by far less) crosses it.


def _bn_act(kind, eps, weight_given=True, bias_given=True):
    def fn(x, *affine):
        it = iter(affine)
        w = next(it) if weight_given else None
        b = next(it) if bias_given else None
        return F.batch_norm_act(x, None, None, w, b, True, 0.1, eps, kind, 0.2)
    return fn


def _away_from_kink(x, weight, bias, eps):
    y, _, _ = K.batch_norm_train(x, weight, bias, eps)
    return np.abs(y).min() > 1e-3


@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("variant", range(4))
@given(shape=channel_shapes(min_per_channel=3), seed=seeds(), eps=EPS)
def test_batch_norm_act_training_gradients(kind, variant, shape, seed, eps):
    weight, bias = _affine_variants(shape[1], seed + 1)[variant]
    x = random_array(seed, shape)
    assume(_away_from_kink(x, weight, bias, eps))
    given_arrays = [a for a in (weight, bias) if a is not None]
    check_gradients(_bn_act(kind, eps, weight is not None, bias is not None), x, *given_arrays)


@settings(max_examples=8)
@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "tanh"])
@given(shape=channel_shapes(min_per_channel=3, max_size=2), seed=seeds(), eps=EPS)
def test_batch_norm_act_training_double_gradients(kind, shape, seed, eps):
    c = shape[1]
    x, w, b = random_array(seed, shape), random_array(seed + 1, (c,)), random_array(seed + 2, (c,))
    assume(_away_from_kink(x, w, b, eps))
    fn = _bn_act(kind, eps)
    # squared: relu's and leaky relu's second derivative through the mask is otherwise 0
    check_double_gradients(lambda *t: fn(*t) ** 2, x, w, b)


@pytest.mark.parametrize("device", ["numpy", "cpu"])
@pytest.mark.parametrize("kind", ["relu", "leaky_relu", "tanh", "sigmoid"])
def test_batch_norm_act_equals_batch_norm_then_activation(device, kind):
    """Values, running statistics and every gradient (first order: the fused kernels) match
    the two ops in turn, in float64, to rounding; in eval mode too."""
    x0 = random_array(20, (5, 3, 2, 3))
    w0, b0 = random_array(21, (3,)), random_array(22, (3,))
    results = []
    for fused in (True, False):
        x = mg.tensor(x0, device=device, requires_grad=True)
        w = mg.tensor(w0, device=device, requires_grad=True)
        b = mg.tensor(b0, device=device, requires_grad=True)
        rm, rv = mg.zeros(3, device=device, dtype=np.float64), mg.ones(3, device=device,
                                                                        dtype=np.float64)
        if fused:
            y = F.batch_norm_act(x, rm, rv, w, b, True, 0.1, 1e-5, kind, 0.2)
            y_eval = F.batch_norm_act(x, rm, rv, w, b, False, 0.1, 1e-5, kind, 0.2)
        else:
            act = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.2),
                   "tanh": F.tanh, "sigmoid": F.sigmoid}[kind]
            y = act(F.batch_norm(x, rm, rv, w, b, training=True, eps=1e-5))
            y_eval = act(F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5))
        (y * y).sum().backward()
        results.append([a.numpy() for a in (y, y_eval, rm, rv, x.grad, w.grad, b.grad)])
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=1e-10, atol=1e-12)
