"""AutogradTensor's gradients against torch.autograd on the same network and data."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import secure_mnist as sm
from helpers import encrypt, new_session
from secure_mnist.training import Net


def _away_from_relu_kinks(model: nn.Module, x: torch.Tensor, margin: float) -> bool:
    """True when no hidden pre-activation is within `margin` of zero.

    Fixed-point rounding moves pre-activations by ~1e-4; one that sits closer than that to zero may
    take the other side of ReLU and change its gradient legitimately. Such inputs prove nothing.
    """
    h1 = model.fc1(x.view(-1, 784))
    h2 = model.fc2(F.relu(h1))
    return bool((h1.abs().min() > margin) and (h2.abs().min() > margin))


def _net_and_data(seed: int, batch: int = 4):
    for attempt in range(200):
        torch.manual_seed(seed + attempt)
        model = Net()
        x = torch.randn(batch, 1, 28, 28)
        y = torch.randn(batch, 10)
        with torch.no_grad():
            if _away_from_relu_kinks(model, x, margin=1e-3):
                return model, x, y
    raise AssertionError("no input away from the ReLU kinks found")


@pytest.mark.parametrize("activation", ["relu", "square"])
def test_network_gradients_match_torch_autograd(activation):
    model, x, y = _net_and_data(seed=1)
    reference = Net(activation)
    reference.load_state_dict(model.state_dict())
    model.activation = reference.activation
    loss = ((reference(x) - y) ** 2).sum() / x.shape[0]
    loss.backward()

    session = new_session()
    sm.encrypt_parameters(model, session)
    secure_loss = ((model(sm.share_batch(x, session)) - sm.share_batch(y, session)) ** 2).sum().refresh() / x.shape[0]
    secure_loss.backward()

    torch.testing.assert_close(secure_loss.decrypt(), loss.detach(), rtol=1e-3, atol=1e-3)
    for (name, secure), (_, plain) in zip(model.named_parameters(), reference.named_parameters()):
        got = secure.grad.decrypt()
        scale = plain.grad.abs().max().item()
        assert (got - plain.grad).abs().max().item() <= 1e-3 * scale + 5e-4, name


@pytest.mark.parametrize(
    "build",
    [
        lambda a, b: (a * b).sum(),
        lambda a, b: (a - b).sum(),
        lambda a, b: (a @ b.t()).sum(),
        lambda a, b: ((a + b) ** 2).mean(),
        lambda a, b: (a.relu() * b).sum(),
        lambda a, b: (a.view(-1) * b.reshape(-1)).sum() / 3,
        lambda a, b: (a.t() @ b).sum(0).sum(),
        lambda a, b: (-a + 2.5 * b).sum(),
        lambda a, b: (a[1:3] * b[0]).sum() + a[0, 2],
    ],
)
def test_operation_gradients(build):
    torch.manual_seed(0)
    a = torch.randn(4, 3, dtype=torch.float64)
    b = torch.randn(4, 3, dtype=torch.float64)
    a = torch.where(a.abs() < 0.05, a + 0.1, a)  # keep relu away from its kink
    pa, pb = a.clone().requires_grad_(), b.clone().requires_grad_()
    build(pa, pb).backward()

    session = new_session()
    sa = sm.AutogradTensor(encrypt(a, session), requires_grad=True)
    sb = sm.AutogradTensor(encrypt(b, session), requires_grad=True)
    build(sa, sb).backward()
    torch.testing.assert_close(sa.grad.decrypt().double(), pa.grad, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(sb.grad.decrypt().double(), pb.grad, atol=1e-3, rtol=1e-3)


def test_gradients_accumulate_and_zero_grad_clears_them():
    session = new_session()
    w = sm.AutogradTensor(encrypt(torch.tensor([2.0]), session), requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert w.grad.decrypt().item() == pytest.approx(6.0, abs=1e-3)
    optimizer = sm.SGD([w], lr=0.1)
    optimizer.step()
    assert w.decrypt().item() == pytest.approx(2.0 - 0.6, abs=1e-3)
    optimizer.zero_grad()
    assert w.grad is None


def test_no_graph_is_recorded_under_no_grad():
    session = new_session()
    w = sm.AutogradTensor(encrypt(torch.ones(3), session), requires_grad=True)
    with torch.no_grad():
        out = (w * w).sum()
    assert out.grad_fn is None and not out.requires_grad


def test_the_graph_names_its_gradient_functions():
    session = new_session()
    w = sm.AutogradTensor(encrypt(torch.ones(2, 2), session), requires_grad=True)
    loss = ((w @ w).relu() ** 2).sum() / 4
    names = []
    node = loss.grad_fn
    while node is not None:
        names.append(type(node).__name__)
        node = node.inputs[0].grad_fn
    assert names == ["DivBackward", "SumBackward", "PowBackward", "ReluBackward", "MatmulBackward"]
