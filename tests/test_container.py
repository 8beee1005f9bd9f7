"""ModuleList and ModuleDict: registration (parameters, state_dict keys, to, train/eval),
the list and dict operations with PyTorch's renumbering, reprs, errors, and a model built
with them loading PyTorch's state_dict and giving PyTorch's outputs."""

import numpy as np
import pytest

import minigan as mg
import minigan.functional as F
import minigan.nn as nn
from tests.strategies import random_array
from tests.torch_compare import torch_or_skip

DEVICE = "numpy"


def linear(n_in=2, n_out=2):
    return nn.Linear(n_in, n_out, device=DEVICE)


class Tower(nn.Module):
    """A shared trunk of blocks in a ModuleList and one head per name in a ModuleDict."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 4), nn.Linear(4, 4)])
        self.blocks.append(nn.Linear(4, 4))
        self.heads = nn.ModuleDict({"real": nn.Linear(4, 1), "label": nn.Linear(4, 10)})

    def forward(self, x):
        for block in self.blocks:
            x = F.tanh(block(x))
        return {name: head(x) for name, head in self.heads.items()}


def test_parameters_and_state_dict_keys_match_torch():
    torch = torch_or_skip()

    class TorchTower(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(3, 4), torch.nn.Linear(4, 4)])
            self.blocks.append(torch.nn.Linear(4, 4))
            self.heads = torch.nn.ModuleDict({"real": torch.nn.Linear(4, 1),
                                              "label": torch.nn.Linear(4, 10)})

        def forward(self, x):
            for block in self.blocks:
                x = block(x).tanh()
            return {name: head(x) for name, head in self.heads.items()}

    ours = Tower().to(DEVICE)
    theirs = TorchTower()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours.blocks) == repr(theirs.blocks)
    assert repr(ours.heads) == repr(theirs.heads)
    ours.load_state_dict(theirs.state_dict())
    x = random_array(0, (5, 3))
    mine = ours(mg.tensor(x, dtype=np.float32, device=DEVICE))
    expected = theirs(torch.tensor(x, dtype=torch.float32))
    for name in ("real", "label"):
        # float32 through 4 small layers: a few ulps of O(1) values
        np.testing.assert_allclose(mine[name].numpy(), expected[name].detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_plain_list_registers_nothing_module_list_registers_all():
    class Plain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [linear(), linear()]

    class Listed(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([linear(), linear()])

    assert list(Plain().parameters()) == []
    assert list(Listed().state_dict()) == ["layers.0.weight", "layers.0.bias",
                                           "layers.1.weight", "layers.1.bias"]


def test_module_list_operations_renumber_like_a_list():
    a, b, c, d = linear(), linear(), linear(), linear()
    layers = nn.ModuleList([a, b])
    layers.extend([c])
    assert list(layers) == [a, b, c] and len(layers) == 3
    assert layers[-1] is c and layers[0] is a
    sliced = layers[1:]
    assert isinstance(sliced, nn.ModuleList) and list(sliced) == [b, c]
    assert list(sliced._modules) == ["0", "1"]
    layers.insert(1, d)
    assert list(layers) == [a, d, b, c]
    assert list(layers._modules) == ["0", "1", "2", "3"]
    del layers[0]
    assert list(layers) == [d, b, c] and list(layers._modules) == ["0", "1", "2"]
    assert [k for k in layers.state_dict()][:2] == ["0.weight", "0.bias"]
    assert layers.pop(1) is b and list(layers) == [d, c]
    layers[0] = a
    assert list(layers) == [a, c] and list(layers._modules) == ["0", "1"]
    layers[-1] = d
    assert list(layers) == [a, d]
    del layers[1:]
    assert list(layers) == [a]
    combined = layers + [b]
    assert isinstance(combined, nn.ModuleList) and list(combined) == [a, b]
    layers += [c]
    assert list(layers) == [a, c]
    with pytest.raises(IndexError, match="ModuleList index 2 out of range for length 2"):
        layers[2]
    with pytest.raises(TypeError, match="ModuleList.append: expected a Module, got int"):
        layers.append(3)
    with pytest.raises(TypeError, match="ModuleList.extend: expected an iterable of Modules"):
        layers.extend(linear())
    with pytest.raises(NotImplementedError):
        layers(mg.zeros(1, 2, device=DEVICE))


def test_module_dict_operations():
    a, b, c = linear(), linear(), linear()
    heads = nn.ModuleDict([("a", a), ("b", b)])
    assert list(heads) == ["a", "b"] and "a" in heads and "z" not in heads
    heads["c"] = c
    heads.update({"a": c})  # replacing keeps the key's position, as in a dict
    assert list(heads.keys()) == ["a", "b", "c"] and heads["a"] is c
    assert list(heads.values()) == [c, b, c] and len(heads) == 3
    assert heads.pop("b") is b and list(heads) == ["a", "c"]
    # the same module under two names: its parameters count once
    assert len(list(heads.parameters())) == 2
    del heads["a"]
    assert list(heads.items()) == [("c", c)]
    heads.clear()
    assert len(heads) == 0 and list(heads.parameters()) == []
    with pytest.raises(KeyError, match="ModuleDict has no module 'missing'"):
        heads["missing"]
    with pytest.raises(KeyError, match="without '.'"):
        heads["a.b"] = a
    with pytest.raises(TypeError, match="ModuleDict: expected a Module, got str"):
        heads["a"] = "relu"
    with pytest.raises(TypeError, match=r"element 0 should be a \(key, module\) pair"):
        nn.ModuleDict([a])


def test_containers_follow_to_train_and_eval():
    model = nn.Module()
    model.blocks = nn.ModuleList([nn.Linear(2, 2, device=DEVICE), nn.Dropout(0.5)])
    model.heads = nn.ModuleDict({"out": nn.BatchNorm1d(2, device=DEVICE)})
    model.eval()
    assert not model.blocks[1].training and not model.heads["out"].training
    model.train()
    assert model.blocks[1].training
    other = "cpu" if "cpu" in mg.available_devices() else "numpy"
    weight = model.blocks[0].weight
    model.to(other)
    assert model.blocks[0].weight is weight and weight.device == other
    assert model.heads["out"].running_mean.device == other


def test_empty_reprs():
    assert repr(nn.ModuleList()) == "ModuleList()"
    assert repr(nn.ModuleDict()) == "ModuleDict()"


def test_reassigned_submodule_or_parameter_keeps_its_place():
    torch = torch_or_skip()

    def build(lib, ours):
        model = lib.Module()
        model.first, model.second = lib.Linear(2, 2), lib.Linear(2, 2)
        model.first = lib.Linear(2, 2)  # replaced, not moved to the end
        model.scale, model.shift = (lib.Parameter(mg.ones(1) if ours else torch.ones(1))
                                    for _ in range(2))
        model.scale = lib.Parameter(mg.zeros(1) if ours else torch.zeros(1))
        return model

    assert list(build(nn, True).state_dict()) == list(build(torch.nn, False).state_dict())
