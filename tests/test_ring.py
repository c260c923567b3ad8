"""The compiled engine's matrix products in Z_2^64 are torch.matmul's (the reference), bit for bit."""

from __future__ import annotations

import pytest
import torch

from secure_mnist.engine import current_engine, use_engine
from secure_mnist.mpc.ring import MIN_WORK, ring_matmul
from secure_mnist.native import gemm

WORDS = (-2**63, 2**63 - 1)


@pytest.fixture(autouse=True)
def compiled():
    with use_engine("compiled"):
        yield


def words(shape, seed):
    return torch.randint(*WORDS, shape, generator=torch.Generator().manual_seed(seed))


# the tutorial's products, and edges of the 4 x 4 register blocks (rows, columns, empty, thin)
SHAPES = [(64, 784, 128), (784, 64, 128), (128, 64, 784), (64, 64, 10), (10, 64, 64), (67, 129, 45),
          (3, 2000, 7), (4, 1, 8), (5, 3, 9), (1, 4096, 1), (8, 0, 16), (0, 5, 8), (6, 7, 0)]


@pytest.mark.parametrize("n, k, m", SHAPES)
def test_equal_to_int64_matmul_on_random_words(n, k, m):
    x, y = words((n, k), n * k + m), words((k, m), n + k * m)
    assert torch.equal(gemm.ring_gemm(x, y), x @ y)
    assert torch.equal(ring_matmul(x, y), x @ y)
    assert torch.equal(ring_matmul(x, y.t().contiguous().t()), x @ y)  # a transposed view
    assert torch.equal(ring_matmul(x.t().contiguous().t(), y), x @ y)


@pytest.mark.parametrize("n, k, m", [(64, 784, 128), (67, 129, 45), (5, 3, 9), (1, 4096, 1)])
def test_strided_operands_are_read_in_place_and_give_the_same_words(n, k, m):
    """Transposed, stepped and broadcast (stride 0) views go to the kernel as they are."""
    x_t, y_t = words((k, n), n + 1).t(), words((m, k), m + 2).t()  # transposes, as in the backward pass
    x_step, y_step = words((n, 2 * k), 3)[:, ::2], words((2 * k, 3 * m), 4)[::2, ::3]
    x_wide = words((1, k), 5).expand(n, k)  # every row the same memory
    for x, y in ((x_t, y_t), (x_step, y_step), (x_wide, y_t), (x_t, y_step)):
        assert min(n, m) == 1 or not (x.is_contiguous() and y.is_contiguous())
        assert torch.equal(gemm.ring_gemm(x, y), x.contiguous() @ y.contiguous())


@pytest.mark.parametrize("value", [-2**63, 2**63 - 1, -1, 2**32, 2**32 - 1, 2**31])
def test_extreme_words(value):
    x = torch.full((16, 1000), value)
    y = torch.full((1000, 16), -2**63 if value > 0 else 2**63 - 1)
    assert torch.equal(gemm.ring_gemm(x, y), x @ y)
    assert torch.equal(gemm.ring_gemm(x, x.t()), x @ x.t())


def test_the_vector_kernel_runs_where_the_cpu_has_avx2():
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("no AVX2 on this CPU: the scalar loops run (and are tested above)")
    x, y = words((8, 16), 1), words((16, 8), 2)
    out, scratch = torch.empty(8, 8, dtype=torch.int64), torch.empty(gemm.scratch_words(8, 16, 8), dtype=torch.int64)
    assert gemm.library().ring_gemm(x.data_ptr(), y.data_ptr(), out.data_ptr(), 8, 16, 8, *x.stride(), *y.stride(),
                                    scratch.data_ptr()) == 1
    assert torch.equal(out, x @ y)


def test_other_shapes_and_small_products_go_to_torch(monkeypatch):
    def fail(*_):
        raise AssertionError("the kernel was called")

    monkeypatch.setattr(gemm, "ring_gemm", fail)
    x, y = torch.arange(6).view(2, 3), torch.arange(3)
    assert torch.equal(ring_matmul(x, y), x @ y)
    small = words((4, 4), 3)
    assert small.shape[0] ** 3 < MIN_WORK and torch.equal(ring_matmul(small, small), small @ small)
    batched = words((2, 20, 30), 4)
    assert torch.equal(ring_matmul(batched, batched.transpose(1, 2)), batched @ batched.transpose(1, 2))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        ring_matmul(words((40, 300), 5), words((301, 40), 6))


