"""Per-party checkpoints: each party saves only what it holds, and nobody ever combines them.

A worker's file has its shares of the model's parameters. The training batches were opened
under masks in the first epoch and are never opened again (see `Opening`): a worker's file keeps
its shares of those masks and the opened values, the crypto provider's file the masks. No file
keeps a random stream's position: a resumed run draws fresh randomness (see
`Session.renew_randomness`), so no mask of the interrupted run ever opens another value.

Every file names its party, run and epoch, and `load` checks each tensor's shape and dtype
against the model and batches of the run that resumes, naming the file and the tensor.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from .errors import CheckpointError
from .mpc.fixed_point import FixedPrecisionTensor
from .mpc.opening import Mask, Opening
from .mpc.sharing import AdditiveSharingTensor
from .nn import encrypted_parameters

if TYPE_CHECKING:
    from torch import nn

    from .mpc.session import Session
    from .optim import SGD
    from .parties import Party
    from .training import TrainingConfig

FORMAT_VERSION = 3  # 3: run id, no stream positions (a resume draws fresh randomness)


def party_file(directory: str | pathlib.Path, party_name: str) -> pathlib.Path:
    return pathlib.Path(directory) / f"{party_name}.pt"


def save(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig,
         epoch: int, batches: Sequence[AdditiveSharingTensor] = (), optimizer: SGD | None = None) -> None:
    """Each party of this process writes its own file (atomically: a crash never leaves half a file).

    `batches` are the shared training inputs, whose openings are kept too; with momentum, a
    worker's file also keeps its shares of the optimizer's velocities.
    """
    # Every party has finished the epoch before any party saves it. The crypto provider never
    # waits for anyone otherwise (it only sends), so it could be an epoch ahead of the workers;
    # a party stopped before this point leaves every file at the previous epoch.
    reached = session.comm.agree("checkpoint", str(epoch))
    if set(reached.values()) != {str(epoch)}:
        raise CheckpointError(f"the parties reached different epochs before saving: {reached}")
    pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
    params = encrypted_parameters(model)
    for party in session.parties():
        if not session.is_local(party):
            continue
        state = {
            "format": FORMAT_VERSION, "party": party.name, "run": session.run_id, "epoch": epoch,
            "config": dict(config.__dict__),
            "shares": [p.child.child.share_of(party) for p in params] if party in session.workers else None,
            "openings": [_opening_state(batch.opening, party, session) for batch in batches],
            "velocities": _velocity_shares(optimizer, party, session),
        }
        target = party_file(directory, party.name)
        temporary = target.with_suffix(".tmp")
        torch.save(state, temporary)
        temporary.replace(target)


def load(directory: str | pathlib.Path, session: Session, model: nn.Module, config: TrainingConfig,
         batches: Sequence[AdditiveSharingTensor] = (), optimizer: SGD | None = None) -> int:
    """Restore this process's parties from their own files; returns the last completed epoch.

    Afterwards every random stream is renewed (fresh seeds, agreed anew between the parties).
    """
    params = encrypted_parameters(model)
    found: dict[str, tuple[str, int]] = {}  # party -> (run, epoch)
    openings: list[tuple[dict, dict, torch.Tensor | None] | None] = [None] * len(batches)
    momentum = optimizer is not None and optimizer.momentum > 0
    velocities: list[dict] = [{} for _ in params] if momentum else []
    for party in session.parties():
        if not session.is_local(party):
            continue
        path = party_file(directory, party.name)
        state = _read(path, party, config)
        found[party.name] = (state["run"], state["epoch"])
        if party in session.workers:
            shares = _checked_list(state, "shares", len(params), path)
            for index, (param, share) in enumerate(zip(params, shares)):
                _check_tensor(share, param.shape, f"shares[{index}]", path)
                party.store[param.child.child.key] = share
        elif state["shares"] is not None:
            raise CheckpointError(f"{path}: holds parameter shares, but {party.name} is not a worker")
        if momentum and party in session.workers:
            saved_velocities = _checked_list(state, "velocities", len(params), path)
            for index, (param, share) in enumerate(zip(params, saved_velocities)):
                _check_tensor(share, param.shape, f"velocities[{index}]", path)
                velocities[index][party] = share
        saved_openings = _checked_list(state, "openings", len(batches), path)
        for index, (batch, saved) in enumerate(zip(batches, saved_openings)):
            openings[index] = _merge_opening(openings[index], _checked_opening(saved, party, session, batch.shape,
                                                                                   index, path), party)
    for batch, opening in zip(batches, openings):
        if opening is not None:
            shares, public, value = opening
            batch.opening = Opening(Mask(shares, value), public)
    if momentum:  # every process makes the same handles, in the same order (the keys must agree)
        optimizer.velocities = [FixedPrecisionTensor(AdditiveSharingTensor(session, shares, param.shape), config.encoder)
                                for param, shares in zip(params, velocities)]  # type: ignore[union-attr]
    run, epoch = _same_run_everywhere(directory, session, found)
    session.run_id = run
    session.renew_randomness(f"resumed run {run} after epoch {epoch}")
    return epoch


def _velocity_shares(optimizer: SGD | None, party: Party, session: Session) -> list[torch.Tensor] | None:
    """A worker's shares of the momentum velocities (None without momentum, or for other parties)."""
    if optimizer is None or not optimizer.momentum or party not in session.workers:
        return None
    if any(v is None for v in optimizer.velocities):
        raise CheckpointError("a checkpoint with momentum needs every velocity: save after a training step")
    return [v.child.share_of(party) for v in optimizer.velocities]  # type: ignore[union-attr]


