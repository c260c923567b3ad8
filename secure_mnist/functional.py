"""torch.* and torch.nn.functional on encrypted tensors, with or without autograd.

Both encrypted types send the torch functions called on them here (their `__torch_function__`):
a FixedPrecisionTensor (no gradient) and an AutogradTensor (records one). Every function below
is written once, with the methods both types share, so the same code runs on shares with and
without a gradient, and so nn.Linear, nn.Conv2d, pooling and nn.Sequential run on encrypted
inputs unchanged. A function not in the table raises NotImplementedError: it would otherwise
run on meaningless data.

- conv2d: im2col and one Beaver product per layer. conv(x, W) = W @ windows(x) is bilinear in
  (x, W), so one triple computes it; only x and W are opened (each once), never the windows.
- avg_pool2d: local (a sum of each window, then a division by its size: exact to one step).
- max_pool2d: secure comparisons of every pair in each window (mpc/tournament.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .autograd import AutogradTensor
from .autograd import functions as fn
from .mpc.fixed_point import FixedPrecisionTensor, join, records_gradients
from .mpc.windows import Pair, convolution, pair, windows

Encrypted = (FixedPrecisionTensor, AutogradTensor)


def dispatch(func: Callable, args: Sequence[Any], kwargs: dict[str, Any], autograd: bool) -> Any:
    """Run torch's `func` on encrypted arguments, or refuse it clearly.

    A FixedPrecisionTensor steps aside (NotImplemented) when an AutogradTensor is among the
    arguments: torch then asks the AutogradTensor, which records the gradient.
    """
    if not autograd and any(records_gradients(a) for a in _flat(args, kwargs)):
        return NotImplemented
    handler = TORCH_FUNCTIONS.get(func)
    if handler is None:
        name = getattr(func, "__name__", repr(func))
        if name == "__get__":  # a property, such as .data: name it
            name = "." + getattr(getattr(func, "__self__", None), "__name__", "attribute")
        kind = "AutogradTensor" if autograd else "FixedPrecisionTensor"
        raise NotImplementedError(f"{name} is not supported on encrypted tensors ({kind})")
    return handler(*args, **kwargs)


def _flat(args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for value in (*args, *kwargs.values()):
        out.extend(value if isinstance(value, (list, tuple)) else (value,))
    return out


def _is_encrypted(value: object) -> bool:
    return isinstance(value, Encrypted)


# -- layers -------------------------------------------------------------------------------------------
def linear(input, weight, bias=None):
    out = input @ weight.t()
    return out if bias is None else out + bias


def relu(input, inplace: bool = False):
    return input.relu()


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """F.conv2d on encrypted inputs and/or weights: windows (im2col) and one Beaver product."""
    if groups != 1:
        raise NotImplementedError("grouped convolutions (groups != 1) are not supported on encrypted tensors")
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"conv2d needs a [N, C, H, W] input and a [C_out, C, kh, kw] weight, got "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    n, channels, height, width = input.shape
    out_channels, in_channels, kh, kw = weight.shape
    if in_channels != channels:
        raise ValueError(f"conv2d: the weight expects {in_channels} input channels, the input has {channels}")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    padding = _conv_padding(padding, (kh, kw), stride, dilation)
    win = windows(channels, height, width, (kh, kw), stride, padding, dilation)
    out = _convolve(input, weight, win.positions)  # [N, C_out, L]
    if bias is not None:
        out = out + (bias.view(1, out_channels, 1) if _is_encrypted(bias) else bias.detach().view(1, out_channels, 1))
    out = out.view(n, out_channels, *win.out_size)
    return out.squeeze(0) if unbatched else out


def _conv_padding(padding, kernel: Pair, stride: Pair, dilation: Pair) -> Pair:
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError("padding='same' needs stride 1 (as in torch)")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        if any(t % 2 for t in total):
            raise NotImplementedError("padding='same' with an even kernel pads unevenly; pad explicitly instead")
        return (total[0] // 2, total[1] // 2)
    return pair(padding, "padding")


def _convolve(input, weight, positions: torch.Tensor):
    """W @ windows(x) for every sample, as one bilinear product of (x, W)."""
    if records_gradients(input) or records_gradients(weight):
        return AutogradTensor._result_of(_fixed_convolution(input, weight, positions),
                                         lambda x, w: fn.ConvolutionBackward(x, w, positions), input, weight)
    return _fixed_convolution(input, weight, positions)


def _fixed_convolution(input, weight, positions: torch.Tensor) -> FixedPrecisionTensor:
    x, w = _value(input), _value(weight)
    model = x if isinstance(x, FixedPrecisionTensor) else w
    x, w = model._coerce(x), model._coerce(w)
    return x._product(w, convolution(positions))


def _value(value):
    return value.child if records_gradients(value) else value


def _pooling_windows(input, kernel_size, stride, padding, dilation, ceil_mode: bool):
    if ceil_mode:
        raise NotImplementedError("ceil_mode=True is not supported in encrypted pooling")
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    if input.dim() != 4:
        raise ValueError(f"2-D pooling needs a [N, C, H, W] or [C, H, W] input, got {tuple(input.shape)}")
    n, channels, height, width = input.shape
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None or (isinstance(stride, (list, tuple)) and not stride) else pair(stride, "stride")
    padding, dilation = pair(padding, "padding"), pair(dilation, "dilation")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"padding {padding} should be at most half the kernel size {kernel} (as in torch)")
    win = windows(channels, height, width, kernel, stride, padding, dilation)
    k = kernel[0] * kernel[1]
    positions = win.positions.view(channels, k, -1)
    gathered = input._gather(positions)  # [N, C, k, L]
    return gathered, win.padding_mask.view(channels, k, -1), (n, channels, *win.out_size), unbatched


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """The largest value of each window, by secure comparisons (ceil(log2 k) rounds for k values)."""
    if return_indices:
        raise NotImplementedError("return_indices=True is not supported in encrypted max pooling")
    gathered, padded, shape, unbatched = _pooling_windows(input, kernel_size, stride, padding, dilation, ceil_mode)
    if padded.any():  # padding takes part as -max_value, as torch's as -inf: it never wins
        encoder = _value(gathered).encoder
        gathered = gathered + padded.to(torch.float64) * -encoder.max_value
    out = gathered.max(dim=2).values.view(*shape)
    return out.squeeze(0) if unbatched else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None):
    """The mean of each window: local (a sum, then a division by a public integer)."""
    gathered, padded, shape, unbatched = _pooling_windows(input, kernel_size, stride, padding, 1, ceil_mode)
    total = gathered.sum(dim=2)  # [N, C, L]
    if divisor_override is not None:
        divisor: int | torch.Tensor = int(divisor_override)
    elif count_include_pad or not padded.any():
        divisor = padded.shape[1]
    else:
        divisor = (~padded).sum(dim=1).to(torch.float64)  # [C, L]: the real elements of each window
    out = (total / divisor).view(*shape)
    return out.squeeze(0) if unbatched else out


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Dropout in evaluation mode (or with p = 0) is the identity; in training it is refused."""
    if training and p > 0:
        raise NotImplementedError("dropout in training mode is not supported on encrypted tensors: call model.eval()")
    return input


