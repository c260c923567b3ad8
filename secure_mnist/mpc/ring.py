"""Matrix products in the ring Z_2^64, through floating-point BLAS.

torch multiplies int64 matrices with plain loops (no BLAS, no vector instructions), about 20
times slower per operation than float64 BLAS. Each word is therefore cut into three limbs of
21 bits (the top one signed),

    x = x0 + x1 2^21 + x2 2^42,

and x @ y modulo 2^64 is the sum of the limb products x_i @ y_j 2^(21 (i + j)) for i + j <= 3
(i + j >= 4 is a multiple of 2^84, zero in the ring). All nine limb products come from one
float64 product of the stacked limbs, [x0; x1; x2] @ [y0, y1, y2]: nine times the arithmetic,
done some twenty times faster, so large products take about half the time. Each is exact: an
entry is a sum of at most 2048 products of two numbers below 2^21, so below 2^53, where float64
still counts in units (longer sums are split). The int64 additions and shifts that combine them
wrap around modulo 2^64, as the ring requires: the result is torch.matmul's, bit for bit
(tests/test_ring.py). Small products stay with torch.matmul, which is faster there.
"""

from __future__ import annotations

import torch

LIMB_BITS = 21
LIMB_MASK = (1 << LIMB_BITS) - 1
MAX_INNER = 2048  # |sum| < MAX_INNER * 2^42 <= 2^53: exact in float64
MIN_WORK = 1 << 21  # multiply-adds below which torch's int64 loops are as fast


def ring_matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x @ y in Z_2^64; 2-D int64 matrices of enough work go through float64 BLAS."""
    if (x.dim() != 2 or y.dim() != 2 or x.dtype != torch.int64 or y.dtype != torch.int64
            or x.is_meta or y.is_meta or x.shape[0] * x.shape[1] * y.shape[1] < MIN_WORK):
        return torch.matmul(x, y)
    inner = x.shape[1]
    if inner > MAX_INNER:
        total = _limb_product(x[:, :MAX_INNER], y[:MAX_INNER])
        for start in range(MAX_INNER, inner, MAX_INNER):
            total += _limb_product(x[:, start:start + MAX_INNER], y[start:start + MAX_INNER])
        return total
    return _limb_product(x, y)


def _limb_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n, m = x.shape[0], y.shape[1]
    rows = torch.cat([x & LIMB_MASK, (x >> LIMB_BITS) & LIMB_MASK, x >> 2 * LIMB_BITS]).to(torch.float64)
    columns = torch.cat([y & LIMB_MASK, (y >> LIMB_BITS) & LIMB_MASK, y >> 2 * LIMB_BITS], dim=1).to(torch.float64)
    p = (rows @ columns).to(torch.int64).view(3, n, 3, m)  # p[i, :, j] = x_i @ y_j
    low = p[0, :, 0]
    middle = p[0, :, 1] + p[1, :, 0]
    high = p[0, :, 2] + p[1, :, 1] + p[2, :, 0]
    top = p[1, :, 2] + p[2, :, 1]  # at 2^63: only its parity survives
    return low + (middle << LIMB_BITS) + (high << 2 * LIMB_BITS) + (top << 3 * LIMB_BITS)


def ring_op(op):
    """The ring version of a bilinear op: matrix products through BLAS, others unchanged."""
    return ring_matmul if op is torch.matmul else op
