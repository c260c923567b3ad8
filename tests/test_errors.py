"""Bad input gets a clear, specific error, never a silent wrong number, and loses nothing."""

from __future__ import annotations

import pytest
import torch

import secure_mnist as sm
from helpers import encrypt, new_session
from secure_mnist import syft as sy


@pytest.fixture
def session() -> sm.Session:
    return new_session()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused(session, bad):
    with pytest.raises(sm.EncodingError, match="NaN or infinity"):
        encrypt([1.0, bad], session)


def test_values_beyond_the_fixed_point_range_are_refused(session):
    limit = session.encoder.max_value
    with pytest.raises(sm.FixedPointOverflowError, match="beyond the fixed-point range"):
        encrypt([limit * 2], session)
    x = encrypt([1.0], session)
    with pytest.raises(sm.FixedPointOverflowError):
        x + limit * 2  # a public operand out of range
    assert x.decrypt().item() == 1.0  # nothing lost


def test_a_product_that_wraps_around_is_detected_at_decryption(session):
    values = torch.linspace(1.1e6, 1.3e6, 100, dtype=torch.float64)
    big = encrypt(values, session)
    product = big * big  # ~1.4e12 real: ~2^72 in the ring before truncation, so it wraps
    with pytest.raises(sm.FixedPointOverflowError, match="outside the fixed-point range"):
        product.decrypt()
    torch.testing.assert_close(big.decrypt().double(), values, rtol=2**-23, atol=0)  # nothing lost


def test_fewer_than_two_workers_or_no_crypto_provider():
    with pytest.raises(sm.SetupError, match="2 workers"):
        sm.Session(workers=["alice"])
    with pytest.raises(sm.SetupError, match="crypto provider"):
        sm.Session(crypto_provider=None)
    with pytest.raises(sm.SetupError, match="two-party"):
        sm.Session(workers=["alice", "bob", "carol"])
    with pytest.raises(sm.SetupError, match="own name"):
        sm.Session(workers=["alice", "alice"])


def test_syft_share_without_crypto_provider_or_second_worker():
    hook = sy.TorchHook(torch)
    alice, bob = sy.VirtualWorker(hook, id="alice-e"), sy.VirtualWorker(hook, id="bob-e")
    x = torch.tensor([1.0]).fix_precision()
    shared = x.share(alice, bob)  # allowed, as in PySyft: linear operations need no crypto provider
    with pytest.raises(sm.SetupError, match="crypto_provider"):
        shared * shared  # a product does
    with pytest.raises(sm.SetupError, match="2 workers"):
        x.share(alice, crypto_provider=bob)
    with pytest.raises(sm.NotSharedError, match="fix_precision"):
        torch.tensor([1.0]).share(alice, bob, crypto_provider=sy.VirtualWorker(hook, id="cp-e"))


def test_tensors_shared_among_different_workers_cannot_be_mixed(session):
    other = sm.Session(workers=["carol", "dave"], seed=2)
    x, y = encrypt([1.0], session), encrypt([2.0], other)
    for operation in (lambda: x + y, lambda: x * y, lambda: x @ encrypt([[1.0]], other)):
        with pytest.raises(sm.PartyMismatchError, match="share both with the same workers"):
            operation()
    assert x.decrypt().item() == 1.0 and y.decrypt().item() == 2.0


def test_shape_mismatches(session):
    x, y = encrypt(torch.ones(2, 3), session), encrypt(torch.ones(4, 5), session)
    with pytest.raises(ValueError, match=r"shape mismatch for \+: \(2, 3\) and \(4, 5\)"):
        x + y
    with pytest.raises(ValueError, match="shape mismatch for \\*"):
        x * y
    with pytest.raises(ValueError, match=r"inner sizes 3 and 4 differ"):
        x @ y
    assert torch.equal(x.decrypt(), torch.ones(2, 3))


def test_get_on_a_tensor_that_is_not_shared(session):
    public = sm.FixedPrecisionTensor.encode(torch.ones(2), session.encoder)
    with pytest.raises(sm.NotSharedError, match="public"):
        public.get()
    with pytest.raises(sm.NotSharedError, match="public"):
        sm.AutogradTensor(public).get()
    sy.TorchHook(torch)
    with pytest.raises(sm.NotSharedError, match="plain torch tensor"):
        torch.ones(2).get()
    with pytest.raises(sm.NotSharedError, match="call .get\\(\\) before"):
        encrypt([1.0], session).float_precision()


def test_mismatched_precisions(session):
    x = encrypt([1.0], session)
    y = encrypt([1.0], session, sm.FixedPointEncoder(base=10, precision_fractional=3))
    with pytest.raises(sm.PrecisionMismatchError, match="16 fractional bits and base 10, 3 fractional digits"):
        x + y


def test_unsupported_operations_say_so(session):
    x = sm.AutogradTensor(encrypt([1.0, 2.0], session))
    with pytest.raises(NotImplementedError, match="cosh is not supported on encrypted tensors"):
        torch.cosh(x)
    with pytest.raises(NotImplementedError, match="division by a secret-shared value"):
        encrypt([1.0], session) / encrypt([2.0], session)
    with pytest.raises(ValueError, match="positive integer powers"):
        encrypt([1.0], session) ** 0.5


def test_optimizer_refuses_plain_parameters():
    with pytest.raises(sm.NotSharedError, match="Share the model"):
        sm.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
