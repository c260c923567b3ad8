"""The largest value along a dimension, and where it is.

For short rows in a small tensor (the ten digit scores of a batch), every pair is
compared at once (pairwise_max.py): the AND tree of the pair bits marks the winner with a bit w_i,
and one more round turns w into additive shares and multiplies it by x. Then the value is
sum_i w_i x_i, the index sum_i w_i i and the one-hot w itself: 12 rounds for 10 values.

Pairs cost bytes: n (n - 1) / 2 comparisons per row instead of n - 1. Long rows, or a large
tensor (max-pooling over a batch of images, where bytes count more than rounds), play a knockout
tournament.
Neighbours are compared pairwise (a secure comparison gives the shared bit b = [left < right])
and the winner moves on: winner = left + b * (right - left), one Beaver product by the bit. The
winner carries a payload with it, chosen by the same product: its index, and, when a gradient
will need it, its one-hot position. n values take ceil(log2 n) rounds of comparisons; an odd one
out waits for the next round. Ties go to the left, so the first index wins, as in torch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .fixed_point import FixedPrecisionTensor
from .primitives.beaver import mul
from .pairwise_max import winner_bits
from .primitives.comparison import bit_and_product, is_negative
from .sharing import AdditiveSharingTensor

PAIRWISE_LIMIT = 16  # values per row: 120 comparisons per row at most, in 12 rounds (a tournament: 36)
PAIRWISE_BUDGET = 1 << 15  # comparisons in all: above, the tournament's fewer bytes win


class Winners(NamedTuple):
    values: FixedPrecisionTensor
    indices: FixedPrecisionTensor
    one_hot: FixedPrecisionTensor | None  # 1.0 at each winner's place along the dimension


def tournament(x: FixedPrecisionTensor, dim: int, one_hot: bool = False) -> Winners:
    """The largest values along `dim` (removed from the shape), their indices, and optionally the
    one-hot tensor (shaped like x) that marks them."""
    if x.dim() == 0:
        raise ValueError("max/argmax along a dimension needs a tensor with at least one dimension")
    dim = dim % x.dim()
    n = x.shape[dim]
    if n == 0:
        raise ValueError("max/argmax of an empty dimension")
    if not x.is_shared:
        return _public_tournament(x, dim, one_hot)
    if 2 <= n <= PAIRWISE_LIMIT and (x.shape.numel() // n) * n * (n - 1) // 2 <= PAIRWISE_BUDGET:
        return _pairwise(x, dim, one_hot)
    scale = x.encoder.scale
    moved = x.child.map(lambda t: t.movedim(dim, -1).unsqueeze(-1))  # type: ignore[union-attr]
    rest = tuple(moved.shape[:-2])
    # The payload of candidate i: [value, index, one-hot row], all at the encoder's scale.
    columns = [torch.arange(n, dtype=torch.int64).unsqueeze(-1) * scale]
    if one_hot:
        columns.append(torch.eye(n, dtype=torch.int64) * scale)
    public = torch.cat(columns, dim=-1).expand(*rest, n, -1)
    payload = _cat_public(moved, public)
    while payload.shape[-2] > 1:
        count = payload.shape[-2]
        pairs = count // 2 * 2
        left = payload.map(lambda t: t[..., 0:pairs:2, :])
        right = payload.map(lambda t: t[..., 1:pairs:2, :])
        right_wins = is_negative(left.map(lambda t: t[..., 0]) - right.map(lambda t: t[..., 0]))
        winners = left + mul(right - left, right_wins.map(lambda t: t.unsqueeze(-1)))
        if count > pairs:  # the odd one out goes on to the next round unopposed
            winners = winners.zip(payload.map(lambda t: t[..., pairs:, :]), lambda a, b: torch.cat([a, b], dim=-2))
        payload = winners
    best = payload.map(lambda t: t[..., 0, :])
    values = x._wrap(best.map(lambda t: t[..., 0]))
    indices = x._wrap(best.map(lambda t: t[..., 1]))
    marks = x._wrap(best.map(lambda t: t[..., 2:].movedim(-1, dim))) if one_hot else None
    return Winners(values, indices, marks)


def _pairwise(x: FixedPrecisionTensor, dim: int, one_hot: bool) -> Winners:
    """The winners of short rows from the bits w of pairwise_max, in one round after them."""
    rows = x.child.map(lambda t: t.movedim(dim, -1))  # type: ignore[union-attr]
    shape = rows.shape
    w, picked = bit_and_product(winner_bits(rows), rows.map(lambda t: t.reshape(-1)))
    positions = torch.arange(shape[-1], dtype=torch.int64) * x.encoder.scale
    values = picked.map(lambda t: t.view(shape).sum(-1))
    # positions follow t to the meta device, where parties without shares work out shapes
    indices = w.map(lambda t: (t.view(shape) * positions.to(t.device)).sum(-1))
    marks = w.map(lambda t: (t.view(shape) * x.encoder.scale).movedim(-1, dim)) if one_hot else None
    return Winners(x._wrap(values), x._wrap(indices), None if marks is None else x._wrap(marks))


def _cat_public(shared: AdditiveSharingTensor, public: torch.Tensor) -> AdditiveSharingTensor:
    """[shared, public] along the last dimension: the first worker holds the public part, the
    other zeros. No message."""
    session = shared.session
    shape = torch.Size((*shared.shape[:-1], shared.shape[-1] + public.shape[-1]))
    return AdditiveSharingTensor(
        session,
        {w: torch.cat([s, public if w is session.first else torch.zeros_like(public)], dim=-1)
         for w, s in shared.local_shares().items()},
        shape,
    )


def _public_tournament(x: FixedPrecisionTensor, dim: int, one_hot: bool) -> Winners:
    values, indices = x.child.max(dim)  # type: ignore[union-attr]  # torch: the first index on ties
    scale = x.encoder.scale
    marks = None
    if one_hot:
        marks = x._wrap(torch.nn.functional.one_hot(indices, x.shape[dim]).movedim(-1, dim) * scale)
    return Winners(x._wrap(values), x._wrap(indices * scale), marks)


def largest(x: FixedPrecisionTensor, dim: int | None, keepdim: bool):
    """torch.max(x) (dim=None) or torch.max(x, dim, keepdim): (values, indices)."""
    if dim is None:
        return tournament(x.reshape(-1), 0).values
    winners = tournament(x, dim)
    values, indices = winners.values, winners.indices
    if keepdim:
        values, indices = values.unsqueeze(dim), indices.unsqueeze(dim)
    return torch.return_types.max((values, indices))


def largest_index(x: FixedPrecisionTensor, dim: int | None, keepdim: bool) -> FixedPrecisionTensor:
    """torch.argmax(x, dim, keepdim): with dim=None, the index into the flattened tensor."""
    if dim is None:
        index = tournament(x.reshape(-1), 0).indices
        return index.reshape([1] * x.dim()) if keepdim else index
    index = tournament(x, dim).indices
    return index.unsqueeze(dim) if keepdim else index
