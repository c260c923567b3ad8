"""Floor division by a public integer through the compiled kernel floor_divide.c (ctypes)."""

from __future__ import annotations

import ctypes
from functools import cache

import torch

from .build import load, require_int64_cpu


@cache
def library() -> ctypes.CDLL:
    lib = load("floor_divide")
    lib.floor_divide.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    lib.floor_divide.restype = None
    return lib


def floor_divide(x: torch.Tensor, divisor: int, negate: bool = False) -> torch.Tensor:
    """torch.div(x, divisor, rounding_mode="floor") for int64 x and 1 <= divisor < 2^63, bit for
    bit; with `negate`, -torch.div(-x, divisor, rounding_mode="floor") (the second worker's)."""
    if not 1 <= divisor < 2**63:
        raise ValueError(f"floor_divide needs a divisor in [1, 2^63), got {divisor}")
    require_int64_cpu(x)
    source = x.contiguous()
    out = torch.empty_like(source)
    if source.numel():
        library().floor_divide(source.data_ptr(), out.data_ptr(), source.numel(), divisor, int(negate))
    return out
