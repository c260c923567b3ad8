"""Parties in separate processes (one machine or several), over torch.distributed with gloo.

Each process runs one party. Messages are point-to-point tensors with no header: every party runs
the same program, so the receiver knows the shape and dtype it expects. Sends are
asynchronous (isend), so two workers exchanging large tensors never wait on each other. A peer
that dies breaks the TCP connection and a peer that hangs runs into the timeout: either way the
error names the party.
"""

from __future__ import annotations

import datetime
import time
from collections import deque
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist

from ..errors import SecureMNISTError
from .base import Communicator

MAX_PENDING_SENDS = 64


class PartyLostError(SecureMNISTError, RuntimeError):
    """Another party stopped answering: its process died, hung, or the network failed."""


class DistributedCommunicator(Communicator):
    """Messages between processes; `parties` lists every party, their index is their rank."""

    def __init__(self, me: str, parties: Sequence[str], master: str, timeout: float = 60.0) -> None:
        super().__init__()
        if me not in parties:
            raise ValueError(f"{me!r} is not one of the parties {list(parties)}")
        self.me = me
        self.ranks = {name: rank for rank, name in enumerate(parties)}
        self.timeout = timeout
        # (receiver, pending send, its buffer: isend needs the buffer alive until it completes)
        self._pending: deque[tuple[str, dist.Work, torch.Tensor]] = deque()
        self.seconds_waiting = 0.0
        self.seconds_serializing = 0.0
        self.parties = tuple(parties)
        host, port = master.rsplit(":", 1)
        try:
            dist.init_process_group(
                "gloo", init_method=f"tcp://{host}:{port}", rank=self.ranks[me], world_size=len(parties),
                timeout=datetime.timedelta(seconds=timeout),
            )
        except Exception as error:  # noqa: BLE001 - re-raised with the party's view of it
            raise PartyLostError(f"{me} could not reach the other parties at {master} within {timeout:.0f} s: "
                                 f"{error}") from error

    @property
    def local_parties(self) -> frozenset[str]:
        return frozenset({self.me})

    # --8<-- [start:channel]
    def _deliver(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        start = time.perf_counter()
        flat = tensor.contiguous().view(-1)
        self.seconds_serializing += time.perf_counter() - start
        try:
            self._pending.append((dst, dist.isend(flat, self.ranks[dst]), flat))
        except RuntimeError as error:
            raise self._lost(dst, error) from error
        while len(self._pending) > MAX_PENDING_SENDS:
            self._wait_oldest()

    def _collect(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return self._post(src, shape, dtype)()

    def recv_later(self, dst, src, shape, dtype=torch.int64):
        # gloo moves a message only once its receiver has posted the receive (the sender
        # announces it and waits for the go-ahead): posting early saves that round trip.
        take = self._post(src, tuple(shape), dtype)
        return lambda: self._received(dst, take())

    def _post(self, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> Callable[[], torch.Tensor]:
        """Post a receive from src now; the returned function waits for it and gives the tensor."""
        payload = torch.empty(shape, dtype=dtype)
        try:
            work = dist.irecv(payload.view(-1), self.ranks[src])
        except RuntimeError as error:
            raise self._lost(src, error) from error

        def wait() -> torch.Tensor:
            self._wait(work, src)
            return payload

        return wait

    def exchange(self, values, peers):
        received = super().exchange(values, peers)
        self.flush()  # our sends to the peer are done once it has answered
        return received
    # --8<-- [end:channel]

    def flush(self) -> None:
        """Wait until every message sent so far has left."""
        while self._pending:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        dst, work, _buffer = self._pending.popleft()
        self._wait(work, dst)

    def _wait(self, work: dist.Work, party: str) -> None:
        """Wait for a send to or a receive from `party` to complete; the time counts as waiting."""
        start = time.perf_counter()
        try:
            work.wait()
        except RuntimeError as error:
            raise self._lost(party, error) from error
        finally:
            self.seconds_waiting += time.perf_counter() - start

    # --8<-- [start:lost]
    def _lost(self, party: str, error: Exception) -> PartyLostError:
        """The error to raise, naming the lost party and the first failure any party reported.

        A failure cascades (bob dies, alice stops, then the client loses alice), so each party
        records what it saw in the rendezvous store; the first record names the real cause.
        """
        seen = f"{self.me} lost contact with {party}"
        # A closed connection is often the cascade of a failure a peer is reporting right now;
        # a timeout is seen first hand. So a closed connection gives others a moment to report.
        closed = any(words in str(error) for words in ("closed by peer", "reset by peer"))
        first = _first_failure(seen, wait_for_others=2.0 if closed else 0.0)
        cause = "" if first in (None, seen) else f"; the first failure reported: {first}"
        return PartyLostError(
            f"{seen}: its process died, hung for more than {self.timeout:.0f} s, or the network failed"
            f"{cause} (gloo: {_reason(error)})"
        )
    # --8<-- [end:lost]

    def agree(self, label: str, value: str) -> dict[str, str]:
        """Every party's value for `label`, through the rendezvous store (not the parties' channel)."""
        store = dist.distributed_c10d._get_default_store()
        store.set(f"secure_mnist/{label}/{self.me}", value)
        try:
            return {party: store.get(f"secure_mnist/{label}/{party}").decode() for party in self.parties}
        except RuntimeError as error:
            raise PartyLostError(f"{self.me} did not hear from every party about {label}: {_reason(error)}") from error

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()


# --8<-- [start:first_failure]
def _first_failure(report: str, wait_for_others: float = 0.0) -> str | None:
    """Record `report` if no party has reported a failure yet; return the first report (or None).

    With `wait_for_others`, first wait that long for someone else's report.
    """
    try:
        store = dist.distributed_c10d._get_default_store()
        deadline = time.monotonic() + wait_for_others
        while time.monotonic() < deadline:
            if store.check(["secure_mnist/first_failure"]):
                return store.get("secure_mnist/first_failure").decode()
            time.sleep(0.05)
        if store.add("secure_mnist/failures", 1) == 1:
            store.set("secure_mnist/first_failure", report)
            return report
        deadline = time.monotonic() + 1.0
        while not store.check(["secure_mnist/first_failure"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        return store.get("secure_mnist/first_failure").decode()
    except Exception:  # noqa: BLE001 - the store lives with the client, which may be the one that died
        return None
# --8<-- [end:first_failure]


def _reason(error: Exception) -> str:
    """gloo's own words, without its source location and generic advice."""
    text = str(error).splitlines()[0]
    text = text.split("] ", 1)[-1]  # drop "[/path/to/gloo/pair.cc:553] "
    return text.split(". This is typically")[0].strip()
