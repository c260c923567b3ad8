"""Gradient functions: how each operation sends a gradient back to its inputs.

Every function works on FixedPrecisionTensors, so gradients are computed with the same encrypted
arithmetic as the forward pass: nobody sees an activation or a gradient in the clear.
Each class keeps what its gradient needs from the forward pass, micrograd-style.
"""

from __future__ import annotations

import torch

from ..mpc import approximations
from ..mpc.fixed_point import FixedPrecisionTensor, bilinear_together, matmul_together, products_together
from ..mpc.primitives.beaver import mul
from ..mpc.sharing import AdditiveSharingTensor
from ..mpc.windows import gather, scatter_back

Grads = tuple["FixedPrecisionTensor | None", ...]


# --8<-- [start:GradFunc]
class GradFunc:
    """A node of the backward graph; `inputs` are the AutogradTensors the gradient flows to."""

    def __init__(self, *inputs) -> None:
        self.inputs = inputs

    def needs(self, index: int) -> bool:
        """Whether input `index` wants a gradient (skips work for data and constants)."""
        return bool(getattr(self.inputs[index], "requires_grad", False))

    def gradient(self, grad: FixedPrecisionTensor) -> Grads:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
# --8<-- [end:GradFunc]


# --8<-- [start:unbroadcast]
def unbroadcast(grad: FixedPrecisionTensor, shape) -> FixedPrecisionTensor:
    """Sum a gradient over the dimensions that broadcasting added or stretched (e.g. a bias)."""
    while grad.dim() > len(shape):
        grad = grad.sum(0)
    for dim, size in enumerate(shape):
        if size == 1 and grad.shape[dim] != 1:
            grad = grad.sum(dim, keepdim=True)
    return grad
# --8<-- [end:unbroadcast]


