"""The carry tree of secure comparison, on ordinary integers, in the clear.

Secure comparison (docs/comparison.md) evaluates exactly this circuit, with every AND replaced by
a binary Beaver AND on XOR shares. Here nothing is secret, so the carry logic can be checked
against ordinary addition. Run this file to check it.
"""

# --8<-- [start:steps]
import torch


def carry_tree_levels(a: int, b: int, bits: int):
    """Yield the (generate, propagate) lists of each level of the tree that finds the carry into
    the top column of a + b. Index 0 is the lowest column (or block of columns)."""
    g = [(a >> i) & (b >> i) & 1 for i in range(bits - 1)]  # generate: makes a carry
    p = [((a ^ b) >> i) & 1 for i in range(bits - 1)]  # propagate: passes a carry on
    g, p = g + [0], p + [1]  # the top column is transparent: the carry out of it is the carry into it
    yield g, p
    while len(g) > 1:
        # Combine each high block with the block just below it. G and P of one block are never
        # both 1, so G_high | (P_high & G_low) is the same as G_high ^ (P_high & G_low): an XOR.
        g, p = ([g[i + 1] ^ (p[i + 1] & g[i]) for i in range(0, len(g), 2)],
                [p[i + 1] & p[i] for i in range(0, len(g), 2)])
        yield g, p


def top_bit_of_sum(a: int, b: int, bits: int) -> int:
    """Bit bits-1 of a + b, from AND, XOR and the carry tree only."""
    *_, (carry, _) = carry_tree_levels(a, b, bits)
    return (((a ^ b) >> (bits - 1)) & 1) ^ carry[0]
# --8<-- [end:steps]


# --8<-- [start:sign64]
from secure_mnist.mpc.primitives.binary import bit_planes, padded_size, unpack_bits


def sign_of_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 where a + b (int64, wrapping around) is negative: the carry tree, on bit planes."""
    n = a.numel()
    pad = (0, padded_size(n) - n)  # whole blocks of 64 elements
    planes_a = bit_planes(torch.nn.functional.pad(a, pad))
    planes_b = bit_planes(torch.nn.functional.pad(b, pad))
    g, p = planes_a & planes_b, planes_a ^ planes_b  # row i: column i of 64 elements per word
    top_propagate = p[-1].clone()
    g[-1], p[-1] = 0, -1  # the top column made transparent: g = 0, p = 1 (all 64 bits set)
    while len(g) > 1:  # 64 rows, then 32, 16, ..., 1
        g, p = g[1::2] ^ (p[1::2] & g[0::2]), p[1::2] & p[0::2]
    return unpack_bits(top_propagate ^ g[0], n)  # sum bit 63 = p_63 XOR carry into bit 63
# --8<-- [end:sign64]


if __name__ == "__main__":
    for a in range(256):
        for b in range(256):
            assert top_bit_of_sum(a, b, 8) == ((a + b) % 256) >> 7
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randint(-2**63, 2**63 - 1, (100_000,), generator=generator) for _ in range(2))
    assert torch.equal(sign_of_sum(a, b), ((a + b) < 0).to(torch.int64))
    print("the carry tree agrees with ordinary addition")
