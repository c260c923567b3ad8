"""exp, log, reciprocal, sigmoid, tanh, sqrt as PySyft users call them (x.exp(), torch.sigmoid(x),
F.tanh(x), nn.Sigmoid()), each against torch over its default input range, within the maximum
error its plan states (the numbers on docs/coming-from-pysyft.md)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import secure_mnist as sm
from helpers import new_session
from secure_mnist.mpc import approximations as approx

ENCODERS = {"16 bits": sm.FixedPointEncoder(), "3 digits": sm.FixedPointEncoder(base=10, precision_fractional=3)}
REFERENCES = {"exp": torch.exp, "log": torch.log, "reciprocal": torch.reciprocal, "sqrt": torch.sqrt,
              "sigmoid": torch.sigmoid, "tanh": torch.tanh}
CALLS = {  # how PySyft code calls each one
    "exp": [lambda x: x.exp(), lambda x: torch.exp(x), lambda x: x.exp(iterations=8)],
    "log": [lambda x: x.log(), lambda x: torch.log(x)],
    "reciprocal": [lambda x: x.reciprocal(), lambda x: torch.reciprocal(x), lambda x: x.reciprocal(method="NR")],
    "sqrt": [lambda x: x.sqrt(), lambda x: torch.sqrt(x)],
    "sigmoid": [lambda x: x.sigmoid(), lambda x: torch.sigmoid(x), lambda x: F.sigmoid(x), lambda x: nn.Sigmoid()(x)],
    "tanh": [lambda x: x.tanh(), lambda x: torch.tanh(x), lambda x: F.tanh(x), lambda x: nn.Tanh()(x)],
}


def stated_error(name: str, encoder: sm.FixedPointEncoder) -> float:
    lower, upper = approx.DEFAULT_RANGES[name]
    if name == "sigmoid":
        return approx.sigmoid_plan(upper, encoder).max_error
    if name == "tanh":
        return approx.tanh_error(upper, encoder)
    return getattr(approx, f"{name}_plan")(lower, upper, encoder).max_error


def default_grid(name: str, encoder: sm.FixedPointEncoder, count: int = 2001) -> torch.Tensor:
    lower, upper = approx.DEFAULT_RANGES[name]
    if name in ("sigmoid", "tanh"):  # every input is allowed: go past the bound too
        lower, upper = 1.5 * lower, 1.5 * upper
    points = torch.linspace(lower, upper, count, dtype=torch.float64)
    return torch.round(points * encoder.scale) / encoder.scale


@pytest.mark.parametrize("encoder_name", sorted(ENCODERS))
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_within_the_stated_error_over_the_default_range(name, encoder_name):
    encoder = ENCODERS[encoder_name]
    session = new_session(seed=31, encoder=encoder)
    x = default_grid(name, encoder)
    shared = sm.FixedPrecisionTensor.encode(x, encoder).share(session)
    for call in CALLS[name]:
        got = call(shared).decrypt().double()
        error = (got - REFERENCES[name](x)).abs().max().item()
        assert error <= stated_error(name, encoder), (name, error, stated_error(name, encoder))


def test_the_stated_errors_are_useful_at_16_bits():
    """A few dozen steps at most for the bounded functions; exp and reciprocal grow with their values."""
    step = 1 / ENCODERS["16 bits"].scale
    for name in ("log", "sqrt", "sigmoid", "tanh"):
        assert stated_error(name, ENCODERS["16 bits"]) <= 100 * step, name
    assert stated_error("exp", ENCODERS["16 bits"]) <= 1e-3 * 54.6  # relative to e^4
    assert stated_error("reciprocal", ENCODERS["16 bits"]) <= 1e-4 * 20  # relative to 1/0.05


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "sqrt", "exp", "log", "reciprocal"])
def test_gradients_against_torch_autograd(name):
    session = new_session(seed=32)
    lower, upper = approx.DEFAULT_RANGES[name]
    middle = {"exp": (-3.0, 2.0), "log": (0.5, 20.0), "reciprocal": (0.5, 10.0), "sqrt": (0.5, 50.0)}
    lower, upper = middle.get(name, (lower / 4, upper / 4))
    x = torch.linspace(lower, upper, 9, dtype=torch.float64)
    plain = x.clone().requires_grad_()
    REFERENCES[name](plain).sum().backward()
    secure = sm.AutogradTensor(sm.FixedPrecisionTensor.encode(x, session.encoder).share(session), requires_grad=True)
    getattr(secure, name)().sum().backward()
    assert torch.allclose(secure.grad.decrypt().double(), plain.grad, atol=5e-3, rtol=5e-3), name


def test_public_values_and_pysyft_keywords():
    x = sm.FixedPrecisionTensor.encode(torch.tensor([0.5, 4.0]), ENCODERS["16 bits"])
    assert torch.allclose(x.sqrt().float_precision(), torch.tensor([0.5, 4.0]).sqrt(), atol=1e-4)
    assert torch.allclose(torch.sigmoid(x).float_precision(), torch.sigmoid(torch.tensor([0.5, 4.0])), atol=1e-4)
    with pytest.raises(TypeError, match=r"exp\(\) got unexpected keyword arguments \['iteration'\]"):
        x.exp(iteration=8)


def test_an_encrypted_model_with_sigmoid_and_tanh():
    session = new_session(seed=33)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2), nn.Sigmoid())
    x = torch.randn(5, 4)
    with torch.no_grad():
        expected = model(x)
    sm.encrypt_parameters(model, session)
    got = model(sm.share_batch(x, session)).decrypt()
    assert torch.allclose(got, expected, atol=5e-3)
