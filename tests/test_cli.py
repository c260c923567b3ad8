"""The command line: what `train` and `bench` print, and their errors (no timing assertions here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from secure_mnist.__main__ import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secure_mnist", *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_train_prints_the_tutorials_lines_and_the_plaintext_comparison(tmp_path):
    report = tmp_path / "report.json"
    done = run("train", "--epochs", "1", "--n-train-items", "128", "--n-test-items", "128",
               "--activation", "square", "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert "Train Epoch: 1 [64/128 (50%)]\tLoss: " in done.stdout  # per-batch lines; the bar is on stderr
    assert "encrypted training" in done.stderr and "batch" in done.stderr  # the progress bar
    assert "Test set: Accuracy: " in done.stdout and "/128 (" in done.stdout
    assert "Plaintext PyTorch, same seed, data and initialisation:" in done.stdout
    data = json.loads(report.read_text())
    assert data["config"]["activation"] == "square"
    assert len(data["encrypted"]["batch_logs"]) == 2
    assert 0 <= data["encrypted"]["accuracy"] <= 100 and 0 <= data["plaintext"]["accuracy"] <= 100


def test_bench_json_reports_both_activations_and_where_the_time_goes():
    done = run("bench", "--repeats", "2", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert set(data["encrypted"]) == {"relu", "square"}
    relu = data["encrypted"]["relu"]
    assert relu["median_ms"] > 0 and relu["ratio"] > 1 and relu["bytes_per_step"] > 0 and relu["rounds_per_step"] > 0
    assert {"comparisons", "linear layers (matmul)", "truncation"} <= set(relu["breakdown_ms"])
    assert "comparisons" not in data["encrypted"]["square"]["breakdown_ms"]  # no ReLU, no comparison
    assert 0 < relu["dealer_ms"] < relu["median_ms"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "epochs must be at least 1"),
    (["train", "--lr", "-1"], "lr must be positive"),
    (["party", "mallory", "--master", "127.0.0.1:1"], "unknown party 'mallory'"),
    (["party", "alice"], "party needs --master"),
    (["party", "auto"], "torchrun's environment variable"),
])
def test_bad_arguments_get_a_clear_message(argv, message, capsys, monkeypatch):
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_full_mnist_preset_on_a_small_subset(tmp_path):
    """The preset's settings, overridden down to 256 images and one epoch (a full run takes minutes)."""
    from results_log import check_results_log

    log = tmp_path / "log.json"
    done = run("train", "--preset", "full-mnist", "--n-train-items", "256", "--n-test-items", "256",
               "--test-batch-size", "128", "--epochs", "1", "--log-json", str(log))
    assert done.returncode == 0, done.stderr
    assert "Epoch 1: mean loss " in done.stdout and "test " in done.stdout
    assert "Test set: Accuracy: " in done.stdout and "/256 (" in done.stdout
    assert "Peak memory (RSS): alice+bob+crypto_provider+me " in done.stdout
    assert "Plaintext PyTorch, same seed, data and initialisation:" in done.stdout
    data = json.loads(log.read_text())
    check_results_log(data)
    assert data["command"] == ("python -m secure_mnist train --preset full-mnist --n-train-items 256 "
                               f"--n-test-items 256 --test-batch-size 128 --epochs 1 --log-json {log}")
    config = data["config"]
    assert (config["loss"], config["momentum"], config["keep_openings"], config["base"]) == ("cross-entropy", 0.9, False, 2)
    assert config["n_train_items"] == 256 and config["epochs"] == 1  # the flags won over the preset


def test_bench_with_cross_entropy_reports_the_losss_share():
    done = run("bench", "--repeats", "2", "--json", "--activation", "relu", "--loss", "cross-entropy")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    relu = data["encrypted"]["relu"]
    assert data["loss"] == "cross-entropy"
    assert 0 < relu["loss_ms"] < relu["median_ms"]
    assert relu["rounds_per_step"] > 45  # 52: the squared error's step takes 26
    assert {"comparisons", "linear layers (matmul)", "truncation"} <= set(relu["breakdown_ms"])


def test_bench_takes_a_preset_and_times_relu_only_with_cross_entropy():
    done = run("bench", "--repeats", "2", "--json", "--preset", "full-mnist")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["loss"] == "cross-entropy" and set(data["encrypted"]) == {"relu"}
    assert data["encoding"] == {"base": 2, "precision_fractional": 16, "momentum": 0.9}


@pytest.mark.parametrize("argv, message", [
    (["train", "--momentum", "1.5"], "momentum must be in [0, 1)"),
    (["train", "--loss", "hinge"], "invalid choice: 'hinge'"),
    (["train", "--preset", "imagenet"], "invalid choice: 'imagenet'"),
])
def test_bad_training_settings_get_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("parties", ["in-process", "processes"])
def test_a_short_last_batch_when_mnist_runs_out(parties):
    """All 10,000 test images in batches of 3,000: the last one has 1,000, in every process alike."""
    done = run("train", "--epochs", "1", "--n-train-items", "64", "--n-test-items", "10000",
               "--test-batch-size", "3000", "--quiet", "--no-plaintext", "--parties", parties)
    assert done.returncode == 0, done.stderr
    assert "Test set: Accuracy: " in done.stdout and "/10000 (" in done.stdout


def test_the_client_lets_the_parties_go_before_its_own_plaintext_run(monkeypatch, capsys):
    """Across processes the workers wait for the client's farewell with a timeout: the plaintext
    comparison (minutes on all of MNIST) must come after the session is closed, not before."""
    from secure_mnist import __main__ as cli
    from secure_mnist.communicator.in_process import InProcessCommunicator

    events: list[str] = []
    monkeypatch.setattr(InProcessCommunicator, "close", lambda self: events.append("close"))
    real_plaintext = cli.train_plaintext

    def plaintext(*args, **kwargs):
        events.append("plaintext")
        return real_plaintext(*args, **kwargs)

    monkeypatch.setattr(cli, "train_plaintext", plaintext)
    assert main(["train", "--epochs", "1", "--n-train-items", "64", "--n-test-items", "64", "--quiet"]) == 0
    assert events[:2] == ["close", "plaintext"], events
    assert "Plaintext PyTorch" in capsys.readouterr().out
