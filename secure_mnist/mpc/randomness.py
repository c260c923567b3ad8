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

import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 16
BLOCK_BYTES = 16
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
        self.position = position  # AES blocks used so far
        counter = position.to_bytes(BLOCK_BYTES, "big")
        self._stream = Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor()

    def ring(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Uniform elements of Z_2^64 (int64, two's complement) of the given shape."""
        count = 1
        for size in shape:
            count *= size
        if count == 0:
            return torch.zeros(shape, dtype=torch.int64)
        blocks = -(-count * 8 // BLOCK_BYTES)  # whole blocks, so the position stays a block count
        words = torch.empty(blocks * BLOCK_BYTES // 8, dtype=torch.int64)  # written in full below
        self._stream.update_into(_zero_bytes(blocks * BLOCK_BYTES), memoryview(words.numpy()).cast("B"))
        self.position += blocks
        return words[:count].view(shape)

    def bits(self, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """Uniform bits (0 or 1) as int64."""
        return self.ring(shape) & 1

    def seed(self) -> bytes:
        """Fresh seed material, for handing a new stream to someone else."""
        return self.ring((SEED_BYTES // 8,)).numpy().tobytes()

    def fork(self, label: str) -> PRG:
        """A new, independent stream derived from this stream's seed and `label` (not from its output)."""
        return PRG(derive_seed(self._seed, label))
