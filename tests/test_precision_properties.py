"""No silent wrong numbers: on random inputs, every operation is within its documented bound or
raises (docs/fixed-precision.md#public-numbers). Hypothesis searches for a counterexample."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import secure_mnist as sm
from secure_mnist.mpc.public import MAX_DIVISOR, smallest_safe_constant
from helpers import encrypt, new_session

ENCODERS = {"pysyft": sm.FixedPointEncoder(base=10, precision_fractional=3), "binary": sm.FixedPointEncoder()}
SESSION = new_session(seed=23)
EXAMPLES = settings(max_examples=40, deadline=None)


def encoded(values: torch.Tensor, encoder: sm.FixedPointEncoder) -> torch.Tensor:
    """The values as the encoder keeps them (rounded to its steps), in float64."""
    return encoder.encode(values).double() / encoder.scale


def float32_slack(values: torch.Tensor) -> torch.Tensor:
    return values.abs() * 2**-23  # decoding returns float32


dividends = st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=6)
short_decimals = st.builds(lambda digits, exponent, sign: sign * digits * 10.0**exponent,
                           st.integers(1, 99999), st.integers(-7, 3), st.sampled_from([1, -1]))
any_divisors = st.floats(1e-6, 1e6).flatmap(lambda v: st.sampled_from([v, -v]))


@EXAMPLES
@given(values=dividends, divisor=st.one_of(short_decimals, any_divisors), name=st.sampled_from(sorted(ENCODERS)),
       shared=st.booleans())
def test_division_is_within_a_step_and_a_half_or_refused(values, divisor, name, shared):
    """Bound: less than one step (stochastic truncation; half a step for public values) plus at
    most half a step for the fraction q/p standing for 1/divisor."""
    encoder = ENCODERS[name]
    x = torch.tensor(values, dtype=torch.float64)
    exact = encoded(x, encoder) / divisor
    assume(exact.abs().max() < encoder.max_value / 2)  # a quotient out of range is an overflow, not this
    tensor = encrypt(x, SESSION, encoder) if shared else sm.FixedPrecisionTensor.encode(x, encoder)
    # five significant digits at most: 1/divisor = 10^k / m with m < 2^17, unless the divisor
    # itself is above 2^17 (refused: its truncation could fail unnoticed) or below 2^-17 (refused: x / d
    # could wrap around the ring)
    short = float(f"{abs(divisor):.5g}") == abs(divisor) and 1 / MAX_DIVISOR <= abs(divisor) <= MAX_DIVISOR
    try:
        quotient = tensor / divisor
    except sm.EncodingError:
        assert not short, f"{divisor} has at most 5 significant digits: 1/{divisor} = 10^k/m, m < 2^17"
        return
    got = (quotient.decrypt() if shared else quotient.float_precision()).double()
    step = 1 / encoder.scale
    bound = (1.0 if shared else 0.5) * step + (0 if short else 0.5 * step)
    assert ((got - exact).abs() <= bound + float32_slack(exact) + 1e-12).all(), (got, exact)


tiny_or_not = st.one_of(st.floats(1e-8, 1e-2), st.floats(1e-2, 1e3)).flatmap(lambda v: st.sampled_from([v, -v]))


@EXAMPLES
@given(values=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=6), constant=tiny_or_not,
       name=st.sampled_from(sorted(ENCODERS)))
def test_a_public_factor_keeps_half_of_itself_or_is_refused(values, constant, name):
    encoder = ENCODERS[name]
    x = torch.tensor(values, dtype=torch.float64)
    kept = round(constant * encoder.scale) / encoder.scale
    try:
        product = (encrypt(x, SESSION, encoder) * constant).decrypt().double()
    except sm.EncodingError as error:
        assert abs(kept - constant) > abs(constant) / 2, f"{constant} refused needlessly"
        assert "smallest safe magnitude" in str(error)
        assert abs(constant) < smallest_safe_constant(encoder)
        return
    assert abs(kept - constant) <= abs(constant) / 2
    exact = encoded(x, encoder) * constant
    # the constant's rounding, scaled by x, plus one step of truncation
    bound = encoded(x, encoder).abs() * abs(kept - constant) + 1 / encoder.scale
    assert ((product - exact).abs() <= bound + float32_slack(exact) + 1e-12).all()


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)


@EXAMPLES
@given(shape=shapes, data=st.data(), name=st.sampled_from(sorted(ENCODERS)))
def test_max_min_argmax_argmin_are_torchs_on_the_encoded_values(shape, data, name):
    """Exact: comparisons and selections lose nothing; ties go to the first index, as in torch."""
    encoder = ENCODERS[name]
    values = data.draw(st.lists(st.sampled_from([-2.5, -1.0, 0.0, 0.001, 0.5, 3.0]) | st.floats(-100, 100),
                                min_size=math.prod(shape), max_size=math.prod(shape)))
    x = encoded(torch.tensor(values, dtype=torch.float64).view(shape), encoder)
    dim = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]))
    keepdim = data.draw(st.booleans())
    secret = encrypt(x, SESSION, encoder)

    def plain(t):
        return t.decrypt().double()

    if dim is None:
        assert plain(secret.max()).item() == pytest.approx(x.max().item(), abs=1e-12, rel=2**-23)
        assert plain(secret.min()).item() == pytest.approx(x.min().item(), abs=1e-12, rel=2**-23)
        assert plain(secret.argmax(keepdim=keepdim)).long().tolist() == x.argmax(keepdim=keepdim).tolist()
        assert plain(secret.argmin()).long().item() == x.argmin().item()
        return
    for ours, theirs in ((secret.max(dim, keepdim), x.max(dim, keepdim)), (secret.min(dim, keepdim), x.min(dim, keepdim))):
        assert torch.allclose(plain(ours.values), theirs.values, rtol=2**-23, atol=1e-12)
        assert torch.equal(plain(ours.indices).long(), theirs.indices)
    assert torch.equal(plain(secret.argmax(dim, keepdim)).long(), x.argmax(dim, keepdim))
    assert torch.equal(plain(secret.argmin(dim, keepdim)).long(), x.argmin(dim, keepdim))
