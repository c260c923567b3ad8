"""Stochastic gradient descent on encrypted parameters."""

from __future__ import annotations

from collections.abc import Iterable

from .autograd import AutogradTensor
from .errors import NotSharedError
from .mpc.fixed_point import FixedPrecisionTensor
from .mpc.public import check_factor


class SGD:
    """w <- w - lr * grad, entirely on shares: the learning rate is public, weights and gradients are not.

    With `momentum` m, each parameter keeps a shared velocity v <- m v + grad and moves by lr * v
    (PyTorch's SGD without dampening). Both updates are linear in shared values with public
    factors: local truncations, no message at all.
    """

    def __init__(self, params: Iterable[AutogradTensor], lr: float, momentum: float = 0.0) -> None:
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
            check_factor(momentum, encoder, "momentum")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.lr = lr
        self.momentum = momentum
        self.velocities: list[FixedPrecisionTensor | None] = [None] * len(self.params)

    def step(self) -> None:
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            update = param.grad
            if self.momentum:
                velocity = self.velocities[index]
                update = update if velocity is None else velocity * self.momentum + update
                self.velocities[index] = update
            param.child = param.child - update * self.lr

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None
