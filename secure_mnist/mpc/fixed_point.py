"""FixedPrecisionTensor: real numbers, fixed-point encoded, either public or secret-shared.

This is the encrypted tensor users compute with. It rescales after products (truncation), turns
public operands into ring elements, and checks everything that could otherwise produce a silently
wrong number: precisions that differ, parties that differ, shapes that do not fit, values out of
range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import torch

from ..encoding import FixedPointEncoder
from ..errors import NotSharedError, PrecisionMismatchError
from ..parties import Party
from .primitives.beaver import matmul, matmuls, mul, muls
from .primitives.comparison import is_negative, relu_and_bit
from .primitives.truncation import truncate
from .session import Session, session_for
from .shapes import broadcast_shapes
from .sharing import AdditiveSharingTensor, reveal_to, share_secret

Ring = Union[torch.Tensor, AdditiveSharingTensor]
Operand = Union["FixedPrecisionTensor", torch.Tensor, float, int]


class FixedPrecisionTensor:
    """Reals encoded as integers of Z_2^64; `child` is a plain int64 tensor or an AdditiveSharingTensor."""

    __slots__ = ("child", "encoder")

    def __init__(self, child: Ring, encoder: FixedPointEncoder) -> None:
        self.child = child
        self.encoder = encoder

    def __getattr__(self, name: str):
        # Only reached for attributes that do not exist: usually torch code (an optimizer's step)
        # treating an encrypted gradient as a tensor.
        raise AttributeError(
            f"FixedPrecisionTensor has no attribute {name!r}: it is an encrypted value, not a torch tensor. "
            "To update encrypted parameters use optimizer.fix_precision() (PySyft style) or secure_mnist.SGD."
        )

    # -- construction and decryption ----------------------------------------------------------------
    @classmethod
    def encode(cls, values: torch.Tensor | float, encoder: FixedPointEncoder) -> FixedPrecisionTensor:
        return cls(encoder.encode(values), encoder)

    @property
    def is_shared(self) -> bool:
        return isinstance(self.child, AdditiveSharingTensor)

    @property
    def session(self) -> Session:
        self._require_shared("session")
        return self.child.session  # type: ignore[union-attr]

    def share(self, *parties: Any, crypto_provider: Any = None, owner: Party | None = None,
              requires_grad: bool = False) -> Any:
        """Split into additive shares; the owner (by default the client) sends one to each worker.

        Pass a Session, or PySyft-style the two workers and `crypto_provider=`. With
        `requires_grad=True` the result is an AutogradTensor, ready for backpropagation.
        """
        if self.is_shared:
            raise ValueError("this tensor is already shared; use .refresh() for fresh shares")
        if len(parties) == 1 and isinstance(parties[0], Session):
            session = parties[0]
        else:
            session = session_for(parties, crypto_provider)
        shared = FixedPrecisionTensor(share_secret(session, owner or session.client, self.child), self.encoder)  # type: ignore[arg-type]
        if requires_grad:
            from ..autograd import AutogradTensor

            return AutogradTensor(shared, requires_grad=True)
        return shared

    def get(self, receiver: Party | None = None) -> FixedPrecisionTensor:
        """Reconstruct at the receiver (the client by default); overflow is detected here."""
        self._require_shared("get")
        ring = reveal_to(self.child, receiver or self.session.client)  # type: ignore[arg-type]
        if ring is None:  # the receiver runs in another process: this one learns nothing
            ring = torch.empty(self.shape, dtype=torch.int64, device="meta")
        return FixedPrecisionTensor(ring, self.encoder)

    def float_precision(self) -> torch.Tensor:
        """Decode a public fixed-point tensor to float32."""
        if self.is_shared:
            raise NotSharedError("this tensor is still secret-shared: call .get() before .float_precision()")
        return self.encoder.decode(self.child)  # type: ignore[arg-type]

    def decrypt(self) -> torch.Tensor:
        """get() then float_precision(): the plaintext value, revealed to the client."""
        return self.get().float_precision()

    def refresh(self) -> FixedPrecisionTensor:
        self._require_shared("refresh")
        return self._wrap(self.child.refresh())  # type: ignore[union-attr]

    # -- shape -------------------------------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return self.child.shape

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def __len__(self) -> int:
        return self.shape[0]

    def _map(self, fn) -> FixedPrecisionTensor:
        child = self.child.map(fn) if self.is_shared else fn(self.child)  # type: ignore[union-attr]
        return FixedPrecisionTensor(child, self.encoder)

    def view(self, *shape) -> FixedPrecisionTensor:
        return self._map(lambda t: t.view(*shape))

    def reshape(self, *shape) -> FixedPrecisionTensor:
        return self._map(lambda t: t.reshape(*shape))

    def view_as(self, other: FixedPrecisionTensor | torch.Tensor) -> FixedPrecisionTensor:
        return self.view(other.shape)

    def t(self) -> FixedPrecisionTensor:
        return self._map(torch.t)

    def transpose(self, dim0: int, dim1: int) -> FixedPrecisionTensor:
        return self._map(lambda t: t.transpose(dim0, dim1))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> FixedPrecisionTensor:
        return self._map(lambda t: t.flatten(start_dim, end_dim))

    def unsqueeze(self, dim: int) -> FixedPrecisionTensor:
        return self._map(lambda t: t.unsqueeze(dim))

    def squeeze(self, dim: int | None = None) -> FixedPrecisionTensor:
        return self._map(lambda t: t.squeeze() if dim is None else t.squeeze(dim))

    def expand(self, *shape) -> FixedPrecisionTensor:
        return self._map(lambda t: t.expand(*shape))

    def __getitem__(self, index) -> FixedPrecisionTensor:
        return self._map(lambda t: t[index])

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        if dim is None:
            return self._map(torch.sum)
        return self._map(lambda t: t.sum(dim, keepdim=keepdim))

    def mean(self, dim: int | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        count = self.numel() if dim is None else self.shape[dim]
        return self.sum(dim, keepdim) / count

    # -- arithmetic --------------------------------------------------------------------------------
    def _wrap(self, child: Ring) -> FixedPrecisionTensor:
        return FixedPrecisionTensor(child, self.encoder)

    def _require_shared(self, what: str) -> None:
        if not self.is_shared:
            raise NotSharedError(f"{what}() needs a secret-shared tensor; this one is public (call .share() first)")

    def _coerce(self, other: Operand) -> FixedPrecisionTensor:
        """Another operand as a FixedPrecisionTensor with this encoder, checking precision."""
        if isinstance(other, FixedPrecisionTensor):
            if other.encoder != self.encoder:
                raise PrecisionMismatchError(
                    f"cannot combine fixed-point tensors of different precisions: {self.encoder.describe()} "
                    f"and {other.encoder.describe()}; use the same fix_precision() arguments for both"
                )
            return other
        if isinstance(other, torch.Tensor) and not other.is_floating_point() and other.dtype != torch.bool:
            other = other.to(torch.float64)
        return FixedPrecisionTensor.encode(other, self.encoder)

    def __add__(self, other: Operand) -> FixedPrecisionTensor:
        other = self._coerce(other)
        _check_broadcast(self.shape, other.shape, "+")
        return self._wrap(_add(self.child, other.child))

    __radd__ = __add__

    def __neg__(self) -> FixedPrecisionTensor:
        return self._map(torch.neg)

    def __sub__(self, other: Operand) -> FixedPrecisionTensor:
        return self + (-self._coerce(other))

    def __rsub__(self, other: Operand) -> FixedPrecisionTensor:
        return (-self) + other

    def __mul__(self, other: Operand) -> FixedPrecisionTensor:
        if isinstance(other, int) and not isinstance(other, bool):
            return self._map(lambda t: t * other)  # an integer factor needs no rescaling
        other = self._coerce(other)
        _check_broadcast(self.shape, other.shape, "*")
        return self._product(other, torch.mul)

    __rmul__ = __mul__

    def __matmul__(self, other: Operand) -> FixedPrecisionTensor:
        other = self._coerce(other)
        _check_matmul(self.shape, other.shape)
        return self._product(other, torch.matmul)

    def __rmatmul__(self, other: Operand) -> FixedPrecisionTensor:
        return self._coerce(other) @ self

    def _product(self, other: FixedPrecisionTensor, op) -> FixedPrecisionTensor:
        """op(x, y) for a bilinear op, rescaled by one factor of the scale."""
        if self.is_shared and other.is_shared:
            raw = (matmul if op is torch.matmul else mul)(self.child, other.child)  # type: ignore[arg-type]
        elif self.is_shared or other.is_shared:
            shared, public = (self, other) if self.is_shared else (other, self)
            first_is_shared = self.is_shared
            raw = shared.child.map(lambda s: op(s, public.child) if first_is_shared else op(public.child, s))  # type: ignore[union-attr]
        else:
            raw = op(self.child, other.child)
            return self._wrap(torch.div(raw, self.encoder.scale, rounding_mode="floor"))
        return self._wrap(truncate(raw, self.encoder.scale))

    def __truediv__(self, other: Operand) -> FixedPrecisionTensor:
        if isinstance(other, FixedPrecisionTensor) and other.is_shared:
            raise NotImplementedError("division by a secret-shared value is not supported; divide by a public number")
        if isinstance(other, FixedPrecisionTensor):  # public: divide by its value
            other = other.float_precision()
        if isinstance(other, int) and not isinstance(other, bool):
            if other == 0:
                raise ZeroDivisionError("division of a fixed-point tensor by zero")
            if other < 0:
                return -(self / -other)
            if not self.is_shared:
                return self._wrap(torch.div(self.child, other, rounding_mode="floor"))
            return self._wrap(truncate(self.child, other))  # type: ignore[arg-type]
        divisor = torch.as_tensor(other, dtype=torch.float64)
        if (divisor == 0).any():
            raise ZeroDivisionError("division of a fixed-point tensor by zero")
        return self * (1.0 / divisor)

    def __pow__(self, exponent: int) -> FixedPrecisionTensor:
        if not isinstance(exponent, int) or exponent < 1:
            raise ValueError(f"only positive integer powers are supported on encrypted values, got {exponent!r}")
        result = self
        for _ in range(exponent - 1):
            result = result * self
        return result

    # -- comparisons ---------------------------------------------------------------------------------
    def relu_with_derivative(self) -> tuple[FixedPrecisionTensor, AdditiveSharingTensor]:
        """max(x, 0) and the shared bit [x >= 0], computed without revealing any sign."""
        self._require_shared("relu")
        relu, positive = relu_and_bit(self.child)  # type: ignore[arg-type]
        return self._wrap(relu), positive  # type: ignore[arg-type]

    def relu(self) -> FixedPrecisionTensor:
        return self.relu_with_derivative()[0]

    def _bits_to_fixed(self, bits: AdditiveSharingTensor) -> FixedPrecisionTensor:
        return self._wrap(bits.mul_public(self.encoder.scale))

    def _negative_bits(self, other: Operand | None = None) -> AdditiveSharingTensor:
        self._require_shared("comparison")
        diff = self if other is None else self - other
        return is_negative(diff.child)  # type: ignore[arg-type]

    def lt(self, other: Operand) -> FixedPrecisionTensor:
        """1.0 where self < other, else 0.0 (still encrypted)."""
        return self._bits_to_fixed(self._negative_bits(other))

    def gt(self, other: Operand) -> FixedPrecisionTensor:
        return (-self).lt(-self._coerce(other))

    def ge(self, other: Operand) -> FixedPrecisionTensor:
        return self._bits_to_fixed(_not(self._negative_bits(other)))

    def le(self, other: Operand) -> FixedPrecisionTensor:
        return (-self).ge(-self._coerce(other))

    __lt__, __gt__, __ge__, __le__ = lt, gt, ge, le
    __hash__ = object.__hash__  # identity, as for torch tensors; == is the encrypted comparison

    def eq(self, other: Operand) -> FixedPrecisionTensor:
        """1.0 where the encodings are equal: neither x < y nor y < x, both signs found in one pass."""
        diff = (self - other).child
        signs = is_negative(_stack(diff, -diff))  # type: ignore[operator]
        below, above = signs.map(lambda s: s[0]), signs.map(lambda s: s[1])
        return self._bits_to_fixed(_not(below + above))

    __eq__ = eq  # type: ignore[assignment]

    def argmax(self, dim: int = -1) -> FixedPrecisionTensor:
        """Index of the largest value along dim (the first one on ties), as an encrypted number.

        A tournament: neighbours are compared pairwise and the larger one (with its index) moves
        on, so ceil(log2 n) comparison rounds for n values.
        """
        self._require_shared("argmax")
        values = self.transpose(dim, -1) if dim not in (-1, self.dim() - 1) else self
        n = values.shape[-1]
        index_values = torch.arange(n, dtype=torch.float64).expand(values.shape)
        indices = FixedPrecisionTensor(AdditiveSharingTensor.public(self.session, self.encoder.encode(index_values)),
                                       self.encoder)
        while values.shape[-1] > 1:
            pairs = values.shape[-1] // 2 * 2
            left, right = values[..., 0:pairs:2], values[..., 1:pairs:2]
            left_i, right_i = indices[..., 0:pairs:2], indices[..., 1:pairs:2]
            right_wins = is_negative((left - right).child)  # type: ignore[arg-type]
            deltas = _stack((right - left).child, (right_i - left_i).child)  # type: ignore[arg-type]
            chosen = mul(deltas, _stack(right_wins, right_wins))
            new_values = left + self._wrap(chosen.map(lambda s: s[0]))
            new_indices = left_i + self._wrap(chosen.map(lambda s: s[1]))
            if values.shape[-1] > pairs:
                new_values = _cat_last(new_values, values[..., pairs:])
                new_indices = _cat_last(new_indices, indices[..., pairs:])
            values, indices = new_values, new_indices
        return indices.squeeze(-1)

    def __repr__(self) -> str:
        if self.is_shared:
            return f"FixedPrecisionTensor>{self.child!r} ({self.encoder.describe()})"
        return f"FixedPrecisionTensor({self.float_precision()}, {self.encoder.describe()})"


def products_together(pairs: Sequence[tuple[FixedPrecisionTensor, Operand] | None], op=torch.mul
                      ) -> list[FixedPrecisionTensor | None]:
    """Independent products op(x, y) in one round (None entries are skipped); public operands
    need no round at all."""
    results: list[FixedPrecisionTensor | None] = [None] * len(pairs)
    shared = []
    for index, pair in enumerate(pairs):
        if pair is None:
            continue
        left, right = pair[0], pair[0]._coerce(pair[1])
        if op is torch.matmul:
            _check_matmul(left.shape, right.shape)
        else:
            _check_broadcast(left.shape, right.shape, "*")
        if left.is_shared and right.is_shared:
            shared.append((index, left, right))
        else:
            results[index] = left._product(right, op)
    together = matmuls if op is torch.matmul else muls  # (timed as linear layers / elementwise products)
    raw = together([(left.child, right.child) for _, left, right in shared]) if shared else []
    for (index, left, _), product in zip(shared, raw):
        results[index] = left._wrap(truncate(product, left.encoder.scale))
    return results


def matmul_together(pairs: Sequence[tuple[FixedPrecisionTensor, FixedPrecisionTensor] | None]
                    ) -> list[FixedPrecisionTensor | None]:
    """Independent shared matrix products in one round (None entries are skipped)."""
    return products_together(pairs, torch.matmul)


# -- helpers ------------------------------------------------------------------------------------------
def _add(x: Ring, y: Ring) -> Ring:
    if isinstance(x, AdditiveSharingTensor) and isinstance(y, AdditiveSharingTensor):
        return x + y
    if isinstance(x, AdditiveSharingTensor):
        return x.add_public(y)  # type: ignore[arg-type]
    if isinstance(y, AdditiveSharingTensor):
        return y.add_public(x)
    return x + y


def _not(bits: AdditiveSharingTensor) -> AdditiveSharingTensor:
    """1 - b for a shared bit b."""
    return (-bits).add_public(torch.ones((), dtype=torch.int64))


def _stack(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    x._same_parties(y)
    return AdditiveSharingTensor(x.session, {w: torch.stack([x.share_of(w), y.share_of(w)])
                                             for w in x.session.local_workers}, torch.Size((2, *x.shape)))


def _cat_last(x: FixedPrecisionTensor, y: FixedPrecisionTensor) -> FixedPrecisionTensor:
    return x._wrap(x.child.zip(y.child, lambda a, b: torch.cat([a, b], dim=-1)))  # type: ignore[union-attr]


def _check_broadcast(a: torch.Size, b: torch.Size, op: str) -> None:
    if a == b:
        return
    try:
        broadcast_shapes(tuple(a), tuple(b))
    except ValueError:
        raise ValueError(f"shape mismatch for {op}: {tuple(a)} and {tuple(b)} cannot be broadcast together") from None


def _check_matmul(a: torch.Size, b: torch.Size) -> None:
    if len(a) == 0 or len(b) == 0:
        raise ValueError("matmul needs tensors with at least one dimension")
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        raise ValueError(f"shape mismatch for @: {tuple(a)} @ {tuple(b)} (inner sizes {inner_a} and {inner_b} differ)")
