"""Fixed-point encoding of real numbers as integers in the ring Z_2^64.

A real x is stored as round(x * base**precision) in an int64 that wraps around modulo 2^64. The
encoder refuses what it cannot represent (NaN, infinity, values past the range) and, on decoding,
recognises a value that has wrapped around instead of returning it as a wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import EncodingError, FixedPointOverflowError

RING_BITS = 64

# Encoded magnitudes must stay below 2^46. A legitimate value never gets near the top of the ring,
# so a decoded value past this bound is a wrap-around (a product too large for the ring, or a
# rare truncation failure, which adds about ±2^(64-f)). A truncation failure always lands outside
# (see below). A product that wrapped is truncated to below 2^63 / scale and lands inside the
# bound with probability about scale / 2^17 per element (1/2 at 16 bits, 1/131 at 3 digits):
# a tensor of wrapped products is caught, a single one may not be (docs/fixed-precision.md#overflow).
SAFE_BITS = 46
SAFE_LIMIT = 2**SAFE_BITS

# A failed truncation (primitives/truncation.py) is off by about 2^64 / scale. The range check
# catches it only if that offset carries any legitimate value (|v| < 2^46) beyond ±2^46, that is
# if 2^64 / scale >= 2^47: scales up to 2^17 (17 fractional bits in base 2, 5 digits in base 10).
MAX_SCALE_BITS = RING_BITS - SAFE_BITS - 1
MAX_SCALE = 2**MAX_SCALE_BITS


@dataclass(frozen=True)
class FixedPointEncoder:
    """Scale reals by base**precision_fractional and round to integers.

    The default, 16 binary fractional bits, resolves 1.5e-5 (65 times finer than PySyft's three
    decimal digits, so learning-rate-sized updates are not rounded away) and makes truncation an
    arithmetic shift. PySyft's `base=10, precision_fractional=3` is supported for the tutorial.
    """

    base: int = 2
    precision_fractional: int = 16

    def __post_init__(self) -> None:
        if self.base < 2 or self.precision_fractional < 0:
            raise ValueError(f"need base >= 2 and precision_fractional >= 0, got {self}")
        if self.scale**2 >= 2**(RING_BITS - 8):
            raise ValueError(f"scale {self.scale} leaves no room in Z_2^64 for products of two values")
        if self.scale > MAX_SCALE:
            offset = 2**RING_BITS // self.scale
            raise ValueError(
                f"scale {self.scale} ({self.describe()}) is above 2^{MAX_SCALE_BITS} = {MAX_SCALE}: a failed "
                f"truncation would be off by about 2^64/scale = {offset / self.scale:.3g} (encoded {offset:.3g}), "
                f"inside the range check's ±2^{SAFE_BITS}, so it could pass unnoticed. Use at most "
                f"{MAX_SCALE_BITS} fractional bits in base 2 or 5 digits in base 10"
            )

    @property
    def scale(self) -> int:
        return self.base**self.precision_fractional

    @property
    def max_value(self) -> float:
        """The largest magnitude that can be encoded."""
        return (SAFE_LIMIT - 1) / self.scale

    def describe(self) -> str:
        if self.precision_fractional == 0:
            return "integers (no fractional digits)"
        if self.base == 2:
            return f"{self.precision_fractional} fractional bits"
        return f"base {self.base}, {self.precision_fractional} fractional digits"

    def encode(self, values: torch.Tensor | float | int) -> torch.Tensor:
        """Reals to ring elements; raises instead of wrapping."""
        reals = torch.as_tensor(values).to(torch.float64)
        if reals.is_meta:  # a placeholder in a process that does not hold this data: shape only
            return torch.empty(reals.shape, dtype=torch.int64, device="meta")
        if not torch.isfinite(reals).all():
            bad = (~torch.isfinite(reals)).sum().item()
            raise EncodingError(f"cannot encode NaN or infinity ({bad} of {reals.numel()} values)")
        scaled = torch.round(reals * self.scale)
        if scaled.numel() and scaled.abs().max() >= SAFE_LIMIT:
            worst = reals.abs().max().item()
            raise FixedPointOverflowError(
                f"value {worst:.6g} is beyond the fixed-point range ±{self.max_value:.6g} "
                f"({self.describe()}); lower the precision or rescale the data"
            )
        return scaled.to(torch.int64)

    def decode(self, encoded: torch.Tensor) -> torch.Tensor:
        """Ring elements to float32; raises if a value has wrapped around the ring."""
        if encoded.is_meta:  # revealed to a party in another process: a placeholder, no value
            return torch.empty(encoded.shape, dtype=torch.float32, device="meta")
        check_in_range(encoded, self)
        return (encoded.to(torch.float64) / self.scale).to(torch.float32)


def check_in_range(encoded: torch.Tensor, encoder: FixedPointEncoder) -> None:
    """Raise FixedPointOverflowError if any ring element lies outside the safe range."""
    if encoded.numel() == 0:
        return
    # abs() of -2^63 stays negative in int64, so compare both ends instead.
    outside = (encoded >= SAFE_LIMIT) | (encoded <= -SAFE_LIMIT)
    if outside.any():
        raise FixedPointOverflowError(
            f"{int(outside.sum())} of {encoded.numel()} values are outside the fixed-point range "
            f"±{encoder.max_value:.6g} ({encoder.describe()}): a result grew too large, or a product came "
            "close to 2^63 in the ring, where it wraps around or its truncation fails. Scale the inputs "
            "down or use fewer fractional digits."
        )
