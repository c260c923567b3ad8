"""Each party in its own thread with its own session, as if in its own process, over in-memory queues.

Each thread's session sees one party as local, exactly as `python -m secure_mnist party` does, so
the code paths of separate processes (a crypto provider alone, a worker with a remote provider)
run in one test process, in a second instead of a minute.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch

from secure_mnist.communicator.base import Communicator
from secure_mnist.communicator.distributed import PartyLostError
from secure_mnist.launch import PARTIES
from secure_mnist.mpc.session import Session

TIMEOUT = 120.0
POLL = 0.05


class Network:
    """The queues between every pair of parties, and what they agreed on."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._queues: dict[tuple[str, str], queue.Queue] = defaultdict(queue.Queue)
        self._agreed: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        self.failed = threading.Event()

    def queue(self, src: str, dst: str) -> queue.Queue:
        with self._lock:
            return self._queues[(src, dst)]

    def agree(self, key: tuple[str, int], parties: frozenset[str], value: str) -> dict[str, str]:
        with self._lock:
            for party in parties:
                self._agreed[key][party] = value
            self._lock.notify_all()
            if not self._lock.wait_for(lambda: len(self._agreed[key]) == len(PARTIES) or self.failed.is_set(),
                                       TIMEOUT):
                raise TimeoutError(f"{sorted(parties)} waited for the others to agree on {key}")
            if self.failed.is_set():
                raise RuntimeError("another party failed")
            return dict(self._agreed[key])


class ThreadCommunicator(Communicator):
    def __init__(self, network: Network, here: tuple[str, ...]) -> None:
        super().__init__()
        self.network, self.here = network, frozenset(here)
        self._agreements: dict[str, int] = defaultdict(int)

    @property
    def local_parties(self) -> frozenset[str]:
        return self.here

    def _deliver(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        self.network.queue(src, dst).put(tensor.clone())

    def _collect(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        waiting = self.network.queue(src, dst)
        for _ in range(int(TIMEOUT / POLL)):
            try:
                tensor = waiting.get(timeout=POLL)
                break
            except queue.Empty:
                if self.network.failed.is_set():
                    raise PartyLostError(f"{dst} stopped waiting for {src}: another party failed") from None
        else:
            raise RuntimeError(f"{dst} waited {TIMEOUT:.0f} s for a message from {src}")
        if tuple(tensor.shape) != tuple(shape) or tensor.dtype != dtype:
            raise RuntimeError(f"{dst} expected {dtype} {tuple(shape)} from {src} but got {tensor.dtype} "
                               f"{tuple(tensor.shape)} (protocol out of step)")
        return tensor

    def agree(self, label: str, value: str) -> dict[str, str]:
        self._agreements[label] += 1
        return self.network.agree((label, self._agreements[label]), self.here, value)


def run_parties(job: Callable[[Session], Any], seed: int = 7, groups: tuple[tuple[str, ...], ...] | None = None,
                **session_options: Any) -> dict[str, Any]:
    """Run job(session) once per party, each in its own thread and session; their results by party.
    `groups` puts several parties in one thread and session (as one process running them); the
    result of a group is under each of its parties.

    If a party fails, the others stop waiting for it, and the first failure is raised (the
    failures of all parties are in its `failures`)."""
    network = Network()
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}

    def party(here: tuple[str, ...]) -> None:
        try:
            session = Session(communicator=ThreadCommunicator(network, here), seed=seed, **session_options)
            result = job(session)
            for name in here:
                results[name] = result
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            for name in here:
                errors[name] = error
            network.failed.set()

    threads = [threading.Thread(target=party, args=(here,), daemon=True)
               for here in (groups or tuple((name,) for name in PARTIES))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    if errors:
        first = next((name for name, error in errors.items() if not isinstance(error, PartyLostError)),
                     next(iter(errors)))
        failure = PartiesFailed(f"{first} failed: {errors[first]!r}")
        failure.failures = errors
        raise failure from errors[first]
    return results


class PartiesFailed(RuntimeError):
    failures: dict[str, BaseException]


def isolate_data_loader_draws(monkeypatch) -> None:
    """Threads share torch's random generator, processes do not. A DataLoader draws once from it
    per pass (every party makes some), and the client seeds that generator for the weights, so
    parties in threads would race for it. Each DataLoader gets a generator of its own instead;
    apply this to the one-process runs a test compares with, too."""
    original = torch.utils.data.DataLoader.__init__

    def with_own_generator(self, *args, **kwargs):
        kwargs["generator"] = kwargs.get("generator") or torch.Generator().manual_seed(0)
        original(self, *args, **kwargs)

    monkeypatch.setattr(torch.utils.data.DataLoader, "__init__", with_own_generator)
