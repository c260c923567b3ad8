"""Shape arithmetic, done in plain Python and remembered.

torch.broadcast_shapes and torch's shape-only ("meta") kernels run Python reference code: about
0.1 ms a call, more than adding two small tensors. The protocols ask the same few questions at
every training step, so the answers are cached, keyed by what decides them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch


@lru_cache(maxsize=1024)
def broadcast_shapes(*shapes: tuple[int, ...]) -> torch.Size:
    """The shape that tensors of these shapes broadcast to (NumPy's rules, as torch's).

    Raises ValueError when they do not broadcast.
    """
    rank = max((len(shape) for shape in shapes), default=0)
    result = [1] * rank
    for shape in shapes:
        for axis, size in enumerate(shape, start=rank - len(shape)):
            if size == result[axis] or size == 1:
                continue
            if result[axis] != 1:
                raise ValueError(f"shapes {[tuple(s) for s in shapes]} cannot be broadcast together")
            result[axis] = size
    return torch.Size(result)


def output_shape_of(fn: Callable[..., torch.Tensor], *shapes: torch.Size) -> torch.Size:
    """The shape fn would produce on int64 tensors of these shapes, worked out without data.

    A process without shares (the client's, the crypto provider's) still follows every step of
    the computation, so it asks this for every local operation of the workers.
    """
    key = _shape_key(fn, shapes)
    shape = _SHAPES.get(key) if key is not None else None
    if shape is None:
        shape = fn(*(torch.empty(s, dtype=torch.int64, device="meta") for s in shapes)).shape
        if key is not None:
            if len(_SHAPES) >= _MAX_SHAPES:
                _SHAPES.clear()
            _SHAPES[key] = shape
    return shape


_SHAPES: dict[tuple, torch.Size] = {}
_MAX_SHAPES = 4096
_REARRANGING = {"view", "reshape", "t", "transpose", "flatten", "unsqueeze", "squeeze", "expand"}
_SAME_ORDER = {"view", "reshape", "flatten", "unsqueeze", "squeeze"}


def rearrangement_key(fn: Callable[..., torch.Tensor]) -> tuple | None:
    """A key that names fn exactly, if fn only rearranges elements (a view, a transpose, ...).

    The key holds the code and every captured value, which must be plain data (numbers, tuples,
    slices); None for anything else.
    """
    if fn is torch.t:
        return (fn,)
    code = getattr(fn, "__code__", None)
    if code is None or not set(code.co_names) & _REARRANGING or set(code.co_names) - _REARRANGING:
        return None
    try:
        return (code, tuple(_plain(cell.cell_contents) for cell in fn.__closure__ or ()))
    except (_DependsOnValues, ValueError):  # ValueError: a closure cell not filled yet
        return None


def keeps_order(key: tuple) -> bool:
    """Whether the rearrangement named by `key` keeps the elements in order (a reshape)."""
    return key[0] is not torch.t and set(key[0].co_names) <= _SAME_ORDER


class _DependsOnValues(Exception):
    """fn captured something whose values (not just its shape) may matter."""


def _plain(value: object) -> object:
    if value is None or value is Ellipsis or isinstance(value, (bool, int, str)):
        return (type(value).__name__, value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_plain(item) for item in value))
    if isinstance(value, slice):
        return ("slice", _plain(value.start), _plain(value.stop), _plain(value.step))
    raise _DependsOnValues


def _shape_key(fn: Callable[..., torch.Tensor], shapes: tuple[torch.Size, ...]) -> tuple | None:
    """What decides fn's output shape, as a dictionary key; None when we cannot tell."""
    shapes = tuple(tuple(s) for s in shapes)
    code = getattr(fn, "__code__", None)
    try:
        if code is None:  # a builtin such as torch.add
            return (fn, shapes) if getattr(fn, "__self__", None) is None or fn.__self__ is torch else None
        captured = tuple(_shape_relevant(cell.cell_contents) for cell in fn.__closure__ or ())
        return (code, captured, _shape_relevant(fn.__defaults__), shapes)
    except (_DependsOnValues, ValueError):
        return None


def _shape_relevant(value: object) -> object:
    """A hashable summary of a captured value that keeps whatever can change an output shape."""
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool:  # a mask: the output shape depends on how many are True
            raise _DependsOnValues
        return ("tensor", tuple(value.shape), value.dtype)
    if value is None or value is Ellipsis or isinstance(value, (bool, int, float, str, torch.dtype)):
        return value
    if isinstance(value, (tuple, list)):  # includes torch.Size
        return (type(value).__name__, tuple(_shape_relevant(item) for item in value))
    if isinstance(value, slice):
        return ("slice", _shape_relevant(value.start), _shape_relevant(value.stop), _shape_relevant(value.step))
    if callable(value) and getattr(value, "__code__", None) is None and getattr(value, "__module__", "") == "torch":
        return value  # torch.mul, torch.matmul, ...
    if hasattr(value, "child") and hasattr(value, "encoder"):  # a FixedPrecisionTensor: its ring tensor
        return ("fixed", _shape_relevant(value.child))
    raise _DependsOnValues
