"""The methods PySyft's TorchHook added to torch, mapped onto secure_mnist."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..autograd import AutogradTensor
from ..encoding import FixedPointEncoder
from ..errors import NotSharedError, SetupError
from ..mpc import compat
from ..mpc.fixed_point import FixedPrecisionTensor
from ..mpc.integers import IntegerTensor
from ..mpc.session import session_for
from ..nn import encrypt_parameters
from ..optim import SGD

# PySyft's defaults: three decimal digits.
PYSYFT_BASE = 10
PYSYFT_PRECISION = 3


class VirtualWorker:
    """A named party living in this process; it becomes a worker or a crypto provider when used."""

    def __init__(self, hook: TorchHook | None, id: str) -> None:  # noqa: A002 - PySyft's argument name
        self.hook = hook
        self.id = id
        self._roles: dict[type, Any] = {}

    def as_role(self, kind: type) -> Any:
        """The Worker or CryptoProvider this party plays (one object per role, kept)."""
        if self is local_worker:
            raise SetupError("sy.local_worker is the client ('me'): it owns the data and receives what get() "
                             "reveals. Share among two other workers, with a third as crypto_provider")
        if kind not in self._roles:
            self._roles[kind] = kind(self.id)
        return self._roles[kind]

    def __repr__(self) -> str:
        return f"<VirtualWorker id:{self.id}>"


#: PySyft's `sy.local_worker`: the client, "me", who owns the data and receives what get() reveals.
local_worker = VirtualWorker(None, "me")


class TorchHook:
    """Adds PySyft's methods to torch.Tensor, nn.Module and torch.optim.Optimizer."""

    def __init__(self, torch_module: Any = torch) -> None:
        self.local_worker = local_worker
        if local_worker.hook is None:
            local_worker.hook = self
        _install()


def _encoder(precision_fractional: int = PYSYFT_PRECISION, base: int = PYSYFT_BASE, **_: Any) -> FixedPointEncoder:
    return FixedPointEncoder(base=base, precision_fractional=precision_fractional)


# -- torch.Tensor ---------------------------------------------------------------------------------------
def _tensor_fix_precision(self: torch.Tensor, precision_fractional: int = PYSYFT_PRECISION,
                          base: int = PYSYFT_BASE, **kwargs: Any) -> FixedPrecisionTensor:
    return FixedPrecisionTensor.encode(self.detach(), _encoder(precision_fractional, base))


def _tensor_fix_precision_(self: torch.Tensor, precision_fractional: int = PYSYFT_PRECISION,
                           base: int = PYSYFT_BASE, **kwargs: Any) -> torch.Tensor:
    """fix_precision(), in place: this very tensor object becomes an encrypted tensor."""
    return _become_encrypted(self, _tensor_fix_precision(self, precision_fractional, base))


def _tensor_share(self: torch.Tensor, *workers: Any, crypto_provider: Any = None, requires_grad: bool = False,
                  protocol: str | None = None, dtype: str | None = None, field: int | None = None,
                  **kwargs: Any) -> Any:
    """PySyft's share() of a plain tensor: integers are shared as they are; reals need fix_precision()."""
    compat.check_sharing_keywords(protocol=protocol, dtype=dtype, field=field)
    if self.is_floating_point() or self.is_complex():
        raise NotSharedError(
            f"a {self.dtype} tensor cannot be secret-shared directly: call .fix_precision() first, "
            "e.g. tensor.fix_precision().share(alice, bob, crypto_provider=crypto_provider) "
            "(integer tensors can be shared as they are)"
        )
    return IntegerTensor.from_tensor(self).share(*workers, crypto_provider=crypto_provider,
                                                 requires_grad=requires_grad)


def _tensor_share_(self: torch.Tensor, *workers: Any, crypto_provider: Any = None, **kwargs: Any) -> torch.Tensor:
    """share(), in place, for an integer tensor: this tensor object becomes the shared one."""
    return _become_encrypted(self, _tensor_share(self, *workers, crypto_provider=crypto_provider, **kwargs))


def _become_encrypted(tensor: torch.Tensor, value: FixedPrecisionTensor) -> torch.Tensor:
    """Turn a plain tensor into an AutogradTensor holding `value`, in place (PySyft's in-place forms).

    It gets new, zeroed storage: the object keeps no plaintext, every torch operation on it now
    goes through AutogradTensor.__torch_function__, never to the storage, and whatever shared the
    old storage (the dataset a batch was sliced from, say) keeps its values.
    """
    if isinstance(tensor, AutogradTensor):
        raise ValueError("this tensor is already encrypted")
    if type(tensor) is not torch.Tensor:
        raise TypeError(f"in-place fix_precision_()/share_() need a plain torch tensor, got {type(tensor).__name__}")
    requires_grad = tensor.requires_grad
    with torch.no_grad():
        tensor.set_(torch.zeros(tensor.shape, dtype=tensor.dtype))
    tensor.__class__ = AutogradTensor
    tensor.child = value  # type: ignore[attr-defined]
    tensor._graph_fn = None  # type: ignore[attr-defined]
    tensor._secure_grad = None  # type: ignore[attr-defined]
    tensor.is_parameter = False  # type: ignore[attr-defined]
    tensor.requires_grad_(requires_grad)
    return tensor


