"""The maximum of each row by comparing all pairs at once (secure_mnist/mpc/pairwise_max.py):
exact against torch, its rounds, what it opens, and a check that each part of it matters."""

from __future__ import annotations

import pytest
import torch

import secure_mnist as sm
from helpers import new_session
from secure_mnist.mpc import pairwise_max
from secure_mnist.mpc.audit import MaskAuditor
from secure_mnist.mpc.pairwise_max import max_rounds, row_max

BINARY = sm.FixedPointEncoder()


def shared(x: torch.Tensor, session: sm.Session) -> sm.FixedPrecisionTensor:
    return sm.FixedPrecisionTensor.encode(x, session.encoder).share(session)


def hard_rows(rows: int, classes: int, seed: int) -> torch.Tensor:
    """Random rows, and the cases a wrong winner bit would get wrong: ties for the maximum at
    the start, the end and in the middle, all equal, all negative, extreme magnitudes."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.round(torch.randn(rows, classes, generator=generator, dtype=torch.float64) * 400) / 16
    x[0] = 0.0
    x[1] = -3.5
    x[2, 0] = x[2, -1] = 1000.0
    x[3, classes // 2] = x[3, -1] = 77.25
    x[4] = torch.arange(classes, dtype=torch.float64) * -2.0
    x[5] = torch.arange(classes, dtype=torch.float64) * 2.0
    x[6, -1] = -30000.0
    x[6, 0] = 30000.0
    return x


@pytest.mark.parametrize("classes", [2, 3, 4, 7, 10, 17])
def test_row_max_equals_torch(classes):
    session = new_session(seed=classes)
    x = hard_rows(24, classes, seed=classes)
    got = row_max(shared(x, session)).decrypt().double()
    assert got.shape == (24, 1)
    assert torch.equal(got, x.max(-1, keepdim=True).values)


def test_row_max_keeps_leading_dimensions():
    session = new_session()
    x = hard_rows(12, 5, seed=1).view(3, 4, 5)
    got = row_max(shared(x, session)).decrypt().double()
    assert torch.equal(got, x.max(-1, keepdim=True).values)


def test_a_single_class_is_its_own_maximum_and_costs_nothing():
    session = new_session()
    x = shared(torch.tensor([[2.5], [-1.0]], dtype=torch.float64), session)
    before = session.comm.stats.snapshot()
    assert torch.equal(row_max(x).decrypt().double(), torch.tensor([[2.5], [-1.0]], dtype=torch.float64))
    assert session.comm.stats.since(before).rounds == 0 == max_rounds(1)


def test_an_empty_row_is_refused():
    session = new_session()
    with pytest.raises(ValueError, match="empty row"):
        row_max(shared(torch.zeros(3, 0, dtype=torch.float64), session))


@pytest.mark.parametrize("classes, rounds", [(2, 8), (3, 9), (4, 10), (10, 12), (17, 12)])
def test_rounds_are_a_constant_not_a_tournament(classes, rounds):
    """12 rounds for 10 classes, where a tournament of comparisons takes 4 x 8 = 32."""
    session = new_session()
    x = shared(hard_rows(8, classes, seed=2), session)
    before = session.comm.stats.snapshot()
    row_max(x)
    traffic = session.comm.stats.since(before)
    assert traffic.rounds == max_rounds(classes) == rounds
    assert traffic.bytes_received[session.client.name] == 0


def with_floor(x: sm.FixedPrecisionTensor) -> None:
    pairwise_max.row_max_and_floor(x, -13.0)  # the maximum and softmax's clip bits


def audit_openings(values: torch.Tensor, protocol=row_max) -> list[str]:
    """What an attacker holding one worker's view would notice: reused masks, non-uniform openings."""
    session = new_session(seed=11)
    with MaskAuditor() as auditor:
        protocol(shared(values, session))
    problems = [f"{worker}: {count} reused mask words" for worker, count in auditor.reused_masks().items() if count]
    if min(auditor.openings().values()) < 1000:
        problems.append("too few openings seen")
    for worker, records in auditor.records.items():
        for _, opened in records:  # each round's opening on its own, if it is large enough to judge
            if opened.numel() >= 32:
                ones = sum(bin(w & 0xFFFFFFFFFFFFFFFF).count("1") for w in opened.tolist()) / (64 * opened.numel())
                if not 0.44 < ones < 0.56:
                    problems.append(f"{worker}: {ones:.1%} of opened bits set in one round")
    return problems


