"""Loss modules (BCEWithLogitsLoss, BCELoss, MSELoss, L1Loss, CrossEntropyLoss, NLLLoss) and
what they added to the functional losses: pos_weight, class weights, ignore_index, label
smoothing, probability targets, the deprecated size_average / reduce. Values against hand
formulas, gradients and gradients of gradients by finite differences, PyTorch as an
outside oracle, buffers in state_dict, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds
from tests.torch_compare import compare_with_torch, devices, torch_or_skip

DEVICE = "numpy"
REDUCTIONS = ["mean", "sum", "none"]


def t64(array):
    return mg.tensor(array, dtype=np.float64, device=DEVICE)


def log_softmax(x):
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def reduce(values, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](values)


# ----------------------------------------------------------------------------- values


@given(seeds(), st.sampled_from(REDUCTIONS))
def test_pos_weight_matches_formula(seed, reduction):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(size=(4, 3))
    pos_weight = rng.uniform(0.5, 3.0, size=3)
    p = 1 / (1 + np.exp(-x))  # |x| is O(10) at most: the naive form is accurate here
    expected = -(pos_weight * t * np.log(p) + (1 - t) * np.log(1 - p))
    out = F.binary_cross_entropy_with_logits(t64(x), t64(t), reduction=reduction,
                                             pos_weight=t64(pos_weight))
    np.testing.assert_allclose(out.numpy(), reduce(expected, reduction), rtol=1e-10)


def test_pos_weight_stays_finite_at_plus_minus_1000():
    x, t = t64([1000.0, -1000.0, 1000.0, -1000.0]), t64([1.0, 1.0, 0.0, 0.0])
    out = F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=t64([2.0]))
    # exact limits: right answers cost 0, a wrong positive 2 * 1000, a wrong negative 1000
    np.testing.assert_array_equal(out.numpy(), [0.0, 2000.0, 1000.0, 0.0])


@given(seeds(), st.sampled_from(REDUCTIONS), st.booleans(), st.sampled_from([0.0, 0.3]))
def test_cross_entropy_weights_ignore_index_and_smoothing(seed, reduction, weighted, smoothing):
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    x = rng.standard_normal((n, c)) * 2
    labels = rng.integers(0, c, size=n)
    labels[1] = -100  # ignored
    weight = rng.uniform(0.5, 2.0, size=c) if weighted else np.ones(c)
    log_p = log_softmax(x)
    kept = labels != -100
    safe = np.where(kept, labels, 0)
    # PyTorch's definition: (1 - e) weighted NLL + e/C weighted sum over all classes, each
    # reduced over the kept targets ("mean" divides by their summed weights)
    nll = -log_p[np.arange(n), safe] * weight[safe] * kept
    uniform = -(log_p * weight).sum(axis=1) * kept
    per_sample = (1 - smoothing) * nll + smoothing / c * uniform
    if reduction == "mean":
        expected = per_sample.sum() / (weight[safe] * kept).sum()
    else:
        expected = reduce(per_sample, reduction)
    out = F.cross_entropy(t64(x), labels, t64(weight) if weighted else None,
                          reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-14)


def test_cross_entropy_with_probabilities_equals_indices_for_one_hot():
    x = random_array(1, (3, 4, 2))
    labels = np.array([[0, 3], [2, 2], [1, 0]])
    one_hot = np.moveaxis(np.eye(4)[labels], -1, 1)
    for smoothing in (0.0, 0.2):
        by_index = F.cross_entropy(t64(x), labels, label_smoothing=smoothing)
        by_probability = F.cross_entropy(t64(x), t64(one_hot), label_smoothing=smoothing)
        np.testing.assert_allclose(by_probability.numpy(), by_index.numpy(), rtol=1e-12)


def test_every_target_ignored_gives_nan_mean_and_zero_sum():
    x = t64(random_array(4, (2, 3)))
    labels = np.array([-100, -100])
    assert np.isnan(F.cross_entropy(x, labels).item())
    assert np.isnan(F.cross_entropy(x, labels, label_smoothing=0.1).item())
    assert F.cross_entropy(x, labels, reduction="sum").item() == 0.0  # as in PyTorch


def test_legacy_size_average_and_reduce():
    x, t = t64(random_array(2, (3, 2))), t64(random_array(3, (3, 2)))
    with pytest.warns(DeprecationWarning, match="size_average and reduce are deprecated"):
        total = F.mse_loss(x, t, size_average=False)
    np.testing.assert_allclose(total.numpy(), F.mse_loss(x, t, reduction="sum").numpy())
    with pytest.warns(DeprecationWarning):
        per_element = nn.L1Loss(reduce=False)(x, t)
    assert per_element.shape == (3, 2)


# ----------------------------------------------------------------------------- gradients


@settings(max_examples=8)
@given(seeds(), st.sampled_from(REDUCTIONS))
def test_pos_weight_gradients(seed, reduction):
    rng = np.random.default_rng(seed)
    x, t, pw = rng.standard_normal((3, 2)) * 2, rng.uniform(size=(3, 2)), rng.uniform(1, 3, 2)

    def loss(x, t):
        return F.binary_cross_entropy_with_logits(x, t, reduction=reduction,
                                                  pos_weight=t64(pw))

    check_gradients(loss, x, t, device=DEVICE)
    check_double_gradients(loss, x, t, device=DEVICE)


@settings(max_examples=8)
@given(seeds(), st.sampled_from(REDUCTIONS))
def test_cross_entropy_gradients(seed, reduction):
    rng = np.random.default_rng(seed)
    x, weight = rng.standard_normal((4, 3, 2)), rng.uniform(0.5, 2.0, size=3)
    labels = rng.integers(0, 3, size=(4, 2))
    labels[0, 0] = 3  # ignored below
    probabilities = rng.dirichlet(np.ones(3), size=(4, 2)).transpose(0, 2, 1)

    def by_index(x):
        return F.cross_entropy(x, labels, t64(weight), ignore_index=3, reduction=reduction,
                               label_smoothing=0.1)

    def by_probability(x, p):
        return F.cross_entropy(x, p, t64(weight), reduction=reduction, label_smoothing=0.1)

    check_gradients(by_index, x, device=DEVICE)
    check_double_gradients(by_index, x, device=DEVICE)
    check_gradients(by_probability, x, probabilities, device=DEVICE)
    check_double_gradients(by_probability, x, probabilities, device=DEVICE)


# ----------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_modules_against_torch(reduction, device):
    torch = torch_or_skip()
    tnn = torch.nn
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((4, 3)) * 3, rng.uniform(size=(4, 3))
    p = rng.uniform(0.01, 0.99, size=(4, 3))
    w, pw = rng.uniform(size=3), rng.uniform(0.5, 3.0, size=3)
    logits = rng.standard_normal((5, 4, 2))
    labels = rng.integers(0, 4, size=(5, 2))
    labels[2, 1] = -100
    class_weight = rng.uniform(0.5, 2.0, size=4)
    probabilities = rng.dirichlet(np.ones(4), size=(5, 2)).transpose(0, 2, 1)

    def ours_t(a):
        return mg.tensor(a, dtype=np.float64, device=device)

    cases = [
        (nn.BCEWithLogitsLoss(ours_t(w), reduction=reduction, pos_weight=ours_t(pw)),
         tnn.BCEWithLogitsLoss(torch.tensor(w), reduction=reduction,
                               pos_weight=torch.tensor(pw)), x, t),
        (nn.BCELoss(ours_t(w), reduction=reduction),
         tnn.BCELoss(torch.tensor(w), reduction=reduction), p, t),
        (nn.MSELoss(reduction=reduction), tnn.MSELoss(reduction=reduction), x, t),
        (nn.L1Loss(reduction=reduction), tnn.L1Loss(reduction=reduction), x, t),
        (nn.CrossEntropyLoss(ours_t(class_weight), reduction=reduction, label_smoothing=0.1),
         tnn.CrossEntropyLoss(torch.tensor(class_weight), reduction=reduction,
                              label_smoothing=0.1), logits, probabilities),
    ]
    for ours, theirs, a, b in cases:
        assert repr(ours) == repr(theirs)
        compare_with_torch(ours, theirs, a, b, device=device)
    for ours, theirs in [
        (nn.CrossEntropyLoss(ours_t(class_weight), reduction=reduction, label_smoothing=0.2),
         tnn.CrossEntropyLoss(torch.tensor(class_weight), reduction=reduction,
                              label_smoothing=0.2)),
        (nn.CrossEntropyLoss(ignore_index=1, reduction=reduction),
         tnn.CrossEntropyLoss(ignore_index=1, reduction=reduction)),
    ]:
        target = np.where(labels == -100, 1, labels) if ours.ignore_index == 1 else labels
        compare_with_torch(lambda a, ours=ours, target=target: ours(
                               a, mg.tensor(target, device=device)),
                           lambda a, theirs=theirs, target=target: theirs(
                               a, torch.tensor(target)), logits, device=device)
    nll, torch_nll = nn.NLLLoss(ours_t(class_weight), reduction=reduction), \
        tnn.NLLLoss(torch.tensor(class_weight), reduction=reduction)
    compare_with_torch(lambda a: nll(a, mg.tensor(labels, device=device)),
                       lambda a: torch_nll(a, torch.tensor(labels)),
                       log_softmax(logits), device=device)


def test_weights_are_buffers_with_torchs_keys():
    torch = torch_or_skip()
    pairs = [
        (nn.BCEWithLogitsLoss(pos_weight=mg.ones(3)),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.ones(3))),
        (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss()),
        (nn.CrossEntropyLoss(weight=np.ones(4)), torch.nn.CrossEntropyLoss(weight=torch.ones(4))),
        (nn.MSELoss(), torch.nn.MSELoss()),
    ]
    for ours, theirs in pairs:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert list(ours.parameters()) == []


def test_errors():
    x = mg.zeros(2, 3, device=DEVICE)
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"pos_weight shape \(2,\) does not broadcast to input "
                                         r"shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(x, 1.0, pos_weight=mg.ones(2, device=DEVICE))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have one value per "
                                         r"class, shape \(3,\), got \(2,\)"):
        F.cross_entropy(x, [0, 1], weight=np.ones(2))
    with pytest.raises(ValueError, match=r"cross_entropy: a float target holds class "
                                         r"probabilities and must have the input's shape"):
        F.cross_entropy(x, mg.zeros(2, device=DEVICE))
    with pytest.raises(ValueError, match=r"nll_loss: target class indices must be in \[0, 3\)"):
        F.cross_entropy(x, [0, -1], ignore_index=5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(x, [0, 1], label_smoothing=1.5)
