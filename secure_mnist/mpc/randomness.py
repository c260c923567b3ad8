"""Cryptographically secure randomness for shares and masks.

Every share a party hands out must be uniform over Z_2^64 and unpredictable to the others, so
shares come from AES-128 in counter mode (a standard PRG), not from torch's Mersenne Twister.
With AES-NI this costs about a nanosecond per ring element, as cheap as torch.randint. The
stream's position is explicit (counted in AES blocks). A resumed run does not rewind a stream: it
forks new ones (see `Session.renew_randomness`).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 16
BLOCK_BYTES = 16
# Draws smaller than this many blocks (64 KB) are served from keystream computed ahead in one
# cipher call: a training step makes hundreds of small draws, and the call costs more than the AES.
READ_AHEAD_BLOCKS = 4096
_zeros = bytes(1 << 20)  # AES-CTR's input: the keystream is the encryption of zeros (grown on demand)


def _zero_bytes(count: int) -> memoryview:
    """`count` zero bytes without allocating them again for every draw."""
    global _zeros
    if len(_zeros) < count:
        _zeros = bytes(max(count, 2 * len(_zeros)))
    return memoryview(_zeros)[:count]


def derive_seed(master: bytes, label: str) -> bytes:
    """A seed for one party, derived from a master seed: reproducible runs, independent streams."""
    return hashlib.blake2b(label.encode(), key=master, digest_size=SEED_BYTES).digest()


class PRG:
    """An AES-128-CTR keystream read as int64 ring elements."""

    def __init__(self, seed: bytes | None = None, position: int = 0) -> None:
        seed = os.urandom(SEED_BYTES) if seed is None else seed
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed has {SEED_BYTES} bytes, got {len(seed)}")
        self._seed = seed
        self.position = position  # AES blocks handed out so far (the keystream read ahead is not counted)
        counter = position.to_bytes(BLOCK_BYTES, "big")
        self._stream = Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor()
        self._ahead = np.empty(0, dtype=np.int64)  # keystream computed but not handed out yet
        self._ahead_at = 0  # the first word of _ahead not handed out

    def ring(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Uniform elements of Z_2^64 (int64, two's complement) of the given shape: the next words
        of the keystream, in whole blocks (an odd count leaves the block's second word unused)."""
        count = 1
        for size in shape:
            count *= size
        if count == 0:
            return torch.zeros(shape, dtype=torch.int64)
        blocks = -(-count * 8 // BLOCK_BYTES)  # whole blocks, so the position stays a block count
        self.position += blocks
        return torch.from_numpy(self._next_blocks(blocks)[:count].reshape(shape))

    def _next_blocks(self, blocks: int) -> np.ndarray:
        """The next `blocks` blocks of keystream as int64 words, in an array of their own (numpy:
        a small draw is a slice and a copy, cheaper than the same in torch)."""
        words = 2 * blocks
        left = self._ahead.size - self._ahead_at
        if words <= left:
            start, self._ahead_at = self._ahead_at, self._ahead_at + words
            return self._ahead[start:start + words].copy()  # a copy: callers may keep it, or change it
        if blocks >= READ_AHEAD_BLOCKS:  # a large draw: what is left ahead, then the rest straight in
            out = np.empty(words, dtype=np.int64)
            out[:left] = self._ahead[self._ahead_at:]
            self._ahead_at = self._ahead.size
            self._encrypt_into(out[left:])
            return out
        ahead = np.empty(left + 2 * READ_AHEAD_BLOCKS, dtype=np.int64)
        ahead[:left] = self._ahead[self._ahead_at:]
        self._encrypt_into(ahead[left:])
        self._ahead, self._ahead_at = ahead, words
        return ahead[:words].copy()

    def _encrypt_into(self, words: np.ndarray) -> None:
        """Fill `words` (contiguous, an even count) with the next keystream: AES-CTR of zeros."""
        self._stream.update_into(_zero_bytes(words.size * 8), memoryview(words).cast("B"))

    def bits(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Uniform bits (0 or 1) as int64."""
        return self.ring(shape) & 1

    def seed(self) -> bytes:
        """Fresh seed material, for handing a new stream to someone else."""
        return self.ring((SEED_BYTES // 8,)).numpy().tobytes()

    def fork(self, label: str) -> PRG:
        """A new, independent stream derived from this stream's seed and `label` (not from its output)."""
        return PRG(derive_seed(self._seed, label))
