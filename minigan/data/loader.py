"""A seeded, resumable, endless stream of mini-batches.

The order of an epoch is one permutation drawn from the loader's own generator. The loader
remembers the generator state from just before that draw, so `state_dict()` (epoch, batch
position, that state) is enough to redraw the same permutation later: a run resumed from a
checkpoint gets exactly the batches an uninterrupted run would have got.
"""

from __future__ import annotations

import copy

import numpy as np

from ..random import Generator


class Loader:
    """Batches of rows of `x` (an array, or a tuple of arrays of the same length, e.g.
    (images, labels), which are batched together) for ever, epoch after epoch.

    shuffle: a new permutation each epoch, from seed. drop_last: skip the final short batch
    of an epoch, so every batch has batch_size rows. Batches are NumPy arrays (copies);
    moving them to a device is the caller's step. rank and world_size: this rank's share of
    each batch, rows rank * b .. (rank + 1) * b with b = batch_size / world_size.
    """

    def __init__(self, x, batch_size: int, shuffle: bool = True, drop_last: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        self.arrays = tuple(x) if isinstance(x, (tuple, list)) else (x,)
        self.single = not isinstance(x, (tuple, list))
        if not self.arrays:
            raise ValueError("Loader: no arrays given")
        lengths = {len(a) for a in self.arrays}
        if len(lengths) != 1:
            shapes = ", ".join(str(np.shape(a)) for a in self.arrays)
            raise ValueError(f"Loader: arrays differ in length ({shapes})")
        self.n = lengths.pop()
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"Loader: batch_size must be a positive integer, got {batch_size!r}")
        if self.n == 0:
            raise ValueError("Loader: the dataset is empty")
        if drop_last and batch_size > self.n:
            raise ValueError(
                f"Loader: batch_size {batch_size} is larger than the dataset ({self.n} items) "
                "with drop_last=True, so no full batch can be formed; use a smaller batch "
                "or drop_last=False"
            )
        if batch_size % world_size or not 0 <= rank < world_size or (
                world_size > 1 and not drop_last):
            raise ValueError(f"Loader: batch_size {batch_size} must split evenly over "
                             f"{world_size} processes (rank {rank}), with drop_last=True")
        self.batch_size = int(batch_size)
        self.rank, self.world_size = rank, world_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.generator = Generator(seed)
        self.epoch = 0
        self.position = 0  # index of the next batch within the epoch
        self._start_epoch()

    def __len__(self) -> int:
        """Batches per epoch."""
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def _start_epoch(self) -> None:
        self._epoch_state = copy.deepcopy(self.generator.get_state())
        self.order = self.generator.permutation(self.n) if self.shuffle else np.arange(self.n)

    def next_batch(self):
        """The next batch: an array, or a tuple of arrays when the loader was given a tuple."""
        if self.position >= len(self):
            self.epoch += 1
            self.position = 0
            self._start_epoch()
        start = self.position * self.batch_size
        rows = self.order[start : start + self.batch_size]
        share = self.batch_size // self.world_size
        rows = rows[self.rank * share : (self.rank + 1) * share]
        self.position += 1
        batch = tuple(a[rows] for a in self.arrays)
        return batch[0] if self.single else batch

    def __iter__(self):
        return self

    def __next__(self):
        return self.next_batch()

    def state_dict(self) -> dict:
        """Where the loader is, as plain JSON-serialisable values."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "generator_state": copy.deepcopy(self._epoch_state),
            "n": self.n,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict: the following batches are those the saved loader
        would have produced next."""
        for key in ("n", "batch_size", "shuffle", "drop_last"):
            if state[key] != getattr(self, key):
                raise ValueError(
                    f"Loader.load_state_dict: saved {key}={state[key]!r} but this loader has "
                    f"{key}={getattr(self, key)!r}; the batches would not match"
                )
        self.generator.set_state(copy.deepcopy(state["generator_state"]))
        self._start_epoch()
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
