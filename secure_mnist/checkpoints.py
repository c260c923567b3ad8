"""Per-party checkpoints: each party saves only what it holds, and nobody ever combines them.

A worker's file has its shares of the model's parameters; every party's file has the positions
of its random streams, so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import torch

from .nn import encrypted_parameters

if TYPE_CHECKING:
    from torch import nn

    from .mpc.session import Session
    from .training import TrainingConfig

FORMAT_VERSION = 1


def party_file(directory: str | pathlib.Path, party_name: str) -> pathlib.Path:
    return pathlib.Path(directory) / f"{party_name}.pt"


def save(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig,
         epoch: int) -> None:
    """Each party of this process writes its own file (atomically: a crash never leaves half a file)."""
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    params = encrypted_parameters(model)
    for party in session.parties():
        if not session.is_local(party):
            continue
        state = {
            "format": FORMAT_VERSION, "party": party.name, "epoch": epoch, "config": dict(config.__dict__),
            "randomness": session.randomness_state(party),
            "shares": [p.child.child.share_of(party) for p in params] if party in session.workers else None,
        }
        target = party_file(directory, party.name)
        temporary = target.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(target)


def load(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig) -> int:
    """Restore this process's parties from their own files; returns the last completed epoch."""
    params = encrypted_parameters(model)
    epochs = set()
    for party in session.parties():
        if not session.is_local(party):
            continue
        path = party_file(directory, party.name)
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint for {party.name} in {directory} (expected {path.name})")
        state = torch.load(path, weights_only=True)  # a checkpoint is data: never run code from one
        if state.get("format") != FORMAT_VERSION or state.get("party") != party.name:
            raise ValueError(f"{path} is not a secure_mnist checkpoint of {party.name}")
        if state["config"] != dict(config.__dict__):
            changed = sorted(k for k in state["config"] if state["config"][k] != config.__dict__.get(k))
            raise ValueError(f"{path} was written with different settings ({', '.join(changed)}); "
                             "resume with the same settings")
        session.restore_randomness(party, state["randomness"])
        if state["shares"] is not None:
            for param, share in zip(params, state["shares"], strict=True):
                party.store[param.child.child.key] = share
        epochs.add(state["epoch"])
    if len(epochs) > 1:
        raise ValueError(f"the parties' checkpoints in {directory} are from different epochs: {sorted(epochs)}")
    epoch = epochs.pop()
    # Across processes each party read only its own file: compare what they found.
    found = session.comm.agree("checkpoint_epoch", str(epoch))
    if len(set(found.values())) > 1:
        listing = ", ".join(f"{party}: epoch {value}" for party, value in sorted(found.items()))
        raise ValueError(f"the parties' checkpoints are from different epochs ({listing}); "
                         "a party probably stopped between the others' saves and its own")
    return epoch
