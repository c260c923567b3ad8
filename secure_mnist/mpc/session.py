"""A session groups two workers, a crypto provider and a client around one communicator."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Sequence
from typing import Any

import torch

from ..communicator import Communicator, InProcessCommunicator
from ..encoding import FixedPointEncoder
from ..errors import SetupError
from ..parties import Client, CryptoProvider, Party, Worker
from .randomness import PRG, SEED_BYTES, derive_seed

# One counter for every session in the process: see Session.new_key.
_TENSOR_KEYS = itertools.count()


class Session:
    """The parties of one secure computation and the channel between them.

    The protocols here are two-party protocols with a dealer (SPDZ-style multiplication with a
    trusted crypto provider, SecureML truncation, a two-share binary adder for comparison), so a
    session has exactly two workers.
    """

    def __init__(
        self,
        workers: Sequence[Worker | str] = ("alice", "bob"),
        crypto_provider: CryptoProvider | str | None = "crypto_provider",
        client: Client | str = "me",
        encoder: FixedPointEncoder | None = None,
        communicator: Communicator | None = None,
        seed: bytes | int | None = None,
    ) -> None:
        if isinstance(workers, str):
            raise SetupError(f"workers must be a sequence of parties, such as ('alice', 'bob'), not the string {workers!r}")
        if len(workers) < 2:
            raise SetupError(f"secret sharing needs 2 workers, got {len(workers)}: {list(workers)}")
        if len(workers) > 2:
            raise SetupError(
                f"secure_mnist's protocols are two-party (with a crypto provider); got {len(workers)} workers"
            )
        if crypto_provider is None:
            raise SetupError("multiplication and comparison need a crypto provider to deal Beaver triples")
        master = _master_seed(seed)
        self.workers: tuple[Worker, Worker] = tuple(_party(Worker, w, master) for w in workers)  # type: ignore[assignment]
        self.provider: CryptoProvider = _party(CryptoProvider, crypto_provider, master)
        self.client: Client = _party(Client, client, master)
        names = [p.name for p in (*self.workers, self.provider, self.client)]
        if len(set(names)) != len(names):
            raise SetupError(f"every party needs its own name, got {names}")
        self.encoder = encoder or FixedPointEncoder()
        self.comm = communicator or InProcessCommunicator(names)
        self.peer = {self.workers[0].name: self.workers[1].name, self.workers[1].name: self.workers[0].name}
        self._pair_prgs: dict[tuple[str, str], PRG] = {}
        self._agree_on_pair_seeds()
        # A label for this training run, drawn by the client: checkpoints carry it, so a resume
        # can tell files of one run from another's.
        drawn = secrets.token_hex(8) if self.is_local(self.client) else ""
        self.run_id: str = self.comm.agree("run_id", drawn)[self.client.name]
        from .provider.plan import Dealing  # (the provider's modules import this one)

        self.dealing = Dealing(self)

    # -- who runs here -------------------------------------------------------------------------
    @property
    def first(self) -> Worker:
        """The worker that adds public constants (any fixed one would do)."""
        return self.workers[0]

    @property
    def local_workers(self) -> list[Worker]:
        return [w for w in self.workers if self.comm.is_local(w.name)]

    def is_local(self, party: Party) -> bool:
        return self.comm.is_local(party.name)

    def parties(self) -> tuple[Party, ...]:
        return (*self.workers, self.provider, self.client)

    def new_key(self) -> int:
        """A tensor key unique in this process, across sessions: two sessions can share workers
        (the same pair with two crypto providers), and their shares live in the same stores."""
        return next(_TENSOR_KEYS)

    def free(self, key: int) -> None:
        for worker in self.workers:
            worker.store.pop(key, None)

    # -- common randomness -------------------------------------------------------------------------
    def _agree_on_pair_seeds(self) -> None:
        """The three pairs that draw common randomness: the two workers, and the dealer with each."""
        first, second = self.workers
        for holder, peer in ((first, second), (self.provider, first), (self.provider, second)):
            self._agree_on_seed(holder, peer)

    def _agree_on_seed(self, holder: Party, peer: Party) -> None:
        """`holder` draws a seed and sends it to `peer` once; both then run the same AES stream.

        Afterwards they can draw identical random values without another message: fresh shares of
        zero between the workers, and each worker's part of the dealer's randomness.
        """
        if self.is_local(holder):
            seed = holder.prg.seed()
            self.comm.send(holder.name, peer.name, torch.frombuffer(bytearray(seed), dtype=torch.uint8))
            self._pair_prgs[(holder.name, peer.name)] = PRG(seed)
        if self.is_local(peer):
            seed = self.comm.recv(peer.name, holder.name, (SEED_BYTES,), torch.uint8)
            self._pair_prgs[(peer.name, holder.name)] = PRG(seed.numpy().tobytes())

    def renew_randomness(self, label: str) -> None:
        """Every random stream starts afresh: each party forks its own stream under `label`, and
        the pairs agree on new common seeds.

        A resumed run calls this. Rewinding the streams to where a checkpoint left them would
        replay masks that the interrupted run had already used to open other values (its shares,
        and so its stochastic rounding, differ), and two openings under one mask reveal the
        difference of the two values. With a random session seed the new streams are fresh; with
        a fixed one (testing only) they are a function of the seed and the label.
        """
        for party in self.parties():
            if self.is_local(party):
                party.prg = party.prg.fork(label)
        self._agree_on_pair_seeds()

    def common_prg(self, holder: Party, peer: Party) -> PRG:
        """`holder`'s copy of the random stream it shares with `peer`."""
        return self._pair_prgs[(holder.name, peer.name)]

    def zero_shares(self, shape: torch.Size) -> dict[Worker, torch.Tensor]:
        """Fresh shares of zero: the first worker adds r, the second subtracts the same r."""
        first, second = self.workers
        out = {}
        for worker in self.local_workers:
            mask = self.common_prg(worker, second if worker is first else first).ring(shape)
            out[worker] = mask if worker is first else -mask
        return out

    # -- observability and checkpoints -------------------------------------------------------------
    def traffic_by_party(self) -> dict[str, tuple[int, int]] | None:
        """(bytes sent, bytes received) per party so far, gathered at the client; None elsewhere.

        In one process the communicator saw everything; across processes each party reports its
        own counters to the client in a small message that is not itself counted.
        """
        stats = self.comm.stats
        names = [p.name for p in self.parties()]
        for party in self.parties():
            if party is not self.client and self.is_local(party) and not self.is_local(self.client):
                counters = torch.tensor([stats.bytes_sent[party.name], stats.bytes_received[party.name]])
                self.comm.send_untracked(party.name, self.client.name, counters)
        if not self.is_local(self.client):
            return None
        traffic = {}
        for name in names:
            if self.comm.is_local(name):
                traffic[name] = (stats.bytes_sent[name], stats.bytes_received[name])
            else:
                sent, received = self.comm.recv_untracked(self.client.name, name, (2,), torch.int64).tolist()
                traffic[name] = (sent, received)
        return traffic

    def describe(self) -> str:
        provider = "none yet" if isinstance(self.provider, MissingCryptoProvider) else self.provider.name
        return f"workers {self.workers[0].name}, {self.workers[1].name}; crypto provider {provider}"

    # -- a crypto provider given late (PySyft's share() without crypto_provider=) ----------------
    def require_provider(self) -> None:
        """Raise a clear error if this session still has no crypto provider to deal randomness."""
        if isinstance(self.provider, MissingCryptoProvider):
            raise SetupError(
                "this operation (a product of two shared values, or a comparison) needs a crypto provider "
                "to deal Beaver triples and random bits, but these tensors were shared without one: "
                "pass crypto_provider=... to .share()"
            )

    def attach_provider(self, provider: CryptoProvider) -> None:
        """Give a session that was started without a crypto provider its real one.

        Tensors already shared stay valid: only the dealer's streams with the workers are new.
        In-process sessions only (the PySyft API), where every party runs here.
        """
        if not isinstance(self.provider, MissingCryptoProvider):
            raise SetupError(f"this session already has a crypto provider ({self.provider.name})")
        if provider.name in {p.name for p in (*self.workers, self.client)}:
            raise SetupError(f"every party needs its own name, got {provider.name} twice")
        add_party = getattr(self.comm, "add_party", None)
        if add_party is None:
            raise SetupError("a crypto provider can be added later only when every party runs in this process")
        add_party(provider.name)
        self.provider = provider
        for worker in self.workers:
            self._agree_on_seed(provider, worker)


