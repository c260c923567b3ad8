"""What the workers keep of a shared tensor they opened under a Beaver mask.

In a Beaver product the workers open e = x - a for a random mask a from the crypto provider.
Opening x again later would only repeat e; so the mask and e are kept with x (an `Opening`) and
serve every later product x takes part in. See docs/beaver-triples.md#opened-once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..parties import Worker

Shares = dict[Worker, torch.Tensor]


@dataclass(frozen=True, eq=False)
class MaskOrigin:
    """Where a mask in the crypto provider's hands comes from: the mask as it was dealt (`base`)
    and the maps applied to it since (transposes, reshapes). A dealing plan names masks by it."""

    base: torch.Tensor
    maps: tuple[Callable[[torch.Tensor], torch.Tensor], ...] = ()

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> MaskOrigin:
        return MaskOrigin(self.base, (*self.maps, fn))


@dataclass(frozen=True)
class Mask:
    """A random ring tensor a from the crypto provider: each local worker's additive share of it,
    and, in the crypto provider's process only, a itself (and its origin)."""

    shares: Shares
    value: torch.Tensor | None = None
    origin: MaskOrigin | None = None

    def __post_init__(self) -> None:
        if self.value is not None and self.origin is None:  # a mask as dealt (or loaded)
            object.__setattr__(self, "origin", MaskOrigin(self.value))

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Mask:
        if self.value is None:
            return Mask({w: fn(s) for w, s in self.shares.items()})
        return Mask({w: fn(s) for w, s in self.shares.items()}, fn(self.value), self.origin.map(fn))  # type: ignore[union-attr]


# --8<-- [start:opening]
class Opening:
    """A shared x that the workers opened under a mask a: e = x - a is public between them.

    Opening x again under a fresh mask would only repeat what e already told, at the price of a
    fresh mask and |x| words per worker: every later product x takes part in reuses a and e (and a
    linear map of x, such as a transpose, reuses the map of both). Each process keeps what its
    parties know: a worker its share of a and e, the crypto provider all of a. (This relies on
    shares never being changed in place: every operation makes a new shared tensor.)
    """

    __slots__ = ("_mask", "_public", "_source", "_fn")

    def __init__(self, mask: Mask, public: Shares) -> None:
        self._mask, self._public = mask, public
        self._source: Opening | None = None
        self._fn: Callable[[torch.Tensor], torch.Tensor] | None = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Opening:
        """The opening of fn(x), worked out only if a product needs it."""
        derived = Opening.__new__(Opening)
        derived._mask = derived._public = None  # type: ignore[assignment]
        derived._source, derived._fn = self, fn
        return derived

    def _resolve(self) -> None:
        if self._source is not None:
            fn, source = self._fn, self._source
            self._mask = source.mask.map(fn)  # type: ignore[arg-type]
            self._public = {w: fn(e) for w, e in source.public.items()}  # type: ignore[misc]
            self._source = self._fn = None

    @property
    def mask(self) -> Mask:
        self._resolve()
        return self._mask

    @property
    def public(self) -> Shares:
        self._resolve()
        return self._public

    def reshaped(self, shape: torch.Size) -> Opening:
        return Opening(self.mask.map(lambda t: t.reshape(shape)), {w: e.reshape(shape) for w, e in self.public.items()})
# --8<-- [end:opening]

