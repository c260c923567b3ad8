"""What really crossed the wire: capture loopback traffic with tcpdump, put the TCP streams back
together, and look for known byte strings in them.

Used by tests/test_channel.py. The capture is filtered on one loopback address that only the run
under test uses (all of 127.0.0.0/8 is loopback on Linux), so other programs' traffic never mixes in.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

LINK_HEADER = {1: 14, 113: 16, 276: 20, 0: 4}  # Ethernet, Linux cooked v1 and v2, BSD loopback


def tcpdump_or_skip() -> str:
    """tcpdump's path; in CI (CI=true) a missing tcpdump fails the test instead of skipping it."""
    path = shutil.which("tcpdump")
    if path is None:
        message = "tcpdump is not installed (.ci/run installs it with apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class Capture:
    """tcpdump on the loopback interface, keeping only packets to or from `address`."""

    def __init__(self, address: str, path: Path) -> None:
        self.address, self.path = address, path
        self.dropped: int | None = None
        self.stderr = ""

    def __enter__(self) -> Capture:
        # --immediate-mode: hand every packet over at once (with block buffering, gVisor's packet
        # sockets keep packets back until a block fills, and a capture stopped early loses them).
        command = [tcpdump_or_skip(), "-i", "lo", "--immediate-mode", "-U", "-B", "65536", "-s", "0",
                   "-w", str(self.path), "host", self.address]
        self._process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        lines: list[str] = []

        def read() -> None:
            for line in self._process.stderr:
                lines.append(line)
                if "listening on" in line:
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        self._lines = lines
        if not ready.wait(30) or self._process.poll() is not None:
            self._process.kill()
            message = "tcpdump could not capture on lo: " + "".join(lines)
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        return self

    def __exit__(self, *exc) -> None:
        self._process.send_signal(signal.SIGINT)
        self._process.wait(timeout=30)
        self._reader.join(timeout=10)
        self.stderr = "".join(self._lines)
        found = re.search(r"(\d+) packets? dropped by kernel", self.stderr)
        self.dropped = int(found.group(1)) if found else None


def tcp_streams(path: Path) -> dict[tuple[str, int, str, int], bytes]:
    """Every TCP stream in a pcap file, one direction each, its payload in sequence order.

    Raises if a stream has a hole (a packet the capture missed): searching an incomplete capture
    proves nothing.
    """
    data = path.read_bytes()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<",
              b"\xa1\xb2\x3c\x4d": ">"}[magic]
    link = struct.unpack(endian + "I", data[20:24])[0]
    skip = LINK_HEADER[link]
    segments: dict[tuple, dict[int, bytes]] = defaultdict(dict)
    first_seq: dict[tuple, int] = {}
    offset = 24
    while offset + 16 <= len(data):
        _, _, captured, original = struct.unpack(endian + "IIII", data[offset:offset + 16])
        packet = data[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        assert captured == original, "tcpdump cut a packet short: capture with -s 0"
        ip = packet[skip:]
        if not ip or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        header = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[header:total]
        source, destination = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4:]
        flow = (source, sport, destination, dport)
        if flags & 0x02:  # SYN: the stream starts at seq + 1
            first_seq[flow] = (seq + 1) % 2**32
            continue
        if payload:
            first_seq.setdefault(flow, seq)
            segments[flow][(seq - first_seq[flow]) % 2**32] = payload
    streams = {}
    for flow, parts in segments.items():
        position, chunks = 0, []
        for start in sorted(parts):
            part = parts[start]
            if start > position:
                raise AssertionError(f"the capture missed {start - position} bytes of {flow}")
            chunks.append(part[position - start:])
            position = max(position, start + len(part))
        streams[flow] = b"".join(chunks)
    return streams


MIX = np.uint64(0x9E3779B97F4A7C15)


def window_keys(values: list[bytes]) -> np.ndarray:
    """A 64-bit key for every 16-byte window, at every 8-byte offset, of each value.

    Low-entropy windows (fewer than 6 distinct bytes: zeros, small counters) are left out: they
    could turn up anywhere, and a share or a masked value is uniformly random.
    """
    keys = []
    for value in values:
        words = np.frombuffer(value[: len(value) // 8 * 8], dtype=np.uint64)
        if len(words) < 2:
            continue
        pairs = np.lib.stride_tricks.sliding_window_view(np.frombuffer(value[: len(words) * 8], np.uint8), 16)[::8]
        ordered = np.sort(pairs, axis=1)
        rich = (np.diff(ordered, axis=1) != 0).sum(axis=1) + 1 >= 6
        keys.append((words[:-1] * MIX + words[1:])[rich])
    return np.unique(np.concatenate(keys)) if keys else np.empty(0, np.uint64)


class WindowSearch:
    """Look for many 16-byte windows at once in long byte strings, at every byte offset.

    A candidate window's key is first looked up in a table of 2^26 flags (one bit of work per
    candidate, about 3% false positives with two million keys), and only those that pass are
    checked exactly against the sorted keys.
    """

    TABLE_BITS = 26

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.unique(keys)
        self.table = np.zeros(2**self.TABLE_BITS, dtype=bool)
        self.table[self._slot(self.keys)] = True

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        return (keys >> np.uint64(64 - self.TABLE_BITS)).astype(np.int64)

    def found_in(self, stream: bytes) -> np.ndarray:
        """The keys that occur in `stream`."""
        found = []
        for shift in range(8):
            words = np.frombuffer(stream[shift: shift + (len(stream) - shift) // 8 * 8], dtype=np.uint64)
            if len(words) < 2 or not len(self.keys):
                continue
            candidates = words[:-1] * MIX + words[1:]
            candidates = candidates[self.table[self._slot(candidates)]]
            position = np.minimum(np.searchsorted(self.keys, candidates), len(self.keys) - 1)
            found.append(candidates[self.keys[position] == candidates])
        return np.unique(np.concatenate(found)) if found else np.empty(0, np.uint64)
