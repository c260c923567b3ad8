"""Every protocol against plaintext: random inputs of many shapes, negatives, zero, large values."""

from __future__ import annotations

import pytest
import torch

import secure_mnist as sm
from helpers import encrypt, new_session, ulp
from secure_mnist.mpc.primitives.comparison import is_negative
from secure_mnist.mpc.primitives.truncation import truncate
from secure_mnist.mpc.sharing import reveal_to, share_secret

SHAPES = [(), (1,), (7,), (3, 5), (2, 3, 4), (64, 10)]


@pytest.fixture
def session() -> sm.Session:
    return new_session()


def values(shape, scale=10.0, seed=0) -> torch.Tensor:
    """Random reals including zero, negatives and both signs of `scale`-sized magnitudes."""
    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * scale
    flat = x.view(-1)
    if flat.numel() >= 3:
        flat[0], flat[1], flat[2] = 0.0, -scale, scale
    return x


@pytest.mark.parametrize("shape", SHAPES)
def test_share_and_reconstruct_is_exact_in_the_ring(session, shape):
    secret = torch.randint(-2**63, 2**63 - 1, shape, dtype=torch.int64)
    shared = share_secret(session, session.client, secret)
    assert torch.equal(reveal_to(shared, session.client), secret)


@pytest.mark.parametrize("shape", SHAPES)
def test_linear_operations(session, shape):
    x, y = values(shape, seed=1), values(shape, seed=2)
    ex, ey = encrypt(x, session), encrypt(y, session)
    tolerance = 2 * ulp(session)
    for got, want in [
        (ex + ey, x + y), (ex - ey, x - y), (-ex, -x), (ex + 2.5, x + 2.5), (3.25 - ex, 3.25 - x),
        (ex * 3, x * 3), (ex * -0.5, x * -0.5), (ex.refresh(), x),
    ]:
        torch.testing.assert_close(got.decrypt().double(), want, atol=tolerance, rtol=0)


@pytest.mark.parametrize("shape", [s for s in SHAPES if s])
def test_sum_mean_and_division(session, shape):
    x = values(shape, seed=3)
    ex = encrypt(x, session)
    tolerance = 2 * ulp(session) * x.numel()
    torch.testing.assert_close(ex.sum().decrypt().double(), x.sum(), atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.sum(0).decrypt().double(), x.sum(0), atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.mean().decrypt().double(), x.mean(), atol=tolerance, rtol=0)
    torch.testing.assert_close((ex / 64).decrypt().double(), x / 64, atol=2 * ulp(session), rtol=0)
    torch.testing.assert_close((ex / 3).decrypt().double(), x / 3, atol=2 * ulp(session), rtol=0)


@pytest.mark.parametrize("shape", [(1,), (5,), (4, 6), (2, 3, 4)])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 100.0])
def test_multiplication(session, shape, scale):
    x, y = values(shape, scale, seed=4), values(shape, scale, seed=5)
    got = (encrypt(x, session) * encrypt(y, session)).decrypt().double()
    # Inputs are rounded to the grid first (half a unit each), the product is truncated (one unit).
    bound = ulp(session) * (1 + x.abs() + y.abs())
    assert ((got - x * y).abs() <= bound).all()


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((1, 7), (7, 1)), ((64, 784), (784, 128)), ((5,), (5, 2)), ((2, 3, 4), (4, 2))])
def test_matrix_multiplication(session, shapes):
    x, y = values(shapes[0], 1.0, seed=6), values(shapes[1], 1.0, seed=7)
    got = (encrypt(x, session) @ encrypt(y, session)).decrypt().double()
    inner = shapes[0][-1]
    torch.testing.assert_close(got, x @ y, atol=ulp(session) * (2 + inner), rtol=0)


def test_large_magnitudes_near_the_range(session):
    big = session.encoder.max_value * 0.9
    x = torch.tensor([big, -big, 0.0, 1.0], dtype=torch.float64)
    # decrypt() returns float32 like torch: relative precision 2^-24 at this size
    torch.testing.assert_close(encrypt(x, session).decrypt().double(), x, atol=ulp(session), rtol=2**-23)
    # a product of a large value with a small one stays in range
    got = (encrypt(x, session) * encrypt(torch.full((4,), 1e-3, dtype=torch.float64), session)).decrypt().double()
    torch.testing.assert_close(got, x * 1e-3, atol=big * 2 * ulp(session), rtol=2**-23)


@pytest.mark.parametrize("divisor", [2**16, 1000, 64, 3, 7])
def test_truncation_error_is_at_most_one_unit(session, divisor):
    secret = torch.randint(-2**40, 2**40, (5000,), dtype=torch.int64)
    got = reveal_to(truncate(share_secret(session, session.client, secret), divisor), session.client)
    exact = torch.div(secret, divisor, rounding_mode="floor")
    assert (got - exact).abs().max() <= 1


def test_truncation_rounds_stochastically_without_bias(session):
    """x / 4 for x = 1 (mod 4) is 0.25: rounded up about a quarter of the time, never drifting."""
    secret = torch.full((20000,), 4 * 1000 + 1, dtype=torch.int64)
    got = reveal_to(truncate(share_secret(session, session.client, secret), 4), session.client)
    rounded_up = (got == 1001).double().mean().item()
    assert set(got.unique().tolist()) <= {1000, 1001}
    assert 0.22 < rounded_up < 0.28


