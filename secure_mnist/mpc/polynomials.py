"""Polynomials of a secret-shared value, with a bound on the error fixed-point arithmetic adds.

Under MPC the only nonlinear operation that is cheap is the product, so a smooth function such
as exp or log is computed as a polynomial. Here a polynomial p(t) = c_0 + c_1 t + ... + c_d t^d
of a shared t (with |t| <= 1) is evaluated in ceil(log2 d) rounds: the powers t^2..t^d are built
by doubling (round r multiplies t^(2^(r-1)) with every power already known), then the public
coefficients are applied locally and the sum is truncated once.

Every product is truncated, which costs up to one unit in the last place (ulp); `PowerErrors`
follows those errors through the doubling scheme, so each caller can state a maximum error that
holds for every input rather than a typical one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .fixed_point import FixedPrecisionTensor, products_together
from .primitives.truncation import truncate

# The coefficients are encoded with this many times the tensor's scale, and the sum truncated
# once by scale * COEFFICIENT_EXTRA. A larger factor rounds the coefficients more finely, but the
# raw sum grows with it, and share-local truncation fails with probability |raw| / 2^64: with 16
# fractional bits and |p(t)| <= 1, a factor of 4 keeps that at 2^-30 per element.
COEFFICIENT_EXTRA = 4


def doubling_schedule(degree: int) -> list[list[tuple[int, int, int]]]:
    """Rounds of (power, left, right) products that build t^2..t^degree from t by doubling."""
    rounds: list[list[tuple[int, int, int]]] = []
    known = 1
    while known < degree:
        step = [(known + j, known, j) for j in range(1, known + 1) if known + j <= degree]
        rounds.append(step)
        known *= 2
    return rounds


def rounds_for_degree(degree: int) -> int:
    return len(doubling_schedule(degree))


@dataclass(frozen=True)
class PowerErrors:
    """Worst-case absolute errors of t^1..t^degree computed by doubling, for |t| <= bound.

    `input_error` is the error already in t; each product adds at most one ulp of truncation:
    |t^(a+b) - computed| <= |t|^a E_b + |t|^b E_a + E_a E_b + ulp.
    """

    degree: int
    bound: float
    ulp: float
    input_error: float = 0.0

    def errors(self) -> list[float]:
        errors = [0.0, self.input_error] + [0.0] * (self.degree - 1)
        for step in doubling_schedule(self.degree):
            for power, left, right in step:
                errors[power] = (self.bound**left * errors[right] + self.bound**right * errors[left]
                                 + errors[left] * errors[right] + self.ulp)
        return errors


def chebyshev_coefficients(fn, degree: int, lower: float, upper: float) -> tuple[float, ...]:
    """Monomial coefficients (in t) of the degree-`degree` Chebyshev interpolant of fn on [lower, upper].

    Interpolation at Chebyshev points is within a small factor of the best polynomial of that
    degree, and the monomial form is safe here because callers keep |t| <= 1.
    """
    series = np.polynomial.Chebyshev.interpolate(fn, degree, domain=[lower, upper])
    return tuple(float(c) for c in series.convert(kind=np.polynomial.Polynomial).coef)


def interpolation_error(fn, coefficients: Sequence[float], lower: float, upper: float,
                        relative: bool = False) -> float:
    """Largest |p(t) - fn(t)| on a fine grid of [lower, upper] (relative to |fn| if asked),
    with a 1% margin for what falls between grid points."""
    grid = np.linspace(lower, upper, 20001)
    exact = fn(grid)
    gap = np.abs(np.polynomial.polynomial.polyval(grid, coefficients) - exact)
    if relative:
        gap = gap / np.abs(exact)
    return 1.01 * float(gap.max())


def evaluation_error(coefficients: Sequence[float], bound: float, ulp: float, input_error: float = 0.0) -> float:
    """Worst-case error that evaluate() adds to p(t) for |t| <= bound (the approximation error aside)."""
    degree = len(coefficients) - 1
    errors = PowerErrors(degree, bound, ulp, input_error).errors()
    coefficient_rounding = ulp / COEFFICIENT_EXTRA / 2
    total = ulp  # the final truncation
    for i in range(1, degree + 1):
        total += abs(coefficients[i]) * errors[i] + coefficient_rounding * (bound**i + errors[i])
    return total


def powers_together(ts: Sequence[FixedPrecisionTensor], degree: int) -> list[list[FixedPrecisionTensor]]:
    """[t^1, ..., t^degree] for each t, in ceil(log2 degree) rounds: the products of a round, for
    every t, travel together."""
    known: list[list[FixedPrecisionTensor]] = [[t] for t in ts]
    for step in doubling_schedule(degree):
        products = products_together([(own[left - 1], own[right - 1]) for own in known for _, left, right in step])
        for index, own in enumerate(known):
            own.extend(products[index * len(step):(index + 1) * len(step)])  # type: ignore[arg-type]
    return known


def powers(t: FixedPrecisionTensor, degree: int) -> list[FixedPrecisionTensor]:
    """[t^1, ..., t^degree] in ceil(log2 degree) rounds (the products of a round travel together)."""
    return powers_together([t], degree)[0]


def evaluate_sum(terms: Sequence[tuple[FixedPrecisionTensor, Sequence[float]]], constant: float = 0.0
                 ) -> FixedPrecisionTensor:
    """constant + sum over (t, coefficients) of sum_i coefficients[i] t^(i+1): polynomials without
    their constant term in several shared values, their powers computed in the same rounds and
    the whole sum truncated once. The caller keeps every |t| small, about 1 at most: the powers'
    products must stay far below 2^64 / scale^2 (see evaluation_error for the bound)."""
    degree = max(len(coefficients) for _, coefficients in terms)
    if degree < 1:
        raise ValueError("a polynomial of a shared value needs degree at least 1")
    first = terms[0][0]
    encoder = first.encoder
    divisor = encoder.scale * COEFFICIENT_EXTRA
    raw = None
    for (_, coefficients), known in zip(terms, powers_together([t for t, _ in terms], degree)):
        for coefficient, power in zip(coefficients, known):
            term = power.child.mul_public(int(round(coefficient * divisor)))  # type: ignore[union-attr]
            raw = term if raw is None else raw + term
    shift = torch.tensor(int(round(constant * divisor * encoder.scale)), dtype=torch.int64)
    return first._wrap(truncate(raw.add_public(shift), divisor))  # type: ignore[union-attr]


def evaluate(t: FixedPrecisionTensor, coefficients: Sequence[float]) -> FixedPrecisionTensor:
    """p(t) for public coefficients; the caller keeps |t| <= 1 (see evaluation_error for the bound)."""
    return evaluate_sum([(t, coefficients[1:])], coefficients[0])
