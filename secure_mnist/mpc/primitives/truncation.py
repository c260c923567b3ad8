"""Division of a shared value by a public integer, as used after every fixed-point product.

SecureML's local truncation (Mohassel & Zhang, 2017): the first worker rounds its share down,
the second rounds the negation of its share down and negates back. No message is sent. The result
is x / d up to one unit in the last place, rounded up with probability equal to the discarded
fraction (stochastic rounding, so rounding errors do not drift). It fails, by about 2^64 / d,
only when the two shares wrap around the ring on addition; with uniformly random shares that
happens with probability |x| / 2^64 per element. Here x is the raw product, which carries the
scale twice: with 16 fractional bits a product of real size 1 is 2^32 in the ring, so it fails
with probability about 2^-32; with PySyft's three decimal digits, about 2^-44.
"""

from __future__ import annotations

import torch

from ...engine import current_engine
from ...profiling import timed
from ..sharing import AdditiveSharingTensor


# --8<-- [start:truncate]
@timed("truncation")
def truncate(x: AdditiveSharingTensor, divisor: int) -> AdditiveSharingTensor:
    """Shares of x / divisor (rounded stochastically) for a public positive integer divisor."""
    if divisor < 1:
        raise ValueError(f"truncation needs a positive integer divisor, got {divisor}")
    if divisor == 1:
        return x
    if current_engine() == "compiled":
        return compiled_truncate(x, divisor)
    first = x.session.first
    shift = divisor.bit_length() - 1
    power_of_two = divisor == 1 << shift
    out = {}
    for worker, share in x.local_shares().items():
        if power_of_two:
            out[worker] = share >> shift if worker is first else -((-share) >> shift)
        else:
            out[worker] = (torch.div(share, divisor, rounding_mode="floor") if worker is first
                           else -torch.div(-share, divisor, rounding_mode="floor"))
    return AdditiveSharingTensor(x.session, out, x.shape)
# --8<-- [end:truncate]


def compiled_truncate(x: AdditiveSharingTensor, divisor: int) -> AdditiveSharingTensor:
    """`truncate` through the compiled kernel: a multiplication by a precomputed inverse instead
    of a hardware division per word, the same words as torch.div's floor."""
    from ...native.division import floor_divide
    first = x.session.first
    out = {worker: floor_divide(share, divisor, negate=worker is not first)
           for worker, share in x.local_shares().items()}
    return AdditiveSharingTensor(x.session, out, x.shape)


@timed("truncation")
def truncate_each(x: AdditiveSharingTensor, divisors: torch.Tensor) -> AdditiveSharingTensor:
    """`truncate` with a divisor per element (int64, broadcast against x), e.g. the denominators
    of a public tensor of divisors (see mpc/public.py), or the window sizes of an average pool."""
    if divisors.numel() and int(divisors.min()) < 1:
        raise ValueError(f"truncation needs positive integer divisors, got {int(divisors.min())}")
    first = x.session.first
    shape = torch.broadcast_shapes(x.shape, divisors.shape)
    out = {}
    for worker, share in x.local_shares().items():
        out[worker] = (torch.div(share, divisors, rounding_mode="floor") if worker is first
                       else -torch.div(-share, divisors, rounding_mode="floor"))
    return AdditiveSharingTensor(x.session, out, shape)
