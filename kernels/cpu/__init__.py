"""cpu kernels: Numba loops (and BLAS products), the same names, signatures and semantics
as kernels/reference. The backend takes these first and the reference for anything not
listed here.

Compiled code is cached on disk next to these files (Numba's cache=True): the first
import that calls a kernel compiles it (seconds); later processes load it (benchmarks/
RESULTS.md has both times).
"""

from minigan._environment import start_numba_threads

from . import activation, blas, conv, linear, loss, norm, optim
from ._util import keep_freed_memory

start_numba_threads()  # before any parallel loop: see minigan/_environment.py

MALLOC_TUNED = keep_freed_memory()  # False unless MINIGAN_MALLOC_TUNING=1: see its docstring

__all__: list[str] = []
for _module in (activation, blas, conv, linear, loss, norm, optim):
    for _name in _module.__all__:
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