# -- tensor functions ---------------------------------------------------------------------------------
def _binary(name: str) -> Callable:
    """torch.add(a, b) and friends: the encrypted operand's operator, reflected if it is second."""
    def apply(a, b, *, alpha=1, out=None, **kwargs):
        if out is not None or kwargs.get("rounding_mode") is not None:
            raise NotImplementedError(f"torch.{name} with out= or rounding_mode= is not supported on encrypted tensors")
        if alpha != 1:
            b = b * alpha
        if _is_encrypted(a):
            result = getattr(a, f"__{name}__")(b)
            if result is not NotImplemented:
                return result
        return getattr(b, f"__r{name}__")(a)

    return apply


def stack(tensors, dim: int = 0, *, out=None):
    return _join(tensors, dim, stack=True)


def cat(tensors, dim: int = 0, *, out=None):
    return _join(tensors, dim, stack=False)


def _join(tensors, dim: int, stack: bool):
    tensors = list(tensors)
    if any(records_gradients(t) for t in tensors):
        joined = join([_value(t) for t in tensors], dim, stack)
        return AutogradTensor._result_of(joined, lambda *ins: fn.JoinBackward(*ins, dim=dim, stack=stack), *tensors)
    return join(tensors, dim, stack)


def _method(name: str) -> Callable:
    """torch.f(x, ...) as x.f(...)."""
    def apply(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)

    return apply