def test_the_reference_engine_never_calls_the_kernel(monkeypatch):
    def fail(*_):
        raise AssertionError("the kernel was called")

    monkeypatch.setattr(gemm, "ring_gemm", fail)
    with use_engine("reference"):
        assert current_engine() == "reference"
        x, y = words((64, 784), 7), words((784, 128), 8)
        assert torch.equal(ring_matmul(x, y), x @ y)


@pytest.mark.parametrize("count", [0, 64, 128, 8192 + 64 * 7])
def test_compiled_bit_planes_are_the_reference_bit_planes(count):
    from secure_mnist.mpc.primitives.binary import bit_planes, planes_of
    from secure_mnist.native.bits import bit_planes as compiled

    x = torch.randint(*WORDS, (count,), generator=torch.Generator().manual_seed(count))
    x[:3] = torch.tensor([-1, -2**63, 2**63 - 1])[: min(3, count)] if count else x[:0]
    assert torch.equal(compiled(x), bit_planes(x))
    assert torch.equal(planes_of(x), bit_planes(x))
    if count:  # and the meaning: bit b of planes[i, w] is bit i of x[64 w + b]
        planes = compiled(x)
        i, w, b = 63, count // 64 - 1, 5
        assert (int(planes[i, w]) >> b) & 1 == (int(x[64 * w + b]) >> i) & 1


DIVISORS = [1, 2, 3, 7, 10, 100, 1000, 10**5, 2**16, 2**17, 65535, 123457, 2**31 - 1, 2**32 + 1, 2**62 - 1, 2**62,
            2**63 - 1]


@pytest.mark.parametrize("divisor", DIVISORS)
def test_compiled_floor_division_is_torchs(divisor):
    from secure_mnist.native.division import floor_divide

    generator = torch.Generator().manual_seed(divisor % 1000)
    edges = torch.tensor([0, 1, -1, 2**63 - 1, -2**63, -2**63 + 1, divisor - 1, -divisor + 1, 2**62, -2**62]
                         + [divisor, -divisor])
    x = torch.cat([torch.randint(*WORDS, (50_000,), generator=generator), edges,
                   torch.randint(-10**6, 10**6, (5_000,), generator=generator)])
    assert torch.equal(floor_divide(x, divisor), torch.div(x, divisor, rounding_mode="floor"))
    assert torch.equal(floor_divide(x, divisor, negate=True), -torch.div(-x, divisor, rounding_mode="floor"))
    strided = x[:55_000].view(5, -1).t()  # not contiguous
    assert torch.equal(floor_divide(strided, divisor), torch.div(strided, divisor, rounding_mode="floor"))


def test_compiled_floor_division_refuses_what_it_cannot_divide_by():
    from secure_mnist.native.division import floor_divide

    for divisor in (0, -3, 2**63):
        with pytest.raises(ValueError, match="divisor in"):
            floor_divide(torch.arange(4), divisor)


def test_truncation_is_the_same_with_both_engines():
    from helpers import new_session
    from secure_mnist.mpc.primitives.truncation import truncate
    from secure_mnist.mpc.sharing import share_secret

    for divisor in (1000, 2**16, 10**5, 3):
        results = {}
        for name in ("reference", "compiled"):
            with use_engine(name):
                session = new_session(seed=7)
                x = share_secret(session, session.client, torch.randint(-2**40, 2**40, (300,),
                                                                        generator=torch.Generator().manual_seed(1)))
                results[name] = {w.name: s for w, s in truncate(x, divisor).local_shares().items()}
        assert all(torch.equal(results["reference"][w], results["compiled"][w]) for w in results["reference"])


def test_compiled_bit_planes_refuse_a_partial_block():
    from secure_mnist.native.bits import bit_planes as compiled

    with pytest.raises(ValueError, match="whole blocks of 64 words, got 65"):
        compiled(torch.arange(65))


def test_the_kernels_refuse_tensors_they_would_misread():
    from secure_mnist.native.bits import bit_planes as compiled_bit_planes
    from secure_mnist.native.division import floor_divide

    small = torch.arange(64, dtype=torch.int32)
    with pytest.raises(TypeError, match="int64 tensors on the CPU, got torch.int32"):
        gemm.ring_gemm(small.view(8, 8), small.view(8, 8))
    with pytest.raises(ValueError, match=r"shapes \(n, k\) and \(k, m\), got \(8, 8\) and \(9, 8\)"):
        gemm.ring_gemm(torch.zeros(8, 8, dtype=torch.int64), torch.zeros(9, 8, dtype=torch.int64))
    with pytest.raises(TypeError, match="got torch.float64"):
        floor_divide(torch.ones(3, dtype=torch.float64), 10)
    with pytest.raises(TypeError, match="got torch.int32"):
        compiled_bit_planes(small)
