"""Per-party checkpoints: each party saves only what it holds, and nobody ever combines them.

A worker's file has its shares of the model's parameters; every party's file has the positions
of its random streams, so a resumed run continues exactly where the interrupted one stopped.
The training batches were opened under masks in the first epoch and are never opened again (see
`Opening`): a worker's file keeps its shares of those masks and the opened values, the crypto
provider's file the masks.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .mpc.opening import Mask, Opening
from .mpc.sharing import AdditiveSharingTensor
from .nn import encrypted_parameters

if TYPE_CHECKING:
    from torch import nn

    from .mpc.session import Session
    from .parties import Party
    from .training import TrainingConfig

FORMAT_VERSION = 2  # 2: with the openings of the training batches


def party_file(directory: str | pathlib.Path, party_name: str) -> pathlib.Path:
    return pathlib.Path(directory) / f"{party_name}.pt"


def save(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig,
         epoch: int, batches: Sequence[AdditiveSharingTensor] = ()) -> None:
    """Each party of this process writes its own file (atomically: a crash never leaves half a file).

    `batches` are the shared training inputs, whose openings are kept too.
    """
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    params = encrypted_parameters(model)
    for party in session.parties():
        if not session.is_local(party):
            continue
        state = {
            "format": FORMAT_VERSION, "party": party.name, "epoch": epoch, "config": dict(config.__dict__),
            "randomness": session.randomness_state(party),
            "shares": [p.child.child.share_of(party) for p in params] if party in session.workers else None,
            "openings": [_opening_state(batch.opening, party, session) for batch in batches],
        }
        target = party_file(directory, party.name)
        temporary = target.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(target)


def load(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig,
         batches: Sequence[AdditiveSharingTensor] = ()) -> int:
    """Restore this process's parties from their own files; returns the last completed epoch."""
    params = encrypted_parameters(model)
    epochs = set()
    openings: list[tuple[dict, dict, torch.Tensor | None] | None] = [None] * len(batches)
    for party in session.parties():
        if not session.is_local(party):
            continue
        path = party_file(directory, party.name)
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint for {party.name} in {directory} (expected {path.name})")
        state = torch.load(path, weights_only=True)  # a checkpoint is data: never run code from one
        if state.get("party") != party.name:
            raise ValueError(f"{path} is not a secure_mnist checkpoint of {party.name}")
        if state.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path} was written by another version of secure_mnist (format "
                             f"{state.get('format')}, this version reads {FORMAT_VERSION}): start a new run")
        if state["config"] != dict(config.__dict__):
            changed = sorted(k for k in state["config"] if state["config"][k] != config.__dict__.get(k))
            raise ValueError(f"{path} was written with different settings ({', '.join(changed)}); "
                             "resume with the same settings")
        session.restore_randomness(party, state["randomness"])
        if state["shares"] is not None:
            for param, share in zip(params, state["shares"], strict=True):
                party.store[param.child.child.key] = share
        if len(state["openings"]) != len(batches):
            raise ValueError(f"{path} has {len(state['openings'])} training batches, this run {len(batches)}")
        for index, saved in enumerate(state["openings"]):
            openings[index] = _merge_opening(openings[index], saved, party)
        epochs.add(state["epoch"])
    for batch, opening in zip(batches, openings):
        if opening is not None:
            shares, public, value = opening
            batch.opening = Opening(Mask(shares, value), public)
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


def _opening_state(opening: Opening | None, party: Party, session: Session) -> tuple[torch.Tensor, ...] | None:
    """What `party` knows of a batch's opening (None: not opened): a worker its share of the mask
    and the opened value, the crypto provider the mask, the client nothing."""
    if opening is None:
        return None
    if party in session.workers:
        return (opening.mask.shares[party], opening.public[party])
    if party is session.provider:
        return (opening.mask.value,)
    return ()


def _merge_opening(so_far: tuple | None, saved: tuple | None, party: Party) -> tuple | None:
    """Add one party's part of a saved opening to what the other parties of this process restored."""
    if saved is None:
        return so_far
    shares, public, value = so_far if so_far is not None else ({}, {}, None)
    if len(saved) == 2:  # a worker's
        shares[party], public[party] = saved
    elif len(saved) == 1:  # the crypto provider's
        value = saved[0]
    return shares, public, value
