"""Additive secret sharing over the integers modulo 2**62, using only torch.

The docs include the marked sections with pymdownx.snippets, so the text a reader
sees is exactly the code that the doc tests execute.
"""

# --8<-- [start:share]
import torch

Q = 2**62  # the ring size: every share and every secret lives modulo Q


def share(secret: torch.Tensor, n_parties: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Split `secret` into `n_parties` random shares that add up to it modulo Q."""
    shares = [torch.randint(0, Q, secret.shape, generator=generator) for _ in range(n_parties - 1)]
    last = (secret - sum(shares)) % Q
    return [*shares, last]


def reconstruct(shares: list[torch.Tensor]) -> torch.Tensor:
    """Add the shares back together; with any one of them missing the sum is noise."""
    return sum(shares) % Q
# --8<-- [end:share]
