"""Where the time of an encrypted step goes: a tiny timer the benchmark switches on.

Primitives are decorated with @timed("category"). While no Breakdown is active the decorator costs
one global lookup; while one is, each call adds its wall time to its category. Nested calls are
charged to the outermost category only (a comparison's ANDs count as comparison). A category
marked `within=True` (the crypto provider's dealing) is also counted inside the others, as an
"of which" figure.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_active: Breakdown | None = None


class Breakdown:
    """Seconds spent per category, outermost call only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.within: dict[str, float] = defaultdict(float)
        self._depth = 0


def timed(category: str, within: bool = False) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            breakdown = _active
            if breakdown is not None and within:
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    breakdown.within[category] += time.perf_counter() - start
            if breakdown is None or breakdown._depth:
                return fn(*args, **kwargs)
            breakdown._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                breakdown.seconds[category] += time.perf_counter() - start
                breakdown._depth -= 1

        return wrapper  # type: ignore[return-value]

    return decorate


@contextmanager
def breakdown() -> Iterator[Breakdown]:
    """Collect a Breakdown for the code inside the with-block."""
    global _active
    previous, _active = _active, Breakdown()
    try:
        yield _active
    finally:
        _active = previous
