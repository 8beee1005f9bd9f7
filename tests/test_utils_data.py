"""minigan.utils.data: torch.utils.data's Dataset / TensorDataset / DataLoader loop.

Exact comparisons throughout: batches are copies and stacks of the items, no arithmetic.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import minigan as mg
from minigan.utils.data import DataLoader, Dataset, TensorDataset, default_collate


def _rows(n=10):
    return np.arange(n * 3, dtype=np.float32).reshape(n, 3), np.arange(n) % 4


def test_tensor_dataset_batches_in_order_with_the_last_short_one():
    x, y = _rows()
    loader = DataLoader(TensorDataset(mg.tensor(x), y), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    assert batches[0][1].dtype == np.int64 and batches[0][0].dtype == np.float32
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [b[0].shape[0] for b in loader] == [4, 4]


def test_shuffle_is_one_seeded_permutation_per_epoch():
    x, y = _rows(23)
    loader = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True,
                        generator=mg.Generator(4))
    first = np.concatenate([b[1].numpy() for b in loader])
    second = np.concatenate([b[1].numpy() for b in loader])
    rows = np.concatenate([b[0].numpy()[:, 0] / 3 for b in loader]).astype(int)
    assert sorted(rows) == list(range(23))  # every row once, pairs kept together
    np.testing.assert_array_equal(x[rows][:, 0] / 3, rows)
    # a new permutation each epoch (two equal ones of 23 items: chance 1 in 23!), and not
    # the unshuffled order
    assert not np.array_equal(first, second) and not np.array_equal(first, y)
    again = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True,
                       generator=mg.Generator(4))
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in again]), first)


def test_items_of_a_dataset_are_collated_as_torch_collates_them():
    Pair = namedtuple("Pair", "image label")

    class Items(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"image": np.full((2, 2), i, dtype=np.float32), "label": i, "weight": 0.5,
                    "pair": Pair(mg.ones(3) * i, i)}, f"item{i}"

    batches = list(DataLoader(Items(), batch_size=2))
    assert len(batches) == 3
    record, names = batches[0]
    assert names == ["item0", "item1"]
    assert record["image"].shape == (2, 2, 2) and record["image"].dtype == np.float32
    assert record["label"].dtype == np.int64 and record["label"].tolist() == [0, 1]
    assert record["weight"].dtype == np.float64  # torch's rule for Python floats
    assert isinstance(record["pair"], Pair) and record["pair"].image.shape == (2, 3)
    np.testing.assert_array_equal(batches[2][0]["label"].numpy(), [4])


def test_options_are_honoured_or_refused_by_name():
    x, y = _rows()
    loader = DataLoader(TensorDataset(x, y), batch_size=4, num_workers=2, pin_memory=True)
    assert len(list(loader)) == 3  # speed-only options: the same batches
    with pytest.raises(ValueError, match="DataLoader: sampler= is not supported"):
        DataLoader(TensorDataset(x), sampler=[0, 1])
    with pytest.raises(TypeError, match="DataLoader: unexpected argument 'shufle'"):
        DataLoader(TensorDataset(x), shufle=True)
    with pytest.raises(ValueError, match="batch_size must be a positive whole number, got 0"):
        DataLoader(TensorDataset(x), batch_size=0)
    with pytest.raises(ValueError, match=r"differ in their first dimension \(\(10, 3\), \(9,\)"):
        TensorDataset(x, y[:9])
    with pytest.raises(TypeError, match="cannot batch items of type object"):
        default_collate([object(), object()])


def test_a_training_loop_written_for_torch_runs():
    x, y = _rows(32)
    model = mg.nn.Linear(3, 4)
    opt = mg.optim.SGD(model.parameters(), lr=1e-3)
    steps, before = [], model.weight.numpy().copy()
    for epoch in range(2):
        for i, (images, labels) in enumerate(DataLoader(TensorDataset(x, y), batch_size=8,
                                                        shuffle=True)):
            loss = mg.nn.functional.cross_entropy(model(images / 100.0), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps.append((epoch, i, images.shape, np.isfinite(loss.item())))
    assert steps == [(e, i, (8, 3), True) for e in range(2) for i in range(4)]
    assert not np.array_equal(model.weight.numpy(), before)


def test_batches_match_torch_without_shuffling():
    torch = pytest.importorskip("torch", reason="this test compares with PyTorch")
    x, y = _rows(11)
    ours = list(DataLoader(TensorDataset(x, y), batch_size=4))
    theirs = list(torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=4))
    assert len(ours) == len(theirs)
    for (a, b), (ta, tb) in zip(ours, theirs):
        np.testing.assert_array_equal(a.numpy(), ta.numpy())
        np.testing.assert_array_equal(b.numpy(), tb.numpy())
    class Floats(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return float(i), i

    mine = next(iter(DataLoader(Floats(), batch_size=3)))
    torchs = next(iter(torch.utils.data.DataLoader(Floats(), batch_size=3)))
    assert str(mine[0].dtype) == str(torchs[0].dtype).split(".")[-1]
    assert str(mine[1].dtype) == str(torchs[1].dtype).split(".")[-1]
