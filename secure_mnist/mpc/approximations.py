"""exp, reciprocal and log of secret-shared fixed-point values, each for a stated input range.

Two parties who hold additive shares can add, multiply (Beaver) and compare (a carry tree), and
nothing else; so each function here is built from those, for inputs in a range [lower, upper]
the caller states, and comes with a *plan*: the public choices (degrees, iterations), the rounds
it costs and the largest error it can make anywhere in the range, derived from the
approximation error and from one ulp (1 / scale) per truncation. Tests check the bound against
torch over the range. Inputs outside the range are first clipped to it (one comparison), so the
result is always f(clip(x)) within the bound; a caller that can prove its inputs are in range
passes `clip_input=False` and saves the comparison.

- exp(x) = p(x / 2^k)^(2^k): a Chebyshev polynomial of degree <= 8 on the range shrunk 2^k
  times, then k squarings. Each squaring doubles the relative error, so k is the smallest that
  lets a degree-8 polynomial reach the precision.
- reciprocal(x): Newton-Raphson y <- y (2 - x y), which squares the relative error each time,
  from the best linear start on [lower, upper]. For wide ranges x is first normalised to
  [1, 2) by comparisons with the powers of two in the range.
- log(x): the same normalisation x = m 2^n, then log x = p(m) + n log 2 with a Chebyshev
  polynomial on [1, 2).
- sigmoid(x) = 1 / (1 + e^-|x|) for x >= 0 and 1 minus that for x < 0: one comparison gives the
  sign, exp runs on [-bound, 0] (never large) and the reciprocal on [1, 2] (narrow). tanh(x) =
  2 sigmoid(2x) - 1.
- sqrt(x): the normalisation x = m 2^n, a Chebyshev polynomial for sqrt(m), times 2^(n/2).

Called without a range (PySyft's `x.exp()`, `torch.sigmoid(x)`), each uses DEFAULT_RANGES.

Fixed point limits what can be asked: the result must be encodable, and every product is kept
small (share-local truncation fails with probability |raw product| / 2^64).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..encoding import FixedPointEncoder
from .fixed_point import FixedPrecisionTensor
from .polynomials import (
    chebyshev_coefficients,
    evaluate,
    evaluate_sum,
    evaluation_error,
    interpolation_error,
    rounds_for_degree,
)
from .primitives.beaver import muls
from .primitives.comparison import is_negative
from .sharing import AdditiveSharingTensor

COMPARISON_ROUNDS = 8  # the carry tree (7) and the conversion to an additive bit (1)
MAX_DEGREE = 8
# The largest result (and intermediate product) a plan may produce. Share-local truncation fails
# with probability |raw product| / 2^64, and a product of real size v is v * scale^2 in the ring:
# at 16 fractional bits, 64 keeps that below 2^-26 per element (at three decimal digits, 2^-38).
MAX_RESULT = 64.0


# The ranges used when a caller gives none (x.exp(), torch.sigmoid(x), ...), stated with their
# maximum errors on docs/coming-from-pysyft.md. sigmoid and tanh take a bound: beyond +-bound
# the result is the value at the bound, off by less than e^-bound (sigmoid) or 2 e^-2bound (tanh).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "exp": (-8.0, 4.0),
    "log": (0.02, 50.0),
    "reciprocal": (0.05, 50.0),
    "sqrt": (0.01, 100.0),
    "sigmoid": (-16.0, 16.0),
    "tanh": (-8.0, 8.0),
}


def default_range(name: str, lower: float | None, upper: float | None) -> tuple[float, float]:
    default = DEFAULT_RANGES[name]
    return (default[0] if lower is None else float(lower), default[1] if upper is None else float(upper))


# -- clipping ---------------------------------------------------------------------------------------
def clip(x: FixedPrecisionTensor, lower: float | None = None, upper: float | None = None) -> FixedPrecisionTensor:
    """min(max(x, lower), upper) on shares, exactly: lower + relu(x - lower) - relu(x - upper).

    Both ReLUs run as one comparison (8 rounds); nobody learns which inputs were clipped.
    """
    if lower is not None and upper is not None and lower > upper:
        raise ValueError(f"clip needs lower <= upper, got [{lower}, {upper}]")
    if not x.is_shared:
        return FixedPrecisionTensor.encode(_decoded(x).clamp(lower, upper), x.encoder)
    bounds = [b for b in (lower, upper) if b is not None]
    if not bounds:
        return x
    relus = _stack([x - b for b in bounds]).relu()
    if lower is None:
        return x - relus[0]
    out = relus[0] + lower
    return out - relus[1] if upper is not None else out


# -- plans ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpPlan:
    """exp on [lower, upper]: p(t) with t = x / 2^halvings - center, then `halvings` squarings."""

    lower: float
    upper: float
    halvings: int
    center: float
    coefficients: tuple[float, ...]
    max_error: float  # absolute, for inputs in [lower, upper]
    rounds: int  # without the clipping comparison

    @property
    def degree(self) -> int:
        return len(self.coefficients) - 1


@dataclass(frozen=True)
class Normalisation:
    """x in [lower, upper] written as m * 2^n with m near [1, 2): compare x with the powers of two
    inside the range (one comparison round for all), then m = x * 2^-n."""

    thresholds: tuple[float, ...]  # 2^j, as encoded, for the exponents j the range crosses
    scales: tuple[float, ...]  # 2^-n for each possible n (one more than thresholds), as encoded
    mantissa_lower: float
    mantissa_upper: float
    mantissa_error: float  # the truncation of x * 2^-n, at most one ulp


@dataclass(frozen=True)
class ReciprocalPlan:
    """1/x on [lower, upper]: Newton from a linear start, on x itself or on its mantissa."""

    lower: float
    upper: float
    normalisation: Normalisation | None
    start: tuple[float, float]  # y0 = start[0] - start[1] * x
    iterations: int
    max_error: float
    rounds: int  # with clip_input=False (clipping adds a comparison, or one round to the normalisation's)


@dataclass(frozen=True)
class LogPlan:
    """log x on [lower, upper]: x = m 2^n, log x = p(m - center) + log(2^n)."""

    lower: float
    upper: float
    normalisation: Normalisation
    center: float
    coefficients: tuple[float, ...]
    max_error: float
    rounds: int  # with clip_input=False (clipping adds one round to the normalisation's)


@dataclass(frozen=True)
class LogWithReciprocalPlan:
    """log x on [lower, upper] from x and 1/x: constant + a(v) + b(u), a and b polynomials without
    constant term in v = x * v_scale (in [0, 1]) and u = 1/x, their powers in the same rounds."""

    lower: float
    upper: float
    v_scale: float  # about 1 / upper, as encoded
    constant: float
    v_coefficients: tuple[float, ...]  # of v^1 .. v^K
    u_coefficients: tuple[float, ...]  # of u^1 .. u^K
    max_error: float  # with u = reciprocal(x, lower, upper) within reciprocal_plan(...).max_error
    rounds: int  # the powers' (the reciprocal is the caller's)

    @property
    def degree(self) -> int:
        return len(self.v_coefficients)


def _ulp(encoder: FixedPointEncoder) -> float:
    return 1.0 / encoder.scale


def _encoded(value: float, encoder: FixedPointEncoder) -> float:
    """The real number a public constant becomes once encoded."""
    return round(value * encoder.scale) / encoder.scale


def _check_range(name: str, lower: float, upper: float, encoder: FixedPointEncoder) -> None:
    if not (math.isfinite(lower) and math.isfinite(upper)) or lower >= upper:
        raise ValueError(f"{name} needs a finite input range with lower < upper, got [{lower}, {upper}]")
    if max(abs(lower), abs(upper)) > encoder.max_value:
        raise ValueError(f"{name}: the range [{lower}, {upper}] is beyond what {encoder.describe()} encodes")


@lru_cache(maxsize=64)
def exp_plan(lower: float, upper: float, encoder: FixedPointEncoder) -> ExpPlan:
    """The cheapest (fewest rounds) way to get exp within twice the best reachable error."""
    _check_range("exp", lower, upper, encoder)
    if math.exp(upper) > MAX_RESULT:
        raise ValueError(f"exp: upper = {upper} is too large: e^{upper} = {math.exp(upper):.3g}, and products "
                         f"above {MAX_RESULT:g} risk a truncation failure (keep upper <= {math.log(MAX_RESULT):.2f})")
    if math.exp(lower) < 0.5 * _ulp(encoder) and math.exp(upper) < _ulp(encoder):
        raise ValueError(f"exp on [{lower}, {upper}] is below the precision ({encoder.describe()}) everywhere")
    ulp = _ulp(encoder)
    candidates: list[ExpPlan] = []
    for halvings in range(0, 24):
        center = _encoded((lower + upper) / 2**(halvings + 1), encoder)
        half = max(upper / 2**halvings - center, center - lower / 2**halvings) + ulp
        if half > 1.0 + 1e-3:  # keep |t| <= 1 so the powers stay small
            continue
        for degree in range(1, MAX_DEGREE + 1):
            def shifted(t, c=center):
                return np.exp(t + c)
            coefficients = chebyshev_coefficients(shifted, degree, -half, half)
            error = interpolation_error(shifted, coefficients, -half, half)
            input_error = ulp if halvings else 0.0  # the truncation of x / 2^k
            error += evaluation_error(coefficients, half, ulp, input_error)
            error += math.exp(center + half) * input_error  # p changes by about p' * dt
            for step in range(halvings):  # squaring: (q + e)^2 = q^2 + 2 q e + e^2, plus a truncation
                largest = math.exp(upper / 2**(halvings - step))
                error = 2 * largest * error + error * error + ulp
            rounds = rounds_for_degree(degree) + halvings
            candidates.append(ExpPlan(lower, upper, halvings, center, coefficients, error, rounds))
        if min(c.max_error for c in candidates) < 4 * ulp or candidates[-1].max_error > 4 * min(
                c.max_error for c in candidates):
            break  # more halvings only amplify the rounding further
    best = min(c.max_error for c in candidates)
    return min((c for c in candidates if c.max_error <= 1.25 * best), key=lambda c: (c.rounds, c.max_error))


def _normalisation(lower: float, upper: float, encoder: FixedPointEncoder) -> Normalisation:
    ulp = _ulp(encoder)
    first, last = math.floor(math.log2(lower)), math.floor(math.log2(upper))
    if upper == 2.0**last and last > first:  # upper itself is a power of two: no comparison for it
        last -= 1
    thresholds = tuple(_encoded(2.0**j, encoder) for j in range(first + 1, last + 1))
    scales = tuple(_encoded(2.0**-j, encoder) for j in range(first, last + 1))
    if min(scales) <= 0:
        raise ValueError(f"the range [{lower}, {upper}] needs scales below the precision ({encoder.describe()})")
    edges = (lower, *thresholds, upper)
    lows = [edges[i] * scales[i] for i in range(len(scales))]
    highs = [edges[i + 1] * scales[i] for i in range(len(scales))]
    return Normalisation(thresholds, scales, min(lows) - ulp, max(highs) + ulp, ulp)


def _newton(lower: float, upper: float, encoder: FixedPointEncoder) -> tuple[tuple[float, float], int, float]:
    """Linear start, iterations and worst-case absolute error of Newton's 1/x on [lower, upper].

    The start y0 = b (lower + upper - x) with b = 8 / ((lower + upper)^2 + 4 lower upper)
    balances the relative error e = 1 - x y0 at both ends and in the middle: |e0| <= e_max.
    Each iteration squares e; the truncations add at most (1 + 1/lower) ulp to y, that is
    upper (1 + 1/lower) ulp to e.
    """
    ulp = _ulp(encoder)
    total = lower + upper
    slope = _encoded(8.0 / (total**2 + 4 * lower * upper), encoder)
    intercept = _encoded(slope * total, encoder)
    grid = np.linspace(lower, upper, 20001)
    start_error = float(np.abs(1 - grid * (intercept - slope * grid)).max()) + upper * 2 * ulp
    if start_error >= 1:
        raise ValueError(f"reciprocal: no linear start converges on [{lower}, {upper}] at {encoder.describe()}")
    rounding = (1 + 1 / lower) * ulp
    relative, iterations = start_error, 0
    while True:
        iterations += 1
        final = relative**2 / lower + rounding  # the last iteration: its rounding is not squared
        relative = relative**2 + upper * rounding
        if final <= 2 * rounding or iterations == 12:
            return (intercept, slope), iterations, final


@lru_cache(maxsize=64)
def reciprocal_plan(lower: float, upper: float, encoder: FixedPointEncoder) -> ReciprocalPlan:
    """Newton on x directly, or on its mantissa after normalisation: whichever takes fewer rounds."""
    _check_range("reciprocal", lower, upper, encoder)
    if lower <= 0:
        raise ValueError(f"reciprocal needs a positive range (lower > 0), got [{lower}, {upper}]")
    if 1 / lower > MAX_RESULT:
        raise ValueError(f"reciprocal: lower = {lower} is too small: 1/{lower} is above {MAX_RESULT:g}, and "
                         f"larger products risk a truncation failure (keep lower >= {1 / MAX_RESULT:g})")
    ulp = _ulp(encoder)
    plans = []
    if upper / lower < 64:  # beyond that a linear start is too poor to pay
        start, iterations, error = _newton(lower, upper, encoder)
        plans.append(ReciprocalPlan(lower, upper, None, start, iterations, error, 2 * iterations))
    norm = _normalisation(lower, upper, encoder)
    start, iterations, error = _newton(norm.mantissa_lower, norm.mantissa_upper, encoder)
    largest_scale = max(norm.scales)
    # 1/x = s * (1/m): the mantissa's own error is relative (1/m moves by ulp / m^2), then one product
    error = largest_scale * (error + norm.mantissa_error / norm.mantissa_lower**2) + ulp
    rounds = (COMPARISON_ROUNDS + 2 if norm.thresholds else 0) + 2 * iterations
    plans.append(ReciprocalPlan(lower, upper, norm, start, iterations, error, rounds))
    return min(plans, key=lambda p: (p.rounds, p.max_error))


@lru_cache(maxsize=64)
def log_plan(lower: float, upper: float, encoder: FixedPointEncoder) -> LogPlan:
    _check_range("log", lower, upper, encoder)
    if lower <= 0:
        raise ValueError(f"log needs a positive range (lower > 0), got [{lower}, {upper}]")
    ulp = _ulp(encoder)
    norm = _normalisation(lower, upper, encoder)
    center = _encoded((norm.mantissa_lower + norm.mantissa_upper) / 2, encoder)
    half = max(norm.mantissa_upper - center, center - norm.mantissa_lower)

    def shifted(t):
        return np.log(t + center)

    best = None
    for degree in range(1, MAX_DEGREE + 4):
        coefficients = chebyshev_coefficients(shifted, degree, -half, half)
        error = interpolation_error(shifted, coefficients, -half, half)
        error += evaluation_error(coefficients, half, ulp, norm.mantissa_error)
        error += norm.mantissa_error / norm.mantissa_lower  # log moves by dm / m
        error += ulp / 2 + ulp  # log(2^n) encoded; the one-hot sum adds no rounding
        plan = LogPlan(lower, upper, norm, center, coefficients, error,
                       (COMPARISON_ROUNDS + 1 if norm.thresholds else 0) + rounds_for_degree(degree))
        if best is None or plan.max_error < 0.8 * best.max_error:
            best = plan
    return best  # type: ignore[return-value]


MAX_LOG_DEGREE = 6


def _near_minimax(basis: np.ndarray, target: np.ndarray, sweeps: int = 40) -> np.ndarray:
    """Least-squares coefficients reweighted towards the largest errors (Lawson's iteration):
    close to the best fit in the largest error, which is what the error bound counts."""
    weights = np.full(len(target), 1.0 / len(target))
    coefficients = np.zeros(basis.shape[1])
    for _ in range(sweeps):
        root = np.sqrt(weights)[:, None]
        coefficients = np.linalg.lstsq(basis * root, target * root[:, 0], rcond=None)[0]
        gap = np.abs(basis @ coefficients - target)
        weights = weights * gap
        weights = weights / weights.sum()
    return coefficients


def _log_basis(x: np.ndarray, v_scale: float, degree: int) -> np.ndarray:
    """Columns 1, v, ..., v^degree, u, ..., u^degree for v = x * v_scale and u = 1/x."""
    exponents = np.arange(1, degree + 1)
    return np.hstack([np.ones((len(x), 1)), (x * v_scale)[:, None] ** exponents, (1.0 / x)[:, None] ** exponents])


def _largest_slope(coefficients: Sequence[float], lower: float, upper: float) -> float:
    """max |p'(t)| on [lower, upper] (a fine grid, plus 1%) for p(t) = sum_k coefficients[k-1] t^k:
    an input off by d moves p by at most that times |d| (mean value theorem)."""
    grid = np.linspace(lower, upper, 20001)
    slope = sum(k * c * grid ** (k - 1) for k, c in enumerate(coefficients, start=1))
    return 1.01 * float(np.abs(slope).max())


@lru_cache(maxsize=64)
def log_with_reciprocal_plan(lower: float, upper: float, encoder: FixedPointEncoder) -> LogWithReciprocalPlan:
    """log x from x and 1/x, when 1/x comes from reciprocal(x, lower, upper): no comparison at all.

    A polynomial in x alone converges slowly on a wide range, because log has its singularity at 0;
    adding powers of 1/x captures it. The error counts the fit (fitted at Chebyshev points, measured
    on a fine grid, plus 1%), one ulp of truncation per product, the reciprocal's error and v's
    truncation through each polynomial's largest slope, and the constant's encoding. Degrees whose
    powers would exceed MAX_RESULT are not considered.
    """
    _check_range("log", lower, upper, encoder)
    if lower <= 0:
        raise ValueError(f"log needs a positive range (lower > 0), got [{lower}, {upper}]")
    ulp = _ulp(encoder)
    inverse_error = reciprocal_plan(lower, upper, encoder).max_error
    v_scale = _encoded(1.0 / upper, encoder)
    v_range = (lower * v_scale - ulp, upper * v_scale + ulp)  # v = x * v_scale, truncated once
    u_range = (1.0 / upper - inverse_error, 1.0 / lower + inverse_error)
    nodes = (lower + upper) / 2 + (upper - lower) / 2 * np.cos(np.pi * (np.arange(2001) + 0.5) / 2001)
    grid = np.linspace(lower, upper, 20001)
    candidates = []
    for degree in range(1, MAX_LOG_DEGREE + 1):
        if max(v_range[1], u_range[1]) ** degree > MAX_RESULT:
            break
        fit = _near_minimax(_log_basis(nodes, v_scale, degree), np.log(nodes))
        error = 1.01 * float(np.abs(_log_basis(grid, v_scale, degree) @ fit - np.log(grid)).max())
        constant, v_part, u_part = float(fit[0]), tuple(map(float, fit[1:degree + 1])), tuple(map(float, fit[degree + 1:]))
        # the products' truncations, for v and u as shared; the sum is truncated once for both
        error += evaluation_error((constant, *v_part), v_range[1], ulp) + evaluation_error((0.0, *u_part), u_range[1], ulp) - ulp
        error += _largest_slope(v_part, *v_range) * ulp + _largest_slope(u_part, *u_range) * inverse_error
        error += ulp / 2  # the constant, as encoded
        candidates.append(LogWithReciprocalPlan(lower, upper, v_scale, constant, v_part, u_part, error,
                                                rounds_for_degree(degree)))
    if not candidates:
        raise ValueError(f"log_with_reciprocal: 1/{lower} is too large for its powers to stay below {MAX_RESULT:g}")
    best = min(c.max_error for c in candidates)
    return min((c for c in candidates if c.max_error <= 1.25 * best), key=lambda c: (c.rounds, c.max_error))


# -- the functions -----------------------------------------------------------------------------------
def exp(x: FixedPrecisionTensor, lower: float | None = None, upper: float | None = None, *,
        clip_input: bool = True) -> FixedPrecisionTensor:
    """e^x for x in [lower, upper] (clipped to it), within exp_plan(...).max_error.

    Below `lower` the result is e^lower (e^x is smaller still, so the error there is at most
    e^lower + max_error). e^upper may not exceed MAX_RESULT.
    """
    lower, upper = default_range("exp", lower, upper)
    plan = exp_plan(float(lower), float(upper), x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.exp(_decoded(x).clamp(lower, upper)), x.encoder)
    if clip_input:
        x = clip(x, lower, upper)
    t = (x / 2**plan.halvings if plan.halvings else x) - plan.center
    q = evaluate(t, plan.coefficients)
    for _ in range(plan.halvings):
        q = q * q
    return q


def reciprocal(x: FixedPrecisionTensor, lower: float | None = None, upper: float | None = None, *,
               clip_input: bool = True) -> FixedPrecisionTensor:
    """1/x for x in [lower, upper] with 0 < lower (clipped to it), within reciprocal_plan(...).max_error."""
    lower, upper = default_range("reciprocal", lower, upper)
    plan = reciprocal_plan(float(lower), float(upper), x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(1.0 / _decoded(x).clamp(lower, upper), x.encoder)
    if plan.normalisation is None:
        if clip_input:
            x = clip(x, lower, upper)
        return _newton_iterations(x, plan)
    mantissa, scale_bits = _normalise(x, plan.normalisation, clip_input, lower, upper)
    scales = plan.normalisation.scales
    scale = scales[0] if len(scales) == 1 else _one_hot_sum(scale_bits, scales, x)
    return _newton_iterations(mantissa, plan) * scale


def log(x: FixedPrecisionTensor, lower: float | None = None, upper: float | None = None, *,
        clip_input: bool = True) -> FixedPrecisionTensor:
    """Natural log of x for x in [lower, upper] with 0 < lower (clipped to it), within log_plan(...).max_error."""
    lower, upper = default_range("log", lower, upper)
    plan = log_plan(float(lower), float(upper), x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.log(_decoded(x).clamp(lower, upper)), x.encoder)
    mantissa, one_hot = _normalise(x, plan.normalisation, clip_input, lower, upper)
    log_of_power = _one_hot_sum(one_hot, [-math.log(s) for s in plan.normalisation.scales], x)
    return evaluate(mantissa - plan.center, plan.coefficients) + log_of_power


def log_with_reciprocal(x: FixedPrecisionTensor, inverse: FixedPrecisionTensor, lower: float, upper: float
                        ) -> FixedPrecisionTensor:
    """Natural log of x in [lower, upper] (not clipped), given inverse = reciprocal(x, lower, upper):
    within log_with_reciprocal_plan(lower, upper, encoder).max_error, in a few product rounds and
    no comparison, where log() needs one to normalise x."""
    plan = log_with_reciprocal_plan(float(lower), float(upper), x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.log(_decoded(x)), x.encoder)
    return evaluate_sum([(x * plan.v_scale, plan.v_coefficients), (inverse, plan.u_coefficients)], plan.constant)


@dataclass(frozen=True)
class SigmoidPlan:
    """sigmoid on [-bound, bound]: e^-|x| by exp_plan(-bound, 0), then 1 / (1 + e^-|x|) by
    reciprocal_plan(1, 2), then the sign put back. Beyond the bound: the value at the bound."""

    bound: float
    exp: ExpPlan
    reciprocal: ReciprocalPlan
    max_error: float  # absolute, for every input (inside the bound or not)
    rounds: int


@lru_cache(maxsize=64)
def sigmoid_plan(bound: float, encoder: FixedPointEncoder) -> SigmoidPlan:
    if not math.isfinite(bound) or bound <= 0:
        raise ValueError(f"sigmoid needs a positive, finite bound, got {bound}")
    exp_part = exp_plan(-bound, 0.0, encoder)
    reciprocal_part = reciprocal_plan(1.0, 2.0, encoder)
    # 1/(1 + e) moves by at most |de| for a denominator >= 1; beyond the bound, the clipped
    # e^-bound makes sigmoid off by less than e^-bound. Putting the sign back is exact.
    error = exp_part.max_error + reciprocal_part.max_error + math.exp(-bound)
    rounds = (COMPARISON_ROUNDS + 1) + (COMPARISON_ROUNDS + exp_part.rounds) \
        + (COMPARISON_ROUNDS + reciprocal_part.rounds) + 1
    return SigmoidPlan(bound, exp_part, reciprocal_part, error, rounds)


@dataclass(frozen=True)
class SqrtPlan:
    """sqrt on [lower, upper]: x = m 2^n, p(m - center) ~ sqrt(m), times 2^(n/2) (a one-hot sum)."""

    lower: float
    upper: float
    normalisation: Normalisation
    center: float
    coefficients: tuple[float, ...]
    max_error: float  # for inputs in [lower, upper]; below lower, at most sqrt(lower) + max_error
    rounds: int


@lru_cache(maxsize=64)
def sqrt_plan(lower: float, upper: float, encoder: FixedPointEncoder) -> SqrtPlan:
    _check_range("sqrt", lower, upper, encoder)
    if lower <= 0:
        raise ValueError(f"sqrt needs a positive range (lower > 0; below it the result is sqrt(lower)), "
                         f"got [{lower}, {upper}]")
    if math.sqrt(upper) > MAX_RESULT:
        raise ValueError(f"sqrt: upper = {upper} is too large (sqrt above {MAX_RESULT:g})")
    ulp = _ulp(encoder)
    norm = _normalisation(lower, upper, encoder)
    center = _encoded((norm.mantissa_lower + norm.mantissa_upper) / 2, encoder)
    half = max(norm.mantissa_upper - center, center - norm.mantissa_lower)
    # sqrt(x) = sqrt(x s) / sqrt(s) for the encoded scale s = 2^-n: the multipliers 1/sqrt(s)
    multipliers = [_encoded(1 / math.sqrt(scale), encoder) for scale in norm.scales]
    largest = max(multipliers)

    def shifted(t):
        return np.sqrt(t + center)

    best = None
    for degree in range(1, MAX_DEGREE + 1):
        coefficients = chebyshev_coefficients(shifted, degree, -half, half)
        error = interpolation_error(shifted, coefficients, -half, half)
        error += evaluation_error(coefficients, half, ulp, norm.mantissa_error)
        error += norm.mantissa_error / (2 * math.sqrt(norm.mantissa_lower))  # sqrt moves by dm / (2 sqrt m)
        # times the multiplier (encoded within ulp/2), then one truncation
        error = largest * error + math.sqrt(norm.mantissa_upper) * ulp / 2 + ulp
        comparison = COMPARISON_ROUNDS + 1 if norm.thresholds else 0
        plan = SqrtPlan(lower, upper, norm, center, coefficients, error,
                        comparison + rounds_for_degree(degree) + (1 if len(norm.scales) > 1 else 0))
        if best is None or plan.max_error < 0.8 * best.max_error:
            best = plan
    return best  # type: ignore[return-value]


def sigmoid(x: FixedPrecisionTensor, bound: float | None = None) -> FixedPrecisionTensor:
    """1 / (1 + e^-x) for every x, within sigmoid_plan(bound, ...).max_error (bound 16 by default)."""
    bound = DEFAULT_RANGES["sigmoid"][1] if bound is None else float(bound)
    plan = sigmoid_plan(bound, x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.sigmoid(_decoded(x).clamp(-bound, bound)), x.encoder)
    negative = is_negative(x.child)  # s = [x < 0], integers 0 and 1
    flip = (-negative).mul_public(2).add_public(torch.ones((), dtype=torch.int64))  # 1 - 2s: +1 or -1
    magnitude = x._wrap(muls([(x.child, flip)])[0])  # |x| = x (1 - 2s): an integer factor, exact
    denominator = exp(-magnitude, -bound, 0.0) + 1.0
    positive_part = reciprocal(denominator, 1.0, 2.0)  # sigmoid(|x|), in [1/2, 1]
    # sigmoid(x) = s + (1 - 2s) sigmoid(|x|): exact once sigmoid(|x|) is known
    signed = muls([(positive_part.child, flip)])[0]
    return x._wrap(signed + negative.mul_public(x.encoder.scale))


def tanh(x: FixedPrecisionTensor, bound: float | None = None) -> FixedPrecisionTensor:
    """tanh x = 2 sigmoid(2x) - 1, within 2 sigmoid_plan(2 bound, ...).max_error (bound 8 by default)."""
    bound = DEFAULT_RANGES["tanh"][1] if bound is None else float(bound)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.tanh(_decoded(x).clamp(-bound, bound)), x.encoder)
    return sigmoid(x * 2, 2 * bound) * 2 - 1.0


def tanh_error(bound: float, encoder: FixedPointEncoder) -> float:
    """The maximum error of tanh with this bound: twice sigmoid's at twice the bound."""
    return 2 * sigmoid_plan(2 * bound, encoder).max_error


def sqrt(x: FixedPrecisionTensor, lower: float | None = None, upper: float | None = None, *,
         clip_input: bool = True) -> FixedPrecisionTensor:
    """Square root of x in [lower, upper] with 0 < lower (clipped to it), within sqrt_plan(...).max_error."""
    lower, upper = default_range("sqrt", lower, upper)
    plan = sqrt_plan(lower, upper, x.encoder)
    if not x.is_shared:
        return FixedPrecisionTensor.encode(torch.sqrt(_decoded(x).clamp(lower, upper)), x.encoder)
    mantissa, one_hot = _normalise(x, plan.normalisation, clip_input, lower, upper)
    root = evaluate(mantissa - plan.center, plan.coefficients)
    multipliers = [1 / math.sqrt(scale) for scale in plan.normalisation.scales]
    if len(multipliers) == 1:
        return root * _encoded(multipliers[0], x.encoder)
    return root * _one_hot_sum(one_hot, multipliers, x)


# -- pieces ----------------------------------------------------------------------------------------
def _newton_iterations(x: FixedPrecisionTensor, plan: ReciprocalPlan) -> FixedPrecisionTensor:
    intercept, slope = plan.start
    y = intercept - x * slope
    for _ in range(plan.iterations):
        y = y * (2.0 - x * y)
    return y


def _normalise(x: FixedPrecisionTensor, norm: Normalisation, clip_input: bool, lower: float, upper: float
               ) -> tuple[FixedPrecisionTensor, list[AdditiveSharingTensor]]:
    """(m, one-hot bits of n): m = clip(x) * 2^-n in about [1, 2), and bit i set where n is the i-th exponent.

    One comparison call finds every bit [x < threshold] (and, when clipping, [x < lower] and
    [x > upper]); the one-hot bits are differences of neighbouring bits, so 2^-n and n log 2 are
    local sums. Clipping needs one product round, the mantissa another.
    """
    ring = x.child
    encoder = x.encoder
    thresholds = list(norm.thresholds)
    extra = [lower, upper] if clip_input else []
    rows = [_minus(ring, t, encoder) for t in thresholds + extra]
    if clip_input:
        rows[-1] = -rows[-1]  # [upper - x < 0] = [x > upper]
    below = is_negative(_stack_ring(rows, x)) if rows else None
    bits = [below.map(lambda s, i=i: s[i]) for i in range(len(rows))] if below is not None else []
    if clip_input:
        under, over = bits[-2], bits[-1]
        to_lower = (-x + lower).child
        to_upper = (-x + upper).child
        lifted = muls([(to_lower, under), (to_upper, over)])  # integers times bits: no rescaling
        x = x._wrap(ring + lifted[0] + lifted[1])
        bits = bits[:-2]
    # below[i] = [x < 2^j_i]; the exponent is the i-th one exactly when x >= t_(i-1) and x < t_i
    one_hot = []
    for i in range(len(thresholds) + 1):
        at_least = _not(bits[i - 1]) if i > 0 else None
        if i < len(thresholds):
            one_hot.append(bits[i] if at_least is None else bits[i] - bits[i - 1])
        else:
            one_hot.append(at_least if at_least is not None else _ones(x))
    if len(norm.scales) == 1:  # a single exponent: a public scale, no product round
        return x * norm.scales[0], one_hot
    scale = _one_hot_sum(one_hot, norm.scales, x)
    return x * scale, one_hot


def _one_hot_sum(one_hot: list[AdditiveSharingTensor], values, like: FixedPrecisionTensor) -> FixedPrecisionTensor:
    """sum_i bit_i * value_i for public values: local, exact up to each value's encoding."""
    total = None
    for bit, value in zip(one_hot, values):
        term = bit.mul_public(int(round(value * like.encoder.scale)))
        total = term if total is None else total + term
    return like._wrap(total)


def _minus(ring: AdditiveSharingTensor, value: float, encoder: FixedPointEncoder) -> AdditiveSharingTensor:
    return ring.add_public(torch.tensor(-int(round(value * encoder.scale)), dtype=torch.int64))


def _not(bits: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return (-bits).add_public(torch.ones((), dtype=torch.int64))


def _ones(like: FixedPrecisionTensor) -> AdditiveSharingTensor:
    return AdditiveSharingTensor.public(like.session, torch.ones(like.shape, dtype=torch.int64))


def _stack_ring(rows: list[AdditiveSharingTensor], like: FixedPrecisionTensor) -> AdditiveSharingTensor:
    session = like.session
    shares = {w: torch.stack([r.share_of(w).expand(like.shape) for r in rows]) for w in session.local_workers}
    return AdditiveSharingTensor(session, shares, torch.Size((len(rows), *like.shape)))


def _stack(parts: list[FixedPrecisionTensor]) -> FixedPrecisionTensor:
    return parts[0]._wrap(_stack_ring([p.child for p in parts], parts[0]))  # type: ignore[misc]


def _decoded(x: FixedPrecisionTensor) -> torch.Tensor:
    """A public fixed-point tensor's exact value in float64 (float_precision rounds to float32)."""
    return x.child.to(torch.float64) / x.encoder.scale  # type: ignore[union-attr]
