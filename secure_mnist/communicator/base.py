"""The message channel between parties, and what it counts.

Protocols never touch another party's share directly: they `send` a tensor to a named party and
that party `recv`s it. A backend decides how the bytes travel (in memory, over torch.distributed);
the protocols stay the same. Every message is counted, so the cost of a protocol is measured,
not estimated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class TrafficStats:
    """Bytes and messages per party, and the number of communication rounds between workers."""

    bytes_sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bytes_received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    messages: int = 0
    rounds: int = 0

    def record_sent(self, src: str, tensor: torch.Tensor) -> None:
        self.bytes_sent[src] += tensor.numel() * tensor.element_size()
        self.messages += 1

    def record_received(self, dst: str, tensor: torch.Tensor) -> None:
        """Counted where the message arrives: with parties in separate processes, that is another process."""
        self.bytes_received[dst] += tensor.numel() * tensor.element_size()

    def total_bytes(self) -> int:
        return sum(self.bytes_sent.values())

    def snapshot(self) -> TrafficStats:
        return TrafficStats(defaultdict(int, self.bytes_sent), defaultdict(int, self.bytes_received),
                            self.messages, self.rounds)

    def since(self, earlier: TrafficStats) -> TrafficStats:
        """What happened after `earlier` was taken."""
        names = set(self.bytes_sent) | set(self.bytes_received)
        return TrafficStats(
            defaultdict(int, {n: self.bytes_sent[n] - earlier.bytes_sent.get(n, 0) for n in names}),
            defaultdict(int, {n: self.bytes_received[n] - earlier.bytes_received.get(n, 0) for n in names}),
            self.messages - earlier.messages,
            self.rounds - earlier.rounds,
        )


class Communicator(ABC):
    """Point-to-point messages between named parties, with traffic accounting.

    `local_parties` are the parties whose code runs in this process: all of them in memory, one
    per process over a network. Protocols loop over the local parties only, so the same protocol
    code serves both.
    """

    def __init__(self) -> None:
        self.stats = TrafficStats()
        self.inbox_log: dict[str, list[torch.Tensor]] | None = None

    # --8<-- [start:interface]
    @property
    @abstractmethod
    def local_parties(self) -> frozenset[str]:
        """Names of the parties that run in this process."""

    @abstractmethod
    def _deliver(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        """Move one tensor from src towards dst."""

    @abstractmethod
    def _collect(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """Take the oldest tensor src sent to dst; the receiver always knows its shape and dtype.

        Every party runs the same program, so what a party expects is known without asking: the
        backends need no header, and a mismatch is a protocol bug worth an exception.
        """

    def is_local(self, party: str) -> bool:
        return party in self.local_parties

    def send(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        self.stats.record_sent(src, tensor)
        self._deliver(src, dst, tensor)

    def recv(self, dst: str, src: str, shape: tuple[int, ...] | torch.Size,
             dtype: torch.dtype = torch.int64) -> torch.Tensor:
        return self._received(dst, self._collect(dst, src, tuple(shape), dtype))

    def _received(self, dst: str, tensor: torch.Tensor) -> torch.Tensor:
        """Count a message that arrived at dst (and keep it, for the security tests)."""
        self.stats.record_received(dst, tensor)
        if self.inbox_log is not None:
            self.inbox_log.setdefault(dst, []).append(tensor)
        return tensor

    def recv_later(self, dst: str, src: str, shape: tuple[int, ...] | torch.Size,
                   dtype: torch.dtype = torch.int64) -> Callable[[], torch.Tensor]:
        """Announce a receive now, take the tensor later: `recv_later(...)()` is `recv(...)`.

        Over a network the message can travel while the receiver still computes; calls are
        taken in the order they were announced.
        """
        return lambda: self.recv(dst, src, shape, dtype)

    def exchange(self, values: dict[str, torch.Tensor], peers: dict[str, str]) -> dict[str, torch.Tensor]:
        """One round: each local party sends its value to its peer and receives the peer's value."""
        self.stats.rounds += 1
        incoming = {party: self.recv_later(party, peers[party], value.shape, value.dtype)
                    for party, value in values.items()}
        for party, value in values.items():
            self.send(party, peers[party], value)
        return {party: take() for party, take in incoming.items()}
    # --8<-- [end:interface]

    def send_untracked(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        """A message about the computation (telemetry), not part of it: not counted, not logged."""
        self._deliver(src, dst, tensor)

    def recv_untracked(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return self._collect(dst, src, shape, dtype)

    def flush(self) -> None:
        """Wait until every message sent so far has left (nothing to do in memory)."""

    def agree(self, label: str, value: str) -> dict[str, str]:
        """Every party's `value` for `label` (checking that all parties run the same settings).

        In one process there is only this process's view to compare.
        """
        return {party: value for party in self.local_parties}

    def close(self) -> None:
        """Release the channel."""

    def record_inboxes(self) -> dict[str, list[torch.Tensor]]:
        """Start keeping every received tensor, per receiving party (for security tests)."""
        self.inbox_log = {}
        return self.inbox_log
