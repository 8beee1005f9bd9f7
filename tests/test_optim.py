"""minigan.optim: each optimizer's steps against its closed form written out here (float64,
hypothesis-drawn hyperparameters), PyTorch's semantics for skipped parameters, state_dict
round trips, the flat-buffer packing (one kernel call per step, live Parameter views), and
torch.optim itself as an outside oracle when it is installed."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigan as mg
import minigan.nn as nn
from minigan import backend, optim
from tests.strategies import random_array, seeds

DEVICE = "numpy"
SHAPES = [(3, 2), (4,), ()]

# Float64 closed form against float64 kernel: both evaluate the same formula in a different
# operation order, a few ulps (1e-16 relative) per operation over a handful of steps;
# 1e-10 relative leaves a wide margin while any wrong term (an O(lr) change) is caught.
RTOL, ATOL = 1e-10, 1e-13


def make_params(seed, dtype=np.float64, device=DEVICE):
    return [nn.Parameter(mg.tensor(random_array(seed + k, s), dtype=dtype, device=device))
            for k, s in enumerate(SHAPES)]


def gradients(seed, n_steps):
    return [[random_array(1000 * seed + 10 * t + k, s) for k, s in enumerate(SHAPES)]
            for t in range(n_steps)]


def set_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = None if g is None else mg.tensor(g, dtype=p.dtype, device=p.device)


# ----------------------------------------------------------------------------- closed forms
# Each takes the parameters' values, the gradients of one step and the state dict, and
# returns the new values, as the papers (and PyTorch's documentation) write them.


def adam_closed_form(p, g, state, t, lr, betas, eps, weight_decay, decoupled):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g**2
    m_hat = state["m"] / (1 - b1**t)
    v_hat = state["v"] / (1 - b2**t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)


def rmsprop_closed_form(p, g, state, t, lr, alpha, eps, weight_decay, momentum):
    g = g + weight_decay * p
    state["v"] = alpha * state.get("v", 0.0) + (1 - alpha) * g**2
    step = g / (np.sqrt(state["v"]) + eps)
    if momentum > 0:
        state["buf"] = momentum * state.get("buf", 0.0) + step
        step = state["buf"]
    return p - lr * step


def sgd_closed_form(p, g, state, t, lr, momentum, weight_decay, nesterov):
    g = g + weight_decay * p
    if momentum:
        # PyTorch starts the buffer at g on the first step (the same as from zero)
        state["buf"] = g if "buf" not in state else momentum * state["buf"] + g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return p - lr * g


def run_and_compare(make_optimizer, closed_form, hyper, seed, n_steps, device=DEVICE):
    params = make_params(seed, device=device)
    expected = [p.numpy().copy() for p in params]
    states = [{} for _ in params]
    opt = make_optimizer(params)
    for t, grads in enumerate(gradients(seed, n_steps), start=1):
        set_grads(params, grads)
        opt.step()
        expected = [closed_form(e, g, s, t, **hyper) for e, g, s in zip(expected, grads, states)]
        for k, (p, e) in enumerate(zip(params, expected)):
            np.testing.assert_allclose(p.numpy(), e, rtol=RTOL, atol=ATOL,
                                       err_msg=f"parameter {k} after step {t}")


lrs = st.floats(1e-4, 0.5)
unit = st.floats(0.0, 0.999)
epsilons = st.sampled_from([1e-8, 1e-6, 1e-3, 0.1])
decays = st.sampled_from([0.0, 1e-3, 0.1])
steps = st.integers(1, 4)


@given(lrs, unit, unit, epsilons, decays, st.booleans(), seeds(), steps)
def test_adam_and_adamw_closed_form(lr, beta1, beta2, eps, weight_decay, decoupled, seed, n):
    kind = optim.AdamW if decoupled else optim.Adam
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    run_and_compare(lambda ps: kind(ps, **hyper), adam_closed_form,
                    dict(hyper, decoupled=decoupled), seed, n)


@given(lrs, unit, epsilons, decays, st.sampled_from([0.0, 0.5, 0.9]), seeds(), steps)
def test_rmsprop_closed_form(lr, alpha, eps, weight_decay, momentum, seed, n):
    hyper = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
    run_and_compare(lambda ps: optim.RMSprop(ps, **hyper), rmsprop_closed_form, hyper, seed, n)


@given(lrs, st.sampled_from([0.0, 0.5, 0.9]), decays, st.booleans(), seeds(), steps)
def test_sgd_closed_form(lr, momentum, weight_decay, nesterov, seed, n):
    nesterov = nesterov and momentum > 0
    hyper = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    run_and_compare(lambda ps: optim.SGD(ps, **hyper), sgd_closed_form, hyper, seed, n)


FAST_DEVICES = [d for d in ("cpu", "cuda") if d in mg.available_devices()]


@pytest.mark.parametrize("device", FAST_DEVICES)
@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_each_device_matches_closed_form(device, name):
    """The same closed forms through each device's kernel set (Numba, CUDA) in float64."""
    cases = {
        "adam": (lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1), adam_closed_form,
                 dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1,
                      decoupled=False)),
        "adamw": (lambda ps: optim.AdamW(ps, lr=0.1), adam_closed_form,
                  dict(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                       decoupled=True)),
        "rmsprop": (lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9), rmsprop_closed_form,
                    dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.9)),
        "sgd": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                sgd_closed_form, dict(lr=0.1, momentum=0.9, weight_decay=0.0, nesterov=True)),
    }
    make, closed_form, hyper = cases[name]
    run_and_compare(make, closed_form, hyper, seed=7, n_steps=3, device=device)


