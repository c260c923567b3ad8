"""The channel between parties: keys, sealed messages, a party with the wrong token, the addresses
the processes listen on, and what a capture of the wire shows, with the channel and without it."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from secure_mnist.communicator import InProcessCommunicator
from secure_mnist.communicator.channel import (PUBLIC_KEY_BYTES, REFUSAL, TAG_BYTES, ChannelError, KeyAgreement,
                                               SealedChannel, as_bytes, new_token, token_key)
from secure_mnist.communicator.distributed import HELLO
from secure_mnist.communicator.rendezvous import FailureReports, local_address
from secure_mnist.launch import PARTIES, free_port
from secure_mnist.mpc.session import Session
from secure_mnist.training import TrainingConfig, train_encrypted
from wire import Capture, WindowSearch, tcp_streams, window_keys

TESTS = Path(__file__).resolve().parent
SMALL = ["--epochs", "1", "--n-train-items", "128", "--n-test-items", "128"]
CRYPTO_SEED = 5
TOKEN = new_token()
RUN = bytes(16)


# -- keys ------------------------------------------------------------------------------------------
def pair(alice_token: str = TOKEN, bob_token: str = TOKEN, alice_run: bytes = RUN, bob_run: bytes = RUN):
    """alice (the initiator) and bob agree on keys; returns what each derived."""
    alice = KeyAgreement("alice", token_key(alice_token), alice_run)
    bob = KeyAgreement("bob", token_key(bob_token), bob_run)
    return alice.keys_with("bob", bob.public, initiator=True), bob.keys_with("alice", alice.public, initiator=False)


def test_the_two_ends_of_a_pair_derive_crossed_keys_one_per_direction():
    alice, bob = pair()
    assert alice.send == bob.receive and alice.receive == bob.send
    assert alice.send != alice.receive
    assert bob.accepts(alice.my_confirmation) and alice.accepts(bob.my_confirmation)
    assert alice.my_confirmation != bob.my_confirmation  # a confirmation cannot be reflected
    again, _ = pair()
    assert again.send != alice.send  # fresh ephemeral keys: every run has its own keys


@pytest.mark.parametrize("what", ["token", "run"])
def test_a_different_token_or_run_is_refused(what):
    other = dict(bob_token=new_token()) if what == "token" else dict(bob_run=bytes(15) + b"\x01")
    alice, bob = pair(**other)
    assert not bob.accepts(alice.my_confirmation) and not alice.accepts(bob.my_confirmation)
    assert alice.send != bob.receive


def test_a_key_substituted_in_the_middle_is_refused():
    """mallory, between alice and bob without the token, replaces bob's public key with hers."""
    alice = KeyAgreement("alice", token_key(TOKEN), RUN)
    bob = KeyAgreement("bob", token_key(TOKEN), RUN)
    mallory = KeyAgreement("bob", token_key(new_token()), RUN)
    alice_side = alice.keys_with("bob", mallory.public, initiator=True)
    bob_side = bob.keys_with("alice", alice.public, initiator=False)
    assert not alice_side.accepts(bob_side.my_confirmation)
    assert not alice_side.accepts(mallory.keys_with("alice", alice.public, initiator=False).my_confirmation)
    assert alice.keys_with("bob", bytes(PUBLIC_KEY_BYTES), initiator=True) is None  # a low-order point


def test_short_tokens_are_refused_with_a_way_to_make_one():
    with pytest.raises(ValueError, match="at least 16.*secrets.token_urlsafe"):
        token_key("hunter2")


# -- sealed messages ---------------------------------------------------------------------------------
def channels() -> tuple[SealedChannel, SealedChannel]:
    alice, bob = pair()
    return alice.channel("alice"), bob.channel("bob")


