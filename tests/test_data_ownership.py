"""Each party loads only the data it owns, checked per process from what each one logged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from secure_mnist.data.mnist import ACCESS_LOG_VARIABLE

SMALL = ["--epochs", "1", "--n-train-items", "128", "--n-test-items", "128", "--quiet"]


def loads_per_party(log_dir: Path) -> dict[str, set[tuple[str, str]]]:
    """party -> {(train|test, rows)} from every process's log; the launcher is the client, 'me'."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in log_dir.glob("*.log"):
        for line in path.read_text().splitlines():
            argv, split, rows = line.split("\t")
            words = argv.split()
            party = words[1] if words[0] == "party" else "me"
            found[party].add((split, rows))
    return dict(found)


def train_in_processes(tmp_path: Path, *extra: str) -> dict[str, set[tuple[str, str]]]:
    log_dir = tmp_path / "loads"
    log_dir.mkdir()
    done = subprocess.run([sys.executable, "-m", "secure_mnist", "train", "--parties", "processes", *SMALL, *extra],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, ACCESS_LOG_VARIABLE: str(log_dir)})
    assert done.returncode == 0, done.stderr[-800:]
    return loads_per_party(log_dir)


def test_each_worker_loads_only_its_own_batches_and_the_client_none(tmp_path):
    # 128 items in batches of 64: alice owns batch 0 (items 0-63), bob batch 1 (items 64-127)
    assert train_in_processes(tmp_path) == {
        "alice": {("train", "0:64"), ("test", "0:64")},
        "bob": {("train", "64:128"), ("test", "64:128")},
    }


def test_the_client_loads_the_training_data_only_when_asked(tmp_path):
    loads = train_in_processes(tmp_path, "--plaintext")
    assert loads["me"] == {("train", "all"), ("test", "all")}
    assert "crypto_provider" not in loads
