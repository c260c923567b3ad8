"""Secure comparison: the sign of a shared value, without anyone learning it.

x is negative exactly when the top bit of x = x_alice + x_bob (mod 2^64) is set. Each worker knows
its own share in binary, so the top bit of the sum is the output of a 64-bit adder whose two
inputs are held by different workers. We evaluate a Kogge-Stone carry-lookahead adder on XOR
shares: generate g = x_alice & x_bob and propagate p = x_alice ^ x_bob, then six prefix steps
(shifts 1, 2, 4, ..., 32) of

    g <- g ^ (p & (g << k)),    p <- p & (p << k)

The propagate p starts XOR-shared for free (each worker contributes its own share); every AND is a
binary Beaver AND. The sign is p_63 ^ carry_63 = p_63 ^ g_62. Then a dealer-supplied random bit,
known in both sharings, converts the XOR-shared sign bit into an additive one in one more round.

Cost per element: 7 rounds and 12 ANDs for the adder (in a prefix step both ANDs share the
operand p, masked once: 19 words sent per worker), 1 round and one bit for the conversion (bits
travel packed, 64 to a word): 8 rounds, about 152 bytes sent by each worker. Nobody learns the
sign: every opened value is masked by a fresh random word or bit from the dealer.

ReLU needs x times the bit as well. Instead of a Beaver multiplication after the comparison, the
dealer adds a mask a and the product a*r for the same random bit r, and x - a travels with the
conversion round: ReLU costs the comparison's 8 rounds and one more word per element.
"""

from __future__ import annotations

import torch

from ...profiling import timed
from ..provider.dealer import binary_triples, correlated_randomness, shared_random_bits
from ..sharing import AdditiveSharingTensor, open_to_workers
from .binary import XorShares, and_, mask_and_pack_bits, padded_size, unpack_bits

WORD_BITS = 64
SHIFTS = (1, 2, 4, 8, 16, 32)


# --8<-- [start:sign_bit_xor]
def sign_bit_xor(x: AdditiveSharingTensor) -> XorShares:
    """XOR shares of the top bit of x (1 where x < 0), flat, in bit 0 of each word."""
    session = x.session
    first = session.first
    n = x.shape.numel()
    # One AND for g, then per prefix step p AND [g << k, p << k] (p masked once), g only at the end.
    triples = binary_triples(session, [((n,), (n,))] + [((n,), (2, n))] * (len(SHIFTS) - 1) + [((n,), (n,))])
    shares = {w: s.reshape(-1) for w, s in x.local_shares().items()}
    # Each worker's share is one adder input: (x_alice, 0) and (0, x_bob) as XOR shares.
    zeros = {w: torch.zeros_like(s) for w, s in shares.items()}
    left = {w: s if w is first else zeros[w] for w, s in shares.items()}
    right = {w: zeros[w] if w is first else s for w, s in shares.items()}
    generate = and_(session, left, right, {w: t[0] for w, t in triples.items()})
    # generate and propagate stacked: row 0 is g, row 1 is p (p starts as each worker's own share)
    gp = {w: torch.stack([generate[w], shares[w]]) for w in shares}
    for step, shift in enumerate(SHIFTS[:-1], start=1):
        both = and_(session, {w: t[1] for w, t in gp.items()}, {w: t << shift for w, t in gp.items()},
                    {w: t[step] for w, t in triples.items()})
        for worker, result in both.items():
            result[0] ^= gp[worker][0]  # g <- g ^ (p & (g << k)); row 1 is already p & (p << k)
        gp = both
    last = and_(session, {w: t[1] for w, t in gp.items()}, {w: t[0] << SHIFTS[-1] for w, t in gp.items()},
                {w: t[-1] for w, t in triples.items()})
    carries = {w: gp[w][0] ^ last[w] for w in gp}
    return {w: ((shares[w] ^ (carries[w] << 1)) >> (WORD_BITS - 1)) & 1 for w in shares}
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
    opened = open_to_workers({w: (mask_and_pack_bits(b, random_bits[w][0]),) for w, b in bits.items()}, session,
                             combine=torch.bitwise_xor)
    out = {}
    for worker, (packed,) in opened.items():
        c = unpack_bits(packed, n)
        share = (1 - 2 * c) * random_bits[worker][1][:n]
        out[worker] = (share + c if worker is session.first else share).view(x.shape)
    return AdditiveSharingTensor(session, out, x.shape)
# --8<-- [end:bit_to_arithmetic]


@timed("comparisons")
def is_negative(x: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """Additive shares of [x < 0] as the integers 0 and 1 (not fixed-point encoded)."""
    return bit_to_arithmetic(sign_bit_xor(x), x)


# --8<-- [start:relu_and_bit]
@timed("comparisons")
def relu_and_bit(x: AdditiveSharingTensor) -> tuple[AdditiveSharingTensor, AdditiveSharingTensor]:
    """Shares of max(x, 0) and of the bit [x >= 0] (kept for the backward pass).

    With s = [x < 0] XOR-shared from the adder and a dealer bit r (in both sharings), the workers
    open c = s ^ r and e = x - a together. Then s = c + r - 2cr and
    x*s = c*x + (1 - 2c)*(e*r + a*r), all local: ReLU(x) = x - x*s, its derivative 1 - s.
    """
    session = x.session
    n = x.shape.numel()
    sign = sign_bit_xor(x)

    def mask_and_product(r: torch.Tensor) -> torch.Tensor:  # runs at the dealer only
        a = session.provider.prg.ring((n,))
        return torch.cat([r[:n], a, a * r[:n]])

    dealt = correlated_randomness(session, padded_size(n), 3 * n, mask_and_product, random_bits=True)
    masked = {w: (mask_and_pack_bits(sign[w], dealt[w][0]), x.share_of(w).reshape(-1) - dealt[w][1][n : 2 * n])
              for w in sign}
    opened = open_to_workers(masked, session, combine=(torch.bitwise_xor, torch.add))
    relu, positive = {}, {}
    for worker, (packed, e) in opened.items():
        c = unpack_bits(packed, n)
        r, _, ar = dealt[worker][1].split(n)
        flip = 1 - 2 * c
        sign_share = flip * r
        x_share = x.share_of(worker).reshape(-1)
        x_times_sign = c * x_share + flip * (e * r + ar)  # c*x is linear: each worker scales its share
        if worker is session.first:  # the public constants are added once
            sign_share += c
            positive[worker] = (1 - sign_share).view(x.shape)
        else:
            positive[worker] = (-sign_share).view(x.shape)
        relu[worker] = (x_share - x_times_sign).view(x.shape)
    return AdditiveSharingTensor(session, relu, x.shape), AdditiveSharingTensor(session, positive, x.shape)
# --8<-- [end:relu_and_bit]
