"""Z_2^64 matrix products through the compiled kernel ring_gemm.c, split across torch's threads.

ctypes releases the GIL during the call, so the row blocks of one product run in parallel on
plain Python threads; no OpenMP runtime is involved.
"""

from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import torch

from .build import load

PARALLEL_WORK = 1 << 20  # multiply-adds above which a product is split across threads
_pointer, _size = ctypes.c_void_p, ctypes.c_int64


@cache
def library() -> ctypes.CDLL:
    lib = load("ring_gemm")
    lib.ring_gemm.argtypes = [_pointer, _pointer, _pointer, _size, _size, _size, _pointer]
    lib.ring_gemm.restype = ctypes.c_int
    return lib


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="ring-gemm")


def ring_gemm(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x @ y modulo 2^64 for 2-D int64 CPU tensors (any strides)."""
    x, y = x.contiguous(), y.contiguous()
    n, k, m = x.shape[0], x.shape[1], y.shape[1]
    out = torch.empty((n, m), dtype=torch.int64)
    if n == 0 or m == 0:
        return out
    scratch = torch.empty(2 * k * m, dtype=torch.int32)
    threads = min(torch.get_num_threads(), n // 8)
    if threads < 2 or n * k * m < PARALLEL_WORK:
        _call(x, y, out, scratch)
        return out
    bounds = [n * part // threads // 4 * 4 for part in range(threads)] + [n]
    pieces = [(x[start:end], out[start:end]) for start, end in zip(bounds, bounds[1:])]
    scratches = [scratch] + [torch.empty_like(scratch) for _ in pieces[1:]]
    futures = [_pool(threads).submit(_call, rows, y, rows_out, s)
               for (rows, rows_out), s in zip(pieces[1:], scratches[1:])]
    _call(pieces[0][0], y, pieces[0][1], scratches[0])
    for future in futures:
        future.result()
    return out


def _call(x: torch.Tensor, y: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> None:
    library().ring_gemm(x.data_ptr(), y.data_ptr(), out.data_ptr(), x.shape[0], x.shape[1], y.shape[1],
                        scratch.data_ptr())
