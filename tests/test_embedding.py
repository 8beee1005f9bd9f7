"""nn.Embedding / F.embedding and F.one_hot: gradients and gradients of gradients against
finite differences, PyTorch as an outside oracle (when installed), and error messages."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigan as mg
import minigan.functional as F
from minigan import nn
from tests.gradcheck import check_double_gradients, check_gradients
from tests.strategies import random_array, seeds


@st.composite
def lookups(draw):
    """(num_embeddings, dim, indices, padding_idx, scale_grad_by_freq); indices repeat
    often, so the scatter-add's accumulation is exercised."""
    rows, dim = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    seed = draw(seeds())
    indices = np.random.default_rng(seed).integers(0, rows, size=shape)
    padding = draw(st.one_of(st.none(), st.integers(-rows, rows - 1)))
    return rows, dim, indices, padding, draw(st.booleans())


@settings(max_examples=25)
@given(lookups(), seeds())
def test_embedding_gradients_and_double_gradients(lookup, seed):
    rows, dim, indices, _, _ = lookup
    weight = random_array(seed, (rows, dim))
    check_gradients(lambda w: F.embedding(indices, w), weight)
    # cubed, so the gradient's graph runs through EmbeddingGrad and its backward (a lookup)
    check_double_gradients(lambda w: F.embedding(indices, w) ** 3, weight)


@settings(max_examples=15, deadline=None)
@given(lookups(), seeds())
def test_modified_gradients_and_double_gradients_match_torch(lookup, seed):
    """padding_idx and scale_grad_by_freq change the gradient on purpose (PyTorch's rules,
    not a derivative), so finite differences do not apply: PyTorch is the oracle, to
    second order (float64, a handful of products: agreement to 1e-12)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    rows, dim, indices, padding, by_freq = lookup
    weight = random_array(seed, (rows, dim))
    r = random_array(seed + 1, indices.shape + (dim,))
    v = random_array(seed + 2, (rows, dim))
    results = []
    for lib, lookup_fn, make in (
            (mg, F.embedding, mg.tensor),
            (torch, torch.nn.functional.embedding, torch.tensor)):
        w = make(weight, requires_grad=True)
        out = lookup_fn(make(indices), w, padding, scale_grad_by_freq=by_freq)
        (g,) = lib.autograd.grad((out ** 3 * make(r)).sum(), [w], create_graph=True)
        (second,) = lib.autograd.grad((g * make(v)).sum(), [w])
        results.append((g.detach().numpy(), second.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_padding_row_gets_no_gradient_and_repeated_rows_add_up():
    weight = mg.tensor(np.arange(8.0).reshape(4, 2), requires_grad=True)
    F.embedding([[1, 1, 0], [3, 1, 0]], weight, padding_idx=0).sum().backward()
    # row 1 is read three times, row 3 once, row 2 never, row 0 is padding
    np.testing.assert_array_equal(weight.grad.numpy(), [[0, 0], [3, 3], [0, 0], [1, 1]])


@settings(max_examples=15, deadline=None)
@given(lookups(), seeds(), st.sampled_from(["numpy", "cpu"]))
def test_embedding_matches_torch(lookup, seed, device):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    rows, dim, indices, padding, by_freq = lookup
    weight = random_array(seed, (rows, dim), dtype=np.float32)
    mine = mg.tensor(weight, requires_grad=True, device=device)
    theirs = torch.tensor(weight, requires_grad=True)
    out = F.embedding(mg.tensor(indices, device=device), mine, padding,
                      scale_grad_by_freq=by_freq)
    expected = torch.nn.functional.embedding(torch.tensor(indices), theirs, padding,
                                             scale_grad_by_freq=by_freq)
    g = random_array(seed + 1, tuple(expected.shape), dtype=np.float32)
    (out * mg.tensor(g, device=device)).sum().backward()
    (expected * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())  # a copy: exact
    # a sum of at most 6 float32 products per entry, in another order: a few ulps
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_max_norm_renormalises_the_rows_read_like_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    weight = random_array(3, (6, 4), dtype=np.float32, scale=2.0)
    indices = np.array([[0, 2], [2, 5]])
    layer = nn.Embedding(6, 4, max_norm=1.5, norm_type=3.0, _weight=mg.tensor(weight))
    reference = torch.nn.Embedding(6, 4, max_norm=1.5, norm_type=3.0,
                                   _weight=torch.tensor(weight))
    out = layer(mg.tensor(indices))
    with torch.no_grad():
        expected = reference(torch.tensor(indices))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    # rows 1, 3, 4 were not read and keep their values; the others now match torch's
    np.testing.assert_allclose(layer.weight.numpy(), reference.weight.detach().numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(layer.weight.numpy()[[1, 3, 4]], weight[[1, 3, 4]])


def test_embedding_layer_like_torch():
    layer = nn.Embedding(10, 3, padding_idx=-1, generator=mg.Generator(0))
    assert layer.padding_idx == 9 and repr(layer) == "Embedding(10, 3, padding_idx=9)"
    np.testing.assert_array_equal(layer.weight.numpy()[9], 0)
    assert layer.weight.numpy()[:9].std() > 0.3  # N(0, 1) init, 27 draws
    out = layer(mg.tensor([[1, 2], [9, 0]]))
    assert out.shape == (2, 2, 3)
    assert list(dict(layer.named_parameters())) == ["weight"]
    frozen = nn.Embedding.from_pretrained(mg.tensor(np.eye(3, dtype=np.float32)))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(mg.tensor([2])).numpy(), [[0, 0, 1]])


def test_one_hot_like_torch():
    labels = np.array([[0, 3], [2, 1]])
    out = F.one_hot(mg.tensor(labels))
    assert out.shape == (2, 2, 4) and out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy().argmax(-1), labels)
    assert out.numpy().sum() == 4
    assert F.one_hot(mg.tensor([1]), num_classes=5).shape == (1, 5)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    np.testing.assert_array_equal(
        F.one_hot(mg.tensor(labels), 6).numpy(),
        torch.nn.functional.one_hot(torch.tensor(labels), 6).numpy())


@pytest.mark.parametrize("call, message", [
    (lambda: F.embedding(mg.tensor([0, 4]), mg.zeros(4, 2)), "indices must be in [0, 4)"),
    (lambda: F.embedding(mg.tensor([0.0]), mg.zeros(4, 2)), "expected integer indices"),
    (lambda: F.embedding(mg.tensor([0]), mg.zeros(4)), "weight must be 2-D"),
    (lambda: nn.Embedding(4, 2, padding_idx=4), "padding_idx must be within"),
    (lambda: nn.Embedding(4, 2, sparse=True), "sparse gradients are not supported"),
    (lambda: F.one_hot(mg.tensor([0, 3]), 3), "smaller than num_classes (3), got 3"),
    (lambda: F.one_hot(mg.tensor([-1])), "must be non-negative"),
    (lambda: F.one_hot(mg.tensor([0.5])), "expected integer indices"),
])
def test_errors_say_what_is_wrong(call, message):
    with pytest.raises((ValueError, IndexError, TypeError)) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)
