"""Shared test helpers: a session with fixed seeds, and sharing/decrypting shortcuts."""

from __future__ import annotations

import torch

import secure_mnist as sm


def new_session(seed: int = 7, **kwargs) -> sm.Session:
    return sm.Session(seed=seed, **kwargs)


def encrypt(values, session: sm.Session, encoder: sm.FixedPointEncoder | None = None) -> sm.FixedPrecisionTensor:
    return sm.FixedPrecisionTensor.encode(torch.as_tensor(values, dtype=torch.float64),
                                          encoder or session.encoder).share(session)


def ulp(session: sm.Session) -> float:
    return 1.0 / session.encoder.scale
