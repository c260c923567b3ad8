"""Canonical MNIST, shipped inside the package and checked at load.

The four idx files live gzipped in ``secure_mnist/data/mnist/`` (see the
README there for credit and provenance).  Every load checks the MD5 of the
decompressed bytes against the canonical files, so the tutorials train on
exactly the data everyone else uses, without touching the network.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import pathlib
import struct
import sys
import tempfile
import zlib

import torch

__all__ = [
    "CANONICAL_MD5",
    "MEAN",
    "STD",
    "MNISTChecksumError",
    "MNISTFormatError",
    "default_root",
    "load_mnist",
    "load_mnist_rows",
    "normalized_images",
    "prepare_torchvision_root",
]

DATA_DIR = pathlib.Path(__file__).resolve().parent / "mnist"

#: When set to a directory, every process appends to a file there what MNIST data it loaded
#: (the tests check that each party loads only what it owns).
ACCESS_LOG_VARIABLE = "SECURE_MNIST_DATA_LOG"

#: MD5 of each canonical, uncompressed idx file (as published with MNIST).
CANONICAL_MD5: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Normalisation constants of the PyTorch MNIST example (and PySyft tutorials).
MEAN = 0.1307
STD = 0.3081

#: Images in the training set (``True``) and the test set (``False``) of the shipped files.
ITEMS = {True: 60_000, False: 10_000}

_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension


class MNISTChecksumError(ValueError):
    """A shipped MNIST file does not have the canonical MD5 (corrupted or altered)."""


class MNISTFormatError(ValueError):
    """A file is not a well-formed idx file of the expected kind."""


def _file_names(train: bool) -> tuple[str, str]:
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


@functools.cache
def _verified_bytes(path: pathlib.Path) -> bytes:
    """Decompress ``<name>.gz`` and check its canonical MD5 (once per path and process)."""
    name = path.name.removesuffix(".gz")
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as error:  # damaged beyond decompression
        raise MNISTChecksumError(
            f"{path}: cannot decompress ({error}); expected {name} with MD5 {CANONICAL_MD5[name]}"
        ) from error
    actual = hashlib.md5(data).hexdigest()
    if actual != CANONICAL_MD5[name]:
        raise MNISTChecksumError(
            f"{path}: MD5 of decompressed {name} is {actual}, expected {CANONICAL_MD5[name]}"
        )
    return data


def _read_verified(name: str) -> bytes:
    # DATA_DIR is looked up at call time, so tests can point it at a copy.
    return _verified_bytes(DATA_DIR / f"{name}.gz")


def _parse_idx(data: bytes, magic: int, name: str = "idx file") -> torch.Tensor:
    """Parse an idx file of unsigned bytes into a uint8 tensor of the dimensions in its header."""
    ndim = magic & 0xFF
    header_size = 4 * (1 + ndim)
    if len(data) < header_size:
        raise MNISTFormatError(f"{name}: {len(data)} bytes is too short for an idx header")
    found, *dims = struct.unpack_from(f">{1 + ndim}I", data)
    if found != magic:
        raise MNISTFormatError(f"{name}: magic number {found}, expected {magic}")
    expected = header_size + math.prod(dims)
    if len(data) != expected:
        raise MNISTFormatError(f"{name}: {len(data)} bytes, header {dims} implies {expected}")
    # bytearray copy: the tensor owns writable memory, the cached bytes stay untouched.
    return torch.frombuffer(bytearray(data[header_size:]), dtype=torch.uint8).reshape(dims)


def load_mnist(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Return canonical MNIST as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    N is 60000 for ``train=True`` and 10000 otherwise.  Raises
    :class:`MNISTChecksumError` if a shipped file is not the canonical one.
    Each call returns fresh tensors, so callers may modify them in place.
    """
    images_name, labels_name = _file_names(train)
    _log_access(train, "all")
    images = _parse_idx(_read_verified(images_name), _IMAGES_MAGIC, images_name)
    labels = _parse_idx(_read_verified(labels_name), _LABELS_MAGIC, labels_name).long()
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise MNISTFormatError(f"images {tuple(images.shape)} do not match labels {tuple(labels.shape)}")
    return images, labels


