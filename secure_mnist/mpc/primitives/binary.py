"""Bitwise AND of XOR-shared 64-bit words, with a binary Beaver triple from the crypto provider.

XOR is the addition of the field of bits, so AND plays the role of multiplication: open
d = x ^ a and e = y ^ b, then x & y = c ^ (d & b) ^ (e & a) ^ (d & e), the last term added by one
worker only. One round; each worker sends two words per element.
"""

from __future__ import annotations

import torch

from ...engine import current_engine
from ...parties import Worker
from ..session import Session
from ..sharing import open_masked

XorShares = dict[Worker, torch.Tensor]
WORD_BITS = 64
_BIT_POSITIONS = torch.arange(WORD_BITS, dtype=torch.int64)
BinaryTriple = dict[Worker, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


# --8<-- [start:and]
def and_(session: Session, x: XorShares, y: XorShares, triple: BinaryTriple) -> XorShares:
    """XOR shares of x & y (broadcasting), consuming a binary triple of the same shapes.

    When x is smaller than y (one operand ANDed with several words), only |x| + |y| words are
    opened, not 2|y|.
    """
    opened = open_masked({w: (x[w], y[w]) for w in x}, {w: triple[w][:2] for w in x}, session,
                         combine=torch.bitwise_xor)
    out = {}
    for worker, (d, e) in opened.items():
        a, b, c = triple[worker]
        z = c ^ (d & b) ^ (e & a)
        out[worker] = z ^ (d & e) if worker is session.first else z
    return out
# --8<-- [end:and]


def padded_size(count: int) -> int:
    """`count` rounded up to whole words of bits."""
    return -(-count // WORD_BITS) * WORD_BITS


def _transpose_steps() -> list[tuple[int, int]]:
    """(j, mask) for the six swap steps of a 64 x 64 bit transpose: mask has the bits i with i & j == 0."""
    steps = []
    for j in (32, 16, 8, 4, 2, 1):
        mask = sum(1 << bit for bit in range(WORD_BITS) if not bit & j)
        steps.append((j, mask - (1 << WORD_BITS) if mask >= 1 << (WORD_BITS - 1) else mask))  # as int64
    return steps


_TRANSPOSE_STEPS = _transpose_steps()


# --8<-- [start:bit_planes]
def bit_planes(words: torch.Tensor) -> torch.Tensor:
    """The 64 bit planes of a flat tensor of words: row i packs bit i of every word, 64 to a word.

    Bit b of planes[i, w] is bit i of words[64 w + b]; len(words) must be a multiple of 64. Each
    block of 64 words is a 64 x 64 bit matrix, transposed by swapping ever smaller off-diagonal
    blocks (sizes 32, 16, ..., 1): 6 steps of shifts and XORs over all blocks at once.
    """
    blocks = words.reshape(-1, WORD_BITS).clone()
    for j, mask in _TRANSPOSE_STEPS:
        pairs = blocks.view(-1, WORD_BITS // (2 * j), 2, j)  # rows k and k + j, side by side
        low, high = pairs[:, :, 0], pairs[:, :, 1]
        swap = ((low >> j) ^ high) & mask  # the upper j bits of row k against the lower of row k + j
        high ^= swap
        low ^= swap << j
    return blocks.t()
# --8<-- [end:bit_planes]


def planes_of(words: torch.Tensor) -> torch.Tensor:
    """`bit_planes` by the chosen engine: the compiled kernel transposes one block at a time in
    registers instead of six passes over the whole tensor, and gives the same words."""
    if current_engine() == "compiled":
        from ...native.bits import bit_planes as compiled_bit_planes
        return compiled_bit_planes(words)
    return bit_planes(words)


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """0/1 values (a multiple of 64 of them), 64 to a word: bit b of word w is bits[64 w + b]."""
    return (bits.reshape(-1, WORD_BITS) << _BIT_POSITIONS).sum(dim=1)  # distinct powers of two: sum = OR


def unpack_bits(words: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` bits packed by pack_bits, as 0/1 int64 values."""
    return ((words.unsqueeze(1) >> _BIT_POSITIONS) & 1).reshape(-1)[:count]
