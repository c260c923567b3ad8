"""A trusted dealer (the crypto provider) hands out correlated randomness.

The dealer never sees data. It shares an AES stream with each worker (seeds agreed once, when the
session starts), so a worker can draw its own shares of the dealer's random values: for a Beaver
triple, both workers draw their shares of a and b, and the first worker its share of c, with no
message at all. The dealer draws the same values, computes c = a*b (or a AND b, ...) and sends the
second worker the one thing it cannot draw: its share of c. Honest-but-curious security holds as
long as the dealer does not collude with a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ...parties import Worker
from ...profiling import timed
from ..opening import Mask
from ..ring import ring_op
from ..session import Session
from ..shapes import broadcast_shapes, output_shape_of
from .plan import KeepMasks, MaskProducts

Bilinear = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Derive = Callable[[torch.Tensor], torch.Tensor]


def correlated_randomness(session: Session, n_random: int, n_derived: int, derive: Derive,
                          sharing: str = "add", random_bits: bool = False
                          ) -> dict[Worker, tuple[torch.Tensor, torch.Tensor]]:
    """Each worker's flat shares of `n_random` random words r and of the `n_derived` words derive(r).

    `sharing` says how shares combine ("add": modulo 2^64, "xor": bitwise); `random_bits` makes r
    random bits (XOR-shared) instead of random words. derive(r) is always shared as `sharing` says,
    except that with random bits it is shared additively (a bit in both sharings).
    """
    session.require_provider()
    session.dealing.on_request(n_random, n_derived, sharing, random_bits, derive)
    dealer = session.provider
    first = session.first
    join = torch.bitwise_xor if sharing == "xor" or random_bits else torch.add
    split = torch.bitwise_xor if sharing == "xor" else torch.sub

    def draw(holder, peer, derived: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """From the stream holder and peer share: the random words, and (for the first worker,
        whose derived share is drawn too) the derived share. The second worker's comes by message."""
        words = session.common_prg(holder, peer).ring((n_random + (n_derived if derived else 0),))
        random_part = words[:n_random] & 1 if random_bits else words[:n_random]
        return random_part, words[n_random:]

    if session.is_local(dealer):
        _deal(session, draw, derive, join, split)
    shares = {}
    for worker in session.local_workers:
        # the second worker's derived share comes by message: let it travel while the worker draws
        derived_by_message = (session.comm.recv_later(worker.name, dealer.name, (n_derived,))
                              if worker is not first and n_derived else None)
        random_part, derived_part = draw(worker, dealer, derived=worker is first)
        shares[worker] = (random_part, derived_by_message() if derived_by_message else derived_part)
    return shares


@timed("crypto provider (dealing)", within=True)
def _deal(session: Session, draw, derive: Derive, join, split) -> None:
    """The dealer's side: the same random words as the workers draw, and the derived ones sent."""
    first, second = session.workers
    random_first, derived_first = draw(session.provider, first, derived=True)
    random_second, _ = draw(session.provider, second, derived=False)
    derived = derive(join(random_first, random_second))
    if derived.numel():
        session.comm.send(session.provider.name, second.name, split(derived, derived_first))


# --8<-- [start:beaver_triple]
def random_masks(session: Session, shapes: Sequence[torch.Size]) -> list[Mask]:
    """Uniformly random ring tensors of these shapes, additively shared: no message at all.

    Each worker draws its shares from the stream it shares with the dealer; the dealer, which runs
    both streams, keeps their sums.
    """
    sizes = [_numel(shape) for shape in shapes]
    at_dealer = KeepMasks(sizes, shapes)  # runs at the dealer only: nothing to derive
    dealt = correlated_randomness(session, sum(sizes), 0, at_dealer)
    shares = {w: words.split(sizes) for w, (words, _) in dealt.items()}
    values = at_dealer.values or [None] * len(shapes)
    masks = [Mask({w: parts[i].view(shape) for w, parts in shares.items()}, values[i])
             for i, shape in enumerate(shapes)]
    if at_dealer.values:
        session.dealing.masks_dealt(masks)
    return masks


def mask_products(session: Session, products: Sequence[tuple[Mask, Mask, Bilinear]],
                  shapes: Sequence[tuple[torch.Size, torch.Size]]) -> dict[Worker, list[torch.Tensor]]:
    """Each worker's shares of c = op(a, b) for masks a and b it already holds, in one message.

    The dealer computes every c from the masks themselves; the first worker draws its shares of
    them, and only the second worker's shares travel.
    """
    out_shapes = [output_shape_of(op, sa, sb) for (_, _, op), (sa, sb) in zip(products, shapes)]
    sizes = [_numel(shape) for shape in out_shapes]

    dealt = correlated_randomness(session, 0, sum(sizes), MaskProducts(products, ring_op))
    return {w: [part.view(shape) for part, shape in zip(c.split(sizes), out_shapes)] for w, (_, c) in dealt.items()}


def beaver_triple(session: Session, op: Bilinear, shape_a: torch.Size, shape_b: torch.Size
                  ) -> dict[Worker, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each worker's shares of random a, b and c = op(a, b), for a bilinear op (product, matmul)."""
    a, b = random_masks(session, [shape_a, shape_b])
    c = mask_products(session, [(a, b, op)], [(shape_a, shape_b)])
    return {w: (a.shares[w], b.shares[w], c[w][0]) for w in c}
# --8<-- [end:beaver_triple]


def binary_triples(session: Session, shapes: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]
                   ) -> dict[Worker, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """XOR shares of random words a, b and c = a AND b (broadcast), one triple per (shape_a, shape_b).

    All of them in one go: one draw per stream, one message to the second worker.
    """
    layout = [(shape_a, shape_b, broadcast_shapes(tuple(shape_a), tuple(shape_b))) for shape_a, shape_b in shapes]
    random_sizes = [size for shape_a, shape_b, _ in layout for size in (_numel(shape_a), _numel(shape_b))]
    derived_sizes = [_numel(shape_c) for _, _, shape_c in layout]

    def products(ab: torch.Tensor) -> torch.Tensor:
        parts = ab.split(random_sizes)
        return torch.cat([(parts[2 * i].view(sa) & parts[2 * i + 1].view(sb)).reshape(-1)
                          for i, (sa, sb, _) in enumerate(layout)])

    dealt = correlated_randomness(session, sum(random_sizes), sum(derived_sizes), products, sharing="xor")
    triples = {}
    for worker, (ab, c) in dealt.items():
        parts, products_ = ab.split(random_sizes), c.split(derived_sizes)
        triples[worker] = [(parts[2 * i].view(sa), parts[2 * i + 1].view(sb), products_[i].view(sc))
                           for i, (sa, sb, sc) in enumerate(layout)]
    return triples


def shared_random_bits(session: Session, size: int) -> dict[Worker, tuple[torch.Tensor, torch.Tensor]]:
    """A random bit r per element, in two sharings: (XOR shares of r, additive shares of r)."""
    return correlated_randomness(session, size, size, lambda r: r, random_bits=True)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count
