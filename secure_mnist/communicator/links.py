"""Point-to-point links between the party processes: one TCP connection per pair of parties.

This is the part of a torch.distributed process group that the parties use, `send` and `recv`
of one buffer to or from one rank, each returning a handle to `wait` on, without gloo. gloo
spent about a millisecond of processor time per message on its own bookkeeping and thread
hand-offs (measured ping-pong on loopback: 0.9 ms of CPU per round trip against 14 us for plain
sockets), and a training step sends some fifty messages per party.

A send leaves at once from the caller's thread when the socket takes it whole, else a sending
thread finishes it, so a party never blocks on a send (two workers sending each other large
tensors at once cannot wait on each other). A receive is read by the thread that waits for it:
no hand-off between threads on the way. Receives are read in the order they were posted, which
is the order the peer sent, as every party runs the same program. A message carries its length
in an 8-byte header, so a receive of the wrong size is an error that says so, not a stream read
out of step. A closed or reset connection fails every waiting handle at once; a handle that
waits longer than the timeout fails too. Either way the error is a RuntimeError, as gloo's were,
and the communicator names the party.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections import deque

import torch
import torch.distributed as dist

HEADER = struct.Struct("<Q")  # the payload's length in bytes
STORE_KEYS = "secure_mnist/links/"


class Handle:
    """A send or receive in flight; `wait` returns once it is done, or raises RuntimeError."""

    def __init__(self, link: Link, receive: bool) -> None:
        self._link, self._receive = link, receive
        self._done = threading.Event()
        self._error: str | None = None

    def finish(self, error: str | None = None) -> None:
        self._error = error
        self._done.set()

    def wait(self) -> bool:
        if self._receive:
            self._link.receive_until(self)  # read by the waiting thread itself: no hand-off
        elif not self._done.wait(self._link.timeout):
            raise RuntimeError(f"Timed out after {self._link.timeout:.0f} s sending to rank {self._link.peer}")
        if self._error is not None:
            raise RuntimeError(self._error)
        return True


class Link:
    """The connection to one peer.

    A send goes out at once from the calling thread when the socket takes it whole; otherwise
    what is left queues for the link's sending thread, so the caller never blocks on a peer
    that is busy. A receive is read by the thread that waits for it, in the order receives
    were posted (every earlier one is read first).
    """

    def __init__(self, connection: socket.socket, peer: int, timeout: float) -> None:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Blocking, so that MSG_DONTWAIT really returns at once (with a timeout set, Python would
        # wait instead); a reader waits with poll and its own timeout.
        connection.settimeout(None)
        self.socket, self.peer, self.timeout = connection, peer, timeout
        self._readable = select.poll()
        self._readable.register(connection, select.POLLIN)
        self._lock = threading.Condition()
        self._sends: deque[tuple[list[memoryview], Handle]] = deque()
        self._receives: deque[tuple[memoryview, Handle]] = deque()
        self._read_lock = threading.Lock()
        self._broken: str | None = None
        self._closing = False
        self._sender = threading.Thread(target=self._send_queued, daemon=True, name=f"link-{peer}-send")
        self._sender.start()

    def send(self, buffer: torch.Tensor) -> Handle:
        data = memoryview(buffer.numpy()).cast("B")
        handle = Handle(self, receive=False)
        parts = [memoryview(HEADER.pack(len(data))), data]
        with self._lock:
            if self._broken is not None:
                handle.finish(self._broken)
                return handle
            if not self._sends:
                try:
                    parts = _after(parts, self.socket.sendmsg(parts, [], socket.MSG_DONTWAIT))
                except BlockingIOError:
                    pass
                except OSError as error:
                    self._fail(_describe(error))
                    handle.finish(self._broken)
                    return handle
                if not parts:
                    handle.finish()
                    return handle
            self._sends.append((parts, handle))
            self._lock.notify_all()
        return handle

    def recv(self, buffer: torch.Tensor) -> Handle:
        handle = Handle(self, receive=True)
        with self._lock:
            if self._broken is not None:
                handle.finish(self._broken)
            else:
                self._receives.append((memoryview(buffer.numpy()).cast("B"), handle))
        return handle

    def receive_until(self, target: Handle) -> None:
        """Read posted receives, oldest first, until `target` is done (or the link breaks)."""
        with self._read_lock:
            while not target._done.is_set():
                with self._lock:
                    if self._broken is not None or not self._receives:
                        target.finish(self._broken or "nothing was posted to receive")
                        return
                    data, handle = self._receives[0]
                try:
                    self._read_message(data)
                except (RuntimeError, OSError) as error:
                    self._fail(_describe(error) if isinstance(error, OSError) else str(error))
                    return
                self._finish_oldest(self._receives, handle)

    def _read_message(self, data: memoryview) -> None:
        header = bytearray(HEADER.size)
        self._read_into(memoryview(header))
        (length,) = HEADER.unpack(header)
        if length != len(data):
            raise RuntimeError(f"rank {self.peer} sent a message of {length} bytes where {len(data)} were expected "
                               "(the parties are out of step)")
        self._read_into(data)

    def _read_into(self, view: memoryview) -> None:
        while view:
            try:
                count = self.socket.recv_into(view, len(view), socket.MSG_DONTWAIT)
            except BlockingIOError:
                if not self._readable.poll(self.timeout * 1000):
                    raise RuntimeError(f"Timed out after {self.timeout:.0f} s waiting for rank {self.peer}") from None
                continue
            if count == 0:
                raise ConnectionResetError("Connection closed by peer")
            view = view[count:]

    def _send_queued(self) -> None:
        while True:
            with self._lock:
                while not self._sends and self._broken is None and not self._closing:
                    self._lock.wait()
                if self._broken is not None or not self._sends:
                    return
                parts, handle = self._sends[0]
            try:
                for part in parts:
                    self.socket.sendall(part)
            except OSError as error:
                self._fail(_describe(error))
                return
            self._finish_oldest(self._sends, handle)

    def _finish_oldest(self, queue: deque, handle: Handle) -> None:
        """Done with the oldest send or receive, unless the link broke meanwhile (the other
        thread's `_fail` then emptied the queue and failed `handle` with everything else)."""
        with self._lock:
            if not queue or queue[0][1] is not handle:
                return
            queue.popleft()
        handle.finish()

    def _fail(self, reason: str) -> None:
        """Fail everything posted and everything posted from now on."""
        with self._lock:
            if self._broken is None:
                self._broken = reason if not self._closing else "the link was closed"
            pending = [*self._sends, *self._receives]
            self._sends.clear()
            self._receives.clear()
            self._lock.notify_all()
        for _, handle in pending:
            handle.finish(self._broken)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        try:  # (a normal end has flushed every send already; after an error, nothing is owed)
            self.socket.shutdown(socket.SHUT_RDWR)  # also wakes a sending thread stuck on a hung peer
        except OSError:
            pass
        self._sender.join(timeout=5.0)
        self.socket.close()


def _after(parts: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `parts` once their first `sent` bytes have gone."""
    left = []
    for part in parts:
        if sent >= len(part):
            sent -= len(part)
        else:
            left.append(part[sent:])
            sent = 0
    return left


class LinkGroup:
    """Links to every other rank, used like a process group: send([t], rank, tag), recv([t], rank, tag)."""

    def __init__(self, links: dict[int, Link], listener: socket.socket) -> None:
        self.links, self._listener = links, listener

    def send(self, tensors: list[torch.Tensor], rank: int, tag: int = 0) -> Handle:
        return self.links[rank].send(tensors[0])

    def recv(self, tensors: list[torch.Tensor], rank: int, tag: int = 0) -> Handle:
        return self.links[rank].recv(tensors[0])

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        self._listener.close()


def connect_links(store: dist.Store, address: str, rank: int, world_size: int, timeout: float) -> LinkGroup:
    """Listen on `address`, publish it in the store, and connect to every other rank.

    The higher rank of each pair connects and names itself; who it really is, the channel's
    handshake proves next (a connection that names a wrong or taken rank is dropped here).
    """
    family = socket.getaddrinfo(address, 0, type=socket.SOCK_STREAM)[0][0]
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((address, 0))
    listener.listen(world_size)
    host, port = listener.getsockname()[:2]
    store.set(f"{STORE_KEYS}{rank}", f"{host} {port}")
    deadline = time.monotonic() + timeout
    links: dict[int, Link] = {}
    for peer in range(rank):
        peer_host, peer_port = store.get(f"{STORE_KEYS}{peer}").decode().split()
        connection = socket.create_connection((peer_host, int(peer_port)), timeout=max(deadline - time.monotonic(), 1))
        connection.sendall(HEADER.pack(rank))
        links[peer] = Link(connection, peer, timeout)
    while len(links) < world_size - 1:
        listener.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            missing = sorted(set(range(rank + 1, world_size)) - set(links))
            raise RuntimeError(f"Timed out after {timeout:.0f} s waiting for ranks {missing} to connect") from None
        claimed = _read_rank(connection)
        if claimed is None or not rank < claimed < world_size or claimed in links:
            connection.close()
            continue
        links[claimed] = Link(connection, claimed, timeout)
    return LinkGroup(links, listener)


def _read_rank(connection: socket.socket) -> int | None:
    connection.settimeout(5.0)
    try:
        data = b""
        while len(data) < HEADER.size:
            chunk = connection.recv(HEADER.size - len(data))
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    return HEADER.unpack(data)[0]


def _describe(error: OSError) -> str:
    """A socket error in the words the communicator looks for ("closed by peer", "reset by peer")."""
    if isinstance(error, BrokenPipeError):
        return "Connection closed by peer (broken pipe)"
    if isinstance(error, ConnectionResetError):
        return "Connection closed by peer" if "closed by peer" in str(error) else "Connection reset by peer"
    return f"socket error: {os.strerror(error.errno) if error.errno else error}"
