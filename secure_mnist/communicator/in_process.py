"""All parties in one Python process, like PySyft's VirtualWorkers: messages go through queues."""

from __future__ import annotations

from collections import deque

import torch

from .base import Communicator


class InProcessCommunicator(Communicator):
    """Delivers messages through one FIFO queue per (sender, receiver) pair."""

    def __init__(self, parties: list[str]) -> None:
        super().__init__()
        self._parties = frozenset(parties)
        self._queues: dict[tuple[str, str], deque[torch.Tensor]] = {}

    @property
    def local_parties(self) -> frozenset[str]:
        return self._parties

    def add_party(self, name: str) -> None:
        self._parties = self._parties | {name}

    # --8<-- [start:channel]
    def _deliver(self, src: str, dst: str, tensor: torch.Tensor) -> None:
        # The receiver gets its own copy: a sender that later changes its tensor in place
        # must not change what was already "on the wire".
        self._queues.setdefault((src, dst), deque()).append(tensor.clone())

    def _collect(self, dst: str, src: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        queue = self._queues.get((src, dst))
        if not queue:
            raise RuntimeError(f"{dst} expected a message from {src}, but none was sent (protocol out of step)")
        tensor = queue.popleft()
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise RuntimeError(f"{dst} expected {dtype} {shape} from {src} but got {tensor.dtype} "
                               f"{tuple(tensor.shape)} (protocol out of step)")
        return tensor
    # --8<-- [end:channel]
