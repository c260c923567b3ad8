"""Each party's whole view, attacked: no combination of what a worker holds and learns reveals a
secret, what it learns does not depend on the secret input, and no mask opens two values. Then
the leaks a broken protocol could have are injected, one at a time, and each must be caught.
See tests/security_views.py for the attacks and why their thresholds are sound."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from secure_mnist.mpc.randomness import PRG
from secure_mnist.mpc.audit import MaskAuditor
from secure_mnist.mpc.opening import Mask
from secure_mnist.mpc.primitives import beaver, comparison
from secure_mnist.mpc.provider import dealer
from security_views import distinguishable_views, leaking_combinations, views_of_a_step

pytest.importorskip("scipy")

BATCH = 4
ALPHA = 1e-6  # p-values below this count as distinguishable (a handful of tests per run)


def _inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(BATCH, 1, 28, 28, generator=generator)
    targets = torch.nn.functional.one_hot(torch.randint(0, 10, (BATCH,), generator=generator), 10).float()
    return images, targets


def findings() -> dict[str, list]:
    """Run the attacks on one training step; every list is empty for a secure protocol."""
    first, other = _inputs(1), _inputs(2)
    with MaskAuditor() as auditor:
        views = views_of_a_step(21, *first)
    same_randomness = views_of_a_step(21, *other)  # only the secret input differs
    fresh_randomness = views_of_a_step(22, *other)
    found: dict[str, list] = {"parties that learned something": [], "leaking combinations": [],
                              "distinguishable views": [], "reused masks": []}
    for party in ("crypto_provider", "me"):
        if views.get(party) and views[party].learned:
            found["parties that learned something"].append(party)
    for worker in ("alice", "bob"):
        found["leaking combinations"] += [(worker, *leak) for leak in
                                          leaking_combinations(views[worker], same_randomness[worker])]
        p_value = distinguishable_views(views[worker], fresh_randomness[worker])
        if p_value < ALPHA:
            found["distinguishable views"].append((worker, p_value))
    found["reused masks"] = [(w, n) for w, n in auditor.reused_masks().items() if n]
    return found


def test_no_party_can_learn_anything_from_its_view():
    assert findings() == {"parties that learned something": [], "leaking combinations": [],
                          "distinguishable views": [], "reused masks": []}


# -- injected leaks ---------------------------------------------------------------------------------
@contextlib.contextmanager
def relu_mask_share_of_bob_is_zero(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ReLU's mask a dealt as (a, 0): the same mask, so results stay right, but bob sends x_bob raw."""
    original = comparison.open_masked

    def leaky(values, masks, session, combine=torch.add):
        if not callable(combine):  # ReLU's opening: (sign bits by XOR, x - a additively)
            alice, bob = session.workers
            masks = {alice: (masks[alice][0], masks[alice][1] + masks[bob][1]),
                     bob: (masks[bob][0], torch.zeros_like(masks[bob][1]))}
        return original(values, masks, session, combine)

    monkeypatch.setattr(comparison, "open_masked", leaky)
    yield


@contextlib.contextmanager
def beaver_masks_reused(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The dealer hands out the same mask again for a tensor of the same shape."""
    original = dealer.random_masks
    dealt: dict[tuple, Mask] = {}

    def reusing(session, shapes):
        fresh = original(session, shapes)  # drawn all the same: the streams stay in step
        return [dealt.setdefault((id(session), tuple(shape)), mask) for shape, mask in zip(shapes, fresh)]

    monkeypatch.setattr(beaver, "random_masks", reusing)
    yield


@contextlib.contextmanager
def share_sent_in_the_clear(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The data owner's mask is zero: the first worker gets 0, the second the secret itself."""
    monkeypatch.setattr(PRG, "ring", _zero_when_sharing(PRG.ring))
    yield


def _zero_when_sharing(ring):
    import inspect

    def maybe_zero(self, shape):
        words = ring(self, shape)
        caller = inspect.currentframe().f_back  # type: ignore[union-attr]
        return torch.zeros_like(words) if caller and caller.f_code.co_name == "share_secret" else words

    return maybe_zero


# Each check must catch at least one injected leak, or it is not a test.
@pytest.mark.parametrize(("leak", "caught_by"), [
    (relu_mask_share_of_bob_is_zero, {"leaking combinations", "reused masks"}),
    (beaver_masks_reused, {"leaking combinations", "distinguishable views", "reused masks"}),
    (share_sent_in_the_clear, {"leaking combinations"}),
])
def test_each_injected_leak_is_caught(leak, caught_by, monkeypatch):
    with leak(monkeypatch):
        found = findings()
    caught = {check for check, items in found.items() if items}
    assert caught >= caught_by, f"{leak.__name__}: caught by {sorted(caught)}, expected at least {sorted(caught_by)}"
