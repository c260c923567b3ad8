"""Where the parties meet: a key-value store on the client's machine, listening on one address only.

torch's TCPStore is the meeting point: each party publishes there the address its links listen on
(see links.py). The store has no authentication of its own; anyone who reaches its port can read
and write it. So the store listens only on the address given with --master (127.0.0.1 stays on
this machine), the links listen only on the address that leads to the master, and what secure_mnist itself keeps in the store is
public and signed: the run's random id, which every handshake binds, and failure reports, which
carry a MAC keyed by the token. Nothing secret is ever written there: the parties' settings are
compared over the encrypted channel instead.
"""

from __future__ import annotations

import datetime
import fcntl
import hmac
import os
import socket
import struct
import time

import torch.distributed as dist

from ..errors import SetupError
from .channel import mac

STORE_PREFIX = "secure_mnist/"
RUN_ID_BYTES = 16


def split_master(master: str) -> tuple[str, int]:
    """'HOST:PORT' (or '[v6]:PORT') as host and port, with a clear error for anything else."""
    host, sep, port = master.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--master must be HOST:PORT with a port from 1 to 65535, got {master!r}")
    if host in ("0.0.0.0", "::"):
        raise ValueError(f"--master {master}: give the address the other parties connect to (the store "
                         "listens on that address only), not the wildcard address")
    return host, int(port)


def agent_hosts_store() -> bool:
    """Under torchrun, its agent already serves a store at MASTER_ADDR:MASTER_PORT (and binds it)."""
    return os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"


def open_store(host: str, port: int, rank: int, world_size: int, timeout: float) -> dist.Store:
    """The rendezvous store: rank 0 serves it on (host, port) only, the others connect to it."""
    wait = datetime.timedelta(seconds=timeout)
    if rank != 0 or agent_hosts_store():
        return dist.TCPStore(host, port, world_size, False, wait)
    listener = bind_listener(host, port)
    # The store takes over the socket we bound ourselves: its own would listen on every interface.
    return dist.TCPStore(host, port, world_size, True, wait, master_listen_fd=listener.detach())


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on exactly (host, port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        raise SetupError(f"the client cannot listen on {host}:{port} ({error.strerror or error}): --master must "
                         "be an address of the client's machine and a free port") from error
    return listener


def local_address(host: str) -> str:
    """This machine's address on the way to `host`: where this process's links listen.

    An address of this machine (127.0.0.1, the client's --master) is used as it is; otherwise the
    address of the interface the system would route to `host` through.
    """
    family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address[0], 0))
            return address[0]
        except OSError:
            pass
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((address[0], 9))  # UDP: no packet is sent, the kernel only picks a route
        return probe.getsockname()[0]


def link_address(host: str) -> str:
    """Where this party listens for the other parties' links: the address of the interface
    SECURE_MNIST_INTERFACE names (GLOO_SOCKET_IFNAME, its older name, still works), else this
    machine's address on the way to the master."""
    interface = os.environ.get("SECURE_MNIST_INTERFACE") or os.environ.get("GLOO_SOCKET_IFNAME")
    if interface:
        return interface_address(interface)
    return local_address(host)


def interface_address(interface: str) -> str:
    """The IPv4 address of a network interface, by name (Linux)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            packed = fcntl.ioctl(probe.fileno(), 0x8915, struct.pack("256s", interface.encode()[:15]))  # SIOCGIFADDR
        except OSError as error:
            raise SetupError(f"no IPv4 address on the network interface {interface!r} ({error.strerror or error}); "
                             "check SECURE_MNIST_INTERFACE") from error
    return socket.inet_ntoa(packed[20:24])


def run_id(store: dist.Store, rank: int) -> bytes:
    """A random id for this run, drawn by the client: every handshake binds it, so a report or a
    handshake message recorded in another run does not verify in this one."""
    key = STORE_PREFIX + "run_id"
    if rank == 0 and not store.check([key]):
        store.set(key, os.urandom(RUN_ID_BYTES).hex())
    return bytes.fromhex(store.get(key).decode())


class FailureReports:
    """The first failure any party reported, kept in the store and signed with the token's key.

    A failure cascades (bob dies, alice stops, then the client loses alice), so the first report
    names the real cause. Whoever reaches the store could write a report too: a report whose MAC
    does not verify is quoted as such, never as a party's word.
    """

    FIRST = STORE_PREFIX + "first_failure"
    COUNT = STORE_PREFIX + "failures"

    def __init__(self, store: dist.Store, key: bytes | None, run: bytes) -> None:
        self.store, self._key, self._run = store, key, run

    # --8<-- [start:first_failure]
    def first(self, report: str, wait_for_others: float = 0.0) -> str | None:
        """Record `report` if no party has reported a failure yet; return the first report (or None).

        With `wait_for_others`, first wait that long for someone else's report.
        """
        try:
            deadline = time.monotonic() + wait_for_others
            while time.monotonic() < deadline:
                if self.store.check([self.FIRST]):
                    return self._read()
                time.sleep(0.05)
            if self.store.add(self.COUNT, 1) == 1:
                self.store.set(self.FIRST, self._sign(report))
                return report
            deadline = time.monotonic() + 1.0
            while not self.store.check([self.FIRST]) and time.monotonic() < deadline:
                time.sleep(0.05)
            return self._read()
        except Exception:  # noqa: BLE001 - the store lives with the client, which may be the one that died
            return None

    def _sign(self, report: str) -> str:
        if self._key is None:
            return report
        return f"{report}\n{mac(self._key, b'failure report', self._run, report.encode()).hex()}"

    def _read(self) -> str:
        value = self.store.get(self.FIRST).decode()
        if self._key is None:
            return value
        report, _, tag = value.rpartition("\n")
        if not hmac.compare_digest(tag, mac(self._key, b"failure report", self._run, report.encode()).hex()):
            return "(a report that failed authentication: something other than the parties wrote to the store)"
        return report
    # --8<-- [end:first_failure]
