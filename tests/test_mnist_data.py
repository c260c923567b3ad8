"""Shipped MNIST: canonical checksums, tensor layout, and torchvision compatibility."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import pathlib
import shutil
import struct
import urllib.request
from types import ModuleType

import pytest
import torch
from torchvision_shim import import_torchvision

from secure_mnist.data import mnist
from secure_mnist.data.mnist import (
    CANONICAL_MD5,
    MNISTChecksumError,
    MNISTFormatError,
    default_root,
    load_mnist,
    normalized_images,
    prepare_torchvision_root,
)


@pytest.fixture(scope="module")
def torchvision() -> ModuleType:
    """torchvision (through the CPU shim); skip only if it is not installed at all."""
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip("torchvision is not installed")
    return import_torchvision()


@pytest.fixture
def data_copy(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """Point the loader at a private copy of the shipped files, which a test may damage."""
    copy = tmp_path / "mnist"
    shutil.copytree(mnist.DATA_DIR, copy)
    monkeypatch.setattr(mnist, "DATA_DIR", copy)
    return copy


def test_shipped_files_have_canonical_md5() -> None:
    for name, md5 in CANONICAL_MD5.items():
        data = gzip.decompress((mnist.DATA_DIR / f"{name}.gz").read_bytes())
        assert hashlib.md5(data).hexdigest() == md5, name


def test_shipped_files_are_about_11_mb() -> None:
    total = sum((mnist.DATA_DIR / f"{name}.gz").stat().st_size for name in CANONICAL_MD5)
    assert 10_000_000 < total < 12_500_000


@pytest.mark.parametrize(("train", "count"), [(True, 60000), (False, 10000)])
def test_shapes_and_dtypes(train: bool, count: int) -> None:
    images, labels = load_mnist(train)
    assert images.shape == (count, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (count,) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == set(range(10))
    first = [5, 0, 4, 1, 9] if train else [7, 2, 1, 0, 4]
    assert labels[:5].tolist() == first


def test_load_returns_fresh_tensors() -> None:
    images, _ = load_mnist(train=False)
    images.zero_()
    assert load_mnist(train=False)[0].any()


def test_flipped_byte_in_data_raises_checksum_error(data_copy: pathlib.Path) -> None:
    name = "t10k-labels-idx1-ubyte"
    data = bytearray(gzip.decompress((data_copy / f"{name}.gz").read_bytes()))
    data[100] ^= 0x01  # a well-formed file, but one label is wrong
    (data_copy / f"{name}.gz").write_bytes(gzip.compress(bytes(data)))

    with pytest.raises(MNISTChecksumError) as excinfo:
        load_mnist(train=False)
    message = str(excinfo.value)
    assert name in message
    assert CANONICAL_MD5[name] in message
    assert hashlib.md5(data).hexdigest() in message


def test_flipped_byte_in_gzip_raises_checksum_error(data_copy: pathlib.Path) -> None:
    path = data_copy / "t10k-images-idx3-ubyte.gz"
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))

    with pytest.raises(MNISTChecksumError, match="t10k-images-idx3-ubyte"):
        load_mnist(train=False)


def test_shipped_files_are_untouched_by_corruption_tests() -> None:
    test_shipped_files_have_canonical_md5()
    assert load_mnist(train=False)[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_parse_idx_rejects_malformed_files() -> None:
    good = struct.pack(">II", 2049, 3) + bytes([1, 2, 3])
    assert mnist._parse_idx(good, 2049).tolist() == [1, 2, 3]
    with pytest.raises(MNISTFormatError, match="magic number 2051"):
        mnist._parse_idx(struct.pack(">IIII", 2051, 1, 1, 1) + b"\0", 2049)
    with pytest.raises(MNISTFormatError, match="header"):
        mnist._parse_idx(good[:-1], 2049)
    with pytest.raises(MNISTFormatError, match="too short"):
        mnist._parse_idx(b"\0\0\x08", 2049)


def test_normalized_images_match_torchvision(torchvision: ModuleType) -> None:
    from PIL import Image

    transforms = torchvision.transforms
    pipeline = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    images, _ = load_mnist(train=False)
    sample = images[torch.arange(0, len(images), 97)]

    expected = torch.stack([pipeline(Image.fromarray(image.numpy(), mode="L")) for image in sample])
    actual = normalized_images(sample)
    assert actual.dtype == torch.float32 and actual.shape == (len(sample), 1, 28, 28)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


def test_torchvision_root_works_offline(
    torchvision: ModuleType, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("torchvision tried to download MNIST")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", no_network)

    root = prepare_torchvision_root(tmp_path)
    assert root == tmp_path
    raw = tmp_path / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(
        [*CANONICAL_MD5, *(f"{name}.gz" for name in CANONICAL_MD5)]
    )

    train = torchvision.datasets.MNIST(root, train=True, download=True)
    test = torchvision.datasets.MNIST(root, train=False, download=True)
    assert (len(train), len(test)) == (60000, 10000)
    assert train[0][1] == 5
    images, labels = load_mnist(train=True)
    assert torch.equal(train.data, images) and torch.equal(train.targets, labels)


def test_prepare_torchvision_root_skips_good_files_and_repairs_bad_ones(tmp_path: pathlib.Path) -> None:
    prepare_torchvision_root(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    good = raw / "train-images-idx3-ubyte"
    bad = raw / "t10k-labels-idx1-ubyte"
    good_mtime = good.stat().st_mtime_ns
    bad.write_bytes(b"damaged")

    prepare_torchvision_root(str(tmp_path))
    assert good.stat().st_mtime_ns == good_mtime
    assert hashlib.md5(bad.read_bytes()).hexdigest() == CANONICAL_MD5[bad.name]
    assert not [p for p in raw.iterdir() if p.name.startswith(".")]  # no temp files left


def test_default_root(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("SECURE_MNIST_DATA", str(tmp_path / "data"))
    assert default_root() == tmp_path / "data"
    monkeypatch.delenv("SECURE_MNIST_DATA")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_root() == pathlib.Path.home() / ".cache" / "secure_mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_root() == tmp_path / "cache" / "secure_mnist"
