"""Multiplying secret-shared tensors with Beaver triples, and what it costs.

The pages docs/beaver-triples*.md include the marked sections (pymdownx.snippets). Run
this file on its own for a short demonstration:

    python snippets/beaver_multiplication.py
"""


# --8<-- [start:setup]
import operator

import torch

import secure_mnist as sm

session = sm.Session(seed=0)
alice, bob = session.workers


def share(values) -> sm.FixedPrecisionTensor:
    """Encode reals (16 fractional bits) and secret-share them between alice and bob."""
    reals = torch.as_tensor(values, dtype=torch.float32)
    return sm.FixedPrecisionTensor.encode(reals, session.encoder).share(session)
# --8<-- [end:setup]


# --8<-- [start:cost]
def product_cost(shape_x, shape_y, op=operator.mul) -> tuple[dict[str, int], int]:
    """Bytes sent by each party, and rounds, for one op(x, y) of random shared x, y."""
    x, y = share(torch.randn(shape_x)), share(torch.randn(shape_y))
    before = session.comm.stats.snapshot()
    op(x, y)
    cost = session.comm.stats.since(before)
    parties = ("alice", "bob", "crypto_provider")
    return {name: cost.bytes_sent[name] for name in parties}, cost.rounds
# --8<-- [end:cost]


if __name__ == "__main__":
    x, y = share([6.0, -1.5, 0.25]), share([7.0, 2.0, -8.0])
    print("x * y =", (x * y).decrypt().tolist())
    w = torch.tensor([[1.0, 0.5], [-2.0, 1.0], [0.0, 4.0]])
    plain = torch.tensor([6.0, -1.5, 0.25]) @ w
    print("x @ w =", (x @ share(w)).decrypt().tolist(), " in plaintext:", plain.tolist())
    print()
    print("bytes sent by each party for one product, and rounds:")
    for label, shape_x, shape_y, op in [
        ("x * y, 3 elements", (3,), (3,), operator.mul),
        ("x * y, 64 x 128 elements", (64, 128), (64, 128), operator.mul),
        ("(64, 784) @ (784, 128): the first layer", (64, 784), (784, 128), operator.matmul),
    ]:
        sent, rounds = product_cost(shape_x, shape_y, op)
        print(f"  {label:42} {sent}  rounds: {rounds}")
