"""A failed truncation never passes silently, at any precision the encoder accepts.

SecureML's local truncation fails when the two shares wrap around the ring on addition
(probability |x| / 2^64 per element); the result is then off by about 2^64 / scale. The encoder
accepts only scales for which that offset lands outside the range check's ±2^46, so revealing a
failed value raises instead of returning a wrong number. Here the failure is forced by choosing
shares that wrap, at every accepted (base, precision).
"""

from __future__ import annotations

import pytest
import torch

import secure_mnist as sm
from helpers import new_session
from secure_mnist.encoding import MAX_SCALE, SAFE_LIMIT
from secure_mnist.mpc.primitives.truncation import truncate
from secure_mnist.mpc.sharing import AdditiveSharingTensor

ACCEPTED = [(base, digits) for base in range(2, 17) for digits in range(0, 18)
            if 1 < base**digits <= MAX_SCALE]


def _wrapping_shares(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shares of `raw` whose sum wraps around 2^64 as integers (what makes truncation fail)."""
    big = torch.full_like(raw, 2**63 - 1)
    # raw < 0: alice holds a large positive share, bob's wraps below -2^63; raw >= 0: the mirror.
    alice = torch.where(raw < 0, big, -big - 1)
    return alice, raw - alice  # int64 arithmetic wraps: alice + bob = raw modulo 2^64


def _reveal(session: sm.Session, shares: tuple[torch.Tensor, torch.Tensor], divisor: int,
            encoder: sm.FixedPointEncoder) -> torch.Tensor:
    alice, bob = session.workers
    x = AdditiveSharingTensor(session, {alice: shares[0], bob: shares[1]})
    return sm.FixedPrecisionTensor(truncate(x, divisor), encoder).decrypt()


@pytest.mark.parametrize(("base", "digits"), ACCEPTED)
def test_a_failed_truncation_is_caught_when_revealed(base: int, digits: int) -> None:
    encoder = sm.FixedPointEncoder(base=base, precision_fractional=digits)
    session = new_session(encoder=encoder)
    values = torch.tensor([-3.25, -0.5, 0.75, 2.0], dtype=torch.float64)
    raw = encoder.encode(values) * encoder.scale  # a product's raw size: twice the scale
    alice, bob = _wrapping_shares(raw)
    assert ((alice.double() + bob.double()).abs() >= 2**63).all()  # the shares do wrap
    with pytest.raises(sm.FixedPointOverflowError):
        _reveal(session, (alice, bob), encoder.scale, encoder)
    # Control: the same values under ordinary random shares truncate correctly.
    mask = session.client.prg.ring(raw.shape)
    fine = _reveal(session, (mask, raw - mask), encoder.scale, encoder)
    assert torch.allclose(fine.double(), values, atol=1.0 / encoder.scale)


def test_settings_where_a_failure_could_hide_are_refused() -> None:
    for base, digits in ((2, 18), (2, 24), (10, 6)):
        encoder_scale = base**digits
        assert 2**64 // encoder_scale < 2 * SAFE_LIMIT  # a failure would land inside the range
        with pytest.raises(ValueError, match="failed truncation"):
            sm.FixedPointEncoder(base=base, precision_fractional=digits)
