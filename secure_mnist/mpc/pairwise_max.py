"""The maximum of each row in a fixed number of rounds: every pair compared at once.

A knockout tournament needs ceil(log2 C) comparisons one after the other: 4 for 10 classes, 8
rounds each. Here all C (C - 1) / 2 pairs of a row go through one secure comparison, which gives
XOR shares of s_ij = [x_i < x_j] for every i < j. Class i holds the maximum (the first one, on a
tie) when it is at least everyone after it and more than everyone before it:

    w_i = AND_{j > i} NOT s_ij  AND  AND_{j < i} s_ji

an AND of C - 1 bits, on XOR shares: ceil(log2 (C - 1)) rounds of binary Beaver ANDs. Exactly one
w_i per row is 1, so the maximum is m = sum_i w_i x_i, exact. The product of x by the bits w
travels with their conversion to additive shares, in one round, as in the ReLU.

Rounds for 10 classes: 7 (the comparison's carry tree) + 4 (the AND tree) + 1 = 12 instead of
32. The price is 45 comparisons per row instead of 9, on tensors that are tiny anyway. Nobody
learns anything: every opened value is masked by fresh dealer randomness, as in the protocols
it is made of.

Softmax also needs to know where d_i = x_i - m falls below a floor L < 0 (to clip it there), and
d_i >= L exactly when x_i - x_j >= L for every j. So `row_max_and_floor` compares the C (C - 1)
ordered differences x_i - x_j - L in the same comparison call as the pairs, ANDs their
negations in the same tree, and converts those bits in the same round: the floor costs no round
and no comparison of its own.
"""

from __future__ import annotations

import math
from functools import cache

import torch

from ..profiling import timed
from .fixed_point import FixedPrecisionTensor
from .primitives.binary import WORD_BITS, XorShares, and_, pack_bits, unpack_bits
from .primitives.comparison import CARRY_TREE_ROUNDS, bit_and_product, sign_bit_xor
from .sharing import AdditiveSharingTensor
from .provider.dealer import binary_triples
from .session import Session


def max_rounds(classes: int) -> int:
    """Rounds of `row_max` for rows of `classes` values (0 for a single class: nothing to do)."""
    if classes < 2:
        return 0
    return CARRY_TREE_ROUNDS + math.ceil(math.log2(classes - 1)) + 1


@timed("comparisons")
def row_max(x: FixedPrecisionTensor) -> FixedPrecisionTensor:
    """The maximum along the last dimension (kept, size 1), exact."""
    x._require_shared("max")
    classes = x.shape[-1]
    if classes == 0:
        raise ValueError("the maximum of an empty row")
    if classes == 1:
        return x
    _, picked = bit_and_product(winner_bits(x.child), x.child.map(lambda t: t.reshape(-1)))  # w_i x_i
    return x._wrap(picked.map(lambda t: t.view(x.shape).sum(-1, keepdim=True)))


