"""Bit planes through the compiled kernel bit_planes.c, called with ctypes."""

from __future__ import annotations

import ctypes
from functools import cache

import torch

from .build import load, require_int64_cpu

WORD_BITS = 64


@cache
def library() -> ctypes.CDLL:
    lib = load("bit_planes")
    lib.bit_planes.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.bit_planes.restype = None
    return lib


def bit_planes(words: torch.Tensor) -> torch.Tensor:
    """The reference's bit_planes (mpc/primitives/binary.py), bit for bit: (64, len / 64) int64."""
    require_int64_cpu(words)
    words = words.reshape(-1).contiguous()
    if words.numel() % WORD_BITS:
        raise ValueError(f"bit planes need whole blocks of {WORD_BITS} words, got {words.numel()} words "
                         "(pad with padded_size first)")
    blocks = words.numel() // WORD_BITS
    planes = torch.empty((WORD_BITS, blocks), dtype=torch.int64)
    if blocks:
        library().bit_planes(words.data_ptr(), planes.data_ptr(), blocks)
    return planes
