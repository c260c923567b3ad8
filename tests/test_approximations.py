"""exp, reciprocal and log on shares against torch, over their whole stated input range.

Each plan states a maximum error for every input of its range; these tests evaluate the secure
function on a dense grid of the range (every fixed-point value, or close to it) and on random
inputs, at both the engine's precision and the tutorial's, and check the statement.
"""

from __future__ import annotations

import math

import pytest
import torch

import secure_mnist as sm
from helpers import new_session
from secure_mnist.mpc import approximations as approx

BINARY = sm.FixedPointEncoder()  # 16 fractional bits
DECIMAL = sm.FixedPointEncoder(base=10, precision_fractional=3)  # the tutorial's

CASES = [
    ("exp", torch.exp, -16.0, 0.0),  # what softmax needs, after subtracting the maximum
    ("exp", torch.exp, -4.0, 2.0),
    ("reciprocal", torch.reciprocal, 1.0, 10.0),  # a softmax denominator over 10 classes
    ("reciprocal", torch.reciprocal, 0.05, 50.0),  # wide: normalised by comparisons first
    ("log", torch.log, 1.0, 10.0),
    ("log", torch.log, 0.02, 60.0),
]


def grid(lower: float, upper: float, encoder: sm.FixedPointEncoder, count: int = 4001) -> torch.Tensor:
    """Points spread over [lower, upper], both ends included, as exactly encodable values."""
    points = torch.linspace(lower, upper, count, dtype=torch.float64)
    return torch.round(points * encoder.scale) / encoder.scale


def secure(name: str, values: torch.Tensor, lower: float, upper: float, encoder, session, **kwargs) -> torch.Tensor:
    shared = sm.FixedPrecisionTensor.encode(values, encoder).share(session)
    return getattr(approx, name)(shared, lower, upper, **kwargs).decrypt().double()


@pytest.mark.parametrize("encoder", [BINARY, DECIMAL], ids=["16 bits", "3 digits"])
@pytest.mark.parametrize("name, reference, lower, upper", CASES)
def test_within_the_stated_error_over_the_whole_range(name, reference, lower, upper, encoder):
    session = new_session(encoder=encoder)
    plan = getattr(approx, f"{name}_plan")(lower, upper, encoder)
    x = grid(lower, upper, encoder)
    error = (secure(name, x, lower, upper, encoder, session) - reference(x)).abs()
    assert error.max().item() <= plan.max_error, (name, error.max().item(), plan.max_error)


@pytest.mark.parametrize("name, reference, lower, upper", CASES)
def test_the_stated_error_is_a_useful_one(name, reference, lower, upper):
    """A bound of a few dozen ulp, not a vacuous one; and not wildly above what is measured."""
    session = new_session(seed=11)
    plan = getattr(approx, f"{name}_plan")(lower, upper, BINARY)
    ulp = 1 / BINARY.scale
    assert plan.max_error <= 128 * ulp, plan
    x = grid(lower, upper, BINARY, count=2001)
    measured = (secure(name, x, lower, upper, BINARY, session) - reference(x)).abs().max().item()
    assert measured >= plan.max_error / 16, (measured, plan.max_error)


@pytest.mark.parametrize("name, reference, lower, upper", CASES)
def test_inputs_outside_the_range_are_clipped_to_it(name, reference, lower, upper):
    session = new_session(seed=5)
    plan = getattr(approx, f"{name}_plan")(lower, upper, BINARY)
    x = torch.tensor([lower - 3.0 if name == "exp" else lower / 2, upper * 2 + 1, lower, upper], dtype=torch.float64)
    got = secure(name, x, lower, upper, BINARY, session)
    encoded_lower, encoded_upper = (round(b * BINARY.scale) / BINARY.scale for b in (lower, upper))
    want = reference(x.clamp(encoded_lower, encoded_upper))
    assert (got - want).abs().max().item() <= plan.max_error


