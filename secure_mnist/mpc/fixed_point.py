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
from . import compat
from .primitives.beaver import bilinears, matmul, matmuls, mul, muls
from .primitives.comparison import is_negative, relu_and_bit
from .primitives.truncation import truncate, truncate_each
from .public import check_factors, reciprocal_fractions
from .session import Session, session_for
from .shapes import broadcast_shapes, output_shape_of
from .sharing import AdditiveSharingTensor, reveal_to, share_secret
from .windows import gather

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
              requires_grad: bool = False, protocol: str | None = None, dtype: str | None = None,
              field: int | None = None) -> Any:
        """Split into additive shares; the owner (by default the client) sends one to each worker.

        Pass a Session, or PySyft-style the two workers and `crypto_provider=` (which may come
        later: only products and comparisons need it). With `requires_grad=True` the result is
        an AutogradTensor, ready for backpropagation. `protocol`, `dtype` and `field` are PySyft's
        keywords: checked, and then the same protocol runs in Z_2^64 (see mpc/compat.py).
        """
        compat.check_sharing_keywords(protocol=protocol, dtype=dtype, field=field)
        if self.is_shared:
            raise ValueError("this tensor is already shared; use .refresh() for fresh shares")
        if len(parties) == 1 and isinstance(parties[0], Session):
            session = parties[0]
        else:
            session = session_for(parties, crypto_provider)
        shared = self._wrap(share_secret(session, owner or session.client, self.child))  # type: ignore[arg-type]
        if requires_grad:
            from ..autograd import AutogradTensor

            return AutogradTensor(shared, requires_grad=True)
        return shared

    def share_(self, *parties: Any, crypto_provider: Any = None, owner: Party | None = None,
               protocol: str | None = None, dtype: str | None = None, field: int | None = None) -> FixedPrecisionTensor:
        """share(), in place: this object becomes the shared tensor (PySyft's `share_`)."""
        self.child = self.share(*parties, crypto_provider=crypto_provider, owner=owner, protocol=protocol,
                                dtype=dtype, field=field).child
        return self

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

    float_prec = float_precision

    def decrypt(self) -> torch.Tensor:
        """get() then float_precision(): the plaintext value, revealed to the client."""
        return self.get().float_precision()

    def refresh(self) -> FixedPrecisionTensor:
        self._require_shared("refresh")
        return self._wrap(self.child.refresh())  # type: ignore[union-attr]

    def copy(self) -> FixedPrecisionTensor:
        """The same value in new tensors (PySyft's `copy()`); shares are copied, not re-randomised."""
        return self._map(torch.clone)

    def __deepcopy__(self, memo: dict) -> FixedPrecisionTensor:
        return self.copy()

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

    def __bool__(self) -> bool:
        """Refused on shares: `x == y` and `x > y` are encrypted, so `if x > y:` (or `x in list`)
        must not quietly test the tensor's length instead."""
        if self.is_shared:
            raise NotSharedError("the truth value of an encrypted tensor is unknown here (comparisons are "
                                 "encrypted too): call .get() first, or compute with the comparison's 0/1 result")
        return bool(self.child)

    def _map(self, fn) -> FixedPrecisionTensor:
        child = self.child.map(fn) if self.is_shared else fn(self.child)  # type: ignore[union-attr]
        return self._wrap(child)

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

    def squeeze(self, dim: int | tuple[int, ...] | None = None) -> FixedPrecisionTensor:
        return self._map(lambda t: t.squeeze() if dim is None else t.squeeze(dim))

    def permute(self, *dims) -> FixedPrecisionTensor:
        return self._map(lambda t: t.permute(*dims))

    def expand(self, *shape) -> FixedPrecisionTensor:
        return self._map(lambda t: t.expand(*shape))

    def __getitem__(self, index) -> FixedPrecisionTensor:
        return self._map(lambda t: t[index])

    def sum(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        if dim is None:
            return self._map(torch.sum)
        dim = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        return self._map(lambda t: t.sum(dim, keepdim=keepdim))

    def mean(self, dim: int | Sequence[int] | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        """The sum divided by the count (a truncation: exact to one step)."""
        return self.sum(dim, keepdim) / reduced_count(self.shape, dim)

    def _gather(self, positions: torch.Tensor) -> FixedPrecisionTensor:
        """Windows of every sample, local: element i of the result is element positions[i] - 1 of
        the sample flattened, or 0 where positions[i] == 0 (padding). See mpc/windows.py."""
        return self._map(lambda t: gather(t, positions))

    # -- arithmetic --------------------------------------------------------------------------------
    def _wrap(self, child: Ring) -> FixedPrecisionTensor:
        return type(self)(child, self.encoder)

    def _require_shared(self, what: str) -> None:
        if not self.is_shared:
            raise NotSharedError(f"{what}() needs a secret-shared tensor; this one is public (call .share() first)")

    def _coerce(self, other: Operand) -> FixedPrecisionTensor:
        """Another operand as a FixedPrecisionTensor with this encoder, checking precision."""
        if records_gradients(other):  # an AutogradTensor where no gradient is kept (a comparison)
            other = other.child  # type: ignore[union-attr]
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
        if records_gradients(other):
            return NotImplemented  # AutogradTensor.__radd__ records the gradient
        other = self._coerce(other)
        _check_broadcast(self.shape, other.shape, "+")
        return self._wrap(_add(self.child, other.child))

    __radd__ = __add__

    def __neg__(self) -> FixedPrecisionTensor:
        return self._map(torch.neg)

    def __sub__(self, other: Operand) -> FixedPrecisionTensor:
        if records_gradients(other):
            return NotImplemented
        return self + (-self._coerce(other))

    def __rsub__(self, other: Operand) -> FixedPrecisionTensor:
        return (-self) + other

    def __mul__(self, other: Operand) -> FixedPrecisionTensor:
        if records_gradients(other):
            return NotImplemented
        if isinstance(other, int) and not isinstance(other, bool):
            return self._map(lambda t: t * other)  # an integer factor needs no rescaling
        check_factors(other, self.encoder)
        other = self._coerce(other)
        _check_broadcast(self.shape, other.shape, "*")
        return self._product(other, torch.mul)

    __rmul__ = __mul__

    def __matmul__(self, other: Operand) -> FixedPrecisionTensor:
        if records_gradients(other):
            return NotImplemented
        other = self._coerce(other)
        _check_matmul(self.shape, other.shape)
        return self._product(other, torch.matmul)

    def __rmatmul__(self, other: Operand) -> FixedPrecisionTensor:
        return self._coerce(other) @ self

    def dot(self, other: Operand) -> FixedPrecisionTensor:
        """torch.dot: the inner product of two 1-D tensors."""
        if records_gradients(other):
            return NotImplemented
        other = self._coerce(other)
        if self.dim() != 1 or other.dim() != 1 or self.shape != other.shape:
            raise ValueError(f"dot needs two 1-D tensors of the same size, got {tuple(self.shape)} and {tuple(other.shape)}")
        return self @ other

    def _product(self, other: FixedPrecisionTensor, op) -> FixedPrecisionTensor:
        """op(x, y) for a bilinear op, rescaled by one factor of the scale.

        Public x public rounds to nearest (PySyft did); a shared operand truncates stochastically.
        """
        if self.is_shared and other.is_shared:
            if op is torch.matmul or op is torch.mul:
                raw = (matmul if op is torch.matmul else mul)(self.child, other.child)  # type: ignore[arg-type]
            else:
                (raw,) = bilinears([(self.child, other.child, op)])  # type: ignore[list-item]
        elif self.is_shared or other.is_shared:
            shared, public = (self, other) if self.is_shared else (other, self)
            first_is_shared = self.is_shared
            raw = shared.child.map(lambda s: op(s, public.child) if first_is_shared else op(public.child, s))  # type: ignore[union-attr]
        else:
            return self._wrap(_divide_to_nearest(op(self.child, other.child), self.encoder.scale))
        return self._wrap(truncate(raw, self.encoder.scale))

    def __truediv__(self, other: Operand) -> FixedPrecisionTensor:
        """Division by a public number, exact to one step (see mpc/public.py); by a shared one,
        multiply by its reciprocal instead."""
        if records_gradients(other):
            return NotImplemented
        if isinstance(other, FixedPrecisionTensor) and other.is_shared:
            raise NotImplementedError("division by a secret-shared value is not supported; divide by a public number")
        if isinstance(other, FixedPrecisionTensor):  # public: divide by its value
            other = other.float_precision()
        divisors = torch.as_tensor(other, dtype=torch.float64)
        if (divisors == 0).any():
            raise ZeroDivisionError("division of a fixed-point tensor by zero")
        _check_broadcast(self.shape, divisors.shape, "/")
        numerators, denominators = reciprocal_fractions(divisors, self.encoder)
        # x q / p as x k + x r / p, k = q // p towards zero: no product can wrap (see mpc/public.py)
        whole = torch.div(numerators, denominators, rounding_mode="trunc")
        rest = numerators - whole * denominators
        if not self.is_shared:
            return self._wrap(self.child * whole + _divide_to_nearest(self.child * rest, denominators))  # type: ignore[operator]
        scaled = self.child
        if divisors.dim() or int(rest) != 1:  # x * r: exact, local
            scaled = scaled.map(lambda s: s * rest)  # type: ignore[union-attr]
        if denominators.numel() == 1:
            quotient = truncate(scaled, int(denominators.reshape(())))  # type: ignore[arg-type]
        else:
            quotient = truncate_each(scaled, denominators)  # type: ignore[arg-type]
        if bool((whole != 0).any()):
            quotient = _add(quotient, self.child.map(lambda s: s * whole))  # type: ignore[union-attr]
        return self._wrap(quotient)

    def add_(self, other: Operand) -> FixedPrecisionTensor:
        """self + other, in place (the object now holds new shares; shares are never changed in place)."""
        result = self + other
        if result is NotImplemented:
            raise TypeError("add_ of a FixedPrecisionTensor and an AutogradTensor: write x = other + x instead")
        self.child = result.child
        return self

    def sub_(self, other: Operand) -> FixedPrecisionTensor:
        """self - other, in place."""
        result = self - other
        if result is NotImplemented:
            raise TypeError("sub_ of a FixedPrecisionTensor and an AutogradTensor: write x = x - other instead")
        self.child = result.child
        return self

    def __pow__(self, exponent: int) -> FixedPrecisionTensor:
        if not isinstance(exponent, int) or exponent < 1:
            raise ValueError(f"only positive integer powers are supported on encrypted values, got {exponent!r}")
        result = self
        for _ in range(exponent - 1):
            result = result * self
        return result

    # -- comparisons ---------------------------------------------------------------------------------
    def relu_with_derivative(self) -> tuple[FixedPrecisionTensor, Ring]:
        """max(x, 0) and the bit [x >= 0] (shared if x is), computed without revealing any sign."""
        if not self.is_shared:
            positive = (self.child >= 0).to(torch.int64)  # type: ignore[operator]
            return self._wrap(self.child * positive), positive  # type: ignore[operator]
        relu, positive = relu_and_bit(self.child)  # type: ignore[arg-type]
        return self._wrap(relu), positive  # type: ignore[arg-type]

    def relu(self) -> FixedPrecisionTensor:
        return self.relu_with_derivative()[0]

    def _bits_to_fixed(self, bits: Ring) -> FixedPrecisionTensor:
        if isinstance(bits, AdditiveSharingTensor):
            return self._wrap(bits.mul_public(self.encoder.scale))
        return self._wrap(bits * self.encoder.scale)

    def _negative_bits(self, other: Operand | None = None) -> Ring:
        """[self < other] as integers 0 and 1: shared if either side is, else plain."""
        diff = self if other is None else self - self._coerce(other)
        if not diff.is_shared:
            return (diff.child < 0).to(torch.int64)  # type: ignore[operator]
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
        difference = self - self._coerce(other)
        if not difference.is_shared:
            return self._bits_to_fixed((difference.child == 0).to(torch.int64))  # type: ignore[union-attr]
        diff = difference.child
        signs = is_negative(_stack(diff, -diff))  # type: ignore[operator]
        below, above = signs.map(lambda s: s[0]), signs.map(lambda s: s[1])
        return self._bits_to_fixed(_not(below + above))

    __eq__ = eq  # type: ignore[assignment]

    # -- approximations (mpc/approximations.py): each for a stated input range, with its max error ---
    def exp(self, lower: float | None = None, upper: float | None = None, **pysyft_options: Any) -> FixedPrecisionTensor:
        """e^x on [lower, upper] (default [-8, 4]); inputs outside are clipped to it."""
        from . import approximations

        compat.check_approximation_options("exp", pysyft_options)
        return approximations.exp(self, lower, upper)

    def log(self, lower: float | None = None, upper: float | None = None, **pysyft_options: Any) -> FixedPrecisionTensor:
        """Natural log on [lower, upper] (default [0.02, 50]); inputs outside are clipped to it."""
        from . import approximations

        compat.check_approximation_options("log", pysyft_options)
        return approximations.log(self, lower, upper)

    def reciprocal(self, lower: float | None = None, upper: float | None = None,
                   **pysyft_options: Any) -> FixedPrecisionTensor:
        """1/x on [lower, upper] (default [0.05, 50]); inputs outside are clipped to it."""
        from . import approximations

        compat.check_approximation_options("reciprocal", pysyft_options)
        return approximations.reciprocal(self, lower, upper)

    def sqrt(self, lower: float | None = None, upper: float | None = None, **pysyft_options: Any) -> FixedPrecisionTensor:
        """Square root on [lower, upper] (default [0.01, 100]); inputs outside are clipped to it."""
        from . import approximations

        compat.check_approximation_options("sqrt", pysyft_options)
        return approximations.sqrt(self, lower, upper)

    def sigmoid(self, bound: float | None = None, **pysyft_options: Any) -> FixedPrecisionTensor:
        """1 / (1 + e^-x) for every x (exact to its stated error; beyond +-bound, default 16, the
        value at the bound)."""
        from . import approximations

        compat.check_approximation_options("sigmoid", pysyft_options)
        return approximations.sigmoid(self, bound)

    def tanh(self, bound: float | None = None, **pysyft_options: Any) -> FixedPrecisionTensor:
        """tanh x = 2 sigmoid(2x) - 1 (beyond +-bound, default 8, the value at the bound)."""
        from . import approximations

        compat.check_approximation_options("tanh", pysyft_options)
        return approximations.tanh(self, bound)

    # -- the largest and smallest values: a knockout tournament (mpc/tournament.py) -----------------
    def max(self, dim: int | Operand | None = None, keepdim: bool = False) -> Any:
        """torch's max: the largest value (dim=None); (values, indices) along dim; or, given another
        tensor, the elementwise maximum. Ties go to the first index, as in torch."""
        from .tournament import largest

        if dim is not None and not isinstance(dim, int):
            return _elementwise_max(self, self._coerce(dim))
        return largest(self, dim, keepdim)

    def min(self, dim: int | Operand | None = None, keepdim: bool = False) -> Any:
        """torch's min, as max of the negation."""
        from .tournament import largest

        if dim is not None and not isinstance(dim, int):
            return -_elementwise_max(-self, -self._coerce(dim))
        result = largest(-self, dim, keepdim)
        if dim is None:
            return -result
        return torch.return_types.min((-result.values, result.indices))

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        """Index of the largest value (the first one on ties), as an encrypted number; with
        dim=None, the index into the flattened tensor, as torch.argmax. ceil(log2 n) rounds of
        comparisons for n values."""
        from .tournament import largest_index

        return largest_index(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> FixedPrecisionTensor:
        from .tournament import largest_index

        return largest_index(-self, dim, keepdim)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch.* and torch.nn.functional calls on encrypted values (see secure_mnist/functional.py)."""
        from ..functional import dispatch

        return dispatch(func, args, kwargs or {}, autograd=False)

    def __repr__(self) -> str:
        if self.is_shared:
            return f"FixedPrecisionTensor>{self.child!r} ({self.encoder.describe()})"
        return f"FixedPrecisionTensor({self.float_precision()}, {self.encoder.describe()})"


def products_together(pairs: Sequence[tuple[FixedPrecisionTensor, Operand] | None], op=torch.mul
                      ) -> list[FixedPrecisionTensor | None]:
    """Independent products op(x, y) in one round (None entries are skipped); public operands
    need no round at all."""
    return bilinear_together([None if pair is None else (pair[0], pair[1], op) for pair in pairs])


def bilinear_together(products: Sequence[tuple[FixedPrecisionTensor, Operand, Any] | None]
                      ) -> list[FixedPrecisionTensor | None]:
    """Independent products op(x, y), each by its own bilinear op, in one round (None entries
    are skipped); public operands need no round at all."""
    results: list[FixedPrecisionTensor | None] = [None] * len(products)
    shared = []
    for index, product in enumerate(products):
        if product is None:
            continue
        left, right, op = product[0], product[0]._coerce(product[1]), product[2]
        if op is torch.matmul:
            _check_matmul(left.shape, right.shape)
        elif op is torch.mul:
            _check_broadcast(left.shape, right.shape, "*")
        if left.is_shared and right.is_shared:
            shared.append((index, left, right, op))
        else:
            results[index] = left._product(right, op)
    if shared:
        ops = {op for *_, op in shared}
        together = matmuls if ops == {torch.matmul} else muls if ops == {torch.mul} else None
        if together is not None:  # (timed as linear layers / elementwise products)
            raw = together([(left.child, right.child) for _, left, right, _ in shared])
        else:
            raw = bilinears([(left.child, right.child, op) for _, left, right, op in shared])
        for (index, left, _, _), product in zip(shared, raw):
            results[index] = left._wrap(truncate(product, left.encoder.scale))
    return results


def matmul_together(pairs: Sequence[tuple[FixedPrecisionTensor, FixedPrecisionTensor] | None]
                    ) -> list[FixedPrecisionTensor | None]:
    """Independent shared matrix products in one round (None entries are skipped)."""
    return products_together(pairs, torch.matmul)


def join(tensors: Sequence[Operand], dim: int = 0, stack: bool = False) -> FixedPrecisionTensor:
    """torch.cat (or torch.stack) of fixed-point tensors, local: each worker joins its own shares;
    public tensors among them are held by the first worker."""
    tensors = list(tensors)
    model = next((t for t in tensors if isinstance(t, FixedPrecisionTensor)), None)
    if model is None:
        raise TypeError("cat/stack of encrypted tensors needs at least one FixedPrecisionTensor")
    parts = [model._coerce(t) for t in tensors]
    combine = torch.stack if stack else torch.cat
    shared = [p for p in parts if p.is_shared]
    if not shared:
        return model._wrap(combine([p.child for p in parts], dim))  # type: ignore[misc]
    session = shared[0].session
    rings = []
    for part in parts:
        if part.is_shared:
            shared[0].child._same_parties(part.child)  # type: ignore[union-attr]
            rings.append(part.child)
        else:
            rings.append(AdditiveSharingTensor.public(session, part.child))  # type: ignore[arg-type]
    shares = {w: combine([r.share_of(w) for r in rings], dim) for w in session.local_workers}
    shape = output_shape_of(lambda *ts: combine(ts, dim), *(r.shape for r in rings))
    return model._wrap(AdditiveSharingTensor(session, shares, shape))


# -- helpers ------------------------------------------------------------------------------------------
def records_gradients(value: object) -> bool:
    """Whether `value` is an AutogradTensor: it handles mixed operations itself, recording gradients."""
    return getattr(type(value), "_records_gradients", False)


def reduced_count(shape: torch.Size, dim: int | Sequence[int] | None) -> int:
    """How many elements a reduction over `dim` adds up (all of them for None)."""
    if dim is None:
        return shape.numel()
    dims = dim if isinstance(dim, (list, tuple)) else (dim,)
    count = 1
    for d in dims:
        count *= shape[d]
    return count


def _divide_to_nearest(raw: torch.Tensor, divisor: int | torch.Tensor) -> torch.Tensor:
    """raw / divisor rounded to the nearest integer (halves up), for public values."""
    half = divisor // 2
    return torch.div(raw + half, divisor, rounding_mode="floor")


def _elementwise_max(x: FixedPrecisionTensor, y: FixedPrecisionTensor) -> FixedPrecisionTensor:
    """torch.maximum(x, y) = y + relu(x - y): one comparison."""
    _check_broadcast(x.shape, y.shape, "max")
    difference = x - y
    if not difference.is_shared:
        return x._wrap(torch.maximum(x.child, y.child))  # type: ignore[arg-type]
    return y + difference.relu()


def _add(x: Ring, y: Ring) -> Ring:
    if isinstance(x, AdditiveSharingTensor) and isinstance(y, AdditiveSharingTensor):
        return x + y
    if isinstance(x, AdditiveSharingTensor):
        return x.add_public(y)  # type: ignore[arg-type]
    if isinstance(y, AdditiveSharingTensor):
        return y.add_public(x)
    return x + y


def _not(bits: Ring) -> Ring:
    """1 - b for a bit b, shared or plain."""
    if not isinstance(bits, AdditiveSharingTensor):
        return 1 - bits
    return (-bits).add_public(torch.ones((), dtype=torch.int64))


def _stack(x: AdditiveSharingTensor, y: AdditiveSharingTensor) -> AdditiveSharingTensor:
    x._same_parties(y)
    return AdditiveSharingTensor(x.session, {w: torch.stack([x.share_of(w), y.share_of(w)])
                                             for w in x.session.local_workers}, torch.Size((2, *x.shape)))


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