def load_mnist_rows(train: bool, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Items ``start`` to ``stop - 1`` of MNIST, as :func:`load_mnist` gives them, and nothing else.

    A data owner's process calls this for its own items: the file is decompressed as a stream
    (its MD5 checked on the way) and only the requested rows are kept, so the process never holds
    another owner's images or labels.
    """
    images_name, labels_name = _file_names(train)
    _log_access(train, f"{start}:{stop}")
    images = _read_rows(images_name, _IMAGES_MAGIC, start, stop)
    labels = _read_rows(labels_name, _LABELS_MAGIC, start, stop).long()
    if images.shape[1:] != (28, 28):
        raise MNISTFormatError(f"{images_name}: rows of shape {tuple(images.shape[1:])}, expected (28, 28)")
    return images, labels


def _read_rows(name: str, magic: int, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of a gzipped idx file, streamed: the other rows are hashed and dropped."""
    path = DATA_DIR / f"{name}.gz"
    digest = hashlib.md5()
    ndim = magic & 0xFF
    kept = bytearray()
    try:
        with gzip.open(path, "rb") as stream:
            header = stream.read(4 * (1 + ndim))
            digest.update(header)
            found, *dims = struct.unpack(f">{1 + ndim}I", header)
            if found != magic:
                raise MNISTFormatError(f"{name}: magic number {found}, expected {magic}")
            if not 0 <= start <= stop <= dims[0]:
                raise ValueError(f"{name} has {dims[0]} items; cannot read items {start} to {stop - 1}")
            row = math.prod(dims[1:])
            offset, chunk = 0, row * 1024
            while block := stream.read(chunk):
                digest.update(block)
                low, high = max(start * row, offset), min(stop * row, offset + len(block))
                if low < high:
                    kept += block[low - offset : high - offset]
                offset += len(block)
    except (OSError, EOFError, zlib.error, struct.error) as error:
        raise MNISTChecksumError(f"{path}: cannot decompress ({error}); expected {name} with MD5 "
                                 f"{CANONICAL_MD5[name]}") from error
    if digest.hexdigest() != CANONICAL_MD5[name]:
        raise MNISTChecksumError(f"{path}: MD5 of decompressed {name} is {digest.hexdigest()}, "
                                 f"expected {CANONICAL_MD5[name]}")
    return torch.frombuffer(kept, dtype=torch.uint8).reshape(stop - start, *dims[1:]) if kept else \
        torch.zeros((0, *dims[1:]), dtype=torch.uint8)


def _log_access(train: bool, rows: str) -> None:
    directory = os.environ.get(ACCESS_LOG_VARIABLE)
    if directory:
        with open(pathlib.Path(directory) / f"{os.getpid()}.log", "a", encoding="utf-8") as log:
            log.write(f"{' '.join(sys.argv[1:])}\t{'train' if train else 'test'}\t{rows}\n")


def normalized_images(images: torch.Tensor) -> torch.Tensor:
    """Scale uint8 images to [0, 1] and normalise with the tutorial's mean and std.

    Returns float32 ``[N, 1, 28, 28]``: the same values as torchvision's
    ``Compose([ToTensor(), Normalize((0.1307,), (0.3081,))])`` applied image by
    image, without needing torchvision or PIL.
    """
    scaled = images.to(torch.float32).div(255)
    return scaled.sub(MEAN).div(STD).unsqueeze(1)


def default_root() -> pathlib.Path:
    """Per-user directory for :func:`prepare_torchvision_root`.

    ``$SECURE_MNIST_DATA`` if set, else ``secure_mnist`` in the user's cache
    directory (``$XDG_CACHE_HOME``, by default ``~/.cache``).
    """
    override = os.environ.get("SECURE_MNIST_DATA")
    if override:
        return pathlib.Path(override).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(cache) / "secure_mnist"


def _write_if_different(path: pathlib.Path, data: bytes) -> None:
    """Write atomically, skipping files that already hold exactly ``data``."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def prepare_torchvision_root(root: str | os.PathLike[str]) -> pathlib.Path:
    """Lay out verified MNIST under ``root/MNIST/raw/`` and return ``root``.

    ``torchvision.datasets.MNIST(root, download=True)`` then finds the
    uncompressed files and never goes to the network.  The ``.gz`` files are
    copied too because torchvision's layout lists them; they are not needed
    once the uncompressed files are there.
    """
    root = pathlib.Path(root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in CANONICAL_MD5:
        _write_if_different(raw / name, _read_verified(name))
        _write_if_different(raw / f"{name}.gz", (DATA_DIR / f"{name}.gz").read_bytes())
    return root