class MissingCryptoProvider(CryptoProvider):
    """Stands in for a crypto provider not given yet: linear operations need none, and PySyft
    allowed `share()` without one. Asking it for randomness raises (see Session.require_provider)."""


def _master_seed(seed: bytes | int | None) -> bytes:
    """The session's master seed: random by default; a fixed one makes every stream predictable."""
    if seed is None:
        return os.urandom(SEED_BYTES)
    if isinstance(seed, bool) or not isinstance(seed, (int, bytes)):
        raise SetupError(f"a session seed is None, an integer or {SEED_BYTES} bytes, got {type(seed).__name__}")
    if isinstance(seed, int):
        if not 0 <= seed < 2**128:
            raise SetupError(f"a session seed is an integer from 0 to 2^128 - 1, got {seed}")
        return seed.to_bytes(SEED_BYTES, "little", signed=False)
    if len(seed) != SEED_BYTES:
        # An empty key would make blake2b unkeyed: every party's stream would be public.
        raise SetupError(f"a session seed of bytes must have exactly {SEED_BYTES} bytes, got {len(seed)}")
    return seed


def _party(kind: type[Party], party: Party | str, master: bytes) -> Party:
    if isinstance(party, Party):
        if not isinstance(party, kind):
            raise SetupError(f"{party.name} is a {type(party).__name__}, expected a {kind.__name__}")
        return party
    return kind(party, PRG(derive_seed(master, party)))


