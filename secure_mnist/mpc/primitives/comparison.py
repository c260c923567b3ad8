"""Secure comparison: the sign of a shared value, without anyone learning it.

x is negative exactly when the top bit of x = x_alice + x_bob (mod 2^64) is set. Each worker knows
its own share in binary, so the top bit of the sum is the output of a 64-bit adder whose two
inputs are held by different workers: p_63 ^ (the carry into column 63), with the propagate
p = x_alice ^ x_bob. Only that one carry is needed, so instead of a full carry-lookahead adder we
combine the columns' (generate, propagate) pairs in a binary tree, 64 -> 32 -> ... -> 1:

    G = G_high ^ (P_high & G_low),    P = P_high & P_low

Each worker first turns its shares into bit planes (row i holds column i of 64 elements per word),
so a tree level is one AND of whole rows, and each level has half the rows of the one before.
The generate g = x_alice & x_bob and every AND of the tree are binary Beaver ANDs on XOR shares;
column 63 is made transparent (g = 0, p = 1), so the carry out of the tree is the carry into it.
Then a dealer-supplied random bit, known in both sharings, converts the XOR-shared sign bit into
an additive one in one more round.

Cost per element: 7 rounds for the tree (the generate, then 6 levels; in a level both ANDs share
the operand P_high, masked once), about 4.9 words sent per worker; 1 round and one bit for the
conversion (bits travel packed, 64 to a word): 8 rounds, about 40 bytes sent by each worker.
Nobody learns the sign: every opened value is masked by a fresh random word or bit from the dealer.

ReLU needs x times the bit as well. Instead of a Beaver multiplication after the comparison, the
dealer adds a mask a and the product a*r for the same random bit r, and x - a travels with the
conversion round: ReLU costs the comparison's 8 rounds and one more word per element.
"""

from __future__ import annotations

import torch

from ...profiling import timed
from ..provider.dealer import binary_triples, correlated_randomness, shared_random_bits
from ..sharing import AdditiveSharingTensor, open_masked
from .binary import XorShares, and_, pack_bits, padded_size, planes_of, unpack_bits

WORD_BITS = 64
TREE_LEVELS = (32, 16, 8, 4, 2, 1)  # (generate, propagate) pairs left after each level
CARRY_TREE_ROUNDS = 1 + len(TREE_LEVELS)  # the generate, then one AND round per level


# --8<-- [start:sign_bit_xor]
def sign_bit_xor(x: AdditiveSharingTensor) -> XorShares:
    """XOR shares of the top bit of x (1 where x < 0), packed: bit b of word w is element 64 w + b."""
    session = x.session
    first = session.first
    n = x.shape.numel()
    blocks = padded_size(n) // WORD_BITS
    # The generate of columns 0-62; per level P_high AND [G_low, P_low]; at the last, G only.
    triples = binary_triples(session, [((WORD_BITS - 1, blocks),) * 2]
                             + [((pairs, blocks), (2, pairs, blocks)) for pairs in TREE_LEVELS[:-1]]
                             + [((1, blocks),) * 2])
    planes = {w: planes_of(torch.nn.functional.pad(s.reshape(-1), (0, blocks * WORD_BITS - n)))
              for w, s in x.local_shares().items()}
    # Each worker's share is one adder input: (x_alice, 0) and (0, x_bob) as XOR shares, and the
    # propagate x_alice ^ x_bob is XOR-shared as the shares themselves.
    zeros = {w: torch.zeros_like(rows[:-1]) for w, rows in planes.items()}
    generate = and_(session, {w: rows[:-1] if w is first else zeros[w] for w, rows in planes.items()},
                    {w: zeros[w] if w is first else rows[:-1] for w, rows in planes.items()},
                    {w: t[0] for w, t in triples.items()})
    # Column 63 made transparent (g = 0, p = 1): the carry out of all 64 is the carry into 63.
    top = {w: torch.full((1, blocks), -1 if w is first else 0) for w in planes}  # all-ones words: p = 1
    g = {w: torch.cat([rows, torch.zeros_like(top[w])]) for w, rows in generate.items()}
    p = {w: torch.cat([rows[:-1], top[w]]) for w, rows in planes.items()}
    for level, pairs in enumerate(TREE_LEVELS[:-1], start=1):
        both = and_(session, {w: rows[1::2] for w, rows in p.items()},
                    {w: torch.stack([g[w][0::2], rows[0::2]]) for w, rows in p.items()},
                    {w: t[level] for w, t in triples.items()})
        g = {w: g[w][1::2] ^ rows[0] for w, rows in both.items()}  # G = G_high ^ (P_high & G_low)
        p = {w: rows[1] for w, rows in both.items()}  # P = P_high & P_low
    last = and_(session, {w: rows[1:] for w, rows in p.items()}, {w: g[w][:1] for w in p},
                {w: t[-1] for w, t in triples.items()})
    carry = {w: g[w][1] ^ rows[0] for w, rows in last.items()}
    return {w: planes[w][-1] ^ carry[w] for w in planes}  # sign = p_63 ^ carry into column 63
