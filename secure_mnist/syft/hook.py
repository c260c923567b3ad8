"""The methods PySyft's TorchHook added to torch, mapped onto secure_mnist."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..autograd import AutogradTensor
from ..encoding import FixedPointEncoder
from ..errors import NotSharedError
from ..mpc.fixed_point import FixedPrecisionTensor
from ..mpc.session import session_for
from ..nn import encrypt_parameters
from ..optim import SGD

# PySyft 0.2's defaults: three decimal digits.
PYSYFT_BASE = 10
PYSYFT_PRECISION = 3


class VirtualWorker:
    """A named party living in this process; it becomes a worker or a crypto provider when used."""

    def __init__(self, hook: TorchHook, id: str) -> None:  # noqa: A002 - PySyft's argument name
        self.hook = hook
        self.id = id
        self._roles: dict[type, Any] = {}

    def as_role(self, kind: type) -> Any:
        """The Worker or CryptoProvider this party plays (one object per role, kept)."""
        if kind not in self._roles:
            self._roles[kind] = kind(self.id)
        return self._roles[kind]

    def __repr__(self) -> str:
        return f"<VirtualWorker id:{self.id}>"


class TorchHook:
    """Adds PySyft's methods to torch.Tensor, nn.Module and torch.optim.Optimizer."""

    def __init__(self, torch_module: Any = torch) -> None:
        self.local_worker = VirtualWorker(self, "me")
        _install()


def _encoder(precision_fractional: int = PYSYFT_PRECISION, base: int = PYSYFT_BASE, **_: Any) -> FixedPointEncoder:
    return FixedPointEncoder(base=base, precision_fractional=precision_fractional)


def _tensor_fix_precision(self: torch.Tensor, precision_fractional: int = PYSYFT_PRECISION,
                          base: int = PYSYFT_BASE, **kwargs: Any) -> FixedPrecisionTensor:
    return FixedPrecisionTensor.encode(self.detach(), _encoder(precision_fractional, base))


def _tensor_share(self: torch.Tensor, *workers: VirtualWorker, **kwargs: Any) -> Any:
    raise NotSharedError(
        "a float tensor cannot be secret-shared directly: call .fix_precision() first, "
        "e.g. tensor.fix_precision().share(alice, bob, crypto_provider=crypto_provider)"
    )


def _tensor_get(self: torch.Tensor) -> Any:
    raise NotSharedError("get() needs a secret-shared tensor; this is a plain torch tensor")


def _module_fix_precision(self: nn.Module, precision_fractional: int = PYSYFT_PRECISION,
                          base: int = PYSYFT_BASE, **kwargs: Any) -> nn.Module:
    self._secure_mnist_encoder = _encoder(precision_fractional, base)
    return self


def _module_share(self: nn.Module, *workers: VirtualWorker, crypto_provider: VirtualWorker | None = None,
                  requires_grad: bool = True, **kwargs: Any) -> nn.Module:
    encoder = getattr(self, "_secure_mnist_encoder", None)
    if encoder is None:
        raise NotSharedError("call model.fix_precision() before model.share(...)")
    return encrypt_parameters(self, session_for(workers, crypto_provider), encoder, requires_grad)


def _module_get(self: nn.Module) -> nn.Module:
    from ..nn import decrypt_parameters

    return decrypt_parameters(self)


def _optimizer_fix_precision(self: torch.optim.Optimizer, **kwargs: Any) -> SGD:
    if not isinstance(self, torch.optim.SGD):
        raise NotImplementedError(f"only SGD runs on encrypted parameters, got {type(self).__name__}")
    group = self.param_groups[0]
    for option in ("momentum", "weight_decay", "dampening"):
        if group.get(option):
            raise NotImplementedError(f"SGD's {option} is not supported on encrypted parameters")
    params = [p for g in self.param_groups for p in g["params"]]
    return SGD(params, lr=group["lr"])


def _install() -> None:
    torch.Tensor.fix_precision = _tensor_fix_precision  # type: ignore[attr-defined]
    torch.Tensor.fix_prec = _tensor_fix_precision  # type: ignore[attr-defined]
    torch.Tensor.share = _tensor_share  # type: ignore[attr-defined]
    torch.Tensor.get = _tensor_get  # type: ignore[attr-defined]
    nn.Module.fix_precision = _module_fix_precision  # type: ignore[attr-defined]
    nn.Module.share = _module_share  # type: ignore[attr-defined]
    nn.Module.get = _module_get  # type: ignore[attr-defined]
    torch.optim.Optimizer.fix_precision = _optimizer_fix_precision  # type: ignore[attr-defined]
