"""Parties in separate processes (one machine or several), over TCP links, through an encrypted channel.

Each process runs one party. Messages are point-to-point tensors that carry nothing but their
length (see `links`): every party runs the same program, so the receiver knows the shape and
dtype it expects, and a message of another length is an error, not a misreading. At the start the parties check that they speak the same channel, agree on a key per
pair and direction, authenticated by the join token, and refuse any party that cannot prove it
holds the token (see `channel`); from then on every payload is sealed with AES-256-GCM. Sends are
asynchronous, so two workers exchanging large tensors never wait on each other. A peer that dies
breaks the TCP connection and a peer that hangs runs into the timeout: either way the error names
the party.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence

import torch

from ..errors import SecureMNISTError, SetupError
from .base import Communicator
from .channel import (PUBLIC_KEY_BYTES, REFUSAL, AuthenticationError, ChannelError, ClearChannel, KeyAgreement,
                      SealedChannel, as_bytes, token_key)
from .links import Handle, connect_links
from .rendezvous import FailureReports, link_address, open_store, run_id, split_master

MAX_PENDING_SENDS = 64
HELLO = b"secure_mnist/1 "  # + the channel mode: a peer that speaks another one is named, not misread


class PartyLostError(SecureMNISTError, RuntimeError):
    """Another party stopped answering: its process died, hung, or the network failed."""


class DistributedCommunicator(Communicator):
    """Messages between processes; `parties` lists every party, their index is their rank.

    `token` is the join secret every party was given; without one (None), messages travel
    unencrypted and unauthenticated (--insecure-channel).
    """

    def __init__(self, me: str, parties: Sequence[str], master: str, timeout: float = 60.0,
                 token: str | None = None) -> None:
        super().__init__()
        if me not in parties:
            raise ValueError(f"{me!r} is not one of the parties {list(parties)}")
        key = None if token is None else token_key(token)
        host, port = split_master(master)
        self.me = me
        self.ranks = {name: rank for rank, name in enumerate(parties)}
        self.timeout = timeout
        # (receiver, pending send, its buffer: a send needs the buffer alive until it completes)
        self._pending: deque[tuple[str, Handle, torch.Tensor]] = deque()
        self.seconds_waiting = 0.0
        self.seconds_serializing = 0.0
        self.parties = tuple(parties)
        self._closed = False
        self.setup_bytes_sent = 0  # hello and handshake, sent once per run
        self.overhead_bytes_sent = 0  # the channel's tags on every message since
        rank = self.ranks[me]
        try:
            self.store = open_store(host, port, rank, len(parties), timeout)
            self.run_id = run_id(self.store, rank)
            self._reports = FailureReports(self.store, key, self.run_id)
            self.group = connect_links(self.store, link_address(host), rank, len(parties), timeout)
        except SetupError:
            raise
        except Exception as error:  # noqa: BLE001 - re-raised with the party's view of it
            raise PartyLostError(f"{me} could not reach the other parties at {master} within {timeout:.0f} s: "
                                 f"{error}") from error
        self.channels = self._connect(key)

    @property
    def local_parties(self) -> frozenset[str]:
        return frozenset({self.me})

    @property
    def peers(self) -> list[str]:
        return [party for party in self.parties if party != self.me]

    # --8<-- [start:channel]
    def _deliver(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        start = time.perf_counter()
        payload = as_bytes(tensor)
        self.seconds_serializing += time.perf_counter() - start
        channel = self.channels[dst]
        wire = channel.seal(payload)  # one AES-GCM call: ciphertext and tag in a new buffer
        self.overhead_bytes_sent += channel.overhead
        try:
            self._pending.append((dst, self.group.send([wire], self.ranks[dst], 0), wire))
        except RuntimeError as error:
            raise self._lost(dst, error) from error
        while len(self._pending) > MAX_PENDING_SENDS:
            self._wait_oldest()

    def _collect(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        return self._post(src, shape, dtype)()

    def recv_later(self, dst, src, shape, dtype=torch.int64):
        # Posting early lets the message travel while this party still computes: it waits in the
        # system's buffers and is read into the receive buffer by whoever waits for it.
        take = self._post(src, tuple(shape), dtype)
        return lambda: self._received(dst, take())

    def _post(self, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> Callable[[], torch.Tensor]:
        """Post a receive from src now; the returned function waits for it, checks it and gives the tensor."""
        payload = torch.empty(shape, dtype=dtype)
        channel = self.channels[src]
        # Receives are posted in the order src sent: the message's number is known now.
        wire, number = channel.expect(as_bytes(payload))
        try:
            work = self.group.recv([wire], self.ranks[src], 0)
        except RuntimeError as error:
            raise self._lost(src, error) from error

        def wait() -> torch.Tensor:
            self._wait(work, src)
            try:
                channel.open(wire, number, as_bytes(payload))
            except ChannelError as error:
                self._reports.first(f"{self.me}: {error}")
                raise
            return payload

        return wait

    def exchange(self, values, peers):
        received = super().exchange(values, peers)
        self.flush()  # our sends to the peer are done once it has answered
        return received
    # --8<-- [end:channel]

    @property
    def channel_seconds(self) -> float:
        """Time spent sealing and opening messages (AES-GCM), all peers together."""
        return sum(channel.seconds for channel in self.channels.values())

    @property
    def cipher(self) -> str:
        return next(iter(self.channels.values())).cipher

    # --8<-- [start:handshake]
    def _connect(self, key: bytes | None) -> dict[str, SealedChannel | ClearChannel]:
        """Check that every peer speaks the same channel; then agree on keys with each, or refuse it.

        For each pair, the lower rank initiates: it sends its public key; the responder answers
        with its own and a confirmation (a MAC that only a holder of the token can compute); the
        initiator checks it, then confirms in turn or refuses. Only after every peer has been
        checked does anything else cross the wire, sealed.
        """
        hello = HELLO + (b"sealed" if key is not None else b"clear ")
        said = self._swap({peer: hello for peer in self.peers}, {peer: len(hello) for peer in self.peers})
        differ = [peer for peer, theirs in said.items() if theirs != hello]
        if differ:
            raise ChannelError(self._mismatch({peer: said[peer] for peer in differ}, key is not None))
        if key is None:
            return {peer: ClearChannel() for peer in self.peers}
        agreement = KeyAgreement(self.me, key, self.run_id)
        mine = self.ranks[self.me]
        initiate = [peer for peer in self.peers if self.ranks[peer] > mine]
        respond = [peer for peer in self.peers if self.ranks[peer] < mine]
        hellos = self._swap({peer: agreement.public for peer in initiate}, {peer: PUBLIC_KEY_BYTES for peer in respond})
        keys = {peer: agreement.keys_with(peer, hellos[peer], initiator=False) for peer in respond}
        replies = self._swap({peer: agreement.public + (keys[peer].my_confirmation if keys[peer] else REFUSAL)
                              for peer in respond},
                             {peer: PUBLIC_KEY_BYTES + len(REFUSAL) for peer in initiate})
        for peer in initiate:
            keys[peer] = agreement.keys_with(peer, replies[peer][:PUBLIC_KEY_BYTES], initiator=True)
        accepted = {peer for peer in initiate
                    if keys[peer] is not None and keys[peer].accepts(replies[peer][PUBLIC_KEY_BYTES:])}
        confirmations = self._swap({peer: keys[peer].my_confirmation if peer in accepted else REFUSAL
                                    for peer in initiate},
                                   {peer: len(REFUSAL) for peer in respond})
        accepted |= {peer for peer in respond if keys[peer] is not None and keys[peer].accepts(confirmations[peer])}
        refused = [peer for peer in self.peers if peer not in accepted]
        if refused:
            raise AuthenticationError(self._refusal(refused))
        return {peer: keys[peer].channel(self.me) for peer in self.peers}
    # --8<-- [end:handshake]

    def _swap(self, outgoing: dict[str, bytes], sizes: dict[str, int]) -> dict[str, bytes]:
        """One step of the setup: raw bytes to some peers, raw bytes of known sizes from others."""
        buffers = {peer: torch.empty(size, dtype=torch.uint8) for peer, size in sizes.items()}
        sent = {peer: torch.frombuffer(bytearray(data), dtype=torch.uint8) for peer, data in outgoing.items()}
        try:
            receives = {peer: self.group.recv([buffer], self.ranks[peer], 0) for peer, buffer in buffers.items()}
            sends = {peer: self.group.send([tensor], self.ranks[peer], 0) for peer, tensor in sent.items()}
        except RuntimeError as error:
            raise self._lost("the other parties", error) from error
        for peer, work in (*sends.items(), *receives.items()):
            self._wait(work, peer)
        self.setup_bytes_sent += sum(len(data) for data in outgoing.values())
        return {peer: buffer.numpy().tobytes() for peer, buffer in buffers.items()}

    def _mismatch(self, differ: dict[str, bytes], sealed: bool) -> str:
        strangers = [peer for peer, theirs in differ.items() if not theirs.startswith(HELLO)]
        if strangers:
            return f"{self.me} cannot talk to {', '.join(strangers)}: another version of secure_mnist's channel"
        mine, theirs = ("with", "without") if not sealed else ("without", "with")
        return (f"{self.me} runs {mine} --insecure-channel, {', '.join(differ)} {theirs} it: start every party "
                "with the same channel setting")

    def _refusal(self, refused: list[str]) -> str:
        if len(refused) == len(self.peers):
            return (f"{self.me} could not authenticate any other party ({', '.join(refused)}): {self.me}'s join "
                    "token is not the one they hold (check SECURE_MNIST_TOKEN or --token)")
        names = ", ".join(refused)
        return (f"{self.me} refused {names}: {names} failed authentication (a join token that differs from the "
                f"others', or someone between them altered the handshake); nothing was sent to {names}")

    def flush(self) -> None:
        """Wait until every message sent so far has left."""
        while self._pending:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        dst, work, _buffer = self._pending.popleft()
        self._wait(work, dst)

    def _wait(self, work: Handle, party: str) -> None:
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
        first = self._reports.first(seen, wait_for_others=2.0 if closed else 0.0)
        cause = "" if first in (None, seen) else f"; the first failure reported: {first}"
        return PartyLostError(
            f"{seen}: its process died, hung for more than {self.timeout:.0f} s, or the network failed"
            f"{cause} ({_reason(error)})"
        )
    # --8<-- [end:lost]

    def agree(self, label: str, value: str) -> dict[str, str]:
        """Every party's value for `label`, sent to every other party over the sealed channel.

        (Settings are not secret, but the rendezvous store is open to whoever reaches it, so
        they are compared where only authenticated parties can read or change them.)
        """
        message = f"{label}\n{value}".encode()
        lengths = {peer: self._post(peer, (1,), torch.int64) for peer in self.peers}
        for peer in self.peers:
            self._deliver(self.me, peer, torch.tensor([len(message)]))
        sizes = {peer: int(take()) for peer, take in lengths.items()}
        bodies = {peer: self._post(peer, (sizes[peer],), torch.uint8) for peer in self.peers}
        for peer in self.peers:
            self._deliver(self.me, peer, torch.frombuffer(bytearray(message), dtype=torch.uint8))
        values = {self.me: value}
        for peer, take in bodies.items():
            their_label, _, values[peer] = take().numpy().tobytes().decode().partition("\n")
            if their_label != label:
                raise ChannelError(f"{peer} sent its {their_label!r} while {self.me} compared {label!r} "
                                   "(protocol out of step)")
        self.flush()
        return {party: values[party] for party in self.parties}

    def close(self) -> None:
        """Flush, and after a normal end check that every peer ended normally too.

        A sent message may still sit in the network's buffers when its receiver dies, so a party
        that only sends (the dealer) would not notice: the farewell makes it notice. After an
        error there is no farewell: the connections close, and the peers learn it that way.
        """
        if self._closed:
            return
        self._closed = True
        failing = sys.exc_info()[1] is not None
        try:
            if not failing:
                self.flush()
                self._farewell()
        finally:
            self.group.close()

    def _farewell(self) -> None:
        """One sealed byte to and from every peer, sent when a party's program has ended."""
        ends = {peer: self._post(peer, (1,), torch.uint8) for peer in self.peers}
        for peer in self.peers:
            self._deliver(self.me, peer, torch.ones(1, dtype=torch.uint8))
        for take in ends.values():
            take()
        self.flush()


def _reason(error: Exception) -> str:
    """The link's own words (or the store's, at setup), first line only."""
    lines = str(error).splitlines()
    return lines[0].strip() if lines else type(error).__name__
