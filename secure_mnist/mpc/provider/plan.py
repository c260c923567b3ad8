"""The crypto provider deals from a plan instead of replaying the workers' program.

In its own process the crypto provider used to run the whole training step, like every party,
only to learn what to deal next. Yet what it deals depends on shapes alone, never on values: a
step on a batch of the same shape, whose inputs were opened before or not in the same way, asks
for the same randomness in the same order. So the provider runs each kind of step once, records
its requests (the step's plan), and deals every later step of that kind from the plan, without
running the step: no autograd, no shapes to work out, no Python per operation.

A plan names masks symbolically: a mask dealt earlier in the same step (by request and place),
or the mask under which one of the step's inputs (a batch, a parameter) was opened before the
step, each with the maps (transposes, reshapes) applied to it since. After dealing, the provider
sets what it knows of the inputs' openings as the step would have left it (a batch opened for
good, a parameter replaced by its update).

Agreement, every step: the provider sends each worker a digest of the requests it served (sizes
and kinds, in order); each worker compares it with a digest of the requests it made, before
anything of the step is revealed, and stops on a difference, naming the step. The digest does
not cover which earlier mask a product used (that changes no size): that a plan names the right
masks is what tests/test_dealer_plans.py checks, bit for bit against replaying. The provider
still receives nothing. A step the recorder cannot capture (a mask it cannot name, a function
holding values of the step, a view left opened under a mask of its own) is replayed, as
before; SECURE_MNIST_DEALER_PLANS=0 replays every step.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ...errors import DealerPlanError
from ..opening import Mask, MaskOrigin, Opening

if TYPE_CHECKING:
    from ..session import Session
    from ..sharing import AdditiveSharingTensor

PLANS_VARIABLE = "SECURE_MNIST_DEALER_PLANS"
Map = Callable[[torch.Tensor], torch.Tensor]


class KeepMasks:
    """The provider's side of `random_masks`: the drawn words are the masks themselves."""

    def __init__(self, sizes: Sequence[int], shapes: Sequence[torch.Size]) -> None:
        self.sizes, self.shapes = list(sizes), list(shapes)
        self.values: list[torch.Tensor] = []

    def __call__(self, words: torch.Tensor) -> torch.Tensor:
        self.values = [part.view(shape) for part, shape in zip(words.split(self.sizes), self.shapes)]
        return words[:0]  # nothing derived, nothing sent


class MaskProducts:
    """The provider's side of `mask_products`: c = op(a, b) for masks it dealt before."""

    def __init__(self, products: Sequence[tuple[Mask, Mask, Callable]], ring_op: Callable) -> None:
        self.products, self.ring_op = list(products), ring_op

    def __call__(self, _: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.ring_op(op)(a.value, b.value).reshape(-1) for a, b, op in self.products])


# -- what a plan holds -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Dealt:
    """A mask dealt by request `request` of the same step (its `part`-th), then mapped by `maps`."""

    request: int
    part: int
    maps: tuple[Map, ...]


@dataclass(frozen=True)
class Held:
    """The mask under which input `index` (or its cached view at `path`) was opened before the
    step, as it was dealt, then mapped by `maps`."""

    index: int
    path: tuple
    maps: tuple[Map, ...]


Ref = Dealt | Held


@dataclass(frozen=True)
class Request:
    n_random: int
    n_derived: int
    sharing: str
    random_bits: bool
    derive: Any  # KeepMasks' shapes, products of Refs, or a function of the drawn words alone


@dataclass(frozen=True)
class NewMasks:
    sizes: list[int]
    shapes: list[torch.Size]


@dataclass(frozen=True)
class Products:
    products: list[tuple[Ref, Ref, Callable]]
    ring_op: Callable


KEEP, FORGET = "keep", "forget"  # what a step leaves of an input's opening (or the Ref of a new one)


class CannotPlan(Exception):
    """A mask the recorder cannot name: this kind of step is replayed."""


@dataclass
class Plan:
    requests: list[Request]
    after: list[str | Ref]  # per input

    def deal(self, session: Session, inputs: Sequence[AdditiveSharingTensor]) -> None:
        """Serve the step's requests in order, then leave the inputs' openings as the step would."""
        from .dealer import correlated_randomness

        dealt: list[list[torch.Tensor]] = []

        def base(ref: Ref) -> torch.Tensor:
            if isinstance(ref, Dealt):
                return dealt[ref.request][ref.part]
            return _view_at(inputs[ref.index], ref.path).opening.mask.origin.base  # type: ignore[union-attr]

        def value(ref: Ref) -> torch.Tensor:
            tensor = base(ref)
            for fn in ref.maps:
                tensor = fn(tensor)
            return tensor

        for request in self.requests:
            derive = request.derive
            if isinstance(derive, NewMasks):
                derive = KeepMasks(derive.sizes, derive.shapes)
            elif isinstance(derive, Products):
                derive = MaskProducts([(Mask({}, value(a)), Mask({}, value(b)), op) for a, b, op in derive.products],
                                      derive.ring_op)
            correlated_randomness(session, request.n_random, request.n_derived, derive, request.sharing,
                                  request.random_bits)
            dealt.append(derive.values if isinstance(derive, KeepMasks) else [])
        for tensor, after in zip(inputs, self.after):
            if after == FORGET:
                tensor.forget_opening()
            elif after != KEEP:
                origin = MaskOrigin(base(after), after.maps)  # type: ignore[arg-type]
                tensor.opening = Opening(Mask({}, value(after), origin), {})  # type: ignore[arg-type]


