"""Multiplication of two shared tensors with a Beaver triple (SPDZ with a dealer).

With a triple (a, b, c = a*b) the workers open e = x - a and f = y - b, which are uniformly random
and say nothing about x and y. Then x*y = c + x*f + e*b, and each worker computes its share of the
right-hand side from its own shares of c, x and b and the public e and f. The same identity holds
for any bilinear operation, so one function serves elementwise products and matrix products.
Cost: one round; each worker sends |x| + |y| ring elements. Independent products (the two
gradients of a matrix product) share that round.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...profiling import timed
from ..provider.dealer import Bilinear, beaver_triple, output_shape
from ..sharing import AdditiveSharingTensor, open_to_workers

Product = tuple[AdditiveSharingTensor, AdditiveSharingTensor, Bilinear]


# --8<-- [start:beaver_product]
def beaver_products(products: Sequence[Product]) -> list[AdditiveSharingTensor]:
    """Shares of op(x, y) in Z_2^64 for each (x, y, op), all opened in one round (no rescaling)."""
    session = products[0][0].session
    triples = []
    for x, y, op in products:
        x._same_parties(y)
        triples.append(beaver_triple(session, op, x.shape, y.shape))
    masked = {w: tuple(t for (x, y, _), triple in zip(products, triples)
                       for t in (x.share_of(w) - triple[w][0], y.share_of(w) - triple[w][1]))
              for w in session.local_workers}
    opened = open_to_workers(masked, session)
    results = []
    for index, (x, y, op) in enumerate(products):
        shares = {}
        for worker, public in opened.items():
            e, f = public[2 * index], public[2 * index + 1]
            _, b, c = triples[index][worker]
            share = op(x.share_of(worker), f)
            share += op(e, b)
            share += c
            shares[worker] = share
        results.append(AdditiveSharingTensor(session, shares, output_shape(op, tuple(x.shape), tuple(y.shape))))
    return results
# --8<-- [end:beaver_product]


def beaver_product(x: AdditiveSharingTensor, y: AdditiveSharingTensor, op: Bilinear) -> AdditiveSharingTensor:
    return beaver_products([(x, y, op)])[0]


@timed("elementwise products")
def mul(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return beaver_product(x, y, torch.mul)


@timed("linear layers (matmul)")
def matmul(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return beaver_product(x, y, torch.matmul)


@timed("linear layers (matmul)")
def matmuls(pairs: Sequence[tuple[AdditiveSharingTensor, AdditiveSharingTensor]]) -> list[AdditiveSharingTensor]:
    """Several independent matrix products in one round."""
    return beaver_products([(x, y, torch.matmul) for x, y in pairs])


@timed("elementwise products")
def muls(pairs: Sequence[tuple[AdditiveSharingTensor, AdditiveSharingTensor]]) -> list[AdditiveSharingTensor]:
    """Several independent elementwise products in one round."""
    return beaver_products([(x, y, torch.mul) for x, y in pairs])
