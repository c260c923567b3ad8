"""Peak resident memory of each party's process, gathered at the client for the run's report."""

from __future__ import annotations

import resource
import sys

import torch

from .mpc.session import Session


def peak_rss_bytes() -> int:
    """The most physical memory this process has held so far (Linux reports kB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_rss_by_process(session: Session) -> dict[str, int] | None:
    """At the client: {parties of a process, joined by '+': its peak RSS in bytes}; None elsewhere.

    In one process that is a single entry for all four parties. Across processes each party
    sends its own figure to the client in a small message that is not counted as traffic.
    """
    local = [p.name for p in session.parties() if session.is_local(p)]
    mine = torch.tensor([peak_rss_bytes()], dtype=torch.int64)
    if not session.is_local(session.client):
        session.comm.send_untracked(local[0], session.client.name, mine)
        return None
    peaks = {"+".join(local): int(mine.item())}
    for party in session.parties():
        if not session.is_local(party):
            peaks[party.name] = int(session.comm.recv_untracked(session.client.name, party.name, (1,), torch.int64).item())
    return peaks
