"""Multiplication of two shared tensors with a Beaver triple (SPDZ with a dealer).

With a triple (a, b, c = a*b) the workers open e = x - a and f = y - b, which are uniformly random
and say nothing about x and y. Then x*y = c + x*f + e*b, and each worker computes its share of the
right-hand side from its own shares of c, x and b and the public e and f. The same identity holds
for any bilinear operation, so one function serves elementwise products and matrix products.
Cost: one round; each worker sends |x| + |y| ring elements. Independent products (the two
gradients of a matrix product) share that round.

A tensor is opened only once: its mask and e are kept (see `Opening`), and every later product
it takes part in, or a transpose of it does, reuses them. Only c = a*b is new, dealt for the new
pair of masks. A batch of training data, used forward and backward in every epoch, is opened in
its first step and never again.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ...profiling import timed
from ..opening import Mask, Opening
from ..ring import ring_op
from ..provider.dealer import Bilinear, mask_products, random_masks
from ..shapes import output_shape_of
from ..sharing import AdditiveSharingTensor, open_masked, record_opening

Product = tuple[AdditiveSharingTensor, AdditiveSharingTensor, Bilinear]


# --8<-- [start:beaver_product]
def beaver_products(products: Sequence[Product]) -> list[AdditiveSharingTensor]:
    """Shares of op(x, y) in Z_2^64 for each (x, y, op), all opened in one round (no rescaling)."""
    session = products[0][0].session
    unopened: list[AdditiveSharingTensor] = []  # operands never opened before, each listed once
    for x, y, _ in products:
        x._same_parties(y)
        for t in (x, y):
            if t.opening is None and all(t is not u for u in unopened):
                unopened.append(t)
    fresh = random_masks(session, [t.shape for t in unopened])
    new_mask = {id(t): mask for t, mask in zip(unopened, fresh)}

    def mask_of(t: AdditiveSharingTensor) -> Mask:
        return t.opening.mask if t.opening is not None else new_mask[id(t)]

    triples_c = mask_products(session, [(mask_of(x), mask_of(y), op) for x, y, op in products],
                              [(x.shape, y.shape) for x, y, _ in products])
    if unopened:  # one round opens every tensor that was never opened
        opened = open_masked({w: tuple(t.share_of(w) for t in unopened) for w in session.local_workers},
                             {w: tuple(mask.shares[w] for mask in fresh) for w in session.local_workers}, session)
        for index, (t, mask) in enumerate(zip(unopened, fresh)):
            record_opening(t, Opening(mask, {w: public[index] for w, public in opened.items()}))
    results = []
    for index, (x, y, op) in enumerate(products):
        shares = {}
        for worker in session.local_workers:
            e, f = x.opening.public[worker], y.opening.public[worker]  # type: ignore[union-attr]
            b = y.opening.mask.shares[worker]  # type: ignore[union-attr]
            share = ring_op(op)(x.share_of(worker), f)
            share += ring_op(op)(e, b)
            share += triples_c[worker][index]
            shares[worker] = share
        results.append(AdditiveSharingTensor(session, shares, output_shape_of(op, x.shape, y.shape)))
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


@timed("linear layers (matmul)")
def bilinears(products: Sequence[Product]) -> list[AdditiveSharingTensor]:
    """Products by other bilinear maps (a convolution of input and weight, its gradients), one round."""
    return beaver_products(products)
