"""Softmax and cross-entropy on shares against torch, and the gradients of exp, log, reciprocal,
softmax and cross-entropy against torch.autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import secure_mnist as sm
from helpers import new_session
from secure_mnist.mpc import approximations as approx
from secure_mnist.mpc.softmax import cross_entropy, row_max, softmax, softmax_plan
from secure_mnist.training import Net

BINARY = sm.FixedPointEncoder()
DECIMAL = sm.FixedPointEncoder(base=10, precision_fractional=3)
# What the proven bounds allow is far above what happens: measured errors stay within this many
# ulp on the logits below (a regression guard, not the guarantee; the docs show both).
TYPICAL_ULP = 24


def logits(rows: int = 64, classes: int = 10, seed: int = 0) -> torch.Tensor:
    """Logits as a network makes them, plus the hard cases: ties, one huge gap, all equal."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, classes, generator=generator, dtype=torch.float64) * 4
    x[0] = 0.0  # all equal: p = 1/C
    x[1, classes // 2] = 40.0  # one class far ahead: the others underflow to 0
    x[2] = torch.arange(classes, dtype=torch.float64) * -3  # spread over the whole exp range
    x[3, :2] = 5.0  # a tie for the maximum
    return x


def quantized(x: torch.Tensor, encoder: sm.FixedPointEncoder) -> torch.Tensor:
    return torch.round(x * encoder.scale) / encoder.scale


def shared(x: torch.Tensor, session: sm.Session) -> sm.FixedPrecisionTensor:
    return sm.FixedPrecisionTensor.encode(x, session.encoder).share(session)


def test_row_max_is_exact_and_keeps_the_dimension():
    session = new_session()
    for classes in (2, 3, 7, 10):
        x = quantized(logits(16, classes, seed=classes), BINARY)
        got = row_max(shared(x, session)).decrypt().double()
        assert got.shape == (16, 1)
        assert torch.equal(got, x.max(-1, keepdim=True).values)


@pytest.mark.parametrize("encoder", [BINARY, DECIMAL], ids=["16 bits", "3 digits"])
def test_softmax_matches_torch_within_its_bound(encoder):
    session = new_session(encoder=encoder)
    x = quantized(logits(), encoder)
    plan = softmax_plan(10, encoder)
    error = (softmax(shared(x, session)).decrypt().double() - torch.softmax(x, -1)).abs().max().item()
    assert error <= plan.max_error
    assert error <= TYPICAL_ULP / encoder.scale, f"{error * encoder.scale:.1f} ulp"


@pytest.mark.parametrize("encoder", [BINARY, DECIMAL], ids=["16 bits", "3 digits"])
def test_cross_entropy_matches_torch_within_its_bound(encoder):
    session = new_session(encoder=encoder, seed=3)
    x = quantized(logits(seed=1), encoder)
    labels = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(2))
    loss, probabilities = cross_entropy(shared(x, session), shared(F.one_hot(labels, 10).double(), session))
    plan = softmax_plan(10, encoder)
    assert abs(loss.decrypt().double().item() - F.cross_entropy(x, labels).item()) <= plan.loss_error
    assert (probabilities.decrypt().double() - torch.softmax(x, -1)).abs().max().item() <= plan.max_error


def test_softmax_reveals_nothing_on_the_way():
    """The client receives nothing while softmax runs: only the workers exchange masked values."""
    session = new_session(seed=4)
    x = shared(quantized(logits(8), BINARY), session)
    before = session.comm.stats.snapshot()
    softmax(x)
    traffic = session.comm.stats.since(before)
    assert traffic.bytes_received[session.client.name] == 0
    assert traffic.rounds == softmax_plan(10, BINARY).rounds


def test_cross_entropy_opens_every_value_under_a_mask_of_its_own():
    """The whole loss, as an attacker holding one worker's view would audit it: no mask word opens
    two different values (the clip's bits, the log's powers and 1/s reused as an operand included),
    and the crypto provider and the client receive nothing."""
    from secure_mnist.mpc.audit import MaskAuditor

    session = new_session(seed=8)
    x = shared(quantized(logits(16), BINARY), session)
    y = shared(F.one_hot(torch.arange(16) % 10, 10).double(), session)
    before = session.comm.stats.snapshot()
    with MaskAuditor() as auditor:
        cross_entropy(x, y)
    traffic = session.comm.stats.since(before)
    assert all(count == 0 for count in auditor.reused_masks().values()), auditor.reused_masks()
    assert min(auditor.openings().values()) > 10_000
    assert traffic.bytes_received[session.client.name] == 0
    assert traffic.bytes_received[session.provider.name] == 0