# --8<-- [start:AddBackward]
class AddBackward(GradFunc):
    def __init__(self, self_, other):
        super().__init__(self_, other)
        self.shapes = (self_.shape, getattr(other, "shape", ()))

    def gradient(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(grad, self.shapes[1])
# --8<-- [end:AddBackward]


class SubBackward(GradFunc):
    def __init__(self, self_, other):
        super().__init__(self_, other)
        self.shapes = (self_.shape, getattr(other, "shape", ()))

    def gradient(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(-grad, self.shapes[1])


class NegBackward(GradFunc):
    def gradient(self, grad):
        return (-grad,)


# --8<-- [start:MulBackward]
class MulBackward(GradFunc):
    def __init__(self, self_, other):
        super().__init__(self_, other)
        self.self_ = value_of(self_)  # either side may be a FixedPrecisionTensor or a public number
        self.other = value_of(other)

    def gradient(self, grad):
        if self.inputs[0] is self.inputs[1]:  # x * x: one product, counted for both inputs
            grad_x = grad * self.other
            return grad_x, grad_x
        # both products are opened in the same round
        grad_self_, grad_other = products_together([(grad, self.other) if self.needs(0) else None,
                                                    (grad, self.self_) if self.needs(1) else None])
        return (None if grad_self_ is None else unbroadcast(grad_self_, self.self_.shape),
                None if grad_other is None else unbroadcast(grad_other, self.other.shape))
# --8<-- [end:MulBackward]


# --8<-- [start:MatmulBackward]
class MatmulBackward(GradFunc):
    def __init__(self, self_, other):
        super().__init__(self_, other)
        self.self_ = value_of(self_)  # either side may be a FixedPrecisionTensor or a public torch tensor
        self.other = value_of(other)

    def gradient(self, grad):
        # both products are opened in the same round
        return tuple(matmul_together([(grad, self.other.t()) if self.needs(0) else None,
                                      (self.self_.t(), grad) if self.needs(1) else None]))
# --8<-- [end:MatmulBackward]


# --8<-- [start:PowBackward]
class PowBackward(GradFunc):
    def __init__(self, self_, power: int):
        super().__init__(self_)
        self.self_ = self_.child
        self.power = power

    def gradient(self, grad):
        return (grad * (self.self_ ** (self.power - 1) * self.power) if self.power > 1 else grad,)
# --8<-- [end:PowBackward]


# --8<-- [start:DivBackward]
class DivBackward(GradFunc):
    """Division by a public number: the gradient is divided by it too."""

    def __init__(self, self_, divisor):
        super().__init__(self_)
        self.divisor = divisor

    def gradient(self, grad):
        return (grad / self.divisor,)
# --8<-- [end:DivBackward]


# --8<-- [start:SumBackward]
class SumBackward(GradFunc):
    def __init__(self, self_, dim=None, keepdim=False):
        super().__init__(self_)
        self.shape, self.dim, self.keepdim = self_.shape, dim, keepdim

    def gradient(self, grad):
        if self.dim is not None and not self.keepdim:
            dims = self.dim if isinstance(self.dim, (tuple, list)) else (self.dim,)
            for dim in sorted(d % len(self.shape) for d in dims):
                grad = grad.unsqueeze(dim)
        return (grad.expand(*self.shape),)
# --8<-- [end:SumBackward]


# --8<-- [start:ReluBackward]
class ReluBackward(GradFunc):
    """ReLU's derivative is the bit [x >= 0] the forward pass already computed, still shared."""

    def __init__(self, self_, positive: AdditiveSharingTensor):
        super().__init__(self_)
        self.positive = positive

    def gradient(self, grad):
        if not isinstance(self.positive, AdditiveSharingTensor):  # a public input: public bits
            return (grad._map(lambda g: g * self.positive),)
        return (grad._wrap(_mul_bits(grad.child, self.positive)),)
# --8<-- [end:ReluBackward]


# --8<-- [start:ExpBackward]
class ExpBackward(GradFunc):
    """d e^x / dx = e^x: the forward result, kept."""

    def __init__(self, self_, out: FixedPrecisionTensor):
        super().__init__(self_)
        self.out = out

    def gradient(self, grad):
        return (grad * self.out,)
# --8<-- [end:ExpBackward]


class LogBackward(GradFunc):
    """d log x / dx = 1/x, on the same input range as the forward pass."""

    def __init__(self, self_, lower: float, upper: float):
        super().__init__(self_)
        self.self_, self.range = self_.child, (lower, upper)

    def gradient(self, grad):
        return (grad * approximations.reciprocal(self.self_, *self.range),)


class ReciprocalBackward(GradFunc):
    """d (1/x) / dx = -1/x^2 = -out^2."""

    def __init__(self, self_, out: FixedPrecisionTensor):
        super().__init__(self_)
        self.out = out

    def gradient(self, grad):
        return (-(grad * self.out) * self.out,)


class SigmoidBackward(GradFunc):
    """d sigmoid(x) / dx = s (1 - s): the forward result, kept."""

    def __init__(self, self_, out: FixedPrecisionTensor):
        super().__init__(self_)
        self.out = out

    def gradient(self, grad):
        return (grad * (self.out * (1.0 - self.out)),)


class TanhBackward(GradFunc):
    """d tanh x / dx = 1 - t^2."""

    def __init__(self, self_, out: FixedPrecisionTensor):
        super().__init__(self_)
        self.out = out

    def gradient(self, grad):
        return (grad * (1.0 - self.out * self.out),)


class SqrtBackward(GradFunc):
    """d sqrt(x) / dx = 1 / (2 sqrt x): the reciprocal of the forward result, on its range."""

    def __init__(self, self_, out: FixedPrecisionTensor, lower: float, upper: float):
        super().__init__(self_)
        self.out, self.range = out, (lower**0.5, upper**0.5)

    def gradient(self, grad):
        return (grad * (approximations.reciprocal(self.out, *self.range) * 0.5),)


class SoftmaxBackward(GradFunc):
    """For p = softmax(x) along the last dimension: dx = p * (g - sum(g * p))."""

    def __init__(self, self_, probabilities: FixedPrecisionTensor):
        super().__init__(self_)
        self.p = probabilities

    def gradient(self, grad):
        weighted = (grad * self.p).sum(-1, keepdim=True)
        return (self.p * (grad - weighted),)


# --8<-- [start:CrossEntropyBackward]
class CrossEntropyBackward(GradFunc):
    """Mean softmax cross-entropy over a batch: d loss / d logits = (p - y) / batch, on shares.

    Nothing new is computed: p is the forward pass's softmax, y the shared one-hot labels.
    """

    def __init__(self, logits, probabilities: FixedPrecisionTensor, one_hot: FixedPrecisionTensor):
        super().__init__(logits)
        self.p, self.y = probabilities, one_hot

    def gradient(self, grad):
        return (((self.p - self.y) / self.p.shape[0]) * grad,)
# --8<-- [end:CrossEntropyBackward]


class ViewBackward(GradFunc):
    def __init__(self, self_):
        super().__init__(self_)
        self.shape = self_.shape

    def gradient(self, grad):
        return (grad.reshape(self.shape),)


class TransposeBackward(GradFunc):
    def __init__(self, self_, dim0: int, dim1: int):
        super().__init__(self_)
        self.dims = (dim0, dim1)

    def gradient(self, grad):
        return (grad.transpose(*self.dims),)


class IndexBackward(GradFunc):
    """x[index]: the gradient goes back to the selected places, zero elsewhere."""

    def __init__(self, self_, index):
        super().__init__(self_)
        self.shape, self.index = self_.shape, index

    def gradient(self, grad):
        positions = torch.arange(self.shape.numel()).view(self.shape)[self.index]
        return (_scatter(grad, positions, self.shape),)


class PermuteBackward(GradFunc):
    def __init__(self, self_, dims):
        super().__init__(self_)
        self.inverse = [0] * len(dims)
        for position, dim in enumerate(dims):
            self.inverse[dim % len(dims)] = position

    def gradient(self, grad):
        return (grad.permute(*self.inverse),)


class ExpandBackward(GradFunc):
    def __init__(self, self_):
        super().__init__(self_)
        self.shape = self_.shape

    def gradient(self, grad):
        return (unbroadcast(grad, self.shape),)


class JoinBackward(GradFunc):
    """torch.cat / torch.stack: each input gets its own slice of the gradient back."""

    def __init__(self, *inputs, dim: int, stack: bool):
        super().__init__(*inputs)
        self.dim, self.stack = dim, stack
        self.sizes = [1 if stack else getattr(i, "shape")[dim] for i in inputs]

    def gradient(self, grad):
        dim = self.dim % grad.dim()
        grads, start = [], 0
        for index, size in enumerate(self.sizes):
            if self.needs(index):
                where = (slice(None),) * dim + ((start,) if self.stack else (slice(start, start + size),))
                grads.append(grad[where])
            else:
                grads.append(None)
            start += size
        return tuple(grads)


class GatherBackward(GradFunc):
    """Windows of the input (im2col): each gathered element sends its gradient back to where it
    came from, and overlapping windows add up (local: a scatter-add on each share)."""

    def __init__(self, self_, positions):
        super().__init__(self_)
        self.positions, self.sample_shape = positions, self_.shape[-3:]

    def gradient(self, grad):
        return (grad._map(lambda t: scatter_back(t, self.positions, self.sample_shape)),)


class MaxBackward(GradFunc):
    """The gradient of a maximum goes to the winner only: the one-hot of the winner marks it."""

    def __init__(self, self_, dim: int, keepdim: bool, one_hot: FixedPrecisionTensor):
        super().__init__(self_)
        self.dim, self.keepdim, self.one_hot = dim, keepdim, one_hot

    def gradient(self, grad):
        if not self.keepdim:
            grad = grad.unsqueeze(self.dim)
        return (grad * self.one_hot,)


class ConvolutionBackward(GradFunc):
    """out = W @ windows(x): the input's gradient is W^T @ grad put back where the windows came
    from, the weight's is grad @ windows(x)^T summed over the batch. Both in one round, and x and
    W are not opened again: their forward openings serve (see Beaver triples)."""

    def __init__(self, input_, weight, positions):
        super().__init__(input_, weight)
        self.input_, self.weight = value_of(input_), value_of(weight)
        self.positions = positions
        self.sample_shape = input_.shape[-3:]

    def gradient(self, grad):
        positions, sample_shape, weight_shape = self.positions, self.sample_shape, self.weight.shape

        def to_input(g, w):
            return scatter_back(torch.matmul(w.reshape(w.shape[0], -1).t(), g), positions, sample_shape)

        def to_weight(g, x):
            return torch.matmul(g, gather(x, positions).transpose(-1, -2)).sum(0).reshape(weight_shape)

        return tuple(bilinear_together([(grad, self.weight, to_input) if self.needs(0) else None,
                                        (grad, self.input_, to_weight) if self.needs(1) else None]))


class IdentityBackward(GradFunc):
    """For refresh(): new shares, same value, same gradient."""

    def gradient(self, grad):
        return (grad,)


def value_of(x):
    """What a gradient function keeps of an input: an AutogradTensor's FixedPrecisionTensor, or
    the input itself (a FixedPrecisionTensor, a public tensor or number)."""
    return x.child if getattr(type(x), "_records_gradients", False) else x


def _mul_bits(values: AdditiveSharingTensor, bits: AdditiveSharingTensor) -> AdditiveSharingTensor:
    return mul(values, bits)


def _scatter(grad: FixedPrecisionTensor, positions, shape) -> FixedPrecisionTensor:
    """A zero tensor of `shape` with grad's values at the flat `positions` (local on each share)."""

    def place(values):
        out = torch.zeros(shape.numel(), dtype=values.dtype, device=values.device)
        return out.index_put((positions.reshape(-1),), values.reshape(-1), accumulate=True).view(shape)

    return grad._map(place)