def _tensor_get(self: torch.Tensor) -> Any:
    raise NotSharedError("get() needs a secret-shared tensor; this is a plain torch tensor")


# -- nn.Module --------------------------------------------------------------------------------------------
def _module_fix_precision(self: nn.Module, precision_fractional: int = PYSYFT_PRECISION,
                          base: int = PYSYFT_BASE, **kwargs: Any) -> nn.Module:
    self._secure_mnist_encoder = _encoder(precision_fractional, base)
    return self


def _module_share(self: nn.Module, *workers: VirtualWorker, crypto_provider: VirtualWorker | None = None,
                  requires_grad: bool = True, protocol: str | None = None, dtype: str | None = None,
                  field: int | None = None, **kwargs: Any) -> nn.Module:
    compat.check_sharing_keywords(protocol=protocol, dtype=dtype, field=field)
    encoder = getattr(self, "_secure_mnist_encoder", None)
    if encoder is None:
        raise NotSharedError("call model.fix_precision() before model.share(...)")
    return encrypt_parameters(self, session_for(workers, crypto_provider), encoder, requires_grad)


def _module_get(self: nn.Module) -> nn.Module:
    from ..nn import decrypt_parameters

    return decrypt_parameters(self)


def _module_float_precision(self: nn.Module) -> nn.Module:
    """PySyft's model.get().float_precision(): get() here already gives float parameters."""
    if any(isinstance(p, AutogradTensor) for p in self.parameters()):
        raise NotSharedError("this model's parameters are still encrypted: call .get() before .float_precision()")
    return self


def _module_copy(self: nn.Module) -> nn.Module:
    """A deep copy; encrypted parameters are copied share by share."""
    return copy.deepcopy(self)


# -- torch.optim ---------------------------------------------------------------------------------------------
def _optimizer_fix_precision(self: torch.optim.Optimizer, **kwargs: Any) -> SGD:
    if not isinstance(self, torch.optim.SGD):
        raise NotImplementedError(f"only SGD runs on encrypted parameters, got {type(self).__name__}")
    group = self.param_groups[0]
    for option in ("momentum", "weight_decay", "dampening", "nesterov", "maximize"):
        if group.get(option):
            raise NotImplementedError(f"SGD's {option} is not supported on encrypted parameters")
    for other in self.param_groups[1:]:  # one update rule for all: refuse rather than drop a setting
        differing = sorted(k for k in group if k != "params" and other.get(k) != group[k])
        if differing:
            raise NotImplementedError("parameter groups with different settings are not supported on encrypted "
                                      f"parameters (they differ in {', '.join(differing)}): use one SGD per group")
    params = [p for g in self.param_groups for p in g["params"]]
    return SGD(params, lr=group["lr"])


def _install() -> None:
    torch.Tensor.fix_precision = _tensor_fix_precision  # type: ignore[attr-defined]
    torch.Tensor.fix_prec = _tensor_fix_precision  # type: ignore[attr-defined]
    torch.Tensor.fix_precision_ = _tensor_fix_precision_  # type: ignore[attr-defined]
    torch.Tensor.fix_prec_ = _tensor_fix_precision_  # type: ignore[attr-defined]
    torch.Tensor.share = _tensor_share  # type: ignore[attr-defined]
    torch.Tensor.share_ = _tensor_share_  # type: ignore[attr-defined]
    torch.Tensor.get = _tensor_get  # type: ignore[attr-defined]
    nn.Module.fix_precision = _module_fix_precision  # type: ignore[attr-defined]
    nn.Module.fix_prec = _module_fix_precision  # type: ignore[attr-defined]
    nn.Module.fix_precision_ = _module_fix_precision  # type: ignore[attr-defined]
    nn.Module.fix_prec_ = _module_fix_precision  # type: ignore[attr-defined]
    nn.Module.share = _module_share  # type: ignore[attr-defined]
    nn.Module.share_ = _module_share  # type: ignore[attr-defined]
    nn.Module.get = _module_get  # type: ignore[attr-defined]
    nn.Module.float_precision = _module_float_precision  # type: ignore[attr-defined]
    nn.Module.float_prec = _module_float_precision  # type: ignore[attr-defined]
    nn.Module.copy = _module_copy  # type: ignore[attr-defined]
    torch.optim.Optimizer.fix_precision = _optimizer_fix_precision  # type: ignore[attr-defined]
