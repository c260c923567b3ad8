"""Fixed-point encoding and truncation on shares, measured with secure_mnist.

The pages docs/fixed-precision*.md include the marked sections (pymdownx.snippets). Run
this file on its own for a short demonstration:

    python snippets/fixed_point_truncation.py
"""


# --8<-- [start:encoders]
import torch

import secure_mnist as sm

pysyft = sm.FixedPointEncoder(base=10, precision_fractional=3)  # PySyft's default
default = sm.FixedPointEncoder()  # secure_mnist's: base 2, 16 fractional bits

session = sm.Session(seed=0)
alice, bob = session.workers


def share(values, encoder=default) -> sm.FixedPrecisionTensor:
    """Encode reals with `encoder`, then secret-share them between alice and bob."""
    reals = torch.as_tensor(values, dtype=torch.float32)
    return sm.FixedPrecisionTensor.encode(reals, encoder).share(session)
# --8<-- [end:encoders]

# --8<-- [start:truncate_many]
from secure_mnist.mpc.primitives.truncation import truncate
from secure_mnist.mpc.sharing import reveal_to, share_secret


def truncate_many(ring_value: int, divisor: int, n: int = 1_000_000) -> torch.Tensor:
    """Share `ring_value` n times under fresh masks, truncate each copy, reveal all."""
    copies = torch.full((n,), ring_value)
    shared = share_secret(session, session.client, copies)
    return reveal_to(truncate(shared, divisor), session.client)


def failure_rate(ring_value: int, divisor: int, n: int = 1_000_000) -> float:
    """How often truncation misses ring_value / divisor by more than one unit."""
    results = truncate_many(ring_value, divisor, n)
    return ((results - ring_value // divisor).abs() > 1).double().mean().item()
# --8<-- [end:truncate_many]


if __name__ == "__main__":
    values = torch.tensor([0.5, -1.25, 3.14159], dtype=torch.float64)
    for encoder in (pysyft, default):
        encoded = encoder.encode(values)
        decoded = [f"{v:.6g}" for v in encoder.decode(encoded).tolist()]
        print(f"{encoder.describe()}: {values.tolist()} -> {encoded.tolist()} -> {decoded}")
    print()
    results = truncate_many(5, 4)
    print("5 / 4 truncated on shares, a million times:")
    for value, count in zip(*torch.unique(results, return_counts=True)):
        print(f"  {value.item()}: {count.item() / results.numel():.3f}")
    print(f"  mean {results.double().mean().item():.4f} (exact 1.25)")
    print()
    print("failure rate of truncation by 2^16, measured vs predicted (|x| / 2^64):")
    for bits in (62, 61, 60):
        measured, predicted = failure_rate(2**bits, 2**16), 2.0 ** (bits - 64)
        print(f"  x = 2^{bits}: {measured:.4f}  vs  {predicted:.4f}")