@timed("comparisons")
def row_max_and_floor(x: FixedPrecisionTensor, floor: float) -> tuple[FixedPrecisionTensor, AdditiveSharingTensor]:
    """(m, the maximum along the last dimension (kept, size 1), exact; additive shares of the
    integer bits [x - m >= floor], shaped like x), in the rounds of the maximum alone. floor < 0."""
    x._require_shared("max")
    floor_raw = torch.tensor(int(round(floor * x.encoder.scale)), dtype=torch.int64)
    if not floor_raw < 0:  # as encoded: a floor within half an ulp of 0 would become 0
        raise ValueError(f"row_max_and_floor needs a floor below 0 (x - m is 0 at the maximum), got {floor}, "
                         f"which {x.encoder.describe()} encodes as {floor_raw.item() / x.encoder.scale:g}")
    classes = x.shape[-1]
    if classes < 2:
        raise ValueError(f"row_max_and_floor needs rows of at least 2 values, got {classes}")
    ring, session = x.child, x.session
    count = x.shape.numel()
    words = -(-count // WORD_BITS)
    left, right = torch.triu_indices(classes, classes, offset=1)  # the pairs i < j
    first, second = _ordered_pairs(classes)  # every i != j
    pair_count = classes * (classes - 1) // 2
    differences = ring.map(lambda t: t[..., left] - t[..., right])  # their signs: [x_i < x_j]
    below = ring.map(lambda t: t[..., first] - t[..., second]).add_public(-floor_raw)  # [x_i - x_j < floor]
    both_kinds = AdditiveSharingTensor(
        session, {w: torch.cat([differences.share_of(w), below.share_of(w)], -1) for w in session.local_workers},
        torch.Size((*x.shape[:-1], pair_count + classes * (classes - 1))))
    bits = sign_bit_xor(both_kinds)
    rows = count // classes
    factors = {}
    for worker, packed in bits.items():
        unpacked = unpack_bits(packed, rows * (pair_count + classes * (classes - 1))).view(rows, -1)
        winners = _factor_rows(unpacked[:, :pair_count], classes, negate=worker is session.first)
        # d_i >= floor: NOT [x_i - x_j < floor] for every j != i, which one worker negates
        above = unpacked[:, pair_count:].view(rows, classes, classes - 1).permute(2, 0, 1).reshape(classes - 1, count)
        if worker is session.first:
            above = above ^ 1
        factors[worker] = torch.cat([_packed_rows(winners, words), _packed_rows(above, words)], 1)
    both = _and_of_rows(session, factors, classes - 1, 2 * words * WORD_BITS)
    flat = ring.map(lambda t: torch.nn.functional.pad(t.reshape(-1), (0, 2 * words * WORD_BITS - count)))
    bit, picked = bit_and_product(both, flat)  # w_i x_i, and the floor bits converted alongside
    m = x._wrap(picked.map(lambda t: t[:count].view(x.shape).sum(-1, keepdim=True)))
    start = words * WORD_BITS
    return m, bit.map(lambda t: t[start:start + count].view(x.shape))


def winner_bits(x: AdditiveSharingTensor) -> XorShares:
    """XOR shares of w, packed over the flattened x: 1 at the first maximum of each last-dimension row."""
    classes = x.shape[-1]
    left, right = torch.triu_indices(classes, classes, offset=1)  # the pairs i < j
    less = sign_bit_xor(x.map(lambda t: t[..., left] - t[..., right]))  # [x_i < x_j], packed
    count = x.shape.numel()
    return _and_of_rows(x.session, _factors(less, x.session, classes, count), classes - 1, count)


@cache
def _factor_table(classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For class i, its C - 1 factors: which pair's bit, and whether that bit is negated
    (NOT s_ij for the pairs where i is the smaller index). Both shaped (C - 1, C); built once
    per number of classes (the callers only read them)."""
    left, right = torch.triu_indices(classes, classes, offset=1).tolist()
    pair_of = {(i, j): p for p, (i, j) in enumerate(zip(left, right))}
    others = [[j for j in range(classes) if j != i] for i in range(classes)]
    pairs = [[pair_of[(min(i, row[k]), max(i, row[k]))] for i, row in enumerate(others)] for k in range(classes - 1)]
    negated = [[int(i < row[k]) for i, row in enumerate(others)] for k in range(classes - 1)]
    return torch.tensor(pairs, dtype=torch.int64), torch.tensor(negated, dtype=torch.int64)


@cache
def _ordered_pairs(classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j) for every i != j, i major: the pair (i, others[k]) is at i (C - 1) + k."""
    pairs = [(i, j) for i in range(classes) for j in range(classes) if j != i]
    return torch.tensor([i for i, _ in pairs]), torch.tensor([j for _, j in pairs])


def _factor_rows(pair_bits: torch.Tensor, classes: int, negate: bool) -> torch.Tensor:
    """One worker's XOR shares of the C - 1 factors of every w_i, as 0/1 values shaped
    (C - 1, rows * C), from its shares of the pair bits shaped (rows, C (C - 1) / 2). The worker
    told to `negate` applies the NOTs (XOR with 1, done by one worker)."""
    pairs, negated = _factor_table(classes)
    bits = pair_bits[:, pairs]  # (rows, C - 1, C)
    if negate:
        bits = bits ^ negated
    return bits.permute(1, 0, 2).reshape(classes - 1, -1)


def _packed_rows(rows: torch.Tensor, words: int) -> torch.Tensor:
    """0/1 rows of `count` values, each padded to `words` words and packed: (height, words)."""
    padded = torch.nn.functional.pad(rows, (0, words * WORD_BITS - rows.shape[1]))
    return pack_bits(padded.reshape(-1)).view(rows.shape[0], words)


def _factors(less: XorShares, session: Session, classes: int, count: int) -> XorShares:
    """Each worker's XOR shares of the factors of every w_i, packed: row k of (C - 1, words) holds
    factor k of all `count` = rows * C bits. Local: unpacking, picking and repacking bits."""
    rows, pair_count = count // classes, classes * (classes - 1) // 2
    words = -(-count // WORD_BITS)
    return {worker: _packed_rows(_factor_rows(unpack_bits(packed, rows * pair_count).view(rows, pair_count), classes,
                                              negate=worker is session.first), words)
            for worker, packed in less.items()}


def _and_of_rows(session: Session, rows: XorShares, height: int, count: int) -> XorShares:
    """XOR shares of the AND of the `height` rows, packed: pairs of rows per round, an odd one
    waits for the next."""
    words = -(-count // WORD_BITS)
    levels = []
    while height > 1:
        levels.append(height // 2)
        height -= height // 2
    if not levels:
        return {w: r.reshape(-1) for w, r in rows.items()}
    triples = binary_triples(session, [((pairs, words), (pairs, words)) for pairs in levels])
    for level, pairs in enumerate(levels):
        done = and_(session, {w: r[0:2 * pairs:2] for w, r in rows.items()}, {w: r[1:2 * pairs:2] for w, r in rows.items()},
                    {w: t[level] for w, t in triples.items()})
        rows = {w: torch.cat([done[w], r[2 * pairs:]]) for w, r in rows.items()}
    return {w: r.reshape(-1) for w, r in rows.items()}
