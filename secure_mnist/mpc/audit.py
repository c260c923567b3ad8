"""The mask auditor: records which mask opened which value, to prove that no mask opens two.

Opening e = x - a reveals nothing about x only while a is used once: a second opening
e' = x' - a under the same mask reveals x' - x. Every opening in the engine goes through
`open_masked`, which reports to the auditor when one is active. A worker identifies a mask by
its own share of it, word by word (a replayed random stream gives the same shares again), and
the auditor checks that each mask word only ever opened one value.

Off by default (it keeps every opened word). Turn it on in one process with `MaskAuditor()` as a
context manager, or in every party process with the environment variable
SECURE_MNIST_AUDIT_DIR=DIR: each process then appends its workers' records to files in DIR as it
goes, so a run that is killed still leaves its records, and `reused_masks(DIR)` checks all the
runs that wrote there (an interrupted run and its resume, say) together.
"""

from __future__ import annotations

import os
import pathlib
from collections import defaultdict

import torch

AUDIT_DIR_VARIABLE = "SECURE_MNIST_AUDIT_DIR"

_active: MaskAuditor | None = None


class MaskAuditor:
    """Collects (mask share word, opened word) pairs per worker; in memory or appended to files."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = None if directory is None else pathlib.Path(directory)
        self.records: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = defaultdict(list)
        self._previous: MaskAuditor | None = None

    def record(self, worker: str, masks: tuple[torch.Tensor, ...], opened: tuple[torch.Tensor, ...]) -> None:
        mask_words = torch.cat([m.reshape(-1) for m in masks])
        opened_words = torch.cat([o.reshape(-1) for o in opened])
        if self.directory is None:
            self.records[worker].append((mask_words.clone(), opened_words.clone()))
            return
        stem = self.directory / f"{worker}.{os.getpid()}"
        with open(f"{stem}.masks", "ab") as masks_file, open(f"{stem}.opened", "ab") as opened_file:
            masks_file.write(mask_words.contiguous().numpy().tobytes())
            opened_file.write(opened_words.contiguous().numpy().tobytes())

    def reused_masks(self) -> dict[str, int]:
        """Per worker, how many mask words opened more than one value (0 everywhere is the goal)."""
        return {worker: _conflicts(torch.cat([m for m, _ in pairs]), torch.cat([o for _, o in pairs]))
                for worker, pairs in self.records.items()}

    def openings(self) -> dict[str, int]:
        """Per worker, how many words were opened (to check the audit saw a real run)."""
        return {worker: sum(m.numel() for m, _ in pairs) for worker, pairs in self.records.items()}

    def __enter__(self) -> MaskAuditor:
        global _active
        self._previous, _active = _active, self
        return self

    def __exit__(self, *exc_info: object) -> None:
        global _active
        _active = self._previous


def active() -> MaskAuditor | None:
    """The auditor openings report to, if any (the environment variable starts one per process)."""
    global _active
    if _active is None and os.environ.get(AUDIT_DIR_VARIABLE):
        directory = pathlib.Path(os.environ[AUDIT_DIR_VARIABLE])
        directory.mkdir(parents=True, exist_ok=True)
        _active = MaskAuditor(directory)
    return _active


def reused_masks(directory: str | os.PathLike[str]) -> dict[str, tuple[int, int]]:
    """Check every record written to `directory` by any process: per worker, (words opened, mask
    words that opened more than one value)."""
    masks: dict[str, list[torch.Tensor]] = defaultdict(list)
    opened: dict[str, list[torch.Tensor]] = defaultdict(list)
    for path in sorted(pathlib.Path(directory).glob("*.masks")):
        worker = path.name.split(".")[0]
        masks[worker].append(_words(path))
        opened[worker].append(_words(path.with_suffix(".opened")))
    return {worker: (sum(m.numel() for m in masks[worker]),
                     _conflicts(torch.cat(masks[worker]), torch.cat(opened[worker]))) for worker in masks}


def _words(path: pathlib.Path) -> torch.Tensor:
    data = path.read_bytes()
    usable = len(data) // 8 * 8  # a process killed mid-write may leave a partial word
    return torch.frombuffer(bytearray(data[:usable]), dtype=torch.int64) if usable else torch.zeros(0, dtype=torch.int64)


def _conflicts(masks: torch.Tensor, opened: torch.Tensor) -> int:
    """How many mask words occur with more than one opened value."""
    count = min(masks.numel(), opened.numel())
    masks, opened = masks[:count], opened[:count]
    order = torch.argsort(masks, stable=True)
    masks, opened = masks[order], opened[order]
    same_mask = masks[1:] == masks[:-1]
    differs = same_mask & (opened[1:] != opened[:-1])
    return int(torch.unique(masks[1:][differs]).numel())
