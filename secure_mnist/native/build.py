"""Compile the package's C kernels with the machine's gcc, once, and load them with ctypes.

The shared library is cached under $SECURE_MNIST_CACHE (default ~/.cache/secure_mnist), named by
a hash of the source, the flags and the CPU's vector instructions, so an edited kernel or another
machine gets its own build. Several processes may build at once (the parties start together):
each writes a temporary file and renames it into place, which is atomic. A library is loaded only
from a folder and file that no other user can write.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch

from ..errors import SetupError

SOURCE_DIR = Path(__file__).parent


class CompilerUnavailable(SetupError):
    """The compiled engine was asked for, but no C compiler could build its kernels."""


def require_int64_cpu(*tensors: torch.Tensor) -> None:
    """The kernels read raw memory as int64 words: anything else would be read wrongly, or past its end."""
    for tensor in tensors:
        if tensor.dtype != torch.int64 or tensor.device.type != "cpu":
            raise TypeError(f"the compiled kernels take int64 tensors on the CPU, got {tensor.dtype} on {tensor.device}")


def cache_dir() -> Path:
    configured = os.environ.get("SECURE_MNIST_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "secure_mnist"


def compiler_flags() -> list[str]:
    """-O3, and AVX2 where torch found it on this CPU (the kernels have a scalar fallback)."""
    flags = ["-O3", "-shared", "-fPIC", "-std=c11"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2"]
    return flags


@cache
def load(name: str) -> ctypes.CDLL:
    """The compiled `name`.c from this folder; raises CompilerUnavailable if it cannot be built."""
    source = SOURCE_DIR / f"{name}.c"
    flags = compiler_flags()
    compiler = os.environ.get("CC", "gcc")
    key = hashlib.sha256(source.read_bytes() + " ".join([compiler, *flags]).encode()).hexdigest()[:16]
    library = cache_dir() / f"{name}-{key}.so"
    if not library.exists():
        _compile(compiler, flags, source, library)
    _check_trusted(library)
    return ctypes.CDLL(str(library))


def _check_trusted(library: Path) -> None:
    """Loading a library runs its code inside the party, next to its shares: refuse one that
    another user could have put there or replaced (a shared, world-writable SECURE_MNIST_CACHE)."""
    for path in (library.parent, library):
        status = path.stat()
        if status.st_uid != os.getuid() or status.st_mode & 0o022:
            raise CompilerUnavailable(
                f"refusing to load {library}: {path} is not yours or others can write to it; set "
                "SECURE_MNIST_CACHE to a folder only you can write, or choose --engine reference")


def _compile(compiler: str, flags: list[str], source: Path, library: Path) -> None:
    if shutil.which(compiler) is None:
        raise CompilerUnavailable(
            f"the compiled engine needs a C compiler, and {compiler!r} is not on PATH: install gcc, "
            "set CC, or choose --engine reference")
    try:
        library.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=library.parent, suffix=".so.part")
    except OSError as error:
        raise CompilerUnavailable(f"cannot write the compiled kernels to {library.parent} ({error.strerror}): "
                                  "set SECURE_MNIST_CACHE to a writable folder, or choose --engine reference") from None
    os.close(handle)
    try:
        run = subprocess.run([compiler, *flags, str(source), "-o", partial], capture_output=True, text=True)
        if run.returncode != 0:
            raise CompilerUnavailable(f"{compiler} could not build {source.name}:\n{run.stderr.strip()}")
        os.replace(partial, library)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
