"""AutogradTensor: records operations on encrypted tensors and backpropagates through them.

It is a torch.Tensor subclass only so that torch's own machinery accepts it where it expects
tensors (nn.Module parameters, torch.optim, F.linear, F.relu). It holds no data of its own: the
values are in `child`, a FixedPrecisionTensor, and the graph is in `grad_fn`. Nothing here uses
torch.autograd; backward() walks our graph and calls our gradient functions.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import NotSharedError
from ..mpc import approximations, compat, softmax as secure_softmax
from ..mpc.fixed_point import FixedPrecisionTensor, reduced_count
from . import functions as fn


class AutogradTensor(torch.Tensor):
    """An encrypted tensor with a gradient."""

    child: FixedPrecisionTensor
    _records_gradients = True  # FixedPrecisionTensor leaves mixed operations to this class

    @staticmethod
    def __new__(cls, child: FixedPrecisionTensor, requires_grad: bool = False,
                grad_fn: fn.GradFunc | None = None, is_parameter: bool = False) -> AutogradTensor:
        tensor = torch.Tensor._make_wrapper_subclass(cls, child.shape, dtype=torch.float32,
                                                     requires_grad=requires_grad)
        tensor.child = child
        tensor._graph_fn = grad_fn
        tensor._secure_grad = None
        tensor.is_parameter = is_parameter
        return tensor

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # everything happens in __new__
        pass

    # torch.Tensor's own grad and grad_fn belong to torch.autograd; ours live beside them.
    @property
    def grad(self) -> FixedPrecisionTensor | None:  # type: ignore[override]
        return self._secure_grad

    @grad.setter
    def grad(self, value: FixedPrecisionTensor | None) -> None:
        self._secure_grad = value

    @property
    def grad_fn(self) -> fn.GradFunc | None:  # type: ignore[override]
        return self._graph_fn

    # -- building the graph ---------------------------------------------------------------------------
    def _result(self, child: FixedPrecisionTensor, make_fn, *inputs) -> AutogradTensor:
        """Wrap an output, recording make_fn(*inputs) if any input wants a gradient."""
        return AutogradTensor._result_of(child, make_fn, *inputs)

    @staticmethod
    def _result_of(child: FixedPrecisionTensor, make_fn, *inputs) -> AutogradTensor:
        track = torch.is_grad_enabled() and any(getattr(i, "requires_grad", False) for i in inputs)
        return AutogradTensor(child, requires_grad=track, grad_fn=make_fn(*inputs) if track else None)

    def __add__(self, other):
        return self._result(self.child + _value(other), fn.AddBackward, self, other)

    __radd__ = __add__
    __iadd__ = __add__  # `correct += hits` rebinds to a new tensor: shares are never changed in place

    def __sub__(self, other):
        return self._result(self.child - _value(other), fn.SubBackward, self, other)

    def __rsub__(self, other):
        return (-self) + other

    __isub__ = __sub__

    def __neg__(self):
        return self._result(-self.child, fn.NegBackward, self)

    def __mul__(self, other):
        return self._result(self.child * _value(other), fn.MulBackward, self, other)

    __rmul__ = __mul__
    __imul__ = __mul__

    def __matmul__(self, other):
        return self._result(self.child @ _value(other), fn.MatmulBackward, self, other)

    def __rmatmul__(self, other):
        return self._result(self.child.__rmatmul__(_value(other)), fn.MatmulBackward, other, self)

    def __truediv__(self, other):
        return self._result(self.child / _value(other), lambda s: fn.DivBackward(s, other), self)

    def __pow__(self, power: int):
        return self._result(self.child**power, lambda s: fn.PowBackward(s, power), self)

    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False):  # type: ignore[override]
        return self._result(self.child.sum(dim, keepdim), lambda s: fn.SumBackward(s, dim, keepdim), self)

    def mean(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False):  # type: ignore[override]
        return self.sum(dim, keepdim) / reduced_count(self.shape, dim)

    def dot(self, other):  # type: ignore[override]
        if self.dim() != 1 or getattr(other, "dim", lambda: 0)() != 1 or self.shape != other.shape:
            raise ValueError(f"dot needs two 1-D tensors of the same size, got {tuple(self.shape)} and "
                             f"{tuple(getattr(other, 'shape', ()))}")
        return (self * other).sum()

    def relu(self):
        out, positive = self.child.relu_with_derivative()
        return self._result(out, lambda s: fn.ReluBackward(s, positive), self)

    # -- approximations (each for a stated input range; see mpc/approximations.py) ----------------
    def exp(self, lower: float | None = None, upper: float | None = None, *, clip_input: bool = True,
            **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("exp", pysyft_options)
        out = approximations.exp(self.child, lower, upper, clip_input=clip_input)
        return self._result(out, lambda s: fn.ExpBackward(s, out), self)

    def log(self, lower: float | None = None, upper: float | None = None, *, clip_input: bool = True,
            **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("log", pysyft_options)
        lower, upper = approximations.default_range("log", lower, upper)
        out = approximations.log(self.child, lower, upper, clip_input=clip_input)
        return self._result(out, lambda s: fn.LogBackward(s, lower, upper), self)

    def reciprocal(self, lower: float | None = None, upper: float | None = None, *, clip_input: bool = True,
                   **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("reciprocal", pysyft_options)
        out = approximations.reciprocal(self.child, lower, upper, clip_input=clip_input)
        return self._result(out, lambda s: fn.ReciprocalBackward(s, out), self)

    def sqrt(self, lower: float | None = None, upper: float | None = None, **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("sqrt", pysyft_options)
        lower, upper = approximations.default_range("sqrt", lower, upper)
        out = approximations.sqrt(self.child, lower, upper)
        return self._result(out, lambda s: fn.SqrtBackward(s, out, lower, upper), self)

    def sigmoid(self, bound: float | None = None, **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("sigmoid", pysyft_options)
        out = approximations.sigmoid(self.child, bound)
        return self._result(out, lambda s: fn.SigmoidBackward(s, out), self)

    def tanh(self, bound: float | None = None, **pysyft_options: Any):  # type: ignore[override]
        compat.check_approximation_options("tanh", pysyft_options)
        out = approximations.tanh(self.child, bound)
        return self._result(out, lambda s: fn.TanhBackward(s, out), self)

    def softmax(self, dim: int = -1):  # type: ignore[override]
        if dim not in (-1, self.dim() - 1):
            raise NotImplementedError("softmax on encrypted tensors runs along the last dimension (dim=-1)")
        out = secure_softmax.softmax(self.child)
        return self._result(out, lambda s: fn.SoftmaxBackward(s, out), self)

    def cross_entropy(self, one_hot):
        """Mean softmax cross-entropy of these logits against shared one-hot labels (a scalar)."""
        loss, probabilities = secure_softmax.cross_entropy(self.child, _value(one_hot))
        return self._result(loss, lambda s: fn.CrossEntropyBackward(s, probabilities, _value(one_hot)), self)

    def view(self, *shape):  # type: ignore[override]
        return self._result(self.child.view(*shape), fn.ViewBackward, self)

    def reshape(self, *shape):  # type: ignore[override]
        return self._result(self.child.reshape(*shape), fn.ViewBackward, self)

    def view_as(self, other):  # type: ignore[override]
        return self.view(other.shape)

    def transpose(self, dim0: int, dim1: int):  # type: ignore[override]
        return self._result(self.child.transpose(dim0, dim1), lambda s: fn.TransposeBackward(s, dim0, dim1), self)

    def t(self):  # type: ignore[override]
        return self.transpose(0, 1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):  # type: ignore[override]
        return self._result(self.child.flatten(start_dim, end_dim), fn.ViewBackward, self)

    def squeeze(self, dim: int | tuple[int, ...] | None = None):  # type: ignore[override]
        return self._result(self.child.squeeze(dim), fn.ViewBackward, self)

    def unsqueeze(self, dim: int):  # type: ignore[override]
        return self._result(self.child.unsqueeze(dim), fn.ViewBackward, self)

    def permute(self, *dims):  # type: ignore[override]
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return self._result(self.child.permute(*dims), lambda s: fn.PermuteBackward(s, dims), self)

    def expand(self, *shape):  # type: ignore[override]
        return self._result(self.child.expand(*shape), fn.ExpandBackward, self)

    def _gather(self, positions: torch.Tensor):
        """Windows of every sample (im2col, local), for pooling; see mpc/windows.py."""
        return self._result(self.child._gather(positions), lambda s: fn.GatherBackward(s, positions), self)

    def __getitem__(self, index):
        return self._result(self.child[index], lambda s: fn.IndexBackward(s, index), self)

    def refresh(self):
        return self._result(self.child.refresh(), fn.IdentityBackward, self)

    def max(self, dim=None, keepdim: bool = False):  # type: ignore[override]
        """torch's max: the largest value, (values, indices) along dim, or the elementwise
        maximum with another tensor. The gradient goes to the winner (the first one on ties)."""
        if dim is not None and not isinstance(dim, int):
            other = dim
            return other + (self - other).relu()  # max(x, y) = y + relu(x - y)
        return self._largest(self, dim, keepdim, torch.return_types.max)

    def min(self, dim=None, keepdim: bool = False):  # type: ignore[override]
        if dim is not None and not isinstance(dim, int):
            other = dim
            return self - (self - other).relu()  # min(x, y) = x - relu(x - y)
        result = self._largest(-self, dim, keepdim, torch.return_types.min)
        return -result if dim is None else torch.return_types.min((-result.values, result.indices))

    @staticmethod
    def _largest(x: AutogradTensor, dim: int | None, keepdim: bool, kind):
        from ..mpc.tournament import tournament

        track = torch.is_grad_enabled() and x.requires_grad
        flat = x.reshape(-1) if dim is None else x
        along = 0 if dim is None else dim % x.dim()
        winners = tournament(flat.child, along, one_hot=track)
        values = flat._result(winners.values, lambda s: fn.MaxBackward(s, along, False, winners.one_hot), flat)
        if dim is None:
            return values
        indices = AutogradTensor(winners.indices)
        if keepdim:
            values, indices = values.unsqueeze(along), indices.unsqueeze(along)
        return kind((values, indices))

    # -- operations without a gradient ----------------------------------------------------------------
    def argmax(self, dim: int | None = None, keepdim: bool = False):  # type: ignore[override]
        return AutogradTensor(self.child.argmax(dim, keepdim))

    def argmin(self, dim: int | None = None, keepdim: bool = False):  # type: ignore[override]
        return AutogradTensor(self.child.argmin(dim, keepdim))

    def eq(self, other):  # type: ignore[override]
        return AutogradTensor(self.child.eq(_value(other)))

    def gt(self, other):  # type: ignore[override]
        return AutogradTensor(self.child.gt(_value(other)))

    def lt(self, other):  # type: ignore[override]
        return AutogradTensor(self.child.lt(_value(other)))

    def ge(self, other):  # type: ignore[override]
        return AutogradTensor(self.child.ge(_value(other)))

    def le(self, other):  # type: ignore[override]
        return AutogradTensor(self.child.le(_value(other)))

    __lt__, __gt__, __le__, __ge__, __eq__ = lt, gt, le, ge, eq  # encrypted, like torch's elementwise ones

    # -- backpropagation --------------------------------------------------------------------------------
    def backward(self, grad: FixedPrecisionTensor | None = None) -> None:  # type: ignore[override]
        """Send gradients to every leaf that requires one, accumulating into `.grad`."""
        if grad is None:
            if self.child.numel() != 1:
                raise RuntimeError("backward() without a gradient needs a single-element output (a loss)")
            grad = _ones_like(self.child)
        grads: dict[int, FixedPrecisionTensor] = {id(self): grad}
        for node in _topological_order(self):
            node_grad = grads.pop(id(node), None)
            if node_grad is None:
                continue
            if node.grad_fn is None:
                node.grad = node_grad if node.grad is None else node.grad + node_grad
                continue
            for parent, parent_grad in zip(node.grad_fn.inputs, node.grad_fn.gradient(node_grad)):
                if parent_grad is None or not getattr(parent, "requires_grad", False):
                    continue
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad

    # -- decryption -------------------------------------------------------------------------------------
    def get(self) -> FixedPrecisionTensor:
        """Reveal to the client (the tensor stays shared); then .float_precision()."""
        if not self.child.is_shared:
            raise NotSharedError("get() needs a secret-shared tensor; this one is public")
        return self.child.get()

    def float_precision(self) -> torch.Tensor:
        return self.child.float_precision()

    float_prec = float_precision

    def decrypt(self) -> torch.Tensor:
        return self.child.decrypt()

    # -- PySyft's sharing and copying -----------------------------------------------------------------
    def share(self, *parties: Any, crypto_provider: Any = None, requires_grad: bool | None = None,
              **keywords: Any) -> AutogradTensor:
        """Share a public fixed-point value (made by fix_precision_() in place) among workers."""
        shared = self.child.share(*parties, crypto_provider=crypto_provider, **keywords)
        grad = self.requires_grad if requires_grad is None else requires_grad
        return AutogradTensor(shared, requires_grad=grad, is_parameter=self.is_parameter)

    def share_(self, *parties: Any, crypto_provider: Any = None, **keywords: Any) -> AutogradTensor:
        """share(), in place."""
        self.child = self.child.share(*parties, crypto_provider=crypto_provider, **keywords)
        return self

    def copy(self) -> AutogradTensor:
        """A new leaf with the same value (PySyft's copy(); also what copy.deepcopy gives)."""
        return AutogradTensor(self.child.copy(), requires_grad=self.requires_grad, is_parameter=self.is_parameter)

    def __deepcopy__(self, memo: dict) -> AutogradTensor:
        return self.copy()

    def add_(self, other):  # type: ignore[override]
        return self._in_place(self + other, "add_")

    def sub_(self, other):  # type: ignore[override]
        return self._in_place(self - other, "sub_")

    def _in_place(self, result: AutogradTensor, name: str) -> AutogradTensor:
        """In-place forms rebind this tensor to the result; with a gradient to record, torch
        refuses them on a leaf, and so do we (the graph would point at itself)."""
        if result.grad_fn is not None or (self.requires_grad and torch.is_grad_enabled()):
            raise RuntimeError(f"{name}() on an encrypted tensor that requires a gradient: write x = x + y "
                               "(or use torch.no_grad())")
        self.child = result.child
        return self

    # -- torch integration --------------------------------------------------------------------------------
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA or func in _PROPERTIES:
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs)
        from ..functional import dispatch

        return dispatch(func, args, kwargs, autograd=True)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise NotImplementedError(f"{func} reached torch's kernels with an encrypted tensor; this is a bug")

    __hash__ = torch.Tensor.__hash__

    def __repr__(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return describe_chain(self)

    def __format__(self, spec: str) -> str:
        return describe_chain(self)


def describe_chain(tensor: AutogradTensor) -> str:
    """The tutorial's view of a shared tensor: the wrapper chain, who holds the shares, the dealer."""
    head = "Parameter>" if tensor.is_parameter else "(Wrapper)>"
    child = tensor.child
    if not child.is_shared:
        return f"{head}AutogradTensor>FixedPrecisionTensor>{child.child!r}"
    session = child.session
    lines = [f"{head}AutogradTensor>FixedPrecisionTensor>[AdditiveSharingTensor]"]
    lines += [f"\t-> {w.name}: share of shape {tuple(child.shape)} in Z_2^64" for w in session.workers]
    lines.append(f"\t*crypto provider: {session.provider.name}*")
    lines.append(f"\t*precision: {child.encoder.describe()}*")
    return "\n".join(lines)


def _value(other):
    return other.child if isinstance(other, AutogradTensor) else other


def _ones_like(x: FixedPrecisionTensor) -> FixedPrecisionTensor:
    from ..mpc.sharing import AdditiveSharingTensor

    ones = x.encoder.encode(torch.ones(x.shape))
    return FixedPrecisionTensor(AdditiveSharingTensor.public(x.session, ones), x.encoder)


# --8<-- [start:topological_order]
def _topological_order(root: AutogradTensor) -> list[AutogradTensor]:
    """Nodes from the output back to the leaves, each after everything that depends on it."""
    order: list[AutogradTensor] = []
    seen: set[int] = set()
    stack: list[tuple[AutogradTensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node.grad_fn is not None:
            for parent in node.grad_fn.inputs:
                if isinstance(parent, AutogradTensor) and id(parent) not in seen:
                    stack.append((parent, False))
    return order[::-1]
# --8<-- [end:topological_order]


_METADATA = {
    torch.Tensor.dim, torch.Tensor.size, torch.Tensor.numel, torch.Tensor.__len__,
    torch.Tensor.requires_grad_, torch.Tensor.__setstate__,
}

# Attributes read through torch's property getters: metadata only. Any other property (.data, .T,
# ...) would read the tensor's storage, which holds no value (see torch.Tensor.fix_precision_).
_PROPERTIES = {getattr(torch.Tensor, name).__get__ for name in (
    "shape", "dtype", "device", "requires_grad", "is_leaf", "ndim", "layout", "is_sparse", "is_quantized",
    "is_meta", "is_nested", "is_cuda", "names", "_base", "output_nr", "_version", "is_mkldnn", "is_mps",
    "is_xla", "is_xpu", "is_ipu", "is_vulkan", "is_maia", "is_mtia", "itemsize",
) if hasattr(torch.Tensor, name)}
