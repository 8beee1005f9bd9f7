"""exp, tanh and sigmoid for Numba loops that still vectorise in float32.

A loop that calls libm's expf or tanhf cannot be vectorised (no SVML here), and tanhf
costs ~15 ns per element, against ~0.4 ns for NumPy's SIMD tanh (measured on this machine,
see benchmarks/RESULTS.md). So the float32 versions below use only +, *, /, floor and a
bit pattern, which LLVM turns into AVX-512 code. float64 keeps libm's functions: that path
serves gradient checks, where accuracy matters more than speed.

Inside @njit code call `exp(x)`, `tanh(x)` or `sigmoid(x)`; the float32 or float64 version
is chosen from the argument's type when the loop compiles.

Accuracy of the float32 versions (checked in tests/test_cpu_kernels.py over a dense grid
against float64 results): a few ulps of the result.
"""

from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

# exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2].
# ln 2 is split in two (Cody & Waite 1980): LN2_HI has 9 significant bits, so n * LN2_HI
# is exact for |n| <= 128 and r keeps full precision.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
# exp(r) on |r| <= 0.347 by its Taylor series to r^7: the first term left out,
# r^8 / 8! <= 5e-9, is below float32 rounding (6e-8).
_EXP_TAYLOR = tuple(np.float32(1 / math.factorial(k)) for k in range(8))
# Below _EXP_MIN the result would be a subnormal (< 2^-126): it is flushed to 0. Above
# _EXP_MAX (where 2^n would need n = 128) it is inf: libm's expf overflows a little later,
# at 88.72. Both ends are far from the arguments used here (exp(-|x|), exp(-2|x|)).
_EXP_MIN = np.float32(-87.33)
_EXP_MAX = np.float32(88.37)
# tanh(z) for |z| < 0.25 by its Taylor series to z^9 (relative error of the next term,
# 1382/155925 z^10, < 1e-8); above, (1 - e) / (1 + e) with e = exp(-2|z|) loses at most
# a factor ~1.5 to cancellation.
_TANH_SMALL = np.float32(0.25)
_TANH_TAYLOR = tuple(np.float32(c) for c in (1.0, -1 / 3, 2 / 15, -17 / 315, 62 / 2835))


def exp(x):
    """e^x (a Python fallback; inside @njit code the overload below is used)."""
    return math.exp(x)


def tanh(x):
    return math.tanh(x)


def sigmoid(x):
    """1 / (1 + e^-x), written so that exp never overflows."""
    return _sigmoid_libm(x)


@register_jitable
def _sigmoid_libm(x):
    e = math.exp(-abs(x))
    return 1 / (1 + e) if x >= 0 else e / (1 + e)


@register_jitable
def _exp_float32(x):
    clamped = min(max(x, _EXP_MIN), _EXP_MAX)  # keeps 2^n a normal float
    n = np.floor(clamped * _LOG2E + np.float32(0.5))
    r = clamped - n * _LN2_HI - n * _LN2_LO
    c0, c1, c2, c3, c4, c5, c6, c7 = _EXP_TAYLOR
    p = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
    # 2^n as a float32: the biased exponent n + 127 in bits 23-30
    scale = np.int32((np.int32(n) + np.int32(127)) << np.int32(23)).view(np.float32)
    result = p * scale
    if x < _EXP_MIN:
        result = np.float32(0.0)
    if x > _EXP_MAX:
        result = np.float32(np.inf)
    if x != x:  # nan stays nan
        result = x
    return result


@register_jitable
def _tanh_float32(x):
    a = abs(x)
    s = x * x
    c0, c1, c2, c3, c4 = _TANH_TAYLOR
    small = x * (c0 + s * (c1 + s * (c2 + s * (c3 + s * c4))))
    e = _exp_float32(np.float32(-2.0) * a)
    large = (np.float32(1.0) - e) / (np.float32(1.0) + e)
    if x < 0:
        large = -large
    result = small if a < _TANH_SMALL else large
    if x != x:
        result = x
    return result


@register_jitable
def _sigmoid_float32(x):
    e = _exp_float32(-abs(x))
    one = np.float32(1.0)
    result = one / (one + e) if x >= 0 else e / (one + e)
    if x != x:
        result = x
    return result


@overload(exp, jit_options={"cache": True, "error_model": "numpy"})
def _exp_overload(x):
    if x == types.float32:
        return _exp_float32
    return lambda x: math.exp(x)


@overload(tanh, jit_options={"cache": True, "error_model": "numpy"})
def _tanh_overload(x):
    if x == types.float32:
        return _tanh_float32
    return lambda x: math.tanh(x)


@overload(sigmoid, jit_options={"cache": True, "error_model": "numpy"})
def _sigmoid_overload(x):
    if x == types.float32:
        return _sigmoid_float32
    return _sigmoid_libm
