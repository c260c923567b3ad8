"""A checkpoint that does not fit the run is refused with an error naming the file and the tensor."""

from __future__ import annotations

import pytest
import torch

import secure_mnist as sm
from secure_mnist.checkpoints import party_file
from secure_mnist.training import TrainingConfig, train_encrypted

CONFIG = TrainingConfig(epochs=1, n_train_items=64, n_test_items=64)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("checkpoints")
    train_encrypted(CONFIG, sm.Session(encoder=CONFIG.encoder, seed=3), checkpoint_dir=str(directory))
    return {"dir": directory, "files": {p.name: p.read_bytes() for p in directory.iterdir()}}


def _resume(directory) -> None:
    train_encrypted(CONFIG, sm.Session(encoder=CONFIG.encoder), resume_from=str(directory))


def _copy(saved, tmp_path, change=None):
    for name, data in saved["files"].items():
        (tmp_path / name).write_bytes(data)
    if change:
        path = party_file(tmp_path, "bob")
        state = torch.load(path, weights_only=True)
        change(state)
        torch.save(state, path)
    return tmp_path


def test_an_intact_checkpoint_resumes(saved, tmp_path):
    _resume(_copy(saved, tmp_path))


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s["shares"].__setitem__(1, s["shares"][1][:10]), r"bob\.pt: tensor 'shares\[1\]' is torch.int64 \(10,\), expected torch.int64 \(128,\)"),
    (lambda s: s["shares"].__setitem__(0, s["shares"][0].float()), r"bob\.pt: tensor 'shares\[0\]' is torch.float32 \(128, 784\)"),
    (lambda s: s["shares"].__setitem__(5, s["shares"][5][:1]), r"tensor 'shares\[5\]' is torch.int64 \(1,\), expected torch.int64 \(10,\)"),  # broadcastable
    (lambda s: s["shares"].pop(), r"bob\.pt: 'shares' has 5 entries, this run expects 6"),
    (lambda s: s["openings"].__setitem__(0, (s["openings"][0][0][:3], s["openings"][0][1])), r"tensor 'openings\[0\] mask share'"),
    (lambda s: s.__setitem__("party", "alice"), r"bob\.pt is not a secure_mnist checkpoint of bob"),
    (lambda s: s.__setitem__("run", "0123456789abcdef"), r"from different runs \(alice: run \w+ epoch 1, bob: run 0123456789abcdef epoch 1"),
    (lambda s: s.__setitem__("format", 2), r"another version of secure_mnist \(format 2"),
])
def test_a_checkpoint_that_does_not_fit_is_refused(saved, tmp_path, change, message):
    with pytest.raises(sm.CheckpointError, match=message):
        _resume(_copy(saved, tmp_path, change))


def test_a_missing_file_is_named(saved, tmp_path):
    _copy(saved, tmp_path)
    party_file(tmp_path, "crypto_provider").unlink()
    with pytest.raises(sm.CheckpointError, match="no checkpoint for crypto_provider"):
        _resume(tmp_path)


@pytest.mark.parametrize("seed", [b"", b"short", bytes(32), "text", 1.5, True])
def test_a_session_seed_must_be_sixteen_bytes_or_an_integer(seed):
    with pytest.raises(sm.SetupError, match="session seed"):
        sm.Session(seed=seed)
