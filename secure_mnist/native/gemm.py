"""Z_2^64 matrix products through the compiled kernel ring_gemm.c, called with ctypes.

One thread: inside a training step, splitting a product across two threads measured slower
(torch's own worker threads still hold the second core between its operations).
"""

from __future__ import annotations

import ctypes
import threading
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


_scratch_buffers = threading.local()


def _scratch(words: int) -> torch.Tensor:
    """The kernel's working memory, kept from call to call (one buffer per thread): a fresh one
    of a few MB would come as new pages from the system, and their page faults cost as much as
    the product itself."""
    buffer = getattr(_scratch_buffers, "words", None)
    if buffer is None or buffer.numel() < words:
        buffer = _scratch_buffers.words = torch.empty(words, dtype=torch.int64)
    return buffer


def scratch_words(n: int, k: int, m: int) -> int:
    """The kernel's working memory for an (n, k) @ (k, m) product, in words."""
    return (n + 2 * m) * k


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
    scratch = _scratch(scratch_words(n, k, m))  # x row-major, y in panels
    # Strided views (a transpose) are read in place, by their strides: no copy first.
    library().ring_gemm(x.data_ptr(), y.data_ptr(), out.data_ptr(), n, k, m, *x.stride(), *y.stride(),
                        scratch.data_ptr())
    return out
