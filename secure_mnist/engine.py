"""Which implementation runs the ring's heavy kernels: the readable reference or the compiled one.

"reference" is plain torch (torch.matmul on int64), the definition the tests trust. "compiled"
runs the same arithmetic in the package's C kernels (`secure_mnist.native`), built with the
machine's gcc on first use; the tests check that it gives the reference's result bit for bit.
Choose with --engine, SECURE_MNIST_ENGINE, or `use_engine`. By default the compiled engine runs
where it can be built, and the reference where it cannot (with one warning).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import SetupError

ENGINES = ("reference", "compiled")

_chosen: str | None = None  # None: not chosen, use the default


def _checked(name: str) -> str:
    if name not in ENGINES:
        raise SetupError(f"unknown engine {name!r}: choose one of {', '.join(ENGINES)}")
    return name


def set_engine(name: str | None) -> None:
    """Use `name` from now on (None: back to the default); building the compiled one if needed."""
    global _chosen
    if name is not None:
        _checked(name)
        if name == "compiled":
            _build()  # raises CompilerUnavailable here, not in the middle of a step
    _chosen = name


def current_engine() -> str:
    if _chosen is not None:
        return _chosen
    return _default()


@contextmanager
def use_engine(name: str) -> Iterator[None]:
    previous = _chosen
    set_engine(name)
    try:
        yield
    finally:
        set_engine(previous)


_default_engine: str | None = None


def _default() -> str:
    global _default_engine
    if _default_engine is None:
        requested = os.environ.get("SECURE_MNIST_ENGINE")
        if requested:
            _checked(requested)
            if requested == "compiled":
                _build()
            _default_engine = requested
        else:
            from .native.build import CompilerUnavailable
            try:
                _build()
                _default_engine = "compiled"
            except CompilerUnavailable as error:
                warnings.warn(f"running the reference engine: {error}", RuntimeWarning, stacklevel=3)
                _default_engine = "reference"
    return _default_engine


def _build() -> None:
    """Build (or load from the cache) every kernel now, so that a failure shows before any step."""
    from .native import bits, division, gemm
    for kernel in (gemm, division, bits):
        kernel.library()