# ----------------------------------------------------------------------------- skipped params


def test_parameters_without_grad_are_skipped_like_pytorch():
    """A parameter whose grad is None keeps its values, moments and step count; later steps
    use its own step count in the bias correction."""
    hyper = dict(lr=0.1, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.0)
    params = make_params(3)
    opt = optim.Adam(params, **hyper)
    expected = [p.numpy().copy() for p in params]
    states, counts = [{} for _ in params], [0] * len(params)
    for t, grads in enumerate(gradients(3, 4), start=1):
        if t == 2:
            grads[1] = None
        set_grads(params, grads)
        opt.step()
        for k, g in enumerate(grads):
            if g is not None:
                counts[k] += 1
                expected[k] = adam_closed_form(expected[k], g, states[k], counts[k], **hyper,
                                               decoupled=False)
        for k, p in enumerate(params):
            np.testing.assert_allclose(p.numpy(), expected[k], rtol=RTOL, atol=ATOL)
    assert [opt.state_dict()["state"][k]["step"] for k in range(3)] == [4, 3, 4]


def test_one_kernel_call_per_step(monkeypatch):
    K = backend.get(DEVICE).K
    calls = []
    original = K.adam_update
    monkeypatch.setattr(K, "adam_update", lambda *a, **kw: (calls.append(a[0].size),
                                                             original(*a, **kw)))
    model = nn.Sequential(nn.Linear(3, 4, device=DEVICE), nn.ReLU(),
                          nn.Linear(4, 2, device=DEVICE))
    opt = optim.Adam(model.parameters())
    model(mg.ones(5, 3, device=DEVICE)).sum().backward()
    opt.step()
    assert calls == [3 * 4 + 4 + 4 * 2 + 2]  # one call over all 26 values
    calls.clear()
    model[2].bias.grad = None  # the rare case: one call per parameter that has a grad
    opt.step()
    assert calls == [12, 4, 8]


# ----------------------------------------------------------------------------- packing


