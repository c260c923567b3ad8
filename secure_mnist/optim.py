"""Stochastic gradient descent on encrypted parameters."""

from __future__ import annotations

from collections.abc import Iterable

from .autograd import AutogradTensor
from .errors import NotSharedError
from .mpc.public import check_factor


class SGD:
    """w <- w - lr * grad, entirely on shares: the learning rate is public, weights and gradients are not."""

    def __init__(self, params: Iterable[AutogradTensor], lr: float) -> None:
        self.params = list(params)
        for param in self.params:
            if not isinstance(param, AutogradTensor):
                raise NotSharedError(
                    f"SGD here updates encrypted parameters; got a {type(param).__name__}. "
                    "Share the model (model.fix_precision().share(...)) before building the optimizer"
                )
        if lr <= 0:
            raise ValueError(f"the learning rate must be positive, got {lr}")
        for encoder in {param.child.encoder for param in self.params}:
            check_factor(lr, encoder, "learning rate")  # one that rounds to 0 would silently never update
        self.lr = lr

    def step(self) -> None:
        for param in self.params:
            if param.grad is not None:
                param.child = param.child - param.grad * self.lr

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None
