"""Lookup tables: embedding (rows of a weight matrix picked by integer labels) and one_hot.

`embedding` is what label conditioning is built from (a conditional GAN looks up a learned
vector per class). Its gradient with respect to the weight adds each position's gradient
row into the row it was read from, a scatter-add; rows read twice get both. The lookup and
the scatter-add are adjoint linear maps, so each one's backward is the other and gradients
of any order close within the pair (kernels/reference/embedding.py).
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from ..autograd import Function, Tensor, no_grad

__all__ = ["embedding", "one_hot"]


class EmbeddingLookup(Function):
    def forward(self, weight, indices, padding_idx, scale_by_freq: bool):
        self.indices, self.padding_idx, self.scale_by_freq = indices, padding_idx, scale_by_freq
        self.num_embeddings = weight.shape[0]
        return self.K.embedding(weight, indices)

    def backward(self, g: Tensor):
        return EmbeddingGrad.apply(g, indices=self.indices, num_embeddings=self.num_embeddings,
                                   padding_idx=self.padding_idx,
                                   scale_by_freq=self.scale_by_freq)


class EmbeddingGrad(Function):
    """grad_weight = P^T S g: P gathers rows, S scales each position (0 at padding_idx,
    1/count with scale_by_freq, else 1). Its adjoint is S P, a plain lookup times S."""

    def forward(self, g, indices, num_embeddings: int, padding_idx, scale_by_freq: bool):
        self.indices, self.padding_idx, self.scale_by_freq = indices, padding_idx, scale_by_freq
        return self.K.embedding_grad(g, num_embeddings, indices, padding_idx, scale_by_freq)

    def backward(self, gg: Tensor):
        looked_up = EmbeddingLookup.apply(gg, indices=self.indices, padding_idx=None,
                                          scale_by_freq=False)
        if self.padding_idx is None and not self.scale_by_freq:
            return looked_up
        xp = self.xp
        scale = xp.ones(self.indices.shape, dtype=gg.dtype)
        if self.scale_by_freq:
            counts = xp.bincount(self.indices.reshape(-1), minlength=gg.shape[0])
            scale = scale / counts[self.indices].astype(gg.dtype)
        if self.padding_idx is not None:
            scale = scale * (self.indices != self.padding_idx).astype(gg.dtype)
        return looked_up * Tensor._wrap(scale[..., None], gg._backend)


def _index_array(input, where: str):
    """The integer labels of `input` (a Tensor, array or list) as an int64 NumPy array."""
    array = input.numpy() if isinstance(input, Tensor) else np.asarray(input)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{where}: expected integer indices (int64, e.g. labels.long()), got "
                        f"dtype {array.dtype}")
    return array.astype(np.int64, copy=False)



def padding_index(op: str, padding_idx: int | None, num_embeddings: int) -> int | None:
    """padding_idx checked against the table's rows, a negative one counted from the end."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be within num_embeddings ({num_embeddings}), "
                         f"got {padding_idx}")
    return int(padding_idx) % num_embeddings

def embedding(input, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """torch.nn.functional.embedding: weight[input], for integer input of any shape
    -> (*input.shape, embedding_dim).

    padding_idx: that row gets no gradient (a negative value counts from the end).
    max_norm: before the lookup, the rows about to be read whose norm_type-norm exceeds
    max_norm are rescaled in place to norm max_norm (as PyTorch does, outside autograd).
    scale_grad_by_freq: each row's gradient is divided by how often it occurs in input.
    """
    if sparse:
        raise ValueError("embedding: sparse gradients are not supported (sparse=False)")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                         f"shape {weight.shape}")
    num_embeddings = weight.shape[0]
    indices = _index_array(input, "embedding")
    if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= num_embeddings):
        raise IndexError(f"embedding: indices must be in [0, {num_embeddings}), got values in "
                         f"[{int(indices.min())}, {int(indices.max())}]")
    padding_idx = padding_index("embedding", padding_idx, num_embeddings)
    indices = weight._backend.asarray(indices)
    if max_norm is not None:
        _renorm_rows(weight, indices, float(max_norm), float(norm_type))
    return EmbeddingLookup.apply(weight, indices=indices, padding_idx=padding_idx,
                                 scale_by_freq=bool(scale_grad_by_freq))


def _renorm_rows(weight: Tensor, indices, max_norm: float, norm_type: float) -> None:
    """PyTorch's embedding_renorm_: rows read by `indices` with norm > max_norm are scaled
    by max_norm / (norm + 1e-7), in place and without recording a gradient."""
    with no_grad():
        xp = weight._backend.xp
        rows = xp.unique(indices.reshape(-1))
        values = weight.array[rows]
        norms = (xp.abs(values) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
        # 1e-7: PyTorch's guard against dividing by a zero norm (aten embedding_renorm_)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(values.dtype)
        weight.array[rows] = values * scale[:, None]


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """torch.nn.functional.one_hot: int64 labels (any shape) -> int64 (*shape, num_classes)
    with a 1 at each label. num_classes=-1 takes the largest label + 1."""
    labels = _index_array(tensor, "one_hot")
    backend_of = tensor._backend if isinstance(tensor, Tensor) else None
    if labels.size and int(labels.min()) < 0:
        raise ValueError(f"one_hot: class values must be non-negative, got {int(labels.min())}")
    if num_classes == -1:
        if labels.size == 0:
            raise ValueError("one_hot: can not infer the number of classes from an empty "
                             "tensor; give num_classes")
        num_classes = int(labels.max()) + 1
    if not isinstance(num_classes, Integral) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive int or -1, got "
                         f"{num_classes!r}")
    if labels.size and int(labels.max()) >= num_classes:
        raise ValueError(f"one_hot: class values must be smaller than num_classes "
                         f"({num_classes}), got {int(labels.max())}")
    out = (labels[..., None] == np.arange(num_classes)).astype(np.int64)
    if backend_of is None:
        return Tensor(out, dtype=np.int64)
    return Tensor._wrap(backend_of.asarray(out), backend_of)