def test_packing_keeps_parameter_views_live():
    g = mg.Generator(0)
    model = nn.Sequential(nn.Linear(3, 4, generator=g, device=DEVICE), nn.Tanh(),
                          nn.Linear(4, 1, generator=g, device=DEVICE))
    before = [p.numpy().copy() for p in model.parameters()]
    opt = optim.SGD(model.parameters(), lr=0.5)
    flat = opt._packs[0][0].flat
    for p, values in zip(model.parameters(), before):
        assert np.shares_memory(p.array, flat)
        np.testing.assert_array_equal(p.numpy(), values)  # packing keeps the values
    x = mg.tensor(random_array(0, (6, 3), np.float32), device=DEVICE)
    model(x).sum().backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    for p, values, grad in zip(model.parameters(), before, grads):
        np.testing.assert_allclose(p.numpy(), values - 0.5 * grad, rtol=1e-6)
    # the model computes with the updated values (the views are what the layers read)
    w1, b1, w2, b2 = (p.numpy() for p in model.parameters())
    expected = np.tanh(x.numpy() @ w1.T + b1) @ w2.T + b2
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    # Module.load_state_dict copies into the same views: the optimizer sees the new values
    state = {k: np.zeros_like(v) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert not flat.any()
    # replacing an array by one of the same kind is adopted back into the flat buffer
    model[0].weight.array = model[0].weight.array + 1.0
    model.zero_grad()
    model(x).sum().backward()
    opt.step()
    assert np.shares_memory(model[0].weight.array, flat)


def test_moving_parameters_after_creation_is_reported():
    model = nn.Linear(2, 2, device=DEVICE)
    opt = optim.Adam(model.parameters())
    model.double()
    model(mg.ones(1, 2, dtype=np.float64, device=DEVICE)).sum().backward()
    with pytest.raises(RuntimeError, match=r"Adam: parameter 0 \(shape \(2, 2\)\).*Create the "
                                           r"optimizer after model.to\(device\)"):
        opt.step()


def test_mixed_dtypes_get_one_pack_each():
    a = nn.Parameter(mg.ones(2, dtype=np.float32, device=DEVICE))
    b = nn.Parameter(mg.ones(3, dtype=np.float64, device=DEVICE))
    opt = optim.SGD([a, b], lr=1.0)
    assert len(opt._packs[0]) == 2
    set_grads([a, b], [np.full(2, 0.5), np.full(3, 0.25)])
    opt.step()
    np.testing.assert_array_equal(a.numpy(), 0.5)
    np.testing.assert_array_equal(b.numpy(), 0.75)
    assert a.dtype == np.float32 and b.dtype == np.float64


def test_param_groups_and_schedules():
    first, second = make_params(0)[:1], make_params(5)[1:]
    opt = optim.SGD([{"params": first, "lr": 0.0}, {"params": second}], lr=1.0, momentum=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.0, 1.0]
    assert opt.param_groups[0]["momentum"] == 0.5  # defaults fill what a group leaves out
    before = [p.numpy().copy() for p in first + second]
    set_grads(first + second, [np.ones(s) for s in SHAPES])
    opt.step()
    np.testing.assert_array_equal(first[0].numpy(), before[0])
    np.testing.assert_allclose(second[0].numpy(), before[1] - 1.0)
    opt.param_groups[1]["lr"] = 0.1  # a schedule writes here; the next step reads it
    opt.step()
    np.testing.assert_allclose(second[0].numpy(), before[1] - 1.0 - 0.1 * 1.5)
    opt.zero_grad()
    assert all(p.grad is None for p in first + second)


def test_argument_errors():
    p = make_params(0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="Adam: invalid betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="RMSprop: invalid learning rate -1"):
        optim.RMSprop(p, lr=-1)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD(p + p[:1], lr=0.1)


# ----------------------------------------------------------------------------- state


def json_round_trip(state):
    """What a checkpoint does to the non-array parts: str keys, lists for tuples."""
    def convert(tree):
        if isinstance(tree, dict):
            return {str(k): convert(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return [convert(v) for v in tree]
        return tree

    arrays = {}

    def strip(tree):
        if isinstance(tree, dict):
            return {k: strip(v) for k, v in tree.items()}
        if isinstance(tree, list):
            return [strip(v) for v in tree]
        if isinstance(tree, np.ndarray):
            arrays[str(len(arrays))] = tree
            return {"array": str(len(arrays) - 1)}
        return tree

    def restore(tree):
        if isinstance(tree, dict):
            return arrays[tree["array"]] if set(tree) == {"array"} else {
                k: restore(v) for k, v in tree.items()}
        if isinstance(tree, list):
            return [restore(v) for v in tree]
        return tree

    return restore(json.loads(json.dumps(strip(convert(state)))))


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.05, betas=(0.5, 0.9), weight_decay=0.01),
    lambda ps: optim.AdamW(ps, lr=0.05),
    lambda ps: optim.Adam(ps, lr=0.05, amsgrad=True),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
], ids=["adam", "adamw", "amsgrad", "rmsprop", "sgd"])
def test_state_dict_round_trip_continues_identically(make):
    params = make_params(1)
    opt = make(params)
    all_grads = gradients(1, 6)
    for grads in all_grads[:3]:
        set_grads(params, grads)
        opt.step()
    state = json_round_trip(opt.state_dict())
    saved_values = [p.numpy().copy() for p in params]

    restored = [nn.Parameter(mg.tensor(v, device=DEVICE)) for v in saved_values]
    other = make(restored)
    other.param_groups[0]["lr"] = 123.0  # overwritten by the loaded hyperparameters
    other.load_state_dict(state)
    assert other.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for grads in all_grads[3:]:
        set_grads(params, grads)
        set_grads(restored, grads)
        opt.step()
        other.step()
    for p, q in zip(params, restored):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_state_dict_layout():
    params = make_params(2)
    opt = optim.Adam(params, lr=0.01)
    assert opt.state_dict() == {"state": {}, "param_groups": [
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
         "amsgrad": False, "params": [0, 1, 2]}]}
    set_grads(params, gradients(2, 1)[0])
    opt.step()
    state = opt.state_dict()["state"]
    assert sorted(state) == [0, 1, 2]
    assert state[0]["step"] == 1 and state[0]["exp_avg"].shape == (3, 2)
    assert state[2]["exp_avg_sq"].shape == ()
    state[0]["exp_avg"][...] = 99  # a copy: the optimizer is untouched
    assert not np.any(opt.state_dict()["state"][0]["exp_avg"] == 99)
    with pytest.raises(ValueError, match="state 'exp_avg' of parameter 0 has shape"):
        bad = opt.state_dict()
        bad["state"][0]["exp_avg"] = np.zeros(5)
        opt.load_state_dict(bad)
    with pytest.raises(ValueError, match="param group 0 has 3 parameters in the state_dict, 2 in"):
        optim.Adam(params[:2]).load_state_dict(opt.state_dict())


