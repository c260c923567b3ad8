"""What `train --log-json FILE` writes, checked field by field (used for the committed results too)."""

from __future__ import annotations

import math

RUNS = ("encrypted", "plaintext")


def check_results_log(data: dict, finished: bool = True) -> None:
    """Raise AssertionError unless `data` has the format `--log-json` writes and consistent numbers:
    every epoch present once and in order, each accuracy equal to its counts, the final count the
    last epoch's."""
    assert data["format"] == 1
    assert data["command"].startswith("python -m secure_mnist train"), data["command"]
    assert isinstance(data["started"], str) and data["parties"] in ("in-process", "processes")
    config = data["config"]
    epochs = config["epochs"]
    expected_total = min(math.ceil(config["n_test_items"] / config["test_batch_size"]) * config["test_batch_size"],
                         10_000)  # whole batches, as the tutorial counts them, until MNIST's 10,000 run out
    assert data["encrypted"]["epochs"] or not finished, "a finished run without a single epoch"
    for run in RUNS:
        entries = data[run]["epochs"]
        if not entries and (not finished or run == "plaintext" and "correct" not in data[run]):
            continue  # not reached yet, or no plaintext comparison (across processes, without --plaintext)
        assert [e["epoch"] for e in entries] == list(range(1, len(entries) + 1)), f"{run}: epochs out of order"
        for entry in entries:
            assert set(entry) == {"epoch", "seconds", "loss", "test_seconds", "correct", "total"}, entry
            assert entry["seconds"] > 0 and entry["loss"] is not None and math.isfinite(entry["loss"])
            if config["test_every_epoch"] or entry["epoch"] == epochs:
                assert entry["total"] == expected_total, entry
                assert 0 <= entry["correct"] <= entry["total"], entry
        if finished:
            assert len(entries) == epochs, f"{run}: {len(entries)} of {epochs} epochs"
            summary = data[run]
            assert summary["total"] == expected_total
            assert summary["correct"] == entries[-1]["correct"], f"{run}: final count is not the last epoch's"
            assert math.isclose(summary["accuracy"], 100 * summary["correct"] / summary["total"]), run
            assert summary["seconds"] >= sum(e["seconds"] for e in entries) * 0.999
    if finished:
        assert data["finished"] is not None and data["finished"] >= data["started"]
        peaks = data["encrypted"]["peak_rss"]
        assert peaks and all(value > 0 for value in peaks.values())
