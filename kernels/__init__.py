"""Kernels: arrays in, arrays out. No Tensor, no autograd, no Module.

reference/  NumPy, the readable truth (also runs on CuPy arrays).
cpu/        Numba, same names and semantics as the reference.
cuda/       GPU kernels, same names and semantics as the reference.
"""

if __name__ != "minigan.kernels":
    # Imported by its folder name (`import kernels...` from the repository root): Numba's
    # on-disk cache keys compiled code by file, not by module name, and would then hold
    # entries that name what minigan itself cannot import, failing a later run deep inside
    # a kernel call. The folder is installed as minigan.kernels.
    raise ImportError(
        f"the kernels are the package minigan.kernels, not {__name__!r}: write "
        "`import minigan.kernels.cpu` (or `from minigan.kernels import cpu`) instead"
    )
