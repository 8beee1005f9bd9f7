"""torch.utils.data's loop, for scripts written for PyTorch: `for x, y in DataLoader(
TensorDataset(images, labels), batch_size=64, shuffle=True)` gives one epoch of Tensor
batches.

Batches are built in this process. num_workers, pin_memory, persistent_workers and
prefetch_factor only make PyTorch load faster (its batches are the same with or without
them), so they are accepted and change nothing here; options that would change the
batches and are not supported (sampler, batch_sampler, worker_init_fn) are refused by name.
The shuffled order of each epoch is one permutation from `generator` (a minigan.Generator;
the default one when None, so minigan.manual_seed fixes it), though not torch's numbers.
For training runs that must resume mid-epoch, minigan.data.Loader keeps its place in a
checkpoint.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ..autograd import Tensor, stack
from ..creation import tensor
from ..random import resolve

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]

# DataLoader options that only make PyTorch's loading faster: accepted, no effect here
_SPEED_ONLY = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "timeout",
               "multiprocessing_context", "pin_memory_device", "in_order")
# DataLoader options that change the batches: not supported, refused by name
_NOT_SUPPORTED = ("sampler", "batch_sampler", "worker_init_fn")


class Dataset:
    """Items by index: a subclass gives __getitem__(i) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Rows of tensors (or arrays) of one length: item i is (t[i] for t in tensors)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        lengths = {len(t) for t in tensors}
        if len(lengths) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: the tensors differ in their first dimension "
                             f"({shapes})")
        self.tensors = tuple(t if isinstance(t, Tensor) else tensor(t) for t in tensors)

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


def default_collate(items):
    """A batch from a list of items, as torch's default_collate: tensors and arrays stacked
    along a new first dimension, Python ints as int64 and floats as float64 tensors,
    tuples, lists and dicts collated entry by entry (a tuple's batch is a list, as in
    torch), strings left as a list."""
    first = items[0]
    if isinstance(first, Tensor):
        return stack(items)
    if isinstance(first, (np.ndarray, np.generic)):
        return tensor(np.stack([np.asarray(item) for item in items]))
    if isinstance(first, bool):
        return tensor(np.array(items, dtype=np.bool_))
    if isinstance(first, Integral):
        return tensor(np.array(items, dtype=np.int64))
    if isinstance(first, Real):
        return tensor(np.array(items, dtype=np.float64))
    if isinstance(first, (str, bytes)):
        return list(items)
    if isinstance(first, dict):
        return {key: default_collate([item[key] for item in items]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(item) != len(first) for item in items):
            raise ValueError("default_collate: the items of a batch differ in length")
        columns = [default_collate(list(column)) for column in zip(*items)]
        # a named tuple stays one; other tuples and lists become lists, as in torch
        return type(first)(*columns) if hasattr(first, "_fields") else columns
    raise TypeError(f"default_collate: cannot batch items of type {type(first).__name__}; "
                    "pass collate_fn= to batch them yourself")


class DataLoader:
    """One epoch of batches per iteration over a dataset (torch.utils.data.DataLoader)."""

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn=None, generator=None, **options):
        for name in options:
            if name in _NOT_SUPPORTED:
                raise ValueError(f"DataLoader: {name}= is not supported (it changes which "
                                 "items a batch holds); use shuffle=, drop_last= and a "
                                 "generator, or build the batches yourself")
            if name not in _SPEED_ONLY:
                raise TypeError(f"DataLoader: unexpected argument {name!r}")
        if batch_size is None or isinstance(batch_size, bool) or \
                not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive whole number, got "
                             f"{batch_size!r} (batch_size=None, items one by one, is not "
                             "supported)")
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"DataLoader: the dataset needs __getitem__ and __len__, got "
                            f"{type(dataset).__name__}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = resolve(self.generator).permutation(n) if self.shuffle else np.arange(n)
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is default_collate
        for batch in range(len(self)):
            rows = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            if fast:  # rows of each tensor at once, the same batch as item by item
                yield [t[rows] for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[int(i)] for i in rows])
