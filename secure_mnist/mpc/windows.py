"""Where the windows of a convolution or a pooling layer take their elements from (im2col).

A window gathers elements of the input; which ones depends only on the shapes, never on values.
So the positions are worked out once, on a tensor of position numbers instead of data, with
torch's own F.unfold (same padding, stride and dilation rules as F.conv2d), and every worker
then gathers its share with them: a local, linear map. Position 0 stands for padding (a zero);
position i + 1 for element i of a sample flattened as (channel, row, column).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
import torch.nn.functional as F

Pair = tuple[int, int]


class Windows(NamedTuple):
    positions: torch.Tensor   # int64 [C * kh * kw, L]: for every window (column), where its elements come from
    out_size: Pair            # (rows, columns) of the output: L = rows * columns
    padding_mask: torch.Tensor  # bool, like positions: True where a window reads padding


def pair(value: int | tuple[int, ...] | list[int], name: str) -> Pair:
    """PySyft and torch accept 3 or (3, 3) for a kernel size, a stride, ..."""
    if isinstance(value, int):
        return (value, value)
    if len(value) == 1:
        return (int(value[0]), int(value[0]))
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(value[0]), int(value[1]))


@lru_cache(maxsize=64)
def windows(channels: int, height: int, width: int, kernel: Pair, stride: Pair, padding: Pair,
            dilation: Pair) -> Windows:
    """The windows of a (channels, height, width) input, in F.unfold's order."""
    numbers = torch.arange(1, channels * height * width + 1, dtype=torch.float64).view(1, channels, height, width)
    positions = F.unfold(numbers, kernel, dilation=dilation, padding=padding, stride=stride)[0].to(torch.int64)
    rows = (height + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    columns = (width + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    if rows < 1 or columns < 1:
        raise ValueError(f"the kernel {kernel} (dilation {dilation}) does not fit the padded input "
                         f"{(height + 2 * padding[0], width + 2 * padding[1])}")
    return Windows(positions, (rows, columns), positions == 0)


def gather(t: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The windows of every sample of t [..., C, H, W]: [..., *positions.shape], zeros for padding."""
    flat = F.pad(t.flatten(-3), (1, 0))
    return flat[..., positions]


def convolution(positions: torch.Tensor):
    """conv(x, w) = w (as a [C_out, C * kh * kw] matrix) @ windows(x): bilinear in (x, w), so a
    Beaver triple computes it on shares; the output is [..., C_out, L]."""
    def convolve(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.matmul(w.reshape(w.shape[0], -1), gather(x, positions))

    return convolve


def scatter_back(values: torch.Tensor, positions: torch.Tensor, sample_shape: torch.Size) -> torch.Tensor:
    """The adjoint of gathering: add every gathered element back to where it came from (padding
    is dropped). values: [N, *positions.shape]; returns [N, *sample_shape]."""
    batch = values.shape[: values.dim() - positions.dim()]
    flat = values.reshape(*batch, -1)
    out = torch.zeros(*batch, sample_shape.numel() + 1, dtype=values.dtype, device=values.device)
    out = out.index_add(-1, positions.reshape(-1).to(values.device), flat)
    return out[..., 1:].reshape(*batch, *sample_shape)
