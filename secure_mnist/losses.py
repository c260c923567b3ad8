"""The two losses a run can train with, for encrypted (AutogradTensor) and plaintext outputs alike.

- `mse`, the tutorial's: the squared error against one-hot labels, summed and divided by the
  batch size. Only subtractions and products: what PySyft 0.2 could compute on shares.
- `cross-entropy`: softmax and the log loss, as plaintext PyTorch trains classifiers; on shares
  it is mpc/softmax.py (max by comparisons, exp, Newton's reciprocal, log), and its gradient is
  p - y.

Targets are one-hot (shared, for an encrypted run): the labels stay as secret as the images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .autograd import AutogradTensor


def mse(output, target):
    squares = ((output - target) ** 2).sum()
    if isinstance(squares, AutogradTensor):
        squares = squares.refresh()  # fresh shares for the revealed loss, as the tutorial writes it
    return squares / output.shape[0]


def cross_entropy(output, target):
    if isinstance(output, AutogradTensor):
        return output.cross_entropy(target).refresh()
    return F.cross_entropy(output, target)  # one-hot rows are class probabilities to torch


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": mse, "cross-entropy": cross_entropy}