def test_without_clipping_the_input_is_the_callers_promise():
    """clip_input=False skips the comparison: fewer rounds, same result inside the range."""
    session = new_session(seed=2)
    x = grid(-16.0, 0.0, BINARY, count=257)
    shared = sm.FixedPrecisionTensor.encode(x, BINARY).share(session)
    before = session.comm.stats.snapshot()
    approx.exp(shared, -16.0, 0.0)
    clipped_rounds = session.comm.stats.since(before).rounds
    before = session.comm.stats.snapshot()
    got = approx.exp(shared, -16.0, 0.0, clip_input=False).decrypt().double()
    plan = approx.exp_plan(-16.0, 0.0, BINARY)
    assert session.comm.stats.since(before).rounds == plan.rounds
    assert clipped_rounds == plan.rounds + approx.COMPARISON_ROUNDS
    assert (got - torch.exp(x)).abs().max().item() <= plan.max_error


@pytest.mark.parametrize("name, lower, upper", [("reciprocal", 1.0, 10.0), ("log", 1.0, 10.0),
                                                ("reciprocal", 0.05, 50.0)])
def test_rounds_are_what_the_plan_says(name, lower, upper):
    session = new_session(seed=4)
    shared = sm.FixedPrecisionTensor.encode(grid(lower, upper, BINARY, 65), BINARY).share(session)
    before = session.comm.stats.snapshot()
    getattr(approx, name)(shared, lower, upper, clip_input=False)
    plan = getattr(approx, f"{name}_plan")(lower, upper, BINARY)
    assert session.comm.stats.since(before).rounds == plan.rounds


def test_random_inputs_of_any_shape():
    session = new_session(seed=9)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 5, generator=generator, dtype=torch.float64) * 9 + 1
    for name, reference in [("reciprocal", torch.reciprocal), ("log", torch.log)]:
        got = secure(name, x, 1.0, 10.0, BINARY, session)
        assert got.shape == x.shape
        exact = reference(torch.round(x * BINARY.scale) / BINARY.scale)
        assert (got - exact).abs().max().item() <= getattr(approx, f"{name}_plan")(1.0, 10.0, BINARY).max_error
    y = -x
    got = secure("exp", y, -16.0, 0.0, BINARY, session)
    assert (got - torch.exp(torch.round(y * BINARY.scale) / BINARY.scale)).abs().max().item() <= \
        approx.exp_plan(-16.0, 0.0, BINARY).max_error


def test_public_inputs_are_computed_exactly():
    x = sm.FixedPrecisionTensor.encode(torch.tensor([0.5, 2.0, 8.0]), BINARY)
    assert torch.allclose(approx.log(x, 1.0, 10.0).float_precision().double(),
                          torch.log(torch.tensor([1.0, 2.0, 8.0], dtype=torch.float64)), atol=1 / BINARY.scale)
    assert torch.allclose(approx.exp(-x, -16.0, 0.0).float_precision().double(),
                          torch.exp(torch.tensor([-0.5, -2.0, -8.0], dtype=torch.float64)), atol=1 / BINARY.scale)


def test_clip_is_exact():
    session = new_session(seed=8)
    x = torch.tensor([-5.0, -1.0, 0.0, 0.25, 3.0, 7.5], dtype=torch.float64)
    shared = sm.FixedPrecisionTensor.encode(x, BINARY).share(session)
    assert torch.equal(approx.clip(shared, -1.0, 3.0).decrypt().double(), x.clamp(-1.0, 3.0))
    assert torch.equal(approx.clip(shared, lower=0.0).decrypt().double(), x.clamp(min=0.0))
    assert torch.equal(approx.clip(shared, upper=0.0).decrypt().double(), x.clamp(max=0.0))


@pytest.mark.parametrize("call, message", [
    (lambda: approx.exp_plan(0.0, 10.0, BINARY), "too large"),
    (lambda: approx.exp_plan(1.0, -1.0, BINARY), "lower < upper"),
    (lambda: approx.reciprocal_plan(-1.0, 1.0, BINARY), "positive range"),
    (lambda: approx.reciprocal_plan(0.001, 1.0, BINARY), "too small"),
    (lambda: approx.log_plan(0.0, 1.0, BINARY), "positive range"),
    (lambda: approx.log_plan(1.0, math.inf, BINARY), "finite"),
])
def test_ranges_it_cannot_keep_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


