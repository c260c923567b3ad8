"""Backpropagation over encrypted values."""

from .tensor import AutogradTensor

__all__ = ["AutogradTensor"]
