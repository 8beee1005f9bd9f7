"""Embedding: a learned vector per integer label (torch.nn.Embedding's signature).

The weight starts as N(0, 1), as in PyTorch (Embedding.reset_parameters), with the row of
padding_idx zeroed.
"""

from __future__ import annotations

import numpy as np

from .. import creation
from .. import functional as F
from ..autograd import Tensor, no_grad
from ..random import Generator
from . import init
from ..functional.embedding import padding_index
from .module import Module, Parameter


class Embedding(Module):
    """input (any shape, int64) -> (*input.shape, embedding_dim): weight[input].

    padding_idx: that row starts at zero and gets no gradient. max_norm: rows read are
    first rescaled in place to at most that norm_type-norm. scale_grad_by_freq: gradient
    rows divided by their count in the batch. _weight: an initial weight to use as is.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False,
                 _weight: Tensor | None = None, _freeze: bool = False, device=None,
                 dtype=None, generator: Generator | None = None):
        super().__init__()
        if num_embeddings < 1 or embedding_dim < 1:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be positive, "
                             f"got {num_embeddings} and {embedding_dim}")
        padding_idx = padding_index("Embedding", padding_idx, num_embeddings)
        if sparse:
            raise ValueError("Embedding: sparse gradients are not supported (sparse=False)")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            weight = creation.zeros((num_embeddings, embedding_dim),
                                    dtype=dtype or np.float32, device=device)
            self.weight = Parameter(weight, requires_grad=not _freeze)
            self.reset_parameters(generator)
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, "
                                 f"expected {(num_embeddings, embedding_dim)}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        init.normal_(self.weight, generator=generator)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, **kwargs) -> Embedding:
        """An Embedding whose weight is `embeddings` (2-D); frozen unless freeze=False."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape "
                             f"{embeddings.shape}")
        rows, dim = embeddings.shape
        return cls(rows, dim, _weight=embeddings, _freeze=freeze, **kwargs)

    def forward(self, input) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text