class Recorder:
    """Watches the provider replay one step and writes down its plan."""

    def __init__(self, inputs: Sequence[AdditiveSharingTensor]) -> None:
        self.before = [t.opening for t in inputs]
        self.held = [(index, path, tensor.opening) for index, t in enumerate(inputs) for path, tensor in _opened(t)]
        self.requests: list[Request] = []
        self.dealt: dict[int, tuple[int, int]] = {}  # id of a mask as dealt -> (request, part)
        self._dealt_masks: list[torch.Tensor] = []  # keeps those ids valid for the step
        self.failed = False

    def request(self, n_random: int, n_derived: int, sharing: str, random_bits: bool, derive: Any) -> None:
        try:
            if isinstance(derive, KeepMasks):
                plan_derive: Any = NewMasks(derive.sizes, derive.shapes)
            elif isinstance(derive, MaskProducts):
                plan_derive = Products([(self.ref(a), self.ref(b), _pure(op)) for a, b, op in derive.products],
                                       derive.ring_op)
            else:
                plan_derive = _pure(derive)  # depends on the drawn words and on shapes only
        except CannotPlan:
            self.failed = True
            plan_derive = None
        self.requests.append(Request(n_random, n_derived, sharing, random_bits, plan_derive))

    def masks_dealt(self, masks: Sequence[Mask]) -> None:
        """The masks the last request drew (the provider's values, with their origins)."""
        for part, mask in enumerate(masks):
            self.dealt[id(mask.origin.base)] = (len(self.requests) - 1, part)  # type: ignore[union-attr]
            self._dealt_masks.append(mask.origin.base)  # type: ignore[union-attr]

    def ref(self, mask: Mask) -> Ref:
        origin = mask.origin
        if origin is None:
            raise CannotPlan
        for fn in origin.maps:
            _pure(fn)  # a map runs again on later steps' masks
        if id(origin.base) in self.dealt:
            request, part = self.dealt[id(origin.base)]
            return Dealt(request, part, origin.maps)
        for index, path, opening in self.held:
            if opening.mask.origin is not None and opening.mask.origin.base is origin.base:
                return Held(index, path, origin.maps)
        raise CannotPlan

    def finish(self, inputs_after: Sequence[AdditiveSharingTensor]) -> Plan | None:
        """The plan, or None if what the step leaves behind is more than a plan can set again: a
        view kept opened under a mask of its own (a plan sets an input's own opening only)."""
        after: list[str | Ref] = []
        for opening_before, tensor in zip(self.before, inputs_after):
            own = None if tensor.opening is None else tensor.opening.mask.origin
            for path, view in _opened(tensor):
                origin = view.opening.mask.origin  # type: ignore[union-attr]
                if path and (own is None or origin is None or origin.base is not own.base):
                    return None
            if tensor.opening is None:
                after.append(FORGET)
            elif tensor.opening is opening_before:
                after.append(KEEP)
            else:
                try:
                    after.append(self.ref(tensor.opening.mask))
                except CannotPlan:
                    return None
        return None if self.failed else Plan(self.requests, after)


def _pure(fn: Callable) -> Callable:
    """A function the plan may run again as it is: one that holds nothing of this step. Its
    closure and defaults may hold plain data (numbers, shapes, slices, dtypes), the session and
    functions of the same kind; anything else (a tensor, a mask, a shared value) would be stale
    on the next step, and the step is not planned."""
    if not _plain(fn, depth=8):
        raise CannotPlan
    return fn


_PLAIN_TYPES = (int, float, bool, str, bytes, type(None), slice, torch.Size, torch.dtype, type(Ellipsis))


def _plain(held: Any, depth: int) -> bool:
    from ..session import Session  # (this module is imported while the session's loads)

    if isinstance(held, (torch.Tensor, Mask)):
        return False
    if isinstance(held, (*_PLAIN_TYPES, Session)):
        return True
    if isinstance(held, (list, tuple)):
        return depth > 0 and all(_plain(item, depth - 1) for item in held)
    if isinstance(held, dict):
        return depth > 0 and all(_plain(item, depth - 1) for item in held.values())
    if isinstance(held, (types.BuiltinFunctionType, types.BuiltinMethodType)):
        return not isinstance(getattr(held, "__self__", None), torch.Tensor)  # torch.t, torch.matmul
    if isinstance(held, functools.partial):
        return depth > 0 and _plain(held.func, depth - 1) and _plain(held.args, depth - 1) \
            and _plain(held.keywords, depth - 1)
    if isinstance(held, types.FunctionType):
        if depth <= 0:
            return False
        cells = []
        for cell in held.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # a cell not filled yet
                continue
        return _plain(cells, depth - 1) and _plain(held.__defaults__ or (), depth - 1) \
            and _plain(held.__kwdefaults__ or {}, depth - 1)
    return False


