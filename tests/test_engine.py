"""Choosing the engine, and the compiled engine training exactly as the reference does."""

from __future__ import annotations

import warnings

import pytest
import torch

from secure_mnist import engine
from secure_mnist.engine import current_engine, set_engine, use_engine
from secure_mnist.errors import SetupError
from secure_mnist.mpc.session import Session
from secure_mnist.native import build, gemm
from secure_mnist.training import TrainingConfig, train_encrypted


@pytest.fixture
def unbuilt(monkeypatch, tmp_path):
    """A fresh cache and no library loaded yet: the next use compiles."""
    monkeypatch.setenv("SECURE_MNIST_CACHE", str(tmp_path))
    _forget_loaded()
    yield tmp_path
    _forget_loaded()


def _forget_loaded() -> None:
    from secure_mnist.native import bits, division

    build.load.cache_clear()
    for kernel in (gemm, bits, division):
        kernel.library.cache_clear()


def test_an_unknown_engine_is_refused():
    with pytest.raises(SetupError, match="unknown engine 'fast': choose one of reference, compiled"):
        set_engine("fast")
    assert current_engine() in engine.ENGINES


def test_the_kernel_is_built_once_into_the_cache(unbuilt):
    with use_engine("compiled"):
        assert current_engine() == "compiled"
    built = sorted(path.name.split("-")[0] for path in unbuilt.glob("*.so"))
    assert built == ["bit_planes", "floor_divide", "ring_gemm"] and not list(unbuilt.glob("*.part"))


def test_without_a_compiler_asking_for_compiled_says_what_to_do(unbuilt, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(build.CompilerUnavailable, match="install gcc, set CC, or choose --engine reference"):
        set_engine("compiled")
    assert not list(unbuilt.iterdir()) or not list(unbuilt.glob("*.so"))


def test_a_failing_build_shows_the_compiler_output(unbuilt, monkeypatch, tmp_path):
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\necho 'ring_gemm.c:1: error: something is wrong' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    with pytest.raises(build.CompilerUnavailable, match="something is wrong"):
        set_engine("compiled")
    assert not list(unbuilt.glob("*.so")) and not list(unbuilt.glob("*.part"))


def test_by_default_the_reference_runs_where_nothing_builds_with_a_warning(unbuilt, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler")
    monkeypatch.delenv("SECURE_MNIST_ENGINE", raising=False)
    monkeypatch.setattr(engine, "_chosen", None)
    monkeypatch.setattr(engine, "_default_engine", None)
    with pytest.warns(RuntimeWarning, match="running the reference engine"):
        assert current_engine() == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert current_engine() == "reference"  # warned once


def test_the_environment_variable_chooses(monkeypatch):
    monkeypatch.setattr(engine, "_chosen", None)
    monkeypatch.setattr(engine, "_default_engine", None)
    monkeypatch.setenv("SECURE_MNIST_ENGINE", "reference")
    assert current_engine() == "reference"
    monkeypatch.setattr(engine, "_default_engine", None)
    monkeypatch.setenv("SECURE_MNIST_ENGINE", "turbo")
    with pytest.raises(SetupError, match="unknown engine 'turbo'"):
        current_engine()


def test_parties_started_by_the_client_get_its_engine(monkeypatch):
    import secure_mnist.__main__ as cli

    forwarded = {}
    monkeypatch.setattr(cli, "_train", lambda args: forwarded.setdefault("flags", cli._forwarded(args)) and 0)
    try:
        cli.main(["train", "--engine", "reference", "--parties", "processes", "--epochs", "1"])
        assert current_engine() == "reference"
    finally:
        set_engine(None)
    flags = forwarded["flags"]
    assert flags[flags.index("--engine") + 1] == "reference"


def _tutorial_run(name: str, epochs: int = 3):
    config = TrainingConfig(epochs=epochs)
    with use_engine(name):
        result = train_encrypted(config, Session(encoder=config.encoder, seed=2024))
    return [log.loss for log in result.batch_logs], result.correct


def test_three_epochs_of_the_tutorial_are_the_same_bit_for_bit():
    """Same --crypto-seed, same shares: the compiled engine must give the very same losses."""
    threads = torch.get_num_threads()
    reference_losses, reference_correct = _tutorial_run("reference")
    compiled_losses, compiled_correct = _tutorial_run("compiled")
    assert torch.get_num_threads() == threads
    assert len(reference_losses) == 30 and all(loss is not None for loss in reference_losses)
    assert compiled_losses == reference_losses
    assert compiled_correct == reference_correct
    assert reference_correct / TrainingConfig().n_test_items >= 0.5  # it learns (chance: 10%)


def test_an_unwritable_cache_is_a_clear_error(unbuilt, monkeypatch, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("SECURE_MNIST_CACHE", str(blocked / "cache"))
    with pytest.raises(build.CompilerUnavailable, match="set SECURE_MNIST_CACHE to a writable folder"):
        set_engine("compiled")


@pytest.mark.parametrize("loosened", ["library", "folder"])
def test_a_library_others_could_replace_is_not_loaded(unbuilt, loosened):
    """An attacker who can write the cache could put code into a party's process: refuse it."""
    with use_engine("compiled"):
        pass
    (library,) = unbuilt.glob("ring_gemm-*.so")
    _forget_loaded()
    target = library if loosened == "library" else unbuilt
    target.chmod(target.stat().st_mode | 0o022)
    try:
        with pytest.raises(build.CompilerUnavailable, match="others can write to it"):
            set_engine("compiled")
    finally:
        target.chmod(target.stat().st_mode & ~0o022)
