"""The committed results of full-MNIST runs, which the All of MNIST page plots: the format that
`train --log-json` writes (tests/test_cli.py checks the command writes it), and numbers that
agree with each other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from results_log import check_results_log

RESULTS = Path(__file__).resolve().parent.parent / "results"


@pytest.mark.parametrize("name, parties", [("full-mnist.json", "in-process"),
                                           ("full-mnist-processes.json", "processes")])
def test_committed_results_are_what_the_command_writes(name, parties):
    data = json.loads((RESULTS / name).read_text())
    assert data["command"].startswith("python -m secure_mnist train --preset full-mnist")
    assert data["parties"] == parties
    assert data["config"]["n_train_items"] == 60_000 and data["config"]["n_test_items"] == 10_000
    # a run stopped early (the processes one may be) still has complete, consistent epochs
    check_results_log(data, finished=data["finished"] is not None)
    if data["parties"] == "in-process" and data["finished"] is not None:
        assert len(data["plaintext"]["epochs"]) == data["config"]["epochs"]  # the comparison is on by default


def test_the_in_process_run_finished():
    data = json.loads((RESULTS / "full-mnist.json").read_text())
    assert data["finished"] is not None
    assert set(data["encrypted"]["peak_rss"]) == {"alice+bob+crypto_provider+me"}