# Sessions by their pair of workers (the party objects themselves: two 'alice' objects differ).
# Each session keeps its parties alive, so ids stay valid.
_GROUPS: dict[frozenset[int], list[Session]] = {}


def session_for(workers: Sequence[Any], crypto_provider: Any) -> Session:
    """The one session of a group of parties, so that all tensors shared among them combine.

    Accepts Worker/CryptoProvider objects or PySyft-style VirtualWorkers (anything with `as_role`).
    The order of the workers does not matter: (alice, bob) and (bob, alice) are one group. Without
    a crypto provider the group's session is used as it is (or started without one: linear
    operations need none); the first crypto provider given to a group joins its session.
    """
    if len(workers) != 2:
        raise SetupError(f"secret sharing needs 2 workers, got {len(workers)}"
                         + ("" if len(workers) < 2 else ": secure_mnist's protocols are two-party"))
    roles = [w.as_role(Worker) if hasattr(w, "as_role") else w for w in workers]
    provider = crypto_provider.as_role(CryptoProvider) if hasattr(crypto_provider, "as_role") else crypto_provider
    for party in (*roles, *([] if provider is None else [provider])):
        if not isinstance(party, Party):
            raise SetupError(f"expected parties (workers and a crypto provider), got {party!r}")
    if roles[0] is roles[1]:
        raise SetupError(f"the two workers must be different parties, got {roles[0].name} twice")
    sessions = _GROUPS.setdefault(frozenset(id(r) for r in roles), [])
    if provider is None:
        if not sessions:
            sessions.append(Session(workers=roles, crypto_provider=MissingCryptoProvider("no crypto provider")))
        return sessions[0]
    for session in sessions:
        if session.provider is provider:
            return session
    for session in sessions:
        if isinstance(session.provider, MissingCryptoProvider):
            session.attach_provider(provider)
            return session
    sessions.append(Session(workers=roles, crypto_provider=provider))
    return sessions[-1]
