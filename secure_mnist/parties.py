"""The parties: workers that hold shares, a crypto provider that deals randomness, a client that owns data.

Each party keeps its own state: its shares (by tensor key) and its own random stream. Nothing here
reaches into another party's state; protocols move values between parties through the session's
communicator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .mpc.randomness import PRG


@dataclass(eq=False)
class Party:
    """One participant of the computation."""

    name: str
    prg: PRG = field(default_factory=PRG, repr=False)
    store: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Worker(Party):
    """Holds one additive share of every secret; never sees a secret in the clear."""


class CryptoProvider(Party):
    """Deals correlated randomness (Beaver triples, shared random bits); sees no share of the data."""


class Client(Party):
    """The orchestrator: owns plaintext data and models, shares them out, and receives results."""
