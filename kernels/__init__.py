"""Kernels: arrays in, arrays out. No Tensor, no autograd, no Module.

reference/  NumPy, the readable truth (also runs on CuPy arrays).
cpu/        Numba, same names and semantics as the reference.
cuda/       GPU kernels, same names and semantics as the reference.
"""
