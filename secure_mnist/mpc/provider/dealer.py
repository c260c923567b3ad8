"""A trusted dealer (the crypto provider) hands out correlated randomness.

The dealer never sees data: it draws random values, computes a relation between them (c = a*b,
c = a AND b, the same bit in two sharings) and secret-shares them to the workers through the
communicator, exactly as a data owner shares a secret. Everything one protocol needs is dealt in
one message per worker. Honest-but-curious security holds as long as the dealer does not collude
with a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch

from ...parties import Worker
from ..session import Session

Bilinear = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Dealt = dict[Worker, list[torch.Tensor]]


def deal(session: Session, secrets: Sequence[torch.Tensor] | None, shapes: Sequence[torch.Size],
         split: str | Sequence[str] = "add") -> Dealt:
    """The dealer splits each secret into two random shares; each worker gets one message.

    `split` is "add" (additive shares) or "xor" (XOR shares, for binary protocols), for all
    secrets or one per secret. `secrets` is only needed where the dealer runs; every process knows
    the shapes from the protocol.
    """
    dealer = session.provider
    first, second = session.workers
    sizes = [_numel(shape) for shape in shapes]
    if session.is_local(dealer):
        assert secrets is not None
        kinds = [split] * len(secrets) if isinstance(split, str) else list(split)
        masks = dealer.prg.ring((sum(sizes),))
        others = [secret.reshape(-1) ^ mask if kind == "xor" else secret.reshape(-1) - mask
                  for secret, mask, kind in zip(secrets, masks.split(sizes), kinds)]
        session.comm.send(dealer.name, first.name, masks)
        session.comm.send(dealer.name, second.name, torch.cat(others) if len(others) > 1 else others[0])
    dealt: Dealt = {}
    for worker in session.local_workers:
        flat = session.comm.recv(worker.name, dealer.name)
        dealt[worker] = [part.view(shape) for part, shape in zip(flat.split(sizes), shapes)]
    return dealt


# --8<-- [start:beaver_triple]
def beaver_triple(session: Session, op: Bilinear, shape_a: torch.Size, shape_b: torch.Size) -> Dealt:
    """Shares of random a, b and c = op(a, b), for any bilinear op (elementwise product, matmul)."""
    shape_c = output_shape(op, tuple(shape_a), tuple(shape_b))
    secrets = None
    if session.is_local(session.provider):
        a = session.provider.prg.ring(shape_a)
        b = session.provider.prg.ring(shape_b)
        secrets = [a, b, op(a, b)]
    return deal(session, secrets, [shape_a, shape_b, shape_c])
# --8<-- [end:beaver_triple]


def binary_triples(session: Session, sizes: Sequence[int]) -> dict[Worker, list[tuple[torch.Tensor, ...]]]:
    """XOR shares of random words a, b and c = a AND b, one triple per requested size, all at once."""
    secrets = None
    if session.is_local(session.provider):
        total = sum(sizes)
        a = session.provider.prg.ring((total,))
        b = session.provider.prg.ring((total,))
        secrets = [a, b, a & b]
    total_shape = torch.Size((sum(sizes),))
    dealt = deal(session, secrets, [total_shape] * 3, split="xor")
    return {w: list(zip(*(part.split(list(sizes)) for part in parts))) for w, parts in dealt.items()}


def shared_random_bits(session: Session, shape: torch.Size) -> Dealt:
    """One random bit r per element, dealt twice: [r as XOR shares, r as additive shares]."""
    secrets = None
    if session.is_local(session.provider):
        r = session.provider.prg.bits(shape)
        secrets = [r, r]
    return deal(session, secrets, [shape, shape], split=("xor", "add"))


@lru_cache(maxsize=256)
def output_shape(op: Bilinear, shape_a: tuple[int, ...], shape_b: tuple[int, ...]) -> torch.Size:
    """The shape op(a, b) will have, worked out on shape-only tensors."""
    meta = dict(dtype=torch.int64, device="meta")
    return op(torch.empty(shape_a, **meta), torch.empty(shape_b, **meta)).shape


def _numel(shape: torch.Size) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