LOG_WITH_RECIPROCAL_RANGES = [(1.0, 10.0), (0.98, 10.2), (1.0, 3.0)]  # softmax totals over 10 classes, 3 classes


@pytest.mark.parametrize("encoder", [BINARY, DECIMAL], ids=["16 bits", "3 digits"])
@pytest.mark.parametrize("lower, upper", LOG_WITH_RECIPROCAL_RANGES)
def test_log_with_reciprocal_within_its_stated_error(lower, upper, encoder):
    """log x from x and the reciprocal() of x, on shares, over the whole range: the plan's bound
    holds with the reciprocal's own error carried through."""
    session = new_session(encoder=encoder, seed=5)
    plan = approx.log_with_reciprocal_plan(lower, upper, encoder)
    x = grid(lower, upper, encoder)
    shared = sm.FixedPrecisionTensor.encode(x, encoder).share(session)
    inverse = approx.reciprocal(shared, lower, upper, clip_input=False)
    got = approx.log_with_reciprocal(shared, inverse, lower, upper).decrypt().double()
    error = (got - torch.log(x)).abs().max().item()
    assert error <= plan.max_error, (error, plan.max_error)
    if encoder is BINARY:
        assert plan.max_error <= 64 / encoder.scale, plan  # a useful bound, a few dozen ulp at most
        assert plan.rounds <= 3


def test_log_with_reciprocal_needs_the_reciprocal_not_any_value():
    """The polynomial in 1/x carries the log near 0: given x itself instead, it is far off."""
    session = new_session(encoder=BINARY, seed=6)
    plan = approx.log_with_reciprocal_plan(1.0, 10.0, BINARY)
    x = grid(1.0, 10.0, BINARY, count=501)
    shared = sm.FixedPrecisionTensor.encode(x, BINARY).share(session)
    wrong = approx.log_with_reciprocal(shared, shared * 0.1, 1.0, 10.0).decrypt().double()
    assert (wrong - torch.log(x)).abs().max().item() > 100 * plan.max_error


def test_log_with_reciprocal_refuses_a_range_without_a_reciprocal():
    with pytest.raises(ValueError, match="positive range"):
        approx.log_with_reciprocal_plan(0.0, 1.0, BINARY)


@pytest.mark.parametrize("encoder", [BINARY, DECIMAL], ids=["16 bits", "3 digits"])
@pytest.mark.parametrize("classes", [2, 3, 10])
@pytest.mark.parametrize("direction", [-1, 1])
def test_log_with_reciprocal_holds_with_the_worst_reciprocal(classes, direction, encoder):
    """On the range softmax uses for C classes, with 1/x off by as much as the reciprocal's bound
    allows (every point, one direction): the log's bound still holds, so it does count that error."""
    from secure_mnist.mpc.softmax import softmax_plan

    plan = softmax_plan(classes, encoder).log
    inverse_error = approx.reciprocal_plan(plan.lower, plan.upper, encoder).max_error
    session = new_session(encoder=encoder, seed=classes)
    x = grid(plan.lower, plan.upper, encoder, count=2001)
    off = math.floor(inverse_error * encoder.scale - 0.5) / encoder.scale * direction  # rounding's half ulp included
    inverse = torch.round(1 / x * encoder.scale) / encoder.scale + off
    assert ((inverse - 1 / x).abs() <= inverse_error).all()
    got = approx.log_with_reciprocal(sm.FixedPrecisionTensor.encode(x, encoder).share(session),
                                     sm.FixedPrecisionTensor.encode(inverse, encoder).share(session),
                                     plan.lower, plan.upper).decrypt().double()
    assert (got - torch.log(x)).abs().max().item() <= plan.max_error
