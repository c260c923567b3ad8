"""Additive secret sharing with secure_mnist: share a tensor, look at the shares, reconstruct.

The pages docs/secret-sharing*.md include the marked sections (pymdownx.snippets), so the
code a reader sees is the code the doc tests run. Run this file on its own for a short
demonstration:

    python snippets/share_and_reconstruct.py
"""


# --8<-- [start:share]
import torch

import secure_mnist as sm

session = sm.Session(seed=0)  # two workers, a crypto provider and a client ("me")
alice, bob = session.workers

secret = torch.tensor([0.5, -1.25, 3.0])
encoded = session.encoder.encode(secret)  # reals -> integers of Z_2^64
x = sm.FixedPrecisionTensor.encode(secret, session.encoder).share(session)

share_alice = x.child.share_of(alice)  # what alice holds: one int64 per element
share_bob = x.child.share_of(bob)  # what bob holds


def share(values, owner=None) -> sm.FixedPrecisionTensor:
    """The same two steps for any values; the owner is the client unless given."""
    reals = torch.as_tensor(values, dtype=torch.float32)
    encoded = sm.FixedPrecisionTensor.encode(reals, session.encoder)
    return encoded.share(session, owner=owner)
# --8<-- [end:share]


# --8<-- [start:traffic]
def traffic(operation):
    """Run `operation()`; return its result and the messages it caused."""
    before = session.comm.stats.snapshot()
    result = operation()
    return result, session.comm.stats.since(before)
# --8<-- [end:traffic]


# --8<-- [start:histogram]
def ring_histogram(shares: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Fraction of the shares in each of `bins` (even) equal slices of Z_2^64."""
    # The slice of each share, counted up from the bottom of [-2^63, 2^63).
    below_zero = torch.floor(shares.double() * (bins / 2.0**64)).long()
    index = (below_zero + bins // 2).clamp(0, bins - 1)
    counts = torch.bincount(index.flatten(), minlength=bins)
    return counts.double() / shares.numel()


def print_histogram(shares: torch.Tensor, bins: int = 10) -> None:
    """One text bar per slice of the ring, labelled in units of 2^63."""
    for i, fraction in enumerate(ring_histogram(shares, bins).tolist()):
        start = -1 + 2 * i / bins
        bar = "#" * round(100 * fraction)
        print(f"[{start:+.1f}, {start + 2 / bins:+.1f}) x 2^63  {bar}  {fraction:.2f}")
# --8<-- [end:histogram]


if __name__ == "__main__":
    print("secret:               ", secret.tolist())
    print("encoded (16 bits):    ", encoded.tolist())
    print("alice's share:        ", share_alice.tolist())
    print("bob's share:          ", share_bob.tolist())
    print("sum of the two shares:", (share_alice + share_bob).tolist(), "(int64 wraps mod 2^64)")
    print("decrypted:            ", x.decrypt().tolist())
    print()
    y = share([1.0, 2.0, -4.0])
    z, stats = traffic(lambda: 3 * (x + y) - x * 0.5 + 1.0)
    print("3 * (x + y) - x * 0.5 + 1.0 =", z.decrypt().tolist(), f"({stats.messages} messages)")
    print()
    zeros = share(torch.zeros(1_000_000))
    print("bob's shares of a million zeros, by slice of the ring:")
    print_histogram(zeros.child.share_of(bob))
