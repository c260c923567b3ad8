"""Bitwise AND of XOR-shared 64-bit words, with a binary Beaver triple from the crypto provider.

XOR is the addition of the field of bits, so AND plays the role of multiplication: open
d = x ^ a and e = y ^ b, then x & y = c ^ (d & b) ^ (e & a) ^ (d & e), the last term added by one
worker only. One round; each worker sends two words per element.
"""

from __future__ import annotations

import torch

from ...parties import Worker
from ..session import Session
from ..sharing import open_to_workers

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
    masked = {w: (x[w] ^ triple[w][0], y[w] ^ triple[w][1]) for w in x}
    opened = open_to_workers(masked, session, combine=torch.bitwise_xor)
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


def mask_and_pack_bits(bits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(bits ^ mask), 64 to a word: 64 times less to send.

    `mask` holds padded_size(len(bits)) random bits, so the padding is random too and every word
    sent is uniform. XOR commutes with packing: packed XOR shares open like any XOR shares.
    """
    padded = torch.nn.functional.pad(bits.reshape(-1), (0, mask.numel() - bits.numel())) ^ mask
    return (padded.view(-1, WORD_BITS) << _BIT_POSITIONS).sum(dim=1)  # distinct powers of two: sum = OR


def unpack_bits(words: torch.Tensor, count: int) -> torch.Tensor:
    """The first `count` bits packed by mask_and_pack_bits, as 0/1 int64 values."""
    return ((words.unsqueeze(1) >> _BIT_POSITIONS) & 1).reshape(-1)[:count]
