"""Reference kernels in NumPy: short, obvious, float64-safe. The readable truth.

They take the array module from their inputs (`array_module`), so they also run on CuPy
arrays; a fast kernel set (cpu, cuda) overrides them name by name.
"""

from . import activation, conv, embedding, linalg, loss, norm, optim, pooling, shape
from ._util import array_module

__all__ = ["array_module"]
for _module in (activation, conv, embedding, linalg, loss, norm, optim, pooling, shape):
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