@pytest.mark.parametrize("protocol", [row_max, with_floor], ids=["max", "max and floor"])
def test_no_mask_opens_two_values_and_every_opening_looks_uniform(protocol):
    """Inputs whose winners differ: no mask word opens two values, and what each worker sees
    opened is masked (about half of all opened bits set, whichever class wins)."""
    x = hard_rows(64, 10, seed=3)
    for values in (x, x.flip(-1).contiguous()):  # the same values per row, other winners
        assert audit_openings(values, protocol) == []


@pytest.mark.parametrize("protocol", [row_max, with_floor], ids=["max", "max and floor"])
def test_the_audit_catches_an_unmasked_product(monkeypatch, protocol):
    """Mutation: the product x * w opened without its mask (x itself on the wire) must be seen."""
    from secure_mnist.mpc.primitives import comparison

    real = comparison.open_masked

    def leaky(values, masks, session, combine=torch.add):
        if not callable(combine):  # times_bit's opening: (bits, x - a)
            masks = {w: (m[0], torch.zeros_like(m[1])) for w, m in masks.items()}
        return real(values, masks, session, combine)

    monkeypatch.setattr(comparison, "open_masked", leaky)
    problems = audit_openings(hard_rows(64, 10, seed=3), protocol)
    assert any("reused mask words" in p for p in problems)
    assert any("opened bits set" in p for p in problems)


def test_a_wrong_negation_is_caught(monkeypatch):
    """Mutation: if the first worker forgot to negate s_ij (the 'at least everyone after me'
    factors), the winner bits would be wrong and so would the maximum."""
    real = pairwise_max._factor_table

    def without_negation(classes):
        pairs, negated = real(classes)
        return pairs, torch.zeros_like(negated)

    monkeypatch.setattr(pairwise_max, "_factor_table", without_negation)
    session = new_session()
    x = hard_rows(24, 10, seed=4)
    assert not torch.equal(row_max(shared(x, session)).decrypt().double(), x.max(-1, keepdim=True).values)


def test_argmax_pairs_up_a_small_tensor_and_plays_the_tournament_on_a_large_one():
    """Pairs save rounds but cost bytes: a batch of scores is compared in pairs (7 + 2 + 1
    rounds for 4 values), a tensor of 60,000 pairs or more plays the knockout (2 levels of 9)."""
    session = new_session()
    for rows, rounds in ((8, 10), (10_000, 18)):
        x = shared(torch.round(torch.randn(rows, 4, generator=torch.Generator().manual_seed(rows)) * 64) / 64,
                   session)
        before = session.comm.stats.snapshot()
        got = x.argmax(dim=1)
        assert session.comm.stats.since(before).rounds == rounds
        assert torch.equal(got.decrypt().long(), x.decrypt().argmax(dim=1))


@pytest.mark.parametrize("classes", [2, 3, 10, 17])
@pytest.mark.parametrize("floor", [-13.0, -0.5, -1000.0])
def test_row_max_and_floor_equals_torch_in_the_rounds_of_the_maximum(classes, floor):
    """The maximum, and [x - m >= floor] per entry (the floor itself included), in the rounds of
    row_max alone: the clip's bits ride on the same comparison, AND tree and conversion."""
    session = new_session(seed=classes + 40)
    x = hard_rows(8, classes, seed=5)
    x[7] = torch.arange(classes, dtype=torch.float64) * floor / 2  # entries at the floor exactly
    before = session.comm.stats.snapshot()
    maximum, in_range = pairwise_max.row_max_and_floor(shared(x, session), floor)
    traffic = session.comm.stats.since(before)
    want = x.max(-1, keepdim=True).values
    assert torch.equal(maximum.decrypt().double(), want)
    bits = sum(in_range.share_of(worker) for worker in session.workers)
    assert torch.equal(bits, (x - want >= floor).long())
    assert traffic.rounds == max_rounds(classes)
    assert traffic.bytes_received[session.client.name] == 0


def test_row_max_and_floor_refuses_what_it_cannot_do():
    session = new_session()
    x = shared(torch.zeros(2, 3, dtype=torch.float64), session)
    with pytest.raises(ValueError, match="floor below 0"):
        pairwise_max.row_max_and_floor(x, 0.0)
    with pytest.raises(ValueError, match="floor below 0"):
        pairwise_max.row_max_and_floor(x, -0.1 / BINARY.scale)  # encodes as 0
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_max.row_max_and_floor(shared(torch.zeros(2, 1, dtype=torch.float64), session), -1.0)
