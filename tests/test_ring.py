"""Matrix products in Z_2^64 through float64 limbs are torch.matmul's, bit for bit."""

from __future__ import annotations

import pytest
import torch

from secure_mnist.mpc.ring import MAX_INNER, ring_matmul

WORDS = (-2**63, 2**63 - 1)


@pytest.mark.parametrize("n, k, m", [(64, 784, 128), (784, 64, 128), (128, 64, 784), (7, MAX_INNER + 5, 40),
                                     (3, 3 * MAX_INNER, 64), (64, 64, 10)])
def test_equal_to_int64_matmul_on_random_words(n, k, m):
    generator = torch.Generator().manual_seed(n * k + m)
    x = torch.randint(*WORDS, (n, k), generator=generator)
    y = torch.randint(*WORDS, (k, m), generator=generator)
    assert torch.equal(ring_matmul(x, y), x @ y)
    assert torch.equal(ring_matmul(x, y.t().contiguous().t()), x @ y)  # a transposed view


@pytest.mark.parametrize("value", [-2**63, 2**63 - 1, -1, 2**42, 2**21 - 1])
def test_extreme_words(value):
    x = torch.full((80, MAX_INNER), value)
    y = torch.full((MAX_INNER, 80), -2**63 if value > 0 else 2**63 - 1)
    assert torch.equal(ring_matmul(x, y), x @ y)
    assert torch.equal(ring_matmul(x, x.t()), x @ x.t())


def test_other_shapes_fall_back_to_torch():
    x, y = torch.arange(6).view(2, 3), torch.arange(3)
    assert torch.equal(ring_matmul(x, y), x @ y)
