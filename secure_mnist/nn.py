"""Encrypting and decrypting the parameters of an ordinary torch.nn.Module.

The module keeps its class and its forward(): only its parameters become AutogradTensors, so
F.linear and F.relu inside forward() run the encrypted protocols.
"""

from __future__ import annotations

import torch
from torch import nn

from .autograd import AutogradTensor
from .encoding import FixedPointEncoder
from .mpc.fixed_point import FixedPrecisionTensor
from .mpc.session import Session


def encrypt_parameters(module: nn.Module, session: Session, encoder: FixedPointEncoder | None = None,
                       requires_grad: bool = True) -> nn.Module:
    """Replace every parameter by a secret-shared AutogradTensor (in place), and return the module."""
    encoder = encoder or session.encoder
    for submodule in module.modules():
        for name, param in list(submodule._parameters.items()):
            if param is None or isinstance(param, AutogradTensor):
                continue
            shared = FixedPrecisionTensor.encode(param.detach(), encoder).share(session)
            # Written into _parameters directly: nn.Module only accepts nn.Parameter through setattr.
            submodule._parameters[name] = AutogradTensor(shared, requires_grad=requires_grad, is_parameter=True)
    return module


def decrypt_parameters(module: nn.Module) -> nn.Module:
    """Reveal every encrypted parameter to the client and put it back as a plain nn.Parameter."""
    for submodule in module.modules():
        for name, param in list(submodule._parameters.items()):
            if isinstance(param, AutogradTensor):
                submodule._parameters[name] = nn.Parameter(param.decrypt())
    return module


def encrypted_parameters(module: nn.Module) -> list[AutogradTensor]:
    return [p for p in module.parameters() if isinstance(p, AutogradTensor)]


def share_batch(batch: torch.Tensor, session: Session, encoder: FixedPointEncoder | None = None,
                owner=None, requires_grad: bool = False) -> AutogradTensor:
    """Encode and secret-share one batch of data, from its owner (the client by default)."""
    shared = FixedPrecisionTensor.encode(batch, encoder or session.encoder).share(session, owner=owner)
    return AutogradTensor(shared, requires_grad=requires_grad)
