"""Spectral normalisation (Miyato et al. 2018) as torch.nn.utils.spectral_norm spells it.

`spectral_norm(module)` replaces the parameter `weight` by `weight_orig` and two buffers,
`weight_u` and `weight_v`, the singular-vector estimates of the power iteration; before every
forward it sets `module.weight = weight_orig / sigma` with sigma = u^T W v, W being
weight_orig as a matrix (dim `dim` first, the rest flattened). In training mode the forward
first runs `n_power_iterations` steps v <- W^T u / |W^T u|, u <- W v / |W v| (in place on
the buffers, outside the graph); in eval mode u and v stay as they are. State-dict keys,
their order, the default `dim` (1 for ConvTranspose2d, else 0) and `eps` are PyTorch's, so a
checkpoint loads one-to-one in either direction.

The gradient treats u and v as constants and flows through sigma too:
d(W / sigma) = dW / sigma - W (u^T dW v) / sigma^2, PyTorch's gradient. sigma is written in
differentiable ops, so a penalty on the discriminator's input gradient (WGAN-GP, R1) can be
differentiated again through a normalised layer.
"""

from __future__ import annotations

from ..autograd import Tensor
from ..kernels.reference._util import array_module
from ..random import Generator, resolve
from .linear import ConvTranspose2d
from .module import Module


def _normalize(vector, eps: float):
    """vector / max(|vector|, eps): torch.nn.functional.normalize of one vector."""
    return vector / max(float(array_module(vector).linalg.norm(vector)), eps)


class SpectralNorm:
    """The forward pre-hook that spectral_norm registers; one per normalised parameter."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float):
        self.name, self.n_power_iterations, self.dim, self.eps = (
            name, n_power_iterations, dim, eps)

    def weight_matrix(self, weight: Tensor) -> Tensor:
        """The weight as a matrix (shape[dim], everything else), differentiably."""
        if self.dim != 0:
            order = (self.dim,) + tuple(d for d in range(weight.ndim) if d != self.dim)
            weight = weight.permute(*order)
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        matrix = self.weight_matrix(weight)
        if do_power_iteration:
            w = matrix.array
            for _ in range(self.n_power_iterations):
                v.array[...] = _normalize(w.T @ u.array, self.eps)
                u.array[...] = _normalize(w @ v.array, self.eps)
        sigma = (u * (matrix @ v)).sum()
        return weight / sigma

    def __call__(self, module: Module, args) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    def remove(self, module: Module) -> None:
        from .module import Parameter

        weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))


def _hooks_of(module: Module, name: str):
    return [(key, hook) for key, hook in module._forward_pre_hooks.items()
            if isinstance(hook, SpectralNorm) and hook.name == name]


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None, *,
                  generator: Generator | None = None) -> Module:
    """Normalise `module.<name>` by its largest singular value before every forward
    (torch.nn.utils.spectral_norm); returns the module. u and v start as normalised draws
    of N(0, 1) from `generator` (minigan's default one if None; PyTorch uses its global
    generator)."""
    from .module import Parameter

    if _hooks_of(module, name):
        raise RuntimeError(f"spectral_norm: cannot register two spectral_norm hooks on the "
                           f"same parameter {name!r}")
    weight = module._parameters.get(name)
    if not isinstance(weight, Parameter):
        raise ValueError(f"spectral_norm: {type(module).__name__} has no parameter {name!r}")
    if n_power_iterations < 0:
        raise ValueError(f"spectral_norm: n_power_iterations must be >= 0, got "
                         f"{n_power_iterations}")
    if dim is None:
        dim = 1 if isinstance(module, ConvTranspose2d) else 0
    if not -weight.ndim <= dim < weight.ndim:
        raise ValueError(f"spectral_norm: dim {dim} is out of range for a weight of shape "
                         f"{weight.shape}")
    fn = SpectralNorm(name, n_power_iterations, dim % weight.ndim, eps)
    height, width = fn.weight_matrix(weight).shape
    random = resolve(generator)
    backend = weight._backend
    u = Tensor._wrap(backend.asarray(_normalize(random.normal((height,), weight.dtype), eps)),
                     backend)
    v = Tensor._wrap(backend.asarray(_normalize(random.normal((width,), weight.dtype), eps)),
                     backend)
    delattr(module, name)
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, weight.detach())
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo spectral_norm: `name` becomes a Parameter again, holding weight_orig / sigma
    with the current u and v (torch.nn.utils.remove_spectral_norm); returns the module."""
    found = _hooks_of(module, name)
    if not found:
        raise ValueError(f"spectral_norm of {name!r} not found in {type(module).__name__}")
    key, fn = found[0]
    fn.remove(module)
    del module._forward_pre_hooks[key]
    return module