def test_plan_refuses_a_single_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        softmax_plan(1, BINARY)


def test_cross_entropy_needs_one_hot_shaped_targets():
    session = new_session()
    with pytest.raises(ValueError, match="one-hot targets"):
        cross_entropy(shared(torch.zeros(4, 10, dtype=torch.float64), session),
                      shared(torch.zeros(4, dtype=torch.float64), session))


# -- gradients -------------------------------------------------------------------------------------
def _autograd_pair(values: torch.Tensor, session):
    plain = values.clone().requires_grad_(True)
    secure = sm.AutogradTensor(shared(values, session), requires_grad=True)
    return plain, secure


@pytest.mark.parametrize("name, lower, upper, reference", [
    ("exp", -8.0, 0.0, torch.exp), ("log", 1.0, 10.0, torch.log), ("reciprocal", 1.0, 10.0, torch.reciprocal),
])
def test_elementwise_gradients_match_torch(name, lower, upper, reference):
    session = new_session(seed=6)
    values = quantized(torch.linspace(lower + 0.1, upper - 0.1, 24, dtype=torch.float64).view(4, 6), BINARY)
    weights = quantized(torch.linspace(-1, 1, 24, dtype=torch.float64).view(4, 6), BINARY)
    plain, secure = _autograd_pair(values, session)
    (reference(plain) * weights).sum().backward()
    (getattr(secure, name)(lower, upper) * weights).sum().backward()
    plan = getattr(approx, f"{name}_plan")(lower, upper, BINARY)
    # the derivative is the function itself (exp), or the reciprocal: within those bounds, times |weight|
    if name == "exp":
        bound = plan.max_error
    elif name == "log":
        bound = approx.reciprocal_plan(lower, upper, BINARY).max_error
    else:  # -y^2: twice y's error times |y| <= 1/lower, plus two truncations
        bound = 3 * plan.max_error / lower
    bound += 4 / BINARY.scale
    assert (secure.grad.decrypt().double() - plain.grad).abs().max().item() <= bound


def test_softmax_gradient_matches_torch():
    session = new_session(seed=7)
    x = quantized(logits(8, seed=3), BINARY)
    weights = quantized(torch.randn(8, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64), BINARY)
    plain, secure = _autograd_pair(x, session)
    (torch.softmax(plain, -1) * weights).sum().backward()
    (secure.softmax(-1) * weights).sum().backward()
    assert (secure.grad.decrypt().double() - plain.grad).abs().max().item() <= 64 / BINARY.scale


def test_cross_entropy_gradient_is_p_minus_y_over_the_batch():
    session = new_session(seed=8)
    x = quantized(logits(16, seed=4), BINARY)
    labels = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(5))
    one_hot = F.one_hot(labels, 10).double()
    plain, secure = _autograd_pair(x, session)
    F.cross_entropy(plain, labels).backward()
    loss = secure.cross_entropy(sm.AutogradTensor(shared(one_hot, session)))
    loss.backward()
    plan = softmax_plan(10, BINARY)
    assert abs(loss.decrypt().double().item() - F.cross_entropy(x, labels).item()) <= plan.loss_error
    assert (secure.grad.decrypt().double() - plain.grad).abs().max().item() <= plan.max_error / 16 + 2 / BINARY.scale


def test_network_gradients_with_cross_entropy_match_torch():
    """The tutorial's network end to end: encrypted parameter gradients against torch.autograd."""
    for seed in range(100):  # inputs whose pre-activations are not within rounding of a ReLU kink
        torch.manual_seed(seed)
        model, reference = Net(), Net()
        reference.load_state_dict(model.state_dict())
        x = torch.randn(8, 1, 28, 28)
        labels = torch.randint(0, 10, (8,))
        with torch.no_grad():
            h1 = model.fc1(x.view(-1, 784))
            if h1.abs().min() > 1e-3 and model.fc2(F.relu(h1)).abs().min() > 1e-3:
                break
    F.cross_entropy(reference(x), labels).backward()
    session = new_session(seed=9)
    sm.encrypt_parameters(model, session)
    loss = model(sm.share_batch(x, session)).cross_entropy(sm.share_batch(F.one_hot(labels, 10).float(), session))
    loss.backward()
    for (name, secure), (_, plain) in zip(model.named_parameters(), reference.named_parameters()):
        scale = plain.grad.abs().max().item()
        assert (secure.grad.decrypt() - plain.grad).abs().max().item() <= 2e-3 * scale + 5e-4, name
