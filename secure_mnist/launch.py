"""Run each party in its own process: on one machine (spawned here) or on several (started by hand).

Ranks are fixed by role: the client (the model owner, who also drives the run and prints the
results) is rank 0, then alice, bob and the crypto provider. Every process runs the same program
(SPMD, as CrypTen does); each holds only its own party's shares, data and randomness.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import torch

from .communicator.channel import new_token, token_key
from .communicator.distributed import DistributedCommunicator, PartyLostError
from .errors import SetupError
from .mpc.session import Session
from .training import TrainingConfig

PARTIES = ("me", "alice", "bob", "crypto_provider")
DEFAULT_TIMEOUT = 60.0
TOKEN_VARIABLE = "SECURE_MNIST_TOKEN"


def join_token(given: str | None, insecure: bool, spawns_parties: bool) -> str | None:
    """The join secret this process runs with, or None with --insecure-channel.

    --token, else the environment variable; a launcher that spawns the other parties itself draws
    a random one and hands it to them through their environment (never their arguments, which
    any user of the machine can read with ps). A party started by hand must be given one.
    """
    if insecure:
        if given:
            raise ValueError("--token and --insecure-channel contradict each other: choose one")
        return None
    token = given or os.environ.get(TOKEN_VARIABLE)
    if token:
        token_key(token)  # too short: a clear error now, not at the handshake
        return token
    if spawns_parties:
        return new_token()
    raise ValueError(f"a party started by hand needs the run's join token: give every party the same one in "
                     f"the environment variable {TOKEN_VARIABLE} (or with --token, which other users of the "
                     f"machine can see in ps); make one with: python -c \"import secrets; "
                     f"print(secrets.token_urlsafe(32))\"")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_party(name: str) -> None:
    if name not in PARTIES:
        raise ValueError(f"unknown party {name!r}: choose one of {', '.join(PARTIES)}")


def party_session(name: str, master: str, config: TrainingConfig, timeout: float, crypto_seed: int | None,
                  token: str | None) -> Session:
    """This process's view of the session: it runs party `name` and talks to the others over TCP links,
    through the channel the token authenticates (unencrypted if the token is None)."""
    check_party(name)
    # Several parties share this machine's cores: one thread each, or their thread pools fight.
    torch.set_num_threads(int(os.environ.get("SECURE_MNIST_THREADS", "1")))
    # The workers talk to each other directly; the client and the crypto provider wait on them.
    # Giving the waiters twice as long means the party next to a hung one notices first, and the
    # first failure reported names the right party.
    waits_on_others = name in ("me", "crypto_provider")
    comm = DistributedCommunicator(name, PARTIES, master, 2 * timeout if waits_on_others else timeout, token)
    check_same_settings(comm, config, crypto_seed)
    return Session(workers=("alice", "bob"), crypto_provider="crypto_provider", client="me",
                   encoder=config.encoder, communicator=comm, seed=crypto_seed)


def check_same_settings(comm: DistributedCommunicator, config: TrainingConfig, crypto_seed: int | None) -> None:
    """All four processes must run the same program: compare their settings before anything else
    (over the sealed channel: only parties that proved they hold the token see them)."""
    mine = json.dumps({**config.__dict__, "crypto_seed": crypto_seed}, sort_keys=True)
    settings = comm.agree("settings", mine)
    differ = sorted(party for party, theirs in settings.items() if theirs != settings[PARTIES[0]])
    if differ:
        client = json.loads(settings[PARTIES[0]])
        details = "; ".join(f"{party}: " + ", ".join(f"{k}={v}" for k, v in json.loads(settings[party]).items()
                                                     if client.get(k) != v) for party in differ)
        raise SetupError(f"the parties were started with different settings than the client ({details}); "
                         "start every party with the same training flags")


def party_from_environment() -> tuple[str, str]:
    """The party and master address torchrun gives us (RANK, MASTER_ADDR, MASTER_PORT)."""
    try:
        rank = int(os.environ["RANK"])
        master = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    except KeyError as missing:
        raise ValueError(f"party 'auto' needs torchrun's environment variable {missing}") from None
    if int(os.environ.get("WORLD_SIZE", len(PARTIES))) != len(PARTIES):
        raise ValueError(f"torchrun must start {len(PARTIES)} processes in all, one per party "
                         f"(e.g. --nproc-per-node {len(PARTIES)} on one machine)")
    return PARTIES[rank], master


class LocalParties:
    """Spawn alice, bob and the crypto provider as child processes on this machine."""

    def __init__(self, job: str, forwarded_args: Sequence[str], master: str, timeout: float,
                 token: str | None) -> None:
        self.master = master
        self.timeout = timeout
        self.children: dict[str, subprocess.Popen] = {}
        environment = {**os.environ, TOKEN_VARIABLE: token} if token else os.environ.copy()
        if not token:
            environment.pop(TOKEN_VARIABLE, None)
        for name in PARTIES[1:]:
            command = [sys.executable, "-m", "secure_mnist", "party", name, "--job", job, "--master", master,
                       "--timeout", str(timeout), *forwarded_args]
            self.children[name] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                                   env=environment)

    def failures(self) -> list[str]:
        """Children that exited with an error, with the last line of what they said."""
        failed = []
        for name, child in self.children.items():
            if child.poll() not in (None, 0):
                last = (child.stderr.read() if child.stderr else "").strip().splitlines()[-1:] or ["(no message)"]
                failed.append(f"{name} exited with code {child.returncode}: {last[0]}")
        return failed

    def finish(self, grace: float | None = None) -> list[str]:
        """Wait for every child (bounded); stop the ones still running after the grace period."""
        deadline = time.monotonic() + (self.timeout if grace is None else grace)
        for child in self.children.values():
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return self.failures()


def watch(parties: LocalParties, done: threading.Event) -> None:
    """If a spawned party fails before the client is done, say why and stop at once: the client
    may be blocked in the rendezvous or a receive and would otherwise wait out its timeout."""
    while not done.wait(0.2):
        failed = parties.failures()
        if failed:
            print("error: a party failed: " + "; ".join(failed), file=sys.stderr, flush=True)
            for child in parties.children.values():
                child.kill()
            os._exit(1)


def run_with_local_parties(job: str, forwarded_args: Sequence[str], run_client, timeout: float = DEFAULT_TIMEOUT,
                           master: str | None = None, token: str | None = None):
    """Spawn the three other parties, run the client here, and report any party that failed.

    `run_client(master)` runs the client; the children get `token` in their environment (None:
    --insecure-channel, which must then be among `forwarded_args`).
    """
    master = master or f"127.0.0.1:{free_port()}"
    parties = LocalParties(job, forwarded_args, master, timeout, token)
    done = threading.Event()
    threading.Thread(target=watch, args=(parties, done), daemon=True).start()
    try:
        result = run_client(master)
    except PartyLostError as error:
        done.set()
        failed = parties.finish(grace=5.0)
        detail = "; ".join(failed) if failed else "no party reported an error"
        raise PartyLostError(f"{error}\n  parties: {detail}") from error
    except BaseException:
        done.set()
        for child in parties.children.values():
            child.kill()
        raise
    done.set()
    failed = parties.finish()
    if failed:
        raise PartyLostError("the run finished here, but: " + "; ".join(failed))
    return result