# --8<-- [end:sign_bit_xor]


# --8<-- [start:bit_to_arithmetic]
def bit_to_arithmetic(bits: XorShares, x: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """Additive shares (shaped like x) of a XOR-shared bit b, using a random bit r dealt in both sharings.

    The workers open c = b ^ r (a uniformly random bit) and compute b = c ^ r = c + r - 2cr,
    which is linear in the additive shares of r once c is public.
    """
    session = x.session
    n = x.shape.numel()
    random_bits = shared_random_bits(session, padded_size(n))
    opened = open_masked({w: (b,) for w, b in bits.items()}, {w: (pack_bits(random_bits[w][0]),) for w in bits},
                         session, combine=torch.bitwise_xor)
    out = {}
    for worker, (packed,) in opened.items():
        c = unpack_bits(packed, n)
        share = (1 - 2 * c) * random_bits[worker][1][:n]
        out[worker] = (share + c if worker is session.first else share).view(x.shape)
    return AdditiveSharingTensor(session, out, x.shape)
# --8<-- [end:bit_to_arithmetic]


# --8<-- [start:bit_and_product]
def bit_and_product(bits: XorShares, x: AdditiveSharingTensor) -> tuple[AdditiveSharingTensor, AdditiveSharingTensor]:
    """Additive shares of a XOR-shared bit b per element of x (flat), and of x * b, in one round.

    With a dealer bit r (in both sharings), a mask a and a*r, the workers
    open c = b ^ r and e = x - a together; then b = c + r - 2cr and x*b = c*x + (1 - 2c)*(e*r + a*r),
    all local.
    """
    session = x.session
    n = x.shape.numel()

    def mask_and_product(r: torch.Tensor) -> torch.Tensor:  # runs at the dealer only
        a = session.provider.prg.ring((n,))
        return torch.cat([r[:n], a, a * r[:n]])  # r again, now in additive shares

    dealt = correlated_randomness(session, padded_size(n), 3 * n, mask_and_product, random_bits=True)
    opened = open_masked({w: (bits[w], x.share_of(w)) for w in bits},
                         {w: (pack_bits(dealt[w][0]), dealt[w][1][n : 2 * n]) for w in bits},
                         session, combine=(torch.bitwise_xor, torch.add))
    bit, product = {}, {}
    for worker, (packed, e) in opened.items():
        c = unpack_bits(packed, n)
        r, _, ar = dealt[worker][1].split(n)
        flip = 1 - 2 * c
        bit[worker] = flip * r + c if worker is session.first else flip * r
        product[worker] = c * x.share_of(worker) + flip * (e * r + ar)
    return AdditiveSharingTensor(session, bit, x.shape), AdditiveSharingTensor(session, product, x.shape)
# --8<-- [end:bit_and_product]


@timed("comparisons")
def is_negative(x: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """Additive shares of [x < 0] as the integers 0 and 1 (not fixed-point encoded)."""
    return bit_to_arithmetic(sign_bit_xor(x), x)


# --8<-- [start:relu_and_bit]
@timed("comparisons")
def relu_and_bit(x: AdditiveSharingTensor) -> tuple[AdditiveSharingTensor, AdditiveSharingTensor]:
    """Shares of max(x, 0) and of the bit [x >= 0] (kept for the backward pass).

    The sign s = [x < 0] comes XOR-shared from the adder; the round that turns it into additive
    shares carries the product x*s too (bit_and_product): ReLU(x) = x - x*s, its derivative 1 - s.
    """
    flat = x.map(lambda t: t.reshape(-1))
    sign, x_times_sign = bit_and_product(sign_bit_xor(x), flat)
    relu = (flat - x_times_sign).map(lambda t: t.view(x.shape))
    positive = (-sign).add_public(torch.ones((), dtype=torch.int64)).map(lambda t: t.view(x.shape))
    return relu, positive
# --8<-- [end:relu_and_bit]