def receive(channel: SealedChannel, wire: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    payload = torch.empty(like.shape, dtype=like.dtype)  # as the communicator allocates it: contiguous
    buffer, number = channel.expect(as_bytes(payload))
    buffer.copy_(wire)
    channel.open(buffer, number, as_bytes(payload))
    return payload


@pytest.mark.parametrize("tensor", [torch.tensor([2**62, -5, 0]), torch.tensor([True, False]),
                                    torch.arange(6, dtype=torch.float64).view(2, 3).t(), torch.empty(0, dtype=torch.int64)])
def test_a_sealed_message_opens_to_the_same_tensor_and_costs_one_tag(tensor):
    alice, bob = channels()
    wire = alice.seal(as_bytes(tensor))
    assert wire.dtype == torch.uint8 and wire.numel() == tensor.numel() * tensor.element_size() + TAG_BYTES
    if tensor.numel() > 1:
        assert as_bytes(tensor).numpy().tobytes() not in wire.numpy().tobytes()
    assert torch.equal(receive(bob, wire, tensor), tensor)


def test_a_tampered_message_is_rejected_naming_the_sender():
    alice, bob = channels()
    secret = torch.arange(100)
    wire = alice.seal(as_bytes(secret))
    wire[37] ^= 1
    with pytest.raises(ChannelError, match=r"message #0 from alice to bob failed authentication"):
        receive(bob, wire, secret)


def test_a_replayed_message_is_rejected_naming_the_sender():
    alice, bob = channels()
    first, second = torch.arange(10), torch.arange(10, 20)
    wires = [alice.seal(as_bytes(first)), alice.seal(as_bytes(second))]
    assert torch.equal(receive(bob, wires[0], first), first)
    with pytest.raises(ChannelError, match=r"message #1 from alice to bob failed authentication: .*replayed"):
        receive(bob, wires[0], first)  # the first message again, in place of the second


def test_messages_out_of_order_are_rejected():
    alice, bob = channels()
    first, second = torch.arange(10), torch.arange(10, 20)
    wires = [alice.seal(as_bytes(first)), alice.seal(as_bytes(second))]
    with pytest.raises(ChannelError, match=r"message #0 from alice to bob"):
        receive(bob, wires[1], second)


def test_a_message_reflected_back_to_its_sender_is_rejected():
    alice, bob = channels()
    wire = alice.seal(as_bytes(torch.arange(10)))
    with pytest.raises(ChannelError, match=r"message #0 from bob to alice"):
        receive(alice, wire, torch.arange(10))


# -- the rendezvous store ------------------------------------------------------------------------------
def test_failure_reports_in_the_store_are_authenticated():
    store = dist.HashStore()
    key = token_key(TOKEN)
    assert FailureReports(store, key, RUN).first("alice lost contact with bob") == "alice lost contact with bob"
    assert FailureReports(store, key, RUN).first("me lost contact with alice") == "alice lost contact with bob"
    store.set(FailureReports.FIRST, "bob lost contact with alice\n" + "0" * 64)  # written by someone else
    assert "failed authentication" in FailureReports(store, key, RUN).first("me lost contact with alice")
    signed = FailureReports(dist.HashStore(), key, bytes(15) + b"\x01")._sign("alice lost contact with bob")
    store.set(FailureReports.FIRST, signed)  # a genuine report, from another run
    assert "failed authentication" in FailureReports(store, key, RUN).first("me lost contact with alice")


# -- parties in processes ----------------------------------------------------------------------------------
def environment(token: str | None = TOKEN) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("SECURE_MNIST_TOKEN", None)
    if token:
        env["SECURE_MNIST_TOKEN"] = token
    return env


def start(name: str, master: str, *, agent: list[str] | None = None, token: str | None = TOKEN,
          extra: tuple[str, ...] = ()) -> subprocess.Popen:
    party = ["party", name, "--master", master, "--timeout", "20", *SMALL, "--crypto-seed", str(CRYPTO_SEED), *extra]
    command = [sys.executable, str(TESTS / "channel_agents.py"), *agent, "--", *party] if agent else \
        [sys.executable, "-m", "secure_mnist", *party]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(token))


def outcomes(parties: dict[str, subprocess.Popen], timeout: float = 240) -> dict[str, tuple[int, str]]:
    result = {}
    for name, process in parties.items():
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for other in parties.values():
                other.kill()
            pytest.fail(f"{name} was still running after {timeout} s")
        result[name] = (process.returncode, stderr)
    return result


def last_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return errors[-1] if errors else stderr[-800:]


