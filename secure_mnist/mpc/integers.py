"""Integers shared as they are: what PySyft's `share()` gave for an integer tensor.

An IntegerTensor is a FixedPrecisionTensor with no fractional digits (scale 1): sums, products
and comparisons are those of integers in Z_2^64, with no truncation after a product, and `get()`
gives back an int64 torch tensor, as PySyft's did. Division by a public number rounds
stochastically to a neighbouring integer, as every fixed-point division does.
"""

from __future__ import annotations

import torch

from ..encoding import FixedPointEncoder, check_in_range
from ..parties import Party
from .fixed_point import FixedPrecisionTensor
from .sharing import reveal_to

INTEGERS = FixedPointEncoder(base=2, precision_fractional=0)


class IntegerTensor(FixedPrecisionTensor):
    """Integers of Z_2^64, public or shared (scale 1)."""

    __slots__ = ()

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> IntegerTensor:
        """An integer (or bool) torch tensor, as it is; values past ±2^46 are refused like any encoding."""
        if values.is_floating_point() or values.is_complex():
            raise TypeError(f"IntegerTensor holds integers, got a {values.dtype} tensor")
        encoded = values.detach().to(torch.int64)
        check_in_range(encoded, INTEGERS)
        return cls(encoded, INTEGERS)

    def get(self, receiver: Party | None = None) -> torch.Tensor:  # type: ignore[override]
        """The integers, revealed to the receiver (the client by default), as an int64 tensor."""
        self._require_shared("get")
        ring = reveal_to(self.child, receiver or self.session.client)  # type: ignore[arg-type]
        if ring is None:  # the receiver runs in another process
            return torch.empty(self.shape, dtype=torch.int64, device="meta")
        check_in_range(ring, self.encoder)
        return ring

    def decrypt(self) -> torch.Tensor:
        return self.get()

    def float_precision(self) -> torch.Tensor:
        """The public integers as an int64 tensor (they have no fixed point to undo)."""
        if self.is_shared:
            return super().float_precision()  # raises: get() first
        check_in_range(self.child, self.encoder)  # type: ignore[arg-type]
        return self.child  # type: ignore[return-value]

    float_prec = float_precision

    def __repr__(self) -> str:
        if self.is_shared:
            return f"IntegerTensor>{self.child!r}"
        return f"IntegerTensor({self.child})"
