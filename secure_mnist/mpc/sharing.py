"""Additive secret sharing over Z_2^64: a secret x is split as x = x_alice + x_bob (mod 2^64).

Either share alone is a uniformly random int64, independent of x. Linear operations (add, subtract,
multiply by a public integer, sum, reshape) are local: each worker applies them to its own share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..errors import PartyMismatchError
from ..parties import Party, Worker
from . import audit
from .opening import Opening, Shares
from .session import Session
from .shapes import broadcast_shapes, keeps_order, output_shape_of, rearrangement_key

MAX_VIEWS = 8  # rearrangements of one tensor remembered (see AdditiveSharingTensor.map)


class AdditiveSharingTensor:
    """A tensor of ring elements, one additive share held by each worker.

    The object itself is only a handle (session, key and shape): each worker keeps its share in
    its own store, under this key. A process that runs no worker (the crypto provider's, the
    client's) holds handles without shares, and still knows every shape.
    """

    __slots__ = ("session", "key", "shape", "opening", "_views", "_base")

    def __init__(self, session: Session, shares: Shares, shape: torch.Size | None = None) -> None:
        self.session = session
        self.opening: Opening | None = None  # set once the workers have opened it under a mask
        self._views: dict[tuple, AdditiveSharingTensor] | None = None  # see map()
        self._base: AdditiveSharingTensor | None = None  # the tensor this one reshapes, if any
        self.key = session.new_key()
        for worker, share in shares.items():
            worker.store[self.key] = share
            shape = share.shape
        if shape is None:
            raise ValueError("a shared tensor without local shares needs its shape")
        self.shape: torch.Size = torch.Size(shape)

    def __del__(self) -> None:
        try:
            self.session.free(self.key)
        except Exception:  # interpreter shutdown: the stores may already be gone
            pass

    @classmethod
    def public(cls, session: Session, value: torch.Tensor) -> AdditiveSharingTensor:
        """A public value in shared form: the first worker holds it, the other holds zero. No message."""
        return cls(session, {w: value.clone() if w is session.first else torch.zeros_like(value)
                             for w in session.local_workers}, value.shape)

    # -- access ---------------------------------------------------------------------------------
    def share_of(self, worker: Worker) -> torch.Tensor:
        return worker.store[self.key]

    def local_shares(self) -> Shares:
        return {w: w.store[self.key] for w in self.session.local_workers}

    def _same_parties(self, other: AdditiveSharingTensor) -> None:
        if other.session is not self.session:
            mine, theirs = self.session.describe(), other.session.describe()
            if mine == theirs:
                mine, theirs = f"{mine} [session {id(self.session):#x}]", f"{theirs} [another session {id(other.session):#x}]"
            raise PartyMismatchError(
                f"cannot combine a tensor shared among ({mine}) with one shared among ({theirs}): "
                "share both with the same workers"
            )

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> AdditiveSharingTensor:
        """Apply a local, linear function to every share (reshape, sum, index, ...).

        If x was opened under a mask a, fn(x) is opened too, under fn(a): fn(x) - fn(a) = fn(e).
        The same reshaping of the same tensor gives back the same shared tensor (shares never
        change in place), so what was opened stays opened: a batch of images viewed as rows in
        every epoch is opened in the first one only.
        """
        key = rearrangement_key(fn)
        if key is not None and self._views is not None and key in self._views:
            return self._views[key]
        shares = {w: fn(s) for w, s in self.local_shares().items()}
        result = AdditiveSharingTensor(self.session, shares, None if shares else output_shape_of(fn, self.shape))
        if self.opening is not None:
            result.opening = self.opening.map(fn)
        if key is not None and keeps_order(key):
            result._base = self  # the same elements in the same order: an opening can go back
        if key is not None:
            if self._views is None or len(self._views) >= MAX_VIEWS:
                self._views = {}
            self._views[key] = result
        return result

    def zip(self, other: AdditiveSharingTensor, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> AdditiveSharingTensor:
        self._same_parties(other)
        shares = {w: fn(w.store[self.key], w.store[other.key]) for w in self.session.local_workers}
        return AdditiveSharingTensor(self.session, shares, None if shares else output_shape_of(fn, self.shape, other.shape))

    # -- linear operations ------------------------------------------------------------------------
    def __add__(self, other: AdditiveSharingTensor) -> AdditiveSharingTensor:
        return self.zip(other, torch.add)

    def __sub__(self, other: AdditiveSharingTensor) -> AdditiveSharingTensor:
        return self.zip(other, torch.sub)

    def __neg__(self) -> AdditiveSharingTensor:
        return self.map(torch.neg)

    def add_public(self, value: torch.Tensor) -> AdditiveSharingTensor:
        """x + c for a public ring element c: one worker adds it, the other keeps its share."""
        first = self.session.first
        shape = self.shape if value.shape == self.shape else broadcast_shapes(tuple(self.shape), tuple(value.shape))
        return AdditiveSharingTensor(
            self.session, {w: s + value if w is first else s.expand(shape) for w, s in self.local_shares().items()},
            shape,
        )

    def mul_public(self, value: torch.Tensor | int) -> AdditiveSharingTensor:
        """x * c for a public integer c: local."""
        return self.map(lambda s: s * value)

    def refresh(self) -> AdditiveSharingTensor:
        """The same secret under fresh shares: add shares of zero from the workers' common seed."""
        zeros = self.session.zero_shares(self.shape)
        return AdditiveSharingTensor(self.session, {w: s + zeros[w] for w, s in self.local_shares().items()},
                                     self.shape)

    def forget_opening(self) -> None:
        """Drop the opening kept for this tensor and for every reshaping of it (see `Opening`).

        What keeping saves is one opening per later use; what it costs is a mask share and an
        opened value per worker, as large as the tensor. A dataset's batches kept opened would
        double the memory the shares take; forgotten, each is opened again under a fresh mask the
        next time it is used (never under the old one: the mask is gone with the opening).
        """
        self.opening = None
        views, self._views = self._views, None
        for view in (views or {}).values():
            view.forget_opening()

    def __repr__(self) -> str:
        return f"[AdditiveSharingTensor shape={tuple(self.shape)} held by {self.session.describe()}]"


Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def record_opening(x: AdditiveSharingTensor, opening: Opening) -> None:
    """x was opened: keep the opening, and give it to the tensor x reshapes too (and so on up),
    which is what lives on: a checkpoint saves it, and the next reshape of it finds it."""
    x.opening = opening
    while x._base is not None and x._base.opening is None:
        x._base.opening = x.opening.reshaped(x._base.shape)  # type: ignore[union-attr]
        x = x._base


# --8<-- [start:share_secret]
def share_secret(session: Session, owner: Party, secret: torch.Tensor, split: str = "add") -> AdditiveSharingTensor:
    """The owner splits a ring tensor into random shares and sends one to each worker.

    `split="xor"` makes XOR shares instead (binary sharing). Only the owner's process reads the
    values of `secret`; the others pass a tensor of the right shape (on the meta device: no data).
    """
    first, second = session.workers
    shares: Shares = {}
    if session.is_local(owner):
        mask = owner.prg.ring(secret.shape)
        other = secret ^ mask if split == "xor" else secret - mask
        for worker, share in ((first, mask), (second, other)):
            if worker is owner:
                shares[worker] = share
            else:
                session.comm.send(owner.name, worker.name, share)
    for worker in session.local_workers:
        if worker is not owner:
            shares[worker] = session.comm.recv(worker.name, owner.name, secret.shape)
    return AdditiveSharingTensor(session, shares, secret.shape)
# --8<-- [end:share_secret]


# --8<-- [start:reveal_to]
def reveal_to(x: AdditiveSharingTensor, receiver: Party) -> torch.Tensor | None:
    """Both workers send their shares to `receiver`, who alone reconstructs the secret.

    Returns the secret where the receiver runs, None elsewhere.
    """
    session = x.session
    for worker in session.local_workers:
        if worker is not receiver:
            session.comm.send(worker.name, receiver.name, x.share_of(worker))
    if not session.is_local(receiver):
        return None
    total = torch.zeros(x.shape, dtype=torch.int64)
    for worker in session.workers:
        total = total + (x.share_of(worker) if worker is receiver
                         else session.comm.recv(receiver.name, worker.name, x.shape))
    return total
# --8<-- [end:reveal_to]


# --8<-- [start:open_to_workers]
def open_to_workers(values: dict[Worker, tuple[torch.Tensor, ...]], session: Session,
                    combine: Combine | Sequence[Combine] = torch.add) -> dict[Worker, list[torch.Tensor]]:
    """One round in which the workers open masked values to each other.

    Each worker sends its shares of the (already masked) values and combines the peer's shares
    with its own (`torch.add` for additive shares, `torch.bitwise_xor` for XOR shares; one for all
    tensors or one per tensor): both end up with the same public values, reconstructed at the
    worker, never here. Several tensors travel as one message.
    """
    sizes: list[int] = []
    packed = {}
    for worker, tensors in values.items():
        sizes = [t.numel() for t in tensors]
        packed[worker.name] = torch.cat([t.reshape(-1) for t in tensors])
    received = session.comm.exchange(packed, session.peer)
    opened: dict[Worker, list[torch.Tensor]] = {}
    for worker, tensors in values.items():
        if callable(combine):
            parts = combine(packed[worker.name], received[worker.name]).split(sizes)
        else:
            parts = [join(mine, theirs) for join, mine, theirs
                     in zip(combine, packed[worker.name].split(sizes), received[worker.name].split(sizes))]
        opened[worker] = [part.view(t.shape) for part, t in zip(parts, tensors)]
    return opened
# --8<-- [end:open_to_workers]


# --8<-- [start:open_masked]
def open_masked(values: dict[Worker, tuple[torch.Tensor, ...]], masks: dict[Worker, tuple[torch.Tensor, ...]],
                session: Session, combine: Combine | Sequence[Combine] = torch.add) -> dict[Worker, list[torch.Tensor]]:
    """Open each value under its mask in one round: every opening in the protocols goes through here.

    Each worker sends its share of value - mask (`torch.add`: additive shares) or value ^ mask
    (`torch.bitwise_xor`: XOR shares), and both learn the masked value. The masks are named, not
    applied beforehand, so that an audit (see `audit.py`) can check that no mask ever opens two
    different values.
    """
    joins = [combine] * len(next(iter(values.values()), ())) if callable(combine) else list(combine)
    masked = {w: tuple(v ^ m if join is torch.bitwise_xor else v - m for v, m, join in zip(vs, masks[w], joins))
              for w, vs in values.items()}
    opened = open_to_workers(masked, session, combine)
    auditor = audit.active()
    if auditor is not None:
        for worker, public in opened.items():
            auditor.record(worker.name, masks[worker], tuple(public))
    return opened
# --8<-- [end:open_masked]
