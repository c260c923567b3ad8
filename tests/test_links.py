"""The TCP links between party processes (secure_mnist/communicator/links.py), two ranks in one
test process: order, sizes, large messages both ways at once, a lost peer, a hung peer, a
stranger on the listening port."""

from __future__ import annotations

import datetime
import socket
import threading

import pytest
import torch
import torch.distributed as dist

from secure_mnist.communicator.links import HEADER, STORE_KEYS, LinkGroup, connect_links
from secure_mnist.launch import free_port


def pair(timeout: float = 10.0, before_accept=None) -> tuple[LinkGroup, LinkGroup]:
    """Ranks 0 and 1 linked on loopback; `before_accept(store)` runs once rank 0 listens."""
    port = free_port()
    stores = {0: None, 1: None}
    groups: dict[int, LinkGroup] = {}
    errors: list[BaseException] = []

    def join(rank: int) -> None:
        try:
            stores[rank] = dist.TCPStore("127.0.0.1", port, 2, rank == 0, datetime.timedelta(seconds=timeout))
            if rank == 1 and before_accept is not None:
                before_accept(stores[rank])
            groups[rank] = connect_links(stores[rank], "127.0.0.1", rank, 2, timeout)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=join, args=(rank,)) for rank in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(3 * timeout)
    if errors:
        raise errors[0]
    return groups[0], groups[1]


def words(count: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (count,), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_messages_arrive_whole_and_in_order_whatever_their_size():
    first, second = pair()
    sizes = [0, 1, 7, 8192, 3_000_000, 5]
    sent = [words(size, seed) for seed, size in enumerate(sizes)]
    into = [torch.empty(size, dtype=torch.uint8) for size in sizes]
    handles = [second.recv([buffer], 0) for buffer in into]
    for message in sent:
        first.send([message], 1)
    handles[-1].wait()  # waiting for the last reads every earlier one first
    for handle in handles:
        handle.wait()
    assert all(torch.equal(got, message) for got, message in zip(into, sent))
    first.close()
    second.close()


def test_a_receive_returns_exactly_what_was_sent():
    first, second = pair()
    for seed, size in enumerate([1, 100, 2_000_000]):
        message = words(size, seed)
        into = torch.empty(size, dtype=torch.uint8)
        handle = second.recv([into], 0)
        first.send([message], 1).wait()
        handle.wait()
        assert torch.equal(into, message)
    first.close()
    second.close()


def test_both_sides_can_send_large_messages_before_either_receives():
    """Sends never block the sender: 20 MB each way, posted before any receive, do not deadlock."""
    first, second = pair()
    big = [words(20_000_000, 1), words(20_000_000, 2)]
    sends = [first.send([big[0]], 1), second.send([big[1]], 0)]
    into = [torch.empty(20_000_000, dtype=torch.uint8) for _ in range(2)]
    receives = [second.recv([into[0]], 0), first.recv([into[1]], 1)]
    for handle in (*receives, *sends):
        handle.wait()
    assert torch.equal(into[0], big[0]) and torch.equal(into[1], big[1])
    first.close()
    second.close()


def test_a_receive_of_the_wrong_size_says_the_parties_are_out_of_step():
    first, second = pair()
    handle = second.recv([torch.empty(16, dtype=torch.uint8)], 0)
    first.send([words(8, 0)], 1)
    with pytest.raises(RuntimeError, match="8 bytes where 16 were expected"):
        handle.wait()
    first.close()
    second.close()


def test_a_peer_that_closes_fails_every_waiting_receive():
    first, second = pair()
    handles = [second.recv([torch.empty(4, dtype=torch.uint8)], 0) for _ in range(3)]
    first.close()
    with pytest.raises(RuntimeError, match="closed by peer"):
        handles[0].wait()
    for handle in handles[1:]:  # the rest fail at once, not after a timeout
        with pytest.raises(RuntimeError, match="closed by peer"):
            handle.wait()
    with pytest.raises(RuntimeError, match="closed by peer"):  # and so does anything posted later
        second.recv([torch.empty(4, dtype=torch.uint8)], 0).wait()
    second.close()


def test_a_peer_that_sends_nothing_runs_into_the_timeout():
    first, second = pair(timeout=1.0)
    with pytest.raises(RuntimeError, match="Timed out after 1 s waiting for rank 0"):
        second.recv([torch.empty(4, dtype=torch.uint8)], 0).wait()
    first.close()
    second.close()


def test_a_stranger_that_connects_first_is_dropped_and_the_real_peer_gets_through():
    """Anyone can reach the listening port: a connection naming a rank that cannot connect to
    rank 0 (here rank 0 itself, then garbage) is closed, and the real rank 1 links up."""
    strangers: list[socket.socket] = []

    def intrude(store) -> None:
        host, port = store.get(f"{STORE_KEYS}0").decode().split()
        for claim in (HEADER.pack(0), b"\xff" * HEADER.size):
            stranger = socket.create_connection((host, int(port)))
            stranger.sendall(claim)
            strangers.append(stranger)

    first, second = pair(before_accept=intrude)
    into = torch.empty(3, dtype=torch.uint8)
    handle = first.recv([into], 1)
    second.send([torch.tensor([1, 2, 3], dtype=torch.uint8)], 0)
    handle.wait()
    assert into.tolist() == [1, 2, 3]
    for stranger in strangers:
        stranger.settimeout(5)
        assert stranger.recv(1) == b""  # closed by rank 0
        stranger.close()
    first.close()
    second.close()


def test_a_link_that_breaks_while_a_message_is_read_fails_that_receive_cleanly():
    """The sending thread may fail the link while the waiting thread reads: the receive then
    fails with the link's reason, not with an error from the emptied queue."""
    first, second = pair()
    link = second.links[0]
    read = link._read_message

    def broken_meanwhile(data):
        link._fail("Connection reset by peer")  # as the sending thread would, on a reset
        read(data)

    link._read_message = broken_meanwhile
    into = torch.empty(4, dtype=torch.uint8)
    handle = second.recv([into], 0)
    first.send([words(4, 0)], 1).wait()
    with pytest.raises(RuntimeError, match="reset by peer"):
        handle.wait()
    first.close()
    second.close()
