"""Reference kernels of a lookup table: rows of a weight matrix picked by integer indices,
and the adjoint that adds gradient rows back into the table.

    out[..., :] = weight[indices[...], :]                 (embedding)
    grad_weight[k, :] = sum over positions p with indices[p] == k of g[p, :]
                                                           (embedding_grad, a scatter-add)

The second is the adjoint of the first (for a fixed index array both are linear maps), so
the gradient of each is the other one.
"""

from ._util import array_module

__all__ = ["embedding", "embedding_grad"]


def embedding(weight, indices):
    """weight (num_embeddings, dim), integer indices of any shape -> (*indices.shape, dim)."""
    return array_module(weight).take(weight, indices, axis=0)


def embedding_grad(g, num_embeddings: int, indices, padding_idx, scale_by_freq: bool):
    """The adjoint of `embedding`: g (*indices.shape, dim) -> (num_embeddings, dim).

    The row of padding_idx (None: no such row) receives nothing. scale_by_freq divides each
    position's gradient by how often its index occurs in `indices` (PyTorch's
    scale_grad_by_freq), which is still a linear map of g."""
    xp = array_module(g)
    flat_indices = indices.reshape(-1)
    rows = g.reshape(flat_indices.size, g.shape[-1])
    if scale_by_freq:
        counts = xp.bincount(flat_indices, minlength=num_embeddings)
        rows = rows / counts[flat_indices][:, None].astype(g.dtype)
    if padding_idx is not None:
        rows = rows * (flat_indices != padding_idx)[:, None].astype(g.dtype)
    out = xp.zeros((num_embeddings, g.shape[-1]), dtype=g.dtype)
    if xp.__name__ == "cupy":
        import cupyx

        cupyx.scatter_add(out, flat_indices, rows)
    else:
        xp.add.at(out, flat_indices, rows)
    return out