# ----------------------------------------------------------------------------- torch


def test_matches_torch_optim():
    torch = pytest.importorskip("torch")
    cases = [
        (lambda ps: optim.Adam(ps, lr=0.01, betas=(0.5, 0.999), weight_decay=0.01),
         lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.5, 0.999), weight_decay=0.01)),
        (lambda ps: optim.AdamW(ps, lr=0.01), lambda ps: torch.optim.AdamW(ps, lr=0.01)),
        (lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.01, amsgrad=True),
         lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.01, amsgrad=True)),
        (lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
         lambda ps: torch.optim.AdamW(ps, lr=0.01, amsgrad=True)),
        (lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, weight_decay=0.1),
         lambda ps: torch.optim.RMSprop(ps, lr=0.01, momentum=0.5, weight_decay=0.1)),
        (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                    weight_decay=0.01)),
    ]
    for ours_factory, theirs_factory in cases:
        ours = make_params(4, dtype=np.float32)
        theirs = [torch.nn.Parameter(torch.tensor(p.numpy().copy())) for p in ours]
        ours_opt, theirs_opt = ours_factory(ours), theirs_factory(theirs)
        for grads in gradients(4, 10):
            set_grads(ours, grads)
            for p, g in zip(theirs, grads):
                p.grad = torch.tensor(g, dtype=torch.float32)
            ours_opt.step()
            theirs_opt.step()
        for p, q in zip(ours, theirs):
            # same float32 operation order; ten steps of rounding of values of order 1
            np.testing.assert_allclose(p.numpy(), q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_no_nan_from_zero_gradients():
    params = make_params(0)
    opt = optim.Adam(params, eps=0.0 + 1e-8)
    set_grads(params, [np.zeros(s) for s in SHAPES])
    opt.step()
    assert all(np.all(np.isfinite(p.numpy())) for p in params)
    assert math.isclose(float(opt.state_dict()["state"][0]["exp_avg_sq"].sum()), 0.0)


@pytest.mark.gpu
def test_training_steps_on_cuda_match_numpy():
    """Module.to("cuda"), the packed optimizer on CuPy arrays, state_dict back to NumPy and
    the gradient penalty: three Adam steps agree with the same steps on the reference."""
    from minigan.gan import objectives

    def build(device):
        model = nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1, generator=mg.Generator(0)),
                              nn.LeakyReLU(0.2), nn.Flatten(),
                              nn.Linear(4 * 4 * 4, 1, generator=mg.Generator(1))).to(device)
        return model, optim.Adam(model.parameters(), lr=0.01)

    results = {}
    for device in ("numpy", "cuda"):
        model, opt = build(device)
        for step in range(3):
            x = mg.tensor(random_array(step, (4, 1, 8, 8), np.float32), device=device)
            fake = mg.tensor(random_array(step + 10, (4, 1, 8, 8), np.float32), device=device)
            loss = objectives.wasserstein_critic_loss(model(x), model(fake))
            loss = loss + objectives.gradient_penalty(model, x, fake, mg.Generator(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
        results[device] = (model.state_dict(), opt.state_dict())
    for key, value in results["numpy"][0].items():
        assert isinstance(results["cuda"][0][key], np.ndarray)
        # float32, different summation orders in the GPU GEMMs over three steps
        np.testing.assert_allclose(results["cuda"][0][key], value, rtol=1e-4, atol=1e-5)
    cuda_state = results["cuda"][1]["state"]
    for index, entry in results["numpy"][1]["state"].items():
        assert cuda_state[index]["step"] == entry["step"] == 3
        np.testing.assert_allclose(cuda_state[index]["exp_avg"], entry["exp_avg"], rtol=1e-3,
                                   atol=1e-5)
