"""Matrix products in the ring Z_2^64, by the chosen engine.

The reference engine is torch.matmul on int64 tensors: wrapping modulo 2^64 is the ring's own
arithmetic, but torch runs it in plain scalar loops, some 30 times slower per operation than a
float32 product of the same size. The compiled engine runs the same products in a small
vectorised C kernel (`secure_mnist/native/ring_gemm.c`), equal to torch.matmul bit for bit
(tests/test_ring.py) and about eight times faster on one core.
"""

from __future__ import annotations

import torch

from ..engine import current_engine

MIN_WORK = 1 << 13  # multiply-adds below which calling into C costs more than it saves


def ring_matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x @ y in Z_2^64; 2-D int64 matrices go to the compiled kernel when that engine runs."""
    if (current_engine() == "reference" or x.dim() != 2 or y.dim() != 2 or x.dtype != torch.int64
            or y.dtype != torch.int64 or x.device.type != "cpu" or y.device.type != "cpu"):
        return torch.matmul(x, y)
    if x.shape[1] != y.shape[0] or x.shape[0] * x.shape[1] * y.shape[1] < MIN_WORK:
        return torch.matmul(x, y)  # small, or mismatched: torch's own message
    from ..native.gemm import ring_gemm
    return ring_gemm(x, y)


def ring_op(op):
    """The ring version of a bilinear op: matrix products by the engine, others unchanged."""
    return ring_matmul if op is torch.matmul else op