def _read(path: pathlib.Path, party: Party, config: TrainingConfig) -> dict[str, Any]:
    """One party's file, with its header checked."""
    if not path.exists():
        raise CheckpointError(f"no checkpoint for {party.name} in {path.parent} (expected {path.name})")
    try:
        state = torch.load(path, weights_only=True)  # a checkpoint is data: never run code from one
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("party") != party.name:
        raise CheckpointError(f"{path} is not a secure_mnist checkpoint of {party.name}")
    if state.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by another version of secure_mnist (format "
                              f"{state.get('format')}, this version reads {FORMAT_VERSION}): start a new run")
    if not isinstance(state.get("run"), str) or not isinstance(state.get("epoch"), int):
        raise CheckpointError(f"{path}: its run or epoch is missing or malformed")
    if state.get("config") != dict(config.__dict__):
        saved = state.get("config") or {}
        changed = sorted(k for k in set(saved) | set(config.__dict__) if saved.get(k) != config.__dict__.get(k))
        raise CheckpointError(f"{path} was written with different settings ({', '.join(changed)}); "
                              "resume with the same settings")
    return state


def _checked_list(state: dict[str, Any], key: str, expected: int, path: pathlib.Path) -> list:
    value = state.get(key)
    if not isinstance(value, list) or len(value) != expected:
        count = len(value) if isinstance(value, list) else type(value).__name__
        raise CheckpointError(f"{path}: '{key}' has {count} entries, this run expects {expected}")
    return value


def _check_tensor(value: Any, shape: torch.Size, name: str, path: pathlib.Path) -> None:
    """A share or opened value must be an int64 tensor of exactly the expected shape (no broadcasting)."""
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{path}: tensor '{name}' is a {type(value).__name__}, expected an int64 tensor")
    if value.dtype != torch.int64 or value.shape != shape:
        raise CheckpointError(f"{path}: tensor '{name}' is {value.dtype} {tuple(value.shape)}, "
                              f"expected torch.int64 {tuple(shape)}")


def _checked_opening(saved: Any, party: Party, session: Session, shape: torch.Size, index: int,
                     path: pathlib.Path) -> tuple | None:
    """A batch's saved opening as `party` should hold it (see `_opening_state`)."""
    if saved is None:
        return None
    expected = 2 if party in session.workers else 1 if party is session.provider else 0
    if not isinstance(saved, tuple) or len(saved) != expected:
        raise CheckpointError(f"{path}: opening of batch {index} has the wrong form for {party.name}")
    for name, value in zip(("mask share", "opened value") if expected == 2 else ("mask",), saved):
        _check_tensor(value, shape, f"openings[{index}] {name}", path)
    return saved


def _same_run_everywhere(directory: str | pathlib.Path, session: Session,
                         found: dict[str, tuple[str, int]]) -> tuple[str, int]:
    """All parties' files must come from one run and one epoch; across processes each read only
    its own file, so they compare what they found."""
    mine = {f"{run} {epoch}" for run, epoch in found.values()}
    if len(mine) > 1:
        raise CheckpointError(_mixed_message(directory, {party: f"{run} {epoch}" for party, (run, epoch) in found.items()}))
    agreed = session.comm.agree("checkpoint", mine.pop())
    if len(set(agreed.values())) > 1:
        raise CheckpointError(_mixed_message(directory, agreed) + "; a party probably stopped between the others' "
                              "saves and its own")
    run, epoch = next(iter(agreed.values())).split()
    return run, int(epoch)


def _mixed_message(directory: str | pathlib.Path, found: dict[str, str]) -> str:
    runs = {value.split()[0] for value in found.values()}
    listing = ", ".join(f"{party}: {'run ' + value.split()[0] + ' ' if len(runs) > 1 else ''}epoch {value.split()[1]}"
                        for party, value in sorted(found.items()))
    what = "different runs" if len(runs) > 1 else "different epochs"
    return f"the parties' checkpoints in {directory} are from {what} ({listing})"


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