def _reflected(name: str) -> Callable:
    """torch.Tensor.add(plain, encrypted) (Python's `plain + x`): the encrypted operand's reflection."""
    def apply(a, b, *args, **kwargs):
        if _is_encrypted(a):
            return getattr(a, f"__{name}__")(b, *args, **kwargs)
        return getattr(b, f"__r{name}__")(a)

    return apply


def _divide(a, b, *, rounding_mode=None, out=None):
    if rounding_mode is not None or out is not None:
        raise NotImplementedError("torch.div with rounding_mode= or out= is not supported on encrypted tensors")
    if not _is_encrypted(a):
        raise NotImplementedError("division by an encrypted value is not supported; divide by a public number")
    return a / b


TORCH_FUNCTIONS: dict[Callable, Callable] = {
    F.linear: linear,
    F.relu: relu,
    torch.relu: relu,
    torch.Tensor.relu: relu,
    F.conv2d: conv2d,
    F.max_pool2d: max_pool2d,
    F.max_pool2d_with_indices: lambda *args, **kwargs: max_pool2d(*args, **{**kwargs, "return_indices": True}),
    F.avg_pool2d: avg_pool2d,
    F.dropout: dropout,
    torch.add: _binary("add"),
    torch.sub: _binary("sub"),
    torch.subtract: _binary("sub"),
    torch.mul: _binary("mul"),
    torch.multiply: _binary("mul"),
    torch.matmul: _binary("matmul"),
    torch.mm: _binary("matmul"),
    torch.div: _divide,
    torch.true_divide: _divide,
    torch.Tensor.add: _reflected("add"),
    torch.Tensor.__add__: _reflected("add"),
    torch.Tensor.__radd__: _reflected("add"),
    torch.Tensor.sub: _reflected("sub"),
    torch.Tensor.__sub__: _reflected("sub"),
    torch.Tensor.mul: _reflected("mul"),
    torch.Tensor.__mul__: _reflected("mul"),
    torch.Tensor.__rmul__: _reflected("mul"),
    torch.Tensor.matmul: _reflected("matmul"),
    torch.Tensor.__matmul__: _reflected("matmul"),
    torch.Tensor.div: _divide,
    torch.Tensor.__truediv__: _divide,
    torch.Tensor.eq: lambda a, b: b.eq(a) if not _is_encrypted(a) else a.eq(b),
    torch.neg: lambda x: -x,
    torch.dot: _method("dot"),
    torch.stack: stack,
    torch.cat: cat,
    torch.concat: cat,
    torch.sum: _method("sum"),
    torch.mean: _method("mean"),
    torch.max: _method("max"),
    torch.min: _method("min"),
    torch.maximum: lambda a, b: a.max(b) if _is_encrypted(a) else b.max(a),
    torch.minimum: lambda a, b: a.min(b) if _is_encrypted(a) else b.min(a),
    torch.argmax: _method("argmax"),
    torch.argmin: _method("argmin"),
    torch.eq: _method("eq"),
    torch.gt: _method("gt"),
    torch.lt: _method("lt"),
    torch.ge: _method("ge"),
    torch.le: _method("le"),
    torch.flatten: _method("flatten"),
    torch.reshape: _method("reshape"),
    torch.squeeze: _method("squeeze"),
    torch.unsqueeze: _method("unsqueeze"),
    torch.transpose: _method("transpose"),
    torch.t: _method("t"),
    torch.permute: _method("permute"),
    torch.exp: _method("exp"),
    torch.log: _method("log"),
    torch.reciprocal: _method("reciprocal"),
    torch.sqrt: _method("sqrt"),
    torch.sigmoid: _method("sigmoid"),
    torch.tanh: _method("tanh"),
}