def plan_key(inputs: Sequence[AdditiveSharingTensor]) -> tuple:
    """What decides a step's requests: its inputs' shapes, and which of them, or of the views kept
    with them (a transpose opened by a test pass), were opened before it."""
    return tuple((tuple(t.shape), tuple(path for path, _ in _opened(t))) for t in inputs)


def _opened(tensor: AdditiveSharingTensor, path: tuple = ()):
    """The tensor and the views kept with it (and theirs) that are opened: (path of view keys, view)."""
    if tensor.opening is not None:
        yield path, tensor
    for key, view in (tensor._views or {}).items():
        yield from _opened(view, (*path, key))


def _view_at(tensor: AdditiveSharingTensor, path: tuple) -> AdditiveSharingTensor:
    for key in path:
        tensor = tensor._views[key]  # type: ignore[index]
    return tensor


_UNRECORDED = object()


class Dealing:
    """One session's dealing, as this process sees it: the digest of the running step's requests
    (every party that deals or asks), and at a crypto provider in its own process, its plans."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.plans: dict[tuple, Plan | None] = {}
        self.use_plans = os.environ.get(PLANS_VARIABLE, "1") != "0"
        self.steps = 0
        self.steps_from_plans = 0  # of those, dealt from a plan (at a crypto provider in its own process)
        self._digest: Any = None
        self._recorder: Recorder | None = None

    # -- called by the dealer's functions ---------------------------------------------------------
    def on_request(self, n_random: int, n_derived: int, sharing: str, random_bits: bool, derive: Any) -> None:
        if self._digest is not None:
            self._digest.update(struct.pack("<qq?", n_random, n_derived, sharing == "xor") + bytes([random_bits]))
        if self._recorder is not None:
            self._recorder.request(n_random, n_derived, sharing, random_bits, derive)

    def masks_dealt(self, masks: Sequence[Mask]) -> None:
        if self._recorder is not None:
            self._recorder.masks_dealt(masks)

    # -- a step ------------------------------------------------------------------------------------
    def run_step(self, compute: Callable[[], Any], inputs: Callable[[], Sequence[AdditiveSharingTensor]],
                 kind: str = "step") -> Any:
        """Run one step of a loop (`compute`); `inputs` lists the shared tensors that live on from
        step to step (the batch, the parameters); `kind` names the loop (steps of two loops are
        never dealt from each other's plans). At a crypto provider alone in its process the step
        is dealt from its plan and `compute` does not run (None is returned)."""
        session = self.session
        provider_here = session.is_local(session.provider)
        remote_workers = [w for w in session.workers if not session.is_local(w)]
        checks = bool(session.local_workers) and not provider_here  # a worker, the provider elsewhere
        sends = provider_here and bool(remote_workers)  # the provider, some worker elsewhere
        if not (checks or sends):
            return compute()  # in one process the provider deals as the workers ask: nothing to check
        self.steps += 1
        self._digest = hashlib.blake2b(digest_size=8)
        try:
            if checks:
                result = compute()
                self._check_digest(self._digest.digest())
                return result
            alone = not session.local_workers and not session.is_local(session.client)
            result = self._deal_step(compute, inputs, kind) if alone else compute()
            digest = torch.frombuffer(bytearray(self._digest.digest()), dtype=torch.int64)
            for worker in remote_workers:
                session.comm.send(session.provider.name, worker.name, digest)
            return result
        finally:
            self._digest, self._recorder = None, None

    def _deal_step(self, compute: Callable[[], Any], inputs: Callable[[], Sequence[AdditiveSharingTensor]],
                   kind: str) -> None:
        held = list(inputs())
        key = (kind, plan_key(held))
        plan = self.plans.get(key, _UNRECORDED) if self.use_plans else None
        if isinstance(plan, Plan):
            plan.deal(self.session, held)
            self.steps_from_plans += 1
            return
        self._recorder = Recorder(held) if plan is _UNRECORDED else None
        compute()
        if self._recorder is not None:
            self.plans[key] = self._recorder.finish(inputs())

    def _check_digest(self, mine: bytes) -> None:
        session = self.session
        for worker in session.local_workers:
            theirs = session.comm.recv(worker.name, session.provider.name, (1,)).numpy().tobytes()
            self._compare(worker.name, theirs, mine)

    def _compare(self, worker: str, theirs: bytes, mine: bytes) -> None:
        if theirs != mine:
            raise DealerPlanError(
                f"step {self.steps}: the crypto provider dealt for other requests than {worker} made "
                f"(digest {theirs.hex()} against {mine.hex()}): the parties run different programs or "
                "settings. Nothing of this step was revealed; start every party with the same version and flags")