def test_a_party_with_a_wrong_token_is_refused_and_receives_nothing_but_the_handshake(tmp_path):
    """alice is started with another token and records every byte the links hand her process."""
    master = f"127.0.0.1:{free_port()}"
    log = tmp_path / "alice_received.jsonl"
    parties = {name: start(name, master) for name in ("me", "bob", "crypto_provider")}
    parties["alice"] = start("alice", master, agent=["record", str(log)], token=new_token())
    done = outcomes(parties)
    assert all(code == 1 for code, _ in done.values()), {n: last_error(e) for n, (_, e) in done.items()}
    assert "AuthenticationError: alice could not authenticate any other party (me, bob, crypto_provider)" \
        in last_error(done["alice"][1])
    for name in ("me", "bob", "crypto_provider"):
        assert f"AuthenticationError: {name} refused alice: alice failed authentication" in last_error(done[name][1])
    received: dict[str, list[bytes]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        received.setdefault(entry["from"], []).append(bytes.fromhex(entry["hex"]))
    hello = len(HELLO) + len("sealed")
    # me initiates with alice (public key, then its refusal); alice initiates with bob and the
    # crypto provider, who answer with their public key and confirmation: nothing else, ever.
    assert {name: [len(m) for m in messages] for name, messages in received.items()} == {
        "me": [hello, PUBLIC_KEY_BYTES, len(REFUSAL)],
        "bob": [hello, PUBLIC_KEY_BYTES + len(REFUSAL)],
        "crypto_provider": [hello, PUBLIC_KEY_BYTES + len(REFUSAL)],
    }
    assert received["me"][-1] == REFUSAL


@pytest.mark.parametrize("attack", ["tamper", "replay"])
def test_a_message_changed_or_replayed_on_the_wire_stops_the_run_naming_its_sender(attack):
    """bob's 40th message to alice is altered after sealing (or an older one is sent again)."""
    master = f"127.0.0.1:{free_port()}"
    parties = {name: start(name, master) for name in ("me", "alice", "crypto_provider")}
    parties["bob"] = start("bob", master, agent=[attack, "alice", "40"])
    done = outcomes(parties)
    assert all(code != 0 for code, _ in done.values()), {n: last_error(e) for n, (_, e) in done.items()}
    assert re.search(r"ChannelError: message #\d+ from bob to alice failed authentication",
                     last_error(done["alice"][1])), last_error(done["alice"][1])
    for name in ("me", "crypto_provider"):  # they lose alice or bob; the store may quote alice's report
        assert re.search(r"PartyLostError: .* lost contact with (alice|bob)|from bob to alice failed authentication",
                         last_error(done[name][1])), last_error(done[name][1])


def test_a_hand_started_party_without_a_token_gets_a_clear_error():
    done = subprocess.run([sys.executable, "-m", "secure_mnist", "party", "alice", "--master", "127.0.0.1:1"],
                          capture_output=True, text=True, env=environment(None), timeout=120)
    assert done.returncode == 2
    assert "needs the run's join token" in done.stderr and "SECURE_MNIST_TOKEN" in done.stderr


def test_parties_that_disagree_on_the_channel_are_told_so():
    master = f"127.0.0.1:{free_port()}"
    parties = {name: start(name, master) for name in ("me", "alice", "crypto_provider")}
    parties["bob"] = start("bob", master, token=None, extra=("--insecure-channel",))
    done = outcomes(parties)
    assert all(code == 1 for code, _ in done.values())
    assert "ChannelError: alice runs without --insecure-channel, bob with it" in last_error(done["alice"][1])
    assert "ChannelError: bob runs with --insecure-channel, me, alice, crypto_provider without it: start every " \
        "party with the same channel setting" in last_error(done["bob"][1])


# -- what listens where ------------------------------------------------------------------------------------
def own_loopback_address() -> str:
    """A loopback address nobody else uses (all of 127.0.0.0/8 is loopback on Linux)."""
    address = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
    except OSError:
        pytest.skip(f"{address} is not a loopback address here (not Linux?)")
    return address


def free_port_on(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def process_tree(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                pass
    tree = {root}
    while True:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        if not more:
            return tree
        tree |= more


def listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the processes own, read from /proc."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                host, port = fields[1].split(":")
                raw = bytes.fromhex(host)
                text = (socket.inet_ntop(socket.AF_INET, raw[::-1]) if len(raw) == 4
                        else socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
                found.add((text, int(port, 16)))
    return found


def test_the_store_and_the_links_listen_only_on_the_address_given():
    address = own_loopback_address()
    port = free_port_on(address)
    run = subprocess.Popen([sys.executable, "-m", "secure_mnist", "train", "--parties", "processes", "--master",
                            f"{address}:{port}", *SMALL, "--no-plaintext", "--quiet"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(None))
    seen: set[tuple[str, int]] = set()
    outside = None
    deadline = time.monotonic() + 240
    while run.poll() is None and time.monotonic() < deadline:
        seen |= listening(process_tree(run.pid))
        if len(seen) >= 5 and outside is None:  # the store and four link listeners
            outside = local_address("203.0.113.1")  # this machine's address on its way out
            if not outside.startswith("127."):
                with socket.socket() as probe, pytest.raises(OSError):
                    probe.settimeout(5)
                    probe.connect((outside, port))
        time.sleep(0.2)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr[-800:]
    assert (address, port) in seen, seen
    assert len(seen) >= 5, seen
    assert {host for host, _ in seen} == {address}, seen


# -- what the wire carries -----------------------------------------------------------------------------------
class Recording(InProcessCommunicator):
    """Every message of an in-process run, with its sender and receiver."""

    def __init__(self, parties):
        super().__init__(parties)
        self.sent: list[tuple[str, str, bytes]] = []

    def _deliver(self, src, dst, tensor):
        self.sent.append((src, dst, as_bytes(tensor).numpy().tobytes()))
        super()._deliver(src, dst, tensor)


def secrets_of_the_run() -> dict[str, list[bytes]]:
    """The same run in one process, same crypto seed: the pairwise seeds, the client's shares of
    the initial weights and every value the workers open to each other."""
    config = TrainingConfig(epochs=1, n_train_items=128, n_test_items=128)
    comm = Recording(list(PARTIES))
    train_encrypted(config, Session(encoder=config.encoder, communicator=comm, seed=CRYPTO_SEED))
    workers = {"alice", "bob"}
    found = {
        "seeds": [m for _, _, m in comm.sent[:3]],
        "client shares": [m for src, _, m in comm.sent if src == "me"],
        "openings": [m for src, dst, m in comm.sent if {src, dst} == workers],
    }
    assert [len(m) for m in found["seeds"]] == [16, 16, 16]
    assert sum(map(len, found["client shares"])) == 2 * 109_386 * 8
    return found


def captured_run(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    address = own_loopback_address()
    master = f"{address}:{free_port_on(address)}"
    with Capture(address, tmp_path / f"wire{len(extra)}.pcap") as capture:
        done = subprocess.run([sys.executable, "-m", "secure_mnist", "train", "--parties", "processes", "--master",
                               master, *SMALL, "--crypto-seed", str(CRYPTO_SEED), "--no-plaintext", "--quiet", *extra],
                              capture_output=True, text=True, env=environment(None), timeout=600)
        time.sleep(1)
    assert done.returncode == 0, done.stderr[-800:]
    assert capture.dropped == 0, capture.stderr
    return tcp_streams(capture.path), done.stdout


def test_the_wire_never_carries_a_seed_a_client_share_or_an_opening_in_the_clear(tmp_path):
    """Capture a real run with tcpdump and search it for every 16-byte window of the run's
    secrets; the same search on a run with --insecure-channel must find them (or the test
    could not fail)."""
    secrets = {name: window_keys(values) for name, values in secrets_of_the_run().items()}
    search = WindowSearch(np.concatenate(list(secrets.values())))
    settings = b'"n_train_items"'  # the settings the parties compare
    for extra, expect in (((), False), (("--insecure-channel",), True)):
        streams, stdout = captured_run(tmp_path, *extra)
        assert "Test set: Accuracy:" in stdout
        total = sum(map(len, streams.values()))
        assert total > 20e6, f"the capture holds only {total} bytes"  # the run sends about 24 MB
        hits = np.unique(np.concatenate([search.found_in(stream) for stream in streams.values()]))
        share = {name: float(np.isin(keys, hits).mean()) for name, keys in secrets.items()}
        if expect:
            assert share["seeds"] == 1.0 and min(share.values()) > 0.99, share
            assert any(settings in stream for stream in streams.values())
        else:
            assert all(value == 0 for value in share.values()), f"the encrypted channel leaked: {share}"
            assert not any(settings in stream for stream in streams.values())
