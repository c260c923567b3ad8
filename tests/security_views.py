"""What each party sees, recorded, and the attacks the security tests try on it.

A party's view is everything it holds or learns: its own shares of every shared tensor, the
values opened to it, and every message it receives. The checks here are what an honest-but-
curious party would try with that view:

- `small_combinations`: add or subtract any two tensors of its view (or take one alone) and look
  for values small enough to be fixed-point data, which a uniformly random word almost never is
  (2^-23 per word). A combination that is small is a leak if it also changes with the secret
  input: `leaking_combinations` runs the same protocol with the same randomness on another input
  and keeps only those. (Small combinations that do not change are public constants, such as
  the index encodings of argmax.)
- `distinguishable_views`: what the party learns (messages and opened values) on two different
  secret inputs, with independent randomness, compared by a two-sample chi-square test on the
  words' top and bottom bytes. (Its own shares are functions of what it learned, its randomness
  and public values; within one tensor they are not independent samples, e.g. a broadcast, so
  they enter through the combinations above instead.)

tests/test_security_views.py runs them on a training step, and injects leaks to show each is
caught: a security test that no injected leak can fail is not a test.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

import secure_mnist as sm
from secure_mnist.communicator.base import Communicator
from secure_mnist.mpc import sharing
from secure_mnist.mpc.sharing import AdditiveSharingTensor

SMALL = 2**40  # |v| below this looks like fixed-point data (16 bits: reals below 2^24)
# A combination is suspicious when at least this share of its words is small. A uniform word is
# small with probability 2^-23; a share after local truncation is uniform over ±2^63/scale, at
# least ±2^46 (scale <= 2^17), so small with probability at most 2^-6. Leaked data is small in
# nearly every word.
FRACTION = 0.5
MIN_WORDS = 64  # tensors smaller than this carry too few words to judge


@dataclass
class View:
    """One party's view, in the order it arose: what it holds and what it learns."""

    learned: list[torch.Tensor] = field(default_factory=list)  # received messages and opened values
    held: list[torch.Tensor] = field(default_factory=list)  # its shares of every shared tensor

    def learned_words(self) -> torch.Tensor:
        return torch.cat([t.reshape(-1).to(torch.int64) for t in self.learned])


@contextlib.contextmanager
def recorded_views(session: sm.Session) -> Iterator[dict[str, View]]:
    """Record every party's view while the block runs (in one process, all parties are local)."""
    views: dict[str, View] = defaultdict(View)
    original_received, original_open, original_init = (Communicator._received, sharing.open_to_workers,
                                                       AdditiveSharingTensor.__init__)

    opening = []  # non-empty while the workers exchange masked values

    def received(self, dst, tensor):
        if not opening:  # an exchange's message is recorded below, cut into its parts
            views[dst].learned.append(tensor.clone())
        return original_received(self, dst, tensor)

    def open_to_workers(values, session_, combine=torch.add):
        opening.append(True)
        try:
            opened = original_open(values, session_, combine)
        finally:
            opening.pop()
        for worker, public in opened.items():
            joins = [combine] * len(public) if callable(combine) else combine
            # the opened values, and the peer's message cut into the parts it packs
            views[worker.name].learned.extend(p.clone() for p in public)
            views[worker.name].learned.extend(p ^ mine if join is torch.bitwise_xor else p - mine
                                              for p, mine, join in zip(public, values[worker], joins))
        return opened

    def init(self, session_, shares, shape=None):
        original_init(self, session_, shares, shape)
        for worker, share in shares.items():
            views[worker.name].held.append(share.clone())

    with _patched([(Communicator, "_received", received), (sharing, "open_to_workers", open_to_workers),
                   (AdditiveSharingTensor, "__init__", init)]):
        yield views


@contextlib.contextmanager
def _patched(patches: list[tuple[object, str, object]]) -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, value in patches:
            setattr(owner, name, value)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _is_small(values: torch.Tensor) -> torch.Tensor:
    return (values < SMALL) & (values > -SMALL)


def small_combinations(view: View) -> list[tuple[str, int, int]]:
    """(operation, i, j) for every combination of a learned tensor i with any tensor j of the view
    (j = -1: i alone) whose words are mostly small. Indices run over learned + held."""
    tensors = [t.reshape(-1).to(torch.int64) for t in view.learned + view.held]
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, t in enumerate(tensors):
        if t.numel() >= MIN_WORDS:
            by_size[t.numel()].append(index)
    found = []
    for index in range(len(view.learned)):
        t = tensors[index]
        if t.numel() < MIN_WORDS:
            continue
        if _is_small(t).float().mean() > FRACTION:
            found.append(("alone", index, -1))
        others = torch.stack([tensors[j] for j in by_size[t.numel()] if j != index]) if len(by_size[t.numel()]) > 1 else None
        if others is None:
            continue
        partners = [j for j in by_size[t.numel()] if j != index]
        for name, combined in (("+", others + t), ("-", others - t)):
            hits = _is_small(combined).float().mean(dim=1) > FRACTION
            found.extend((name, index, partners[k]) for k in torch.nonzero(hits).reshape(-1).tolist())
    return found


def combination(view: View, operation: str, i: int, j: int) -> torch.Tensor:
    tensors = view.learned + view.held
    first = tensors[i].reshape(-1).to(torch.int64)
    if j < 0:
        return first
    second = tensors[j].reshape(-1).to(torch.int64)
    return second + first if operation == "+" else second - first


def leaking_combinations(view: View, other_input_view: View) -> list[tuple[str, int, int]]:
    """Small combinations whose values change when only the secret input changes (same randomness)."""
    assert len(view.learned) == len(other_input_view.learned), "the two runs did not run the same protocol"
    leaks = []
    for operation, i, j in small_combinations(view):
        if not torch.equal(combination(view, operation, i, j), combination(other_input_view, operation, i, j)):
            leaks.append((operation, i, j))
    return leaks


def distinguishable_views(view: View, other_input_view: View) -> float:
    """The smallest p-value of two-sample chi-square tests (top byte, bottom byte) between the words
    two views on different inputs learned: tiny means they tell the inputs apart."""
    from scipy import stats

    p_values = []
    words = [v.learned_words() for v in (view, other_input_view)]
    for shift in (56, 0):
        counts = np.stack([torch.bincount(((w >> shift) & 0xFF), minlength=256).numpy() for w in words])
        counts = counts[:, counts.sum(axis=0) > 0]
        p_values.append(stats.chi2_contingency(counts).pvalue)
    return min(p_values)


def training_step(session: sm.Session, images: torch.Tensor, targets: torch.Tensor) -> None:
    """One step of the tutorial's network on data the client shares, then an encrypted prediction."""
    from secure_mnist.training import Net

    torch.manual_seed(0)
    model = Net()
    sm.encrypt_parameters(model, session)
    data, target = sm.share_batch(images, session), sm.share_batch(targets, session)
    optimizer = sm.SGD(model.parameters(), lr=0.02)
    output = model(data)
    loss = ((output - target) ** 2).sum().refresh() / images.shape[0]
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model(data).argmax(dim=1)


def views_of_a_step(seed: int, images: torch.Tensor, targets: torch.Tensor,
                    step: Callable[[sm.Session, torch.Tensor, torch.Tensor], None] = training_step) -> dict[str, View]:
    session = sm.Session(seed=seed)
    with recorded_views(session) as views:
        step(session, images, targets)
    return dict(views)
