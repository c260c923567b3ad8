"""Z_2^64 matrix products through the compiled kernel ring_gemm.c, called with ctypes.

One thread: inside a training step, splitting a product across two threads measured slower
(torch's own worker threads still hold the second core between its operations).
"""

from __future__ import annotations

import ctypes
from functools import cache

import torch

from .build import load, require_int64_cpu

_pointer, _size = ctypes.c_void_p, ctypes.c_int64


@cache
def library() -> ctypes.CDLL:
    lib = load("ring_gemm")
    lib.ring_gemm.argtypes = [_pointer, _pointer, _pointer, _size, _size, _size, _size, _size, _size, _size, _pointer]
    lib.ring_gemm.restype = ctypes.c_int
    return lib


def ring_gemm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x @ y modulo 2^64 for 2-D int64 CPU tensors (any strides)."""
    require_int64_cpu(x, y)
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[0]:
        raise ValueError(f"ring_gemm multiplies matrices of shapes (n, k) and (k, m), got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    n, k, m = x.shape[0], x.shape[1], y.shape[1]
    out = torch.empty((n, m), dtype=torch.int64)
    if n == 0 or m == 0:
        return out
    scratch = torch.empty(2 * (n + m) * k, dtype=torch.int32)  # the 32-bit halves of x and y
    # Strided views (a transpose) are read in place, by their strides: no copy first.
    library().ring_gemm(x.data_ptr(), y.data_ptr(), out.data_ptr(), n, k, m, *x.stride(), *y.stride(),
                        scratch.data_ptr())
    return out
