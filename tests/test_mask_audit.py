"""No mask ever opens two different values: in one run, across an interruption and its resume,
in one process and across processes (see secure_mnist/mpc/audit.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from secure_mnist.communicator.channel import new_token
from secure_mnist.launch import free_port
from secure_mnist.mpc import audit
from secure_mnist.mpc.audit import MaskAuditor
from secure_mnist.mpc.session import Session
from secure_mnist.training import TrainingConfig, train_encrypted

CONFIG = TrainingConfig(epochs=2, n_train_items=128, n_test_items=128)
SMALL = ["--epochs", "2", "--n-train-items", "128", "--n-test-items", "128"]


class Interrupt(Exception):
    pass


def stop_in_epoch_two(log, n_batches):
    if log.epoch == 2:
        raise Interrupt


def interrupted_and_resumed(directory: str, seed: int | None) -> None:
    """Train, stop during epoch 2 after the epoch-1 checkpoint, resume to the end (seed None: os.urandom)."""
    with pytest.raises(Interrupt):
        train_encrypted(CONFIG, Session(encoder=CONFIG.encoder, seed=seed), on_batch=stop_in_epoch_two,
                        checkpoint_dir=directory)
    train_encrypted(CONFIG, Session(encoder=CONFIG.encoder, seed=seed), resume_from=directory)


@pytest.mark.parametrize("seed", [None, 5], ids=["random seeds", "fixed crypto seed"])
def test_no_mask_opens_two_values_across_a_resume(tmp_path, seed):
    with MaskAuditor() as auditor:
        interrupted_and_resumed(str(tmp_path), seed)
    assert min(auditor.openings().values()) > 1_000_000  # both runs' openings were seen
    assert auditor.reused_masks() == {"alice": 0, "bob": 0}


def test_the_auditor_catches_a_resume_that_replays_its_streams(tmp_path, monkeypatch):
    """Mutation: a resume that keeps the streams it started with (here the fixed seed's, from the
    beginning) opens epoch-2 values under masks that already opened epoch-1 values."""
    monkeypatch.setattr(Session, "renew_randomness", lambda self, label: None)
    with MaskAuditor() as auditor:
        interrupted_and_resumed(str(tmp_path), seed=5)
    reused = auditor.reused_masks()
    assert reused["alice"] > 1000 and reused["bob"] > 1000, reused


def test_no_mask_opens_two_values_across_a_resume_in_separate_processes(tmp_path):
    """Each party in its own process, records appended to files as it goes; the whole run is killed
    in epoch 2 and resumed from its checkpoints, with the default (os.urandom) seeds."""
    audit_dir, checkpoints = tmp_path / "audit", tmp_path / "checkpoints"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", audit.AUDIT_DIR_VARIABLE: str(audit_dir),
           "SECURE_MNIST_TOKEN": new_token()}

    def start(*extra: str) -> dict[str, subprocess.Popen]:
        master = f"127.0.0.1:{free_port()}"
        return {name: subprocess.Popen([sys.executable, "-m", "secure_mnist", "party", name, "--master", master,
                                        "--timeout", "20", *SMALL, *extra], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=env)
                for name in ("me", "alice", "bob", "crypto_provider")}

    parties = start("--checkpoint", str(checkpoints))
    for line in parties["me"].stdout:  # epoch 1 is saved once epoch 2 has begun
        if line.startswith("Train Epoch: 2"):
            break
    for process in parties.values():
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = start("--resume", str(checkpoints))
    for name, process in resumed.items():
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, f"{name}: {stderr[-800:]}"
    found = audit.reused_masks(audit_dir)
    assert set(found) == {"alice", "bob"}
    for worker, (opened, reused) in found.items():
        assert opened > 1_000_000, (worker, opened)
        assert reused == 0, (worker, reused)
    assert len(list(audit_dir.glob("alice.*.masks"))) == 2  # both runs' processes wrote records
