"""Public numbers in fixed-point arithmetic: what is exact, and what is refused.

A public factor c is encoded like data, round(c * scale), so x * c is off by |x| times c's
rounding error. That is fine while the rounding error is small next to c; a constant that
rounds to zero, or to a value off by more than half of itself, would make a silently wrong
product (an SGD learning rate of 0.0004 at three decimal digits rounds to 0: training stops
without a word). Such constants are refused, naming the smallest value that is safe.

Division is held to a higher standard: x / d is exact to one step of the precision. The
reciprocal 1/d is written as a fraction q/p with a small denominator p; the workers multiply
their shares by the integer q (exact) and truncate by p (one step of stochastic rounding).
Every decimal divisor of up to five significant digits has such a fraction (6.2 = 31/5, so
x / 6.2 = 5x / 31; 0.3081 = 3081/10000). The denominator is at most MAX_DIVISOR so that a failed
truncation, off by 2^64/p, still lands outside the range check (see encoding.MAX_SCALE). A
divisor whose reciprocal has no such fraction is refused, with a nearby one that works.

The numerator q can be large when d is small (1/0.0308 = 107246/3305), and x * q could wrap
around the ring for an x whose quotient is out of range, landing back in range unnoticed. So the
workers compute x * k + x * r / p with k = q // p (towards zero) and r = q - k p: |r| < p <= 2^17,
and |k| <= 2^17 because divisors below 2^-17 are refused, so neither product wraps for any x in
range, and a quotient out of range stays out of range, where the range check sees it.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import torch

from ..encoding import MAX_SCALE, FixedPointEncoder
from ..errors import EncodingError

# Truncation by p is detected when it fails only if 2^64 / p >= 2^47 (see encoding.MAX_SCALE).
MAX_DIVISOR = MAX_SCALE


def smallest_safe_constant(encoder: FixedPointEncoder) -> float:
    """The smallest magnitude whose encoding is off by at most half of itself: 2/3 of a step.

    Rounded up to three significant digits, so that the number printed is itself safe.
    """
    exact = 2 / (3 * encoder.scale)
    digits = 2 - math.floor(math.log10(exact))
    return math.ceil(exact * 10**digits) / 10**digits


def check_factor(value: float, encoder: FixedPointEncoder, what: str = "public factor") -> None:
    """Refuse a public factor that the encoding would round to zero or by more than half of itself."""
    if value == 0 or not math.isfinite(value):
        return  # zero is exact; NaN and infinity are refused by the encoder itself
    encoded = round(value * encoder.scale)
    if abs(encoded - value * encoder.scale) > abs(value * encoder.scale) / 2:
        safe = smallest_safe_constant(encoder)
        kept = encoded / encoder.scale
        raise EncodingError(
            f"{what} {value:g} is too small for the fixed-point precision ({encoder.describe()}): it encodes "
            f"to {kept:g}, {'all of it lost' if encoded == 0 else 'off by more than half of itself'}. The smallest "
            f"safe magnitude is {safe:g}; use a larger value or more fractional digits (fix_precision(precision_fractional=...))"
        )


def check_factors(values: torch.Tensor | float | int, encoder: FixedPointEncoder, what: str = "public factor") -> None:
    """check_factor for a Python number or a one-element tensor (a constant; larger tensors are
    data, encoded to the nearest step as fix_precision() encodes data)."""
    if isinstance(values, torch.Tensor):
        if values.numel() != 1 or values.is_meta:
            return
        values = values.item()
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        check_factor(float(values), encoder, what)


@lru_cache(maxsize=1024)
def reciprocal_fraction(divisor: float, encoder: FixedPointEncoder) -> tuple[int, int]:
    """(q, p) with x q / p = x / divisor to within half a step of `encoder` for every x whose
    quotient is in range,
    and 1 <= p <= MAX_DIVISOR; raises EncodingError if there is no such fraction."""
    if divisor == 0:
        raise ZeroDivisionError("division of a fixed-point tensor by zero")
    if not math.isfinite(divisor):
        raise EncodingError(f"cannot divide by {divisor}")
    if abs(divisor) > MAX_DIVISOR:
        raise EncodingError(
            f"cannot divide by {divisor!r}: secure_mnist divides by at most {MAX_DIVISOR} (2^17) in one step, so "
            "that a failed truncation, off by 2^64 / divisor, stays outside the range check. Scale the data down "
            "before sharing it, or divide by a smaller number"
        )
    if abs(divisor) < 1 / MAX_DIVISOR:
        raise EncodingError(
            f"cannot divide by {divisor!r}: dividing by less than 2^-17 multiplies by more than {MAX_DIVISOR}, so "
            "that x / divisor could wrap around the ring and come back in range unnoticed. Scale the data or the "
            "divisor first"
        )
    fraction, worst = _closest_fraction(divisor, encoder)
    if worst > Fraction(1, 2):
        raise EncodingError(
            f"cannot divide exactly by {divisor!r}: 1/{divisor!r} has no fraction q/p with p <= {MAX_DIVISOR} close "
            f"enough for {encoder.describe()} (the closest, {fraction.numerator}/{fraction.denominator}, would be off "
            f"by up to {float(worst):.3g} steps for the largest values). Divide by a rounded number instead, "
            f"e.g. x / {_nearby_divisor(divisor, encoder)!r}, or multiply by a public constant"
        )
    return fraction.numerator, fraction.denominator


def _closest_fraction(divisor: float, encoder: FixedPointEncoder) -> tuple[Fraction, Fraction]:
    """The fraction closest to 1/divisor with a denominator of at most MAX_DIVISOR, and how many
    steps apart x / divisor and x q / p can be, for the largest x whose quotient is in range
    (|x| up to max_value, and up to max_value * |divisor| when the divisor is below 1)."""
    exact = 1 / Fraction(divisor)
    fraction = exact.limit_denominator(MAX_DIVISOR)
    largest = Fraction(encoder.max_value) * min(1, abs(Fraction(divisor)))
    worst = abs(exact - fraction) * largest * encoder.scale
    return fraction, worst


def _nearby_divisor(divisor: float, encoder: FixedPointEncoder) -> float:
    """The divisor rounded to the fewest significant digits (at least 4) that divide exactly."""
    for digits in range(4, 10):
        candidate = float(f"{divisor:.{digits}g}")
        if candidate != 0 and _closest_fraction(candidate, encoder)[1] <= Fraction(1, 2):
            return candidate
    return float(f"{divisor:.3g}")


def reciprocal_fractions(divisors: torch.Tensor, encoder: FixedPointEncoder) -> tuple[torch.Tensor, torch.Tensor]:
    """reciprocal_fraction for every element: int64 tensors q and p of the divisors' shape."""
    values = divisors.detach().to(torch.float64)
    unique, inverse = torch.unique(values, return_inverse=True)
    pairs = [reciprocal_fraction(value, encoder) for value in unique.tolist()]
    q = torch.tensor([n for n, _ in pairs], dtype=torch.int64)[inverse]
    p = torch.tensor([d for _, d in pairs], dtype=torch.int64)[inverse]
    return q.view(values.shape), p.view(values.shape)