def test_comparison_is_exact_on_the_whole_ring(session):
    edge = torch.tensor([0, 1, -1, 2**62, -2**62, 2**63 - 1, -2**63, 2**46, -2**46], dtype=torch.int64)
    secret = torch.cat([edge, torch.randint(-2**63, 2**63 - 1, (5000,), dtype=torch.int64)])
    bits = reveal_to(is_negative(share_secret(session, session.client, secret)), session.client)
    assert torch.equal(bits, (secret < 0).long())


@pytest.mark.parametrize("shape", [(1,), (7,), (64, 128), (2, 3, 4)])
def test_relu_and_comparisons(session, shape):
    x = values(shape, 50.0, seed=8)
    ex = encrypt(x, session)
    torch.testing.assert_close(ex.relu().decrypt().double(), x.clamp(min=0), atol=ulp(session), rtol=0)
    encoded = session.encoder.encode(x)
    assert torch.equal(ex.gt(0).decrypt(), (encoded > 0).float())
    assert torch.equal(ex.lt(0).decrypt(), (encoded < 0).float())
    assert torch.equal(ex.ge(0).decrypt(), (encoded >= 0).float())
    y = values(shape, 50.0, seed=9)
    assert torch.equal(ex.lt(encrypt(y, session)).decrypt(), (encoded < session.encoder.encode(y)).float())


@pytest.mark.parametrize("shape,dim", [((64, 10), 1), ((5, 7), 1), ((5, 7), 0), ((3, 1), 1), ((4, 9, 3), 1)])
def test_argmax(session, shape, dim):
    x = values(shape, 10.0, seed=10)
    got = encrypt(x, session).argmax(dim=dim).decrypt()
    assert torch.equal(got.long(), x.argmax(dim=dim))


def test_argmax_returns_the_first_index_on_ties(session):
    x = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0], [2.0, 2.0, 2.0, 2.0, 2.0], [0, 0, 0, 0, 5]])
    assert encrypt(x, session).argmax(dim=1).decrypt().long().tolist() == [1, 0, 4]


def test_equality(session):
    x = torch.tensor([0.0, 1.0, 2.0, 3.0, -4.0, 9.0, 5.5])
    y = torch.tensor([0.0, 2.0, 2.0, 3.0, -4.0, 8.0, 5.5])
    got = encrypt(x, session).eq(encrypt(y, session)).decrypt()
    assert got.tolist() == (x == y).float().tolist()
    assert encrypt(x, session).eq(encrypt(y, session)).sum().decrypt().item() == 5


@pytest.mark.parametrize("index", [0, -1, slice(1, 3), (slice(None), 2)])
def test_views_and_indexing(session, index):
    x = values((4, 5), seed=11)
    ex = encrypt(x, session)
    tolerance = ulp(session)
    torch.testing.assert_close(ex[index].decrypt().double(), x[index], atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.t().decrypt().double(), x.t(), atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.view(20).decrypt().double(), x.view(20), atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.reshape(2, 10).decrypt().double(), x.reshape(2, 10), atol=tolerance, rtol=0)
    torch.testing.assert_close(ex.transpose(0, 1).decrypt().double(), x.transpose(0, 1), atol=tolerance, rtol=0)


def test_pysyft_precision_three_decimal_digits():
    session = new_session(encoder=sm.FixedPointEncoder(base=10, precision_fractional=3))
    x = torch.tensor([1.2345, -0.5, 3.0], dtype=torch.float64)
    ex = encrypt(x, session)
    torch.testing.assert_close(ex.decrypt().double(), torch.tensor([1.234, -0.5, 3.0], dtype=torch.float64),
                               atol=1e-3, rtol=0)
    torch.testing.assert_close((ex * ex).decrypt().double(), x * x, atol=1e-2, rtol=0)


def test_an_opened_tensor_is_reused_not_opened_again(session):
    """Products that reuse a mask (again, transposed, viewed, squared) are as exact as fresh ones,
    and they open nothing new: only the dealer's share of c travels."""
    x, w = values((4, 6), seed=11), values((6, 3), seed=12)
    ex, ew = encrypt(x, session), encrypt(w, session)
    tolerance = 6 * 10.0 * ulp(session)
    torch.testing.assert_close((ex @ ew).decrypt().double(), x @ w, atol=tolerance, rtol=0)
    before = session.comm.stats.snapshot()
    reused = [
        ((ex @ ew), x @ w),
        ((ew.t() @ ex.t()), w.t() @ x.t()),
        ((ex.view(24) * ex.view(24)), (x * x).reshape(24)),
        ((ex[1:3] @ ew), x[1:3] @ w),
        ((ex.sum(0) @ ew), x.sum(0) @ w),
    ]
    products = [got.child for got, _ in reused]  # nothing revealed yet: count the products' traffic
    traffic = session.comm.stats.since(before)
    assert traffic.rounds == 0
    assert traffic.bytes_sent[session.workers[0].name] == 0
    assert traffic.bytes_sent[session.provider.name] == 8 * sum(p.shape.numel() for p in products)
    for got, want in reused:
        torch.testing.assert_close(got.decrypt().double(), want, atol=6 * tolerance, rtol=0)


def test_a_new_partner_opens_only_itself(session):
    x, y = values((5,), seed=13), values((5,), seed=14)
    ex, ey = encrypt(x, session), encrypt(y, session)
    _ = ex * ex  # ex opened
    before = session.comm.stats.snapshot()
    product = ex * ey
    traffic = session.comm.stats.since(before)
    assert traffic.rounds == 1
    assert traffic.bytes_sent[session.workers[0].name] == 8 * 5  # only ey's e
    torch.testing.assert_close(product.decrypt().double(), x * y, atol=20 * ulp(session), rtol=0)
