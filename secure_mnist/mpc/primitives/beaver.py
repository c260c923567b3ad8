"""Multiplication of two shared tensors with a Beaver triple (SPDZ with a dealer).

With a triple (a, b, c = a*b) the workers open e = x - a and f = y - b, which are uniformly random
and say nothing about x and y. Then x*y = c + x*f + e*b, and each worker computes its share of the
right-hand side from its own shares of c, x and b and the public e and f. The same identity holds
for any bilinear operation, so one function serves elementwise products and matrix products.
Cost: one round; each worker sends |x| + |y| ring elements.
"""

from __future__ import annotations

import torch

from ...profiling import timed
from ..provider.dealer import Bilinear, beaver_triple, output_shape
from ..sharing import AdditiveSharingTensor, open_to_workers


# --8<-- [start:beaver_product]
def beaver_product(x: AdditiveSharingTensor, y: AdditiveSharingTensor, op: Bilinear) -> AdditiveSharingTensor:
    """Shares of op(x, y) in Z_2^64 (no fixed-point rescaling here)."""
    x._same_parties(y)
    session = x.session
    triple = beaver_triple(session, op, x.shape, y.shape)
    masked = {w: (x.share_of(w) - a, y.share_of(w) - b) for w, (a, b, _) in triple.items()}
    opened = open_to_workers(masked, session)
    product = {}
    for worker, (e, f) in opened.items():
        _, b, c = triple[worker]
        share = op(x.share_of(worker), f)
        share += op(e, b)
        share += c
        product[worker] = share
    return AdditiveSharingTensor(session, product, output_shape(op, tuple(x.shape), tuple(y.shape)))
# --8<-- [end:beaver_product]


@timed("elementwise products")
def mul(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return beaver_product(x, y, torch.mul)


@timed("linear layers (matmul)")
def matmul(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return beaver_product(x, y, torch.matmul)
