"""Run one party of `python -m secure_mnist party ...` with its transport (the links) watched or attacked.

    python tests/channel_agents.py record LOG -- party alice --master ...
    python tests/channel_agents.py tamper PEER N -- party bob --master ...
    python tests/channel_agents.py replay PEER N -- party bob --master ...

`record` appends every buffer the links deliver to this process (who sent it, its bytes) to LOG, as
one JSON line each: what a party learns from the wire, whatever its code does with it.
`tamper` flips one bit of the N-th message this party sends to PEER, after sealing, as a man in
the middle would; `replay` sends again, as the N-th message to PEER, an earlier message of the
same length. The party's own code is untouched: the agents wrap the transport underneath it.
"""

from __future__ import annotations

import json
import sys

from secure_mnist.__main__ import main
from secure_mnist.communicator import distributed
from secure_mnist.launch import PARTIES


class _Recorded:
    def __init__(self, work, source: str, buffer, log: str) -> None:
        self._work, self._source, self._buffer, self._log = work, source, buffer, log

    def wait(self, *args):
        done = self._work.wait(*args)
        with open(self._log, "a") as out:
            out.write(json.dumps({"from": self._source, "hex": self._buffer.numpy().tobytes().hex()}) + "\n")
        return done


class WatchedGroup:
    """The links to the other parties, with traffic an agent can see and change."""

    def __init__(self, group, mode: str, args: list[str]) -> None:
        self._group, self._mode, self._args = group, mode, args
        self._sent: dict[int, list] = {}

    def recv(self, tensors, source: int, tag: int):
        work = self._group.recv(tensors, source, tag)
        if self._mode == "record":
            return _Recorded(work, PARTIES[source], tensors[0], self._args[0])
        return work

    def send(self, tensors, destination: int, tag: int):
        if self._mode in ("tamper", "replay") and PARTIES[destination] == self._args[0]:
            earlier = self._sent.setdefault(destination, [])
            wire = tensors[0]
            if len(earlier) == int(self._args[1]):
                if self._mode == "tamper":
                    wire = wire.clone()
                    wire[len(wire) // 2] ^= 1
                else:
                    wire = next(old for old in reversed(earlier) if old.numel() == wire.numel())
            earlier.append(tensors[0].clone())
            tensors = [wire]
        return self._group.send(tensors, destination, tag)

    def close(self) -> None:
        self._group.close()


def run(argv: list[str]) -> int:
    split = argv.index("--")
    mode, args, party_argv = argv[0], argv[1:split], argv[split + 1:]
    make_group = distributed.connect_links
    distributed.connect_links = lambda *a, **k: WatchedGroup(make_group(*a, **k), mode, args)
    return main(party_argv)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
