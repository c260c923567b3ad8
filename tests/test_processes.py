"""Alice, bob, the crypto provider and the client in separate processes, over torch.distributed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from secure_mnist.bench import PartyTiming, _encrypted_step, format_process_report
from secure_mnist.communicator.channel import TAG_BYTES, new_token
from secure_mnist.launch import free_port
from secure_mnist.mpc.session import Session
from secure_mnist.training import TrainingConfig, one_hot, plaintext_batches, train_encrypted

SMALL = ["--epochs", "2", "--n-train-items", "128", "--n-test-items", "128"]
CONFIG = TrainingConfig(epochs=2, n_train_items=128, n_test_items=128)
CRYPTO_SEED = 5
# Parties started by hand share a join token, given in the environment as a user would.
HAND_STARTED = {**os.environ, "PYTHONUNBUFFERED": "1", "SECURE_MNIST_TOKEN": new_token()}


def in_process_run(config: TrainingConfig = CONFIG, **kwargs):
    return train_encrypted(config, Session(encoder=config.encoder, seed=CRYPTO_SEED), **kwargs)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "secure_mnist", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_processes_give_exactly_the_in_process_result(tmp_path, loss):
    """Every party runs only its part (the dealer and the client work shapes out without shares),
    and the losses and the test count are those of one process, to the last bit."""
    report = tmp_path / "run.json"
    done = cli("train", "--parties", "processes", *SMALL, "--loss", loss, "--crypto-seed", str(CRYPTO_SEED),
               "--quiet", "--no-plaintext", "--json", str(report))
    assert done.returncode == 0, done.stderr
    separate = json.loads(report.read_text())["encrypted"]
    together = in_process_run(TrainingConfig(**{**CONFIG.__dict__, "loss": loss}))
    assert [b["loss"] for b in separate["batch_logs"]] == [b.loss for b in together.batch_logs]
    assert separate["correct"] == together.correct
    # every party's traffic reached the client's progress line
    assert set(separate["batch_logs"][-1]["traffic"]) == {"me", "alice", "bob", "crypto_provider"}


def start_parties(master: str, *extra: str) -> dict[str, subprocess.Popen]:
    """The multi-machine way: each party started on its own (here all on loopback)."""
    return {name: subprocess.Popen([sys.executable, "-m", "secure_mnist", "party", name, "--master", master,
                                    "--timeout", "10", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env=HAND_STARTED)
            for name in ("me", "alice", "bob", "crypto_provider")}


@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_a_lost_party_stops_the_others_with_an_error_naming_it(how):
    """bob dies (SIGKILL: its connections close) or hangs (SIGSTOP: only the timeout tells)."""
    master = f"127.0.0.1:{free_port()}"
    parties = start_parties(master, "--epochs", "50", "--n-train-items", "128", "--n-test-items", "128")
    client = parties["me"]
    for line in client.stdout:  # wait until training is under way
        if line.startswith("Train Epoch: 2"):
            break
    parties["bob"].send_signal(signal.SIGKILL if how == "dies" else signal.SIGSTOP)
    lost_at = time.monotonic()
    outcomes = {}
    try:
        for name in ("me", "alice", "crypto_provider"):
            try:
                parties[name].wait(timeout=60)
            except subprocess.TimeoutExpired:
                parties[name].kill()
                pytest.fail(f"{name} was still running 60 s after bob {how}")
            outcomes[name] = (parties[name].returncode, parties[name].stderr.read())
    finally:
        parties["bob"].kill()
    elapsed = time.monotonic() - lost_at
    # bounded: a death is seen at once; a hang after the workers' timeout (10 s), the client and
    # the crypto provider wait twice as long, so everyone is out within about three timeouts
    assert elapsed < (10 if how == "dies" else 35), elapsed
    for name, (code, stderr) in outcomes.items():
        assert code != 0, f"{name} exited cleanly although bob {how}"
        errors = [line for line in stderr.splitlines() if line.startswith("error: PartyLostError")]
        assert errors and "lost contact with bob" in errors[-1], f"{name}: {stderr[-600:]}"


def test_resume_from_checkpoints_continues_the_same_run(tmp_path):
    uninterrupted = in_process_run()

    class Interrupt(Exception):
        pass

    def stop_in_epoch_two(log, n_batches):
        if log.epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        in_process_run(on_batch=stop_in_epoch_two, checkpoint_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.pt", "bob.pt", "crypto_provider.pt", "me.pt"]
    resumed = in_process_run(resume_from=str(tmp_path))
    epoch_two = [b.loss for b in uninterrupted.batch_logs if b.epoch == 2]
    # The resumed run starts from the saved weights but draws fresh randomness (a rewound stream
    # would reuse masks), so stochastic rounding differs in the last digit, and only there.
    assert [b.epoch for b in resumed.batch_logs] == [2] * len(epoch_two)
    assert [b.loss for b in resumed.batch_logs] == pytest.approx(epoch_two, abs=0.05)
    assert abs(resumed.correct - uninterrupted.correct) <= 0.1 * resumed.total


def test_checkpoints_hold_one_party_each_and_resume_across_processes(tmp_path):
    """Processes save per party; a processes run resumes from them and ends like the in-process run."""
    first = cli("train", "--parties", "processes", *SMALL[:1], "1", *SMALL[2:], "--crypto-seed", str(CRYPTO_SEED),
                "--quiet", "--no-plaintext", "--checkpoint", str(tmp_path))
    # a one-epoch run's checkpoint has epochs=1 in its settings; resuming needs the same settings
    assert first.returncode == 0, first.stderr
    import torch

    alice = torch.load(tmp_path / "alice.pt", weights_only=False)
    bob = torch.load(tmp_path / "bob.pt", weights_only=False)
    assert alice["party"] == "alice" and len(alice["shares"]) == 6
    assert not any(torch.equal(a, b) for a, b in zip(alice["shares"], bob["shares"]))
    assert torch.load(tmp_path / "crypto_provider.pt", weights_only=False)["shares"] is None
    again = cli("train", "--parties", "processes", *SMALL[:1], "1", *SMALL[2:], "--crypto-seed", str(CRYPTO_SEED),
                "--quiet", "--no-plaintext", "--resume", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "Test set: Accuracy:" in again.stdout


def test_parties_started_with_different_settings_are_told_which_differ():
    master = f"127.0.0.1:{free_port()}"
    small = ["--epochs", "1", "--n-train-items", "128", "--n-test-items", "128"]
    names = ("me", "alice", "bob", "crypto_provider")
    parties = {name: subprocess.Popen(
        [sys.executable, "-m", "secure_mnist", "party", name, "--master", master, "--timeout", "20",
         *small, *(["--lr", "0.05"] if name == "alice" else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=HAND_STARTED) for name in names}
    for name, process in parties.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0, f"{name} ran although alice's settings differ"
        assert "different settings than the client (alice: lr=0.05)" in stderr, f"{name}: {stderr[-400:]}"


def test_checkpoints_from_different_epochs_are_refused_across_processes(tmp_path):
    config = TrainingConfig(epochs=3, n_train_items=128, n_test_items=128)

    class Interrupt(Exception):
        pass

    def stop_at(epoch):
        def callback(log, n_batches):
            if log.epoch == epoch:
                raise Interrupt
        return callback

    mixed, epoch_one = tmp_path / "run", tmp_path / "bob-after-epoch-1.pt"

    def keep_bobs_first_file(log, n_batches):
        if log.epoch == 2 and log.batch == 0:
            epoch_one.write_bytes((mixed / "bob.pt").read_bytes())
        stop_at(3)(log, n_batches)

    with pytest.raises(Interrupt):
        train_encrypted(config, Session(encoder=config.encoder, seed=CRYPTO_SEED),
                        on_batch=keep_bobs_first_file, checkpoint_dir=str(mixed))
    (mixed / "bob.pt").write_bytes(epoch_one.read_bytes())  # bob stopped before saving epoch 2
    done = cli("train", "--parties", "processes", "--epochs", "3", "--n-train-items", "128", "--n-test-items",
               "128", "--crypto-seed", str(CRYPTO_SEED), "--quiet", "--no-plaintext", "--resume", str(mixed),
               "--timeout", "20")
    assert done.returncode != 0
    assert "are from different epochs (alice: epoch 2, bob: epoch 1" in done.stderr, done.stderr[-800:]


def test_bench_over_processes_counts_each_partys_traffic_as_one_process_does():
    """`bench --parties processes`: every party reports, and its bytes per step are exactly what the
    same step sends and receives when the parties share one process, plus the crypto provider's
    8-byte digest to each worker (docs/parties.md#dealer-plan)."""
    repeats = 3
    done = cli("bench", "--parties", "processes", "--repeats", str(repeats), "--json", "--crypto-seed", str(CRYPTO_SEED))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    parties = report["per_party"]
    assert set(parties) == {"me", "alice", "bob", "crypto_provider"}

    config = TrainingConfig()
    images, labels = plaintext_batches(config, train=True)[0]
    session = Session(encoder=config.encoder, seed=CRYPTO_SEED)
    step, _ = _encrypted_step(config, images, one_hot(labels), session)
    for _ in range(2):  # the same warm-up: the batch is opened in the first step only
        step()
    before = session.comm.stats.snapshot()
    step()
    one_step = session.comm.stats.since(before)
    digest = {"crypto_provider": (16, 0), "alice": (0, 8), "bob": (0, 8), "me": (0, 0)}  # sent, received
    for name, measured in parties.items():
        assert measured["bytes_sent"] == repeats * (one_step.bytes_sent[name] + digest[name][0]), name
        assert measured["bytes_received"] == repeats * (one_step.bytes_received[name] + digest[name][1]), name
        assert measured["cpu"] > 0 and measured["seconds"] > 0
    assert report["rounds_per_step"] == one_step.rounds
    assert report["cpu_ms_per_step"] == pytest.approx(1e3 * sum(p["cpu"] for p in parties.values()) / repeats)
    # the encrypted channel: one tag per message, time in AES-GCM, a handshake once
    channel = report["channel"]
    assert channel["cipher"] == "AES-256-GCM"
    assert channel["overhead_bytes_per_step"] == TAG_BYTES * (one_step.messages + 2)  # + the two digests
    assert channel["aead_ms_per_step"] > 0 and all(p["channel"] > 0 for p in parties.values())
    assert channel["setup_bytes"] > 0 and channel["steps"] == repeats + 2


def test_process_report_gives_the_floor_the_cores_set():
    timing = PartyTiming(seconds=0.3, waiting=0.1, serializing=0.0, bytes_sent=0, bytes_received=0, cpu=0.06)
    measured = {"step_ms": 40.0, "rounds_per_step": 26, "parties": {name: timing for name in ("me", "alice")}}
    text = format_process_report(0.5, measured, 3, TrainingConfig(), cores=2)
    assert "all parties together: 40.00 ms of CPU per step" in text  # 2 x 60 ms over 3 steps
    assert "no step can be shorter than 20.00 ms (40.0x plaintext)" in text
    assert "no step can be shorter" not in format_process_report(0.5, measured, 3, TrainingConfig())


def test_process_report_gives_the_channels_cost_or_says_there_is_none():
    timing = PartyTiming(seconds=0.3, waiting=0.1, serializing=0.0, bytes_sent=3_000_000, bytes_received=0, cpu=0.06,
                         channel=0.006, overhead_bytes=1600, setup_bytes=255)
    measured = {"step_ms": 40.0, "rounds_per_step": 26, "cipher": "AES-256-GCM",
                "parties": {name: timing for name in ("me", "alice")}}
    text = format_process_report(0.5, measured, 3, TrainingConfig())
    assert "computing / serializing / channel / waiting" in text
    assert "    me                 64.67 /  0.00 /  2.00 /   33.33 ms" in text  # (300 - 100 - 6) / 3 computing
    assert ("channel (AES-256-GCM), per step, all parties: 4.00 ms sealing and opening; 1067 bytes of tags "
            "(0.05% of the payload); handshake 510 bytes once per run, 102 per step over the 5 steps") in text
    plain = format_process_report(0.5, {**measured, "cipher": "none"}, 3, TrainingConfig())
    assert "channel: none (--insecure-channel): messages travel unencrypted and unauthenticated" in plain
