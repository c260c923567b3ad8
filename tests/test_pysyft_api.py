"""PySyft 0.2's SMPC API as its users wrote it (issue 11): each test is one behaviour that gave a
wrong number, was refused, or could not run a model on encrypted data before."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn, optim

import secure_mnist as sm
from helpers import encrypt, new_session
from secure_mnist import syft as sy

PYSYFT = sm.FixedPointEncoder(base=10, precision_fractional=3)


@pytest.fixture(scope="module")
def hook() -> sy.TorchHook:
    return sy.TorchHook(torch)


@pytest.fixture(scope="module")
def parties(hook):
    """Fresh VirtualWorkers for this module: (alice, bob, crypto_provider)."""
    return tuple(sy.VirtualWorker(hook, id=name) for name in ("alice-api", "bob-api", "crypto_provider-api"))


def share(values, parties, **kwargs):
    alice, bob, crypto_provider = parties
    return torch.as_tensor(values, dtype=torch.float32).fix_precision(**kwargs).share(
        alice, bob, crypto_provider=crypto_provider)


# -- wrong results, no error (before) --------------------------------------------------------------------
@pytest.mark.parametrize("divisor", [3.0, 128.0, 2500.0, 6.2, 0.3081, 2.5])
def test_division_by_a_public_non_integer_is_exact_to_one_step(parties, divisor):
    values = torch.tensor([1.0, 100.0, 25.42, -7.5, 1234.567])
    step = 1 / PYSYFT.scale
    expected = PYSYFT.decode(PYSYFT.encode(values)).double() / divisor
    shared = (share(values, parties) / divisor).get().float_precision()
    public = (values.fix_precision() / divisor).float_precision()
    float32 = expected.abs() * 2**-23  # decoding returns float32
    assert ((shared.double() - expected).abs() < step + float32).all()  # stochastic rounding: within one step
    assert ((public.double() - expected).abs() <= step / 2 + float32).all()  # public: to the nearest step


def test_the_division_cases_of_the_issue(parties):
    assert (share([3.0], parties) / 3.0).get().float_precision().item() == pytest.approx(1.0, abs=1e-3)
    assert (share([100.0], parties) / 128.0).get().float_precision().item() == pytest.approx(0.78125, abs=1e-3)
    assert (share([25.42], parties) / 6.2).get().float_precision().item() == pytest.approx(4.1, abs=1e-3)
    tiny = (share(torch.full((100,), 50.0), parties) / 2500.0).get().float_precision()
    assert tiny.mean().item() == pytest.approx(0.02, abs=1e-3)


def test_a_divisor_without_an_exact_fraction_is_refused_with_a_nearby_one(parties):
    import math

    with pytest.raises(sm.EncodingError, match=r"cannot divide exactly by 3\.14159.*x / 3\.142"):
        share([1.0], parties) / math.pi
    assert (share([3.142], parties) / 3.142).get().float_precision().item() == pytest.approx(1.0, abs=1e-3)


def test_a_divisor_above_2_17_is_refused(parties):
    with pytest.raises(sm.EncodingError, match="divides by at most 131072"):
        share([1.0], parties) / 200000


def test_argmax_without_dim_is_the_flat_index_as_in_torch(parties):
    values = torch.tensor([[0.5, 3.0, -1.0], [7.0, 2.0, 7.0]])
    x = share(values, parties)
    assert x.argmax().get().float_precision().item() == values.argmax().item() == 3
    assert x.argmax(keepdim=True).shape == values.argmax(keepdim=True).shape
    assert torch.equal(x.argmax(dim=1, keepdim=True).get().float_precision().long(), values.argmax(dim=1, keepdim=True))


def test_a_learning_rate_that_rounds_to_zero_is_refused_naming_the_smallest_safe_value(parties):
    alice, bob, crypto_provider = parties
    model = nn.Linear(2, 1).fix_precision().share(alice, bob, crypto_provider=crypto_provider, requires_grad=True)
    with pytest.raises(sm.EncodingError, match=r"learning rate 0.0004 .* encodes to 0.*smallest safe magnitude is 0.000667"):
        optim.SGD(model.parameters(), lr=0.0004).fix_precision()
    with pytest.raises(sm.EncodingError, match="off by more than half"):
        share([1.0], parties) * 0.0006
    optim.SGD(model.parameters(), lr=0.000667).fix_precision()  # the value named is itself safe


def test_public_products_round_to_nearest():
    a, b = torch.tensor([1.234, -0.003, 2.5]), torch.tensor([0.999, 0.5, 0.001])
    product = (a.fix_precision() * b.fix_precision()).float_precision()
    # 1.234 * 0.999 = 1.232766 -> 1.233; -0.003 * 0.5 = -0.0015 -> -0.001 (halves up); 0.0025 -> 0.003
    assert torch.allclose(product, torch.tensor([1.233, -0.001, 0.003]), atol=1e-6)


# -- refused before ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["fss", "snn"])
def test_share_accepts_pysyft_protocols(parties, protocol):
    alice, bob, crypto_provider = parties
    x = torch.tensor([1.5, -2.0]).fix_precision().share(alice, bob, crypto_provider=crypto_provider, protocol=protocol)
    assert torch.equal((x * x).get().float_precision(), torch.tensor([2.25, 4.0]))
    model = nn.Linear(2, 1).fix_precision().share(alice, bob, crypto_provider=crypto_provider, protocol=protocol)
    assert model(x.view(1, 2)).shape == (1, 1)


def test_share_refuses_unknown_protocols_and_rings(parties):
    alice, bob, crypto_provider = parties
    x = torch.tensor([1.0]).fix_precision()
    with pytest.raises(ValueError, match="unknown protocol 'spdz2k'.*'fss', 'snn'"):
        x.share(alice, bob, crypto_provider=crypto_provider, protocol="spdz2k")
    for dtype in ("long", "int"):
        x.share(alice, bob, crypto_provider=crypto_provider, dtype=dtype)
    with pytest.raises(ValueError, match="unsupported dtype 'custom'.*Z_2\\^64"):
        x.share(alice, bob, crypto_provider=crypto_provider, dtype="custom")
    with pytest.raises(ValueError, match="unknown protocol"):
        nn.Linear(1, 1).fix_precision().share(alice, bob, crypto_provider=crypto_provider, protocol="falcon2")


def test_float_prec_and_fix_prec(parties):
    x = share([1.5], parties)
    assert x.get().float_prec().item() == 1.5
    assert torch.tensor([0.25]).fix_prec().float_prec().item() == 0.25


def test_in_place_forms(parties):
    alice, bob, crypto_provider = parties
    x = torch.tensor([1.5, -2.0])
    assert x.fix_precision_() is x
    assert x.share_(alice, bob, crypto_provider=crypto_provider) is x
    assert torch.equal((x * x).get().float_precision(), torch.tensor([2.25, 4.0]))
    for blocked in (lambda: x.data, lambda: x.numpy(), lambda: x.T, lambda: x.tolist()):
        with pytest.raises(NotImplementedError, match="not supported on encrypted tensors"):
            blocked()  # the object holds no plaintext, and never reads its storage
    y = torch.tensor([4.0]).fix_prec_()
    assert y.float_precision().item() == 4.0
    z = share([1.0, 2.0], parties)
    assert z.add_(share([0.5, 0.5], parties)) is z and z.sub_(1.0) is z
    assert torch.equal(z.get().float_precision(), torch.tensor([0.5, 1.5]))
    w = torch.tensor([3.0]).fix_precision()
    assert w.share_(alice, bob, crypto_provider=crypto_provider) is w and w.is_shared
    model = nn.Linear(2, 1)
    assert model.fix_precision_() is model and model.share_(alice, bob, crypto_provider=crypto_provider) is model


def test_integer_tensors_are_shared_as_they_are(parties):
    alice, bob, crypto_provider = parties
    x = torch.tensor([3, -4, 5]).share(alice, bob, crypto_provider=crypto_provider)
    y = torch.tensor([2, 2, -1]).share(alice, bob, crypto_provider=crypto_provider)
    from secure_mnist.mpc.integers import IntegerTensor

    assert isinstance(x, IntegerTensor)
    assert torch.equal((x + y).get(), torch.tensor([5, -2, 4]))
    assert torch.equal((x * y).get(), torch.tensor([6, -8, -5]))
    assert (x.get().dtype, x.argmax().get().item()) == (torch.int64, 2)
    with pytest.raises(sm.NotSharedError, match="a torch.float32 tensor cannot be secret-shared directly"):
        torch.tensor([1.0]).share(alice, bob, crypto_provider=crypto_provider)


def test_share_without_crypto_provider_until_a_product_needs_one(hook):
    alice, bob = sy.VirtualWorker(hook, id="alice-late"), sy.VirtualWorker(hook, id="bob-late")
    x = torch.tensor([1.0, 2.0]).fix_precision().share(alice, bob)
    y = torch.tensor([0.5, 0.5]).fix_precision().share(alice, bob)
    assert torch.equal((x + y * 2 - 1).get().float_precision(), torch.tensor([1.0, 2.0]))  # linear: no dealer
    for needs_dealer in (lambda: x * y, lambda: x.relu(), lambda: x.argmax()):
        with pytest.raises(sm.SetupError, match="needs a crypto provider.*pass crypto_provider="):
            needs_dealer()
    late = sy.VirtualWorker(hook, id="crypto_provider-late")
    z = torch.tensor([3.0, 3.0]).fix_precision().share(alice, bob, crypto_provider=late)
    assert torch.equal((x * z).get().float_precision(), torch.tensor([3.0, 6.0]))  # x joined the dealer's session


def test_tensors_shared_in_either_worker_order_combine(parties):
    alice, bob, crypto_provider = parties
    x = torch.tensor([1.0]).fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    y = torch.tensor([2.0]).fix_precision().share(bob, alice, crypto_provider=crypto_provider)
    assert (x * y + x).get().float_precision().item() == 3.0


def test_mean_over_several_dims_and_squeeze(parties):
    values = torch.arange(24.0).view(2, 3, 4) / 10
    x = share(values, parties)
    assert torch.allclose(x.mean((0, 2)).get().float_precision(), values.mean((0, 2)), atol=1e-3)
    assert torch.allclose(torch.mean(x, dim=[1, 2], keepdim=True).get().float_precision(),
                          values.mean([1, 2], keepdim=True), atol=1e-3)
    a = sm.AutogradTensor(x[:1], requires_grad=True)
    assert a.squeeze(0).shape == (3, 4) and a.unsqueeze(1).shape == (1, 1, 3, 4) and a.squeeze().shape == (3, 4)


def test_copy_of_a_shared_module(parties):
    alice, bob, crypto_provider = parties
    model = nn.Linear(3, 2).fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    duplicate = model.copy()
    assert duplicate.weight is not model.weight
    assert torch.equal(duplicate.get().weight, model.get().weight)


def test_local_worker_is_the_client(hook):
    assert sy.local_worker is hook.local_worker and sy.local_worker.id == "me"
    with pytest.raises(sm.SetupError, match="local_worker is the client"):
        torch.tensor([1.0]).fix_precision().share(sy.local_worker, sy.VirtualWorker(hook, id="x"))


def test_max_min_argmin_with_torch_semantics(parties):
    values = torch.tensor([[0.5, -3.0, 2.0, 2.0], [1.0, 1.5, -0.25, 9.0], [-1.0, -2.0, -3.0, -1.0]])
    x = share(values, parties)

    def plain(t):
        return t.get().float_precision()

    assert plain(x.max()).item() == values.max().item() and plain(x.min()).item() == values.min().item()
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            got, want = x.max(dim, keepdim), values.max(dim, keepdim)
            assert torch.equal(plain(got.values), want.values) and torch.equal(plain(got.indices).long(), want.indices)
            got, want = torch.min(x, dim, keepdim=keepdim), values.min(dim, keepdim)
            assert torch.equal(plain(got.values), want.values) and torch.equal(plain(got.indices).long(), want.indices)
            assert torch.equal(plain(x.argmin(dim, keepdim)).long(), values.argmin(dim, keepdim))
    assert plain(x.argmin()).item() == values.argmin().item()
    other = torch.zeros(3, 4)
    assert torch.equal(plain(torch.maximum(x, other)), torch.maximum(values, other))
    assert torch.equal(plain(x.min(other)), torch.minimum(values, other))


# -- encrypted data without requires_grad through torch functions and modules --------------------------------
@pytest.fixture(scope="module")
def session() -> sm.Session:
    return new_session(seed=11)


CASES = {
    "F.linear": lambda x, w, b: F.linear(x.view(-1, 8), w, b),
    "F.relu": lambda x, w, b: F.relu(x),
    "torch.add/mul": lambda x, w, b: torch.mul(torch.add(x, x), 0.5),
    "torch.matmul": lambda x, w, b: torch.matmul(x.view(-1, 8), w.t()),
    "torch.stack/cat": lambda x, w, b: torch.cat([torch.stack([x, x]), torch.stack([x, -x])], dim=1),
    "torch.mean": lambda x, w, b: torch.mean(x, (1, 2)),
    "torch.dot": lambda x, w, b: torch.dot(x.view(-1)[:5], x.view(-1)[5:10]),
    "F.conv2d": lambda x, w, b: F.conv2d(x, w.view(3, 2, 2, 2), b, padding=1),
    "F.avg_pool2d": lambda x, w, b: F.avg_pool2d(x, 2),
    "F.max_pool2d": lambda x, w, b: F.max_pool2d(x, 2, stride=1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_functions_on_encrypted_values_without_autograd(session, case):
    torch.manual_seed(3)
    x, w, b = torch.randn(2, 2, 4, 4), torch.randn(3, 8) * 0.5, torch.randn(3)
    expected = CASES[case](x, w, b)
    for encrypted_weights in (False, True):
        wb = (encrypt(w, session), encrypt(b, session)) if encrypted_weights else (w, b)
        got = CASES[case](encrypt(x, session), *wb)
        assert isinstance(got, sm.FixedPrecisionTensor)
        assert torch.allclose(got.decrypt(), expected, atol=1e-3), case


def test_modules_run_on_encrypted_inputs(session):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3),
                          nn.AvgPool2d(2, stride=1), nn.Flatten(), nn.Linear(2 * 1 * 1, 3)).eval()
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(model(encrypt(x, session)).decrypt(), expected, atol=2e-3)  # public model
        sm.encrypt_parameters(model, session, requires_grad=False)
        assert torch.allclose(model(encrypt(x, session)).decrypt(), expected, atol=2e-3)  # encrypted model


def test_encrypted_inference_of_a_plaintext_trained_model_pysyft_style(parties):
    """model.fix_precision().share(...), model(encrypted_data), argmax, eq: the other tutorials' path."""
    alice, bob, crypto_provider = parties
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
    data, labels = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.no_grad():
        plain = model(data).argmax(dim=1)
    model.fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    encrypted_data = data.fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    encrypted_labels = labels.float().fix_precision().share(alice, bob, crypto_provider=crypto_provider)
    with torch.no_grad():
        pred = model(encrypted_data).argmax(dim=1)
        correct = pred.eq(encrypted_labels.view_as(pred)).sum().get().float_precision().item()
    assert torch.equal(pred.get().float_precision().long(), plain)
    assert correct == (plain == labels).sum().item()


def test_gradients_through_convolution_and_pooling_match_torch(session):
    torch.manual_seed(6)
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64) * 0.4
    b = torch.randn(3, dtype=torch.float64)

    def network(x, w, b):
        h = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
        h = torch.cat([F.avg_pool2d(h, 3, stride=1, padding=1), torch.stack([h[:, 0], h[:, 2]], dim=1)], dim=1)
        return h.mean((2, 3)).sum() + h.max(dim=1).values.sum() + h.squeeze(0).unsqueeze(0).sum()

    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    network(*leaves).backward()
    secure = [sm.AutogradTensor(encrypt(t, session), requires_grad=True) for t in (x, w, b)]
    network(*secure).backward()
    for plain, encrypted in zip(leaves, secure):
        scale = plain.grad.abs().max().item()
        assert (encrypted.grad.decrypt().double() - plain.grad).abs().max().item() <= 1e-3 * scale + 5e-4


def test_unsupported_layer_options_are_refused(session):
    x = encrypt(torch.randn(1, 1, 4, 4), session)
    with pytest.raises(NotImplementedError, match="grouped convolutions"):
        F.conv2d(x, torch.randn(2, 1, 3, 3), groups=2)
    with pytest.raises(NotImplementedError, match="ceil_mode"):
        F.max_pool2d(x, 3, ceil_mode=True)
    with pytest.raises(NotImplementedError, match="return_indices"):
        F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(NotImplementedError, match="dropout in training mode"):
        F.dropout(x, 0.5, training=True)
    with pytest.raises(NotImplementedError, match="cosh is not supported on encrypted tensors"):
        torch.cosh(x)


# -- found by a security review of this API (each test failed before its fix) ---------------------------
def test_two_crypto_providers_for_the_same_workers_keep_their_shares_apart(hook):
    alice, bob = sy.VirtualWorker(hook, id="alice-two"), sy.VirtualWorker(hook, id="bob-two")
    first, second = sy.VirtualWorker(hook, id="dealer-one"), sy.VirtualWorker(hook, id="dealer-two")
    x = torch.tensor([1.0, 2.0, 3.0]).fix_precision().share(alice, bob, crypto_provider=first)
    y = torch.tensor([500.0, 600.0, 700.0]).fix_precision().share(alice, bob, crypto_provider=second)
    assert x.session is not y.session
    assert torch.equal(x.get().float_precision(), torch.tensor([1.0, 2.0, 3.0]))
    del y  # freeing y's shares must not free x's
    assert torch.equal(x.get().float_precision(), torch.tensor([1.0, 2.0, 3.0]))


def test_in_place_sharing_of_a_slice_leaves_the_dataset_alone(parties):
    alice, bob, crypto_provider = parties
    images = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    batch = images[:2]
    batch.fix_precision_().share_(alice, bob, crypto_provider=crypto_provider)
    assert images.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert batch.get().float_precision().tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_the_truth_value_of_an_encrypted_tensor_is_refused(parties):
    x, y = share([1.0, 2.0], parties), share([5.0, 6.0], parties)
    for truth in (lambda: bool(x == y), lambda: bool(x > y), lambda: x in [y], lambda: 1 if x < y else 0):
        with pytest.raises(sm.NotSharedError, match="truth value of an encrypted tensor"):
            truth()
    assert bool(torch.tensor([2.0]).fix_precision()) and not bool(torch.tensor([0.0]).fix_precision())


@pytest.mark.parametrize("make, refused", [
    (lambda params: optim.SGD(params, lr=0.1, maximize=True), "maximize"),
    (lambda params: optim.SGD(params, lr=0.1, nesterov=True, momentum=0.9), "momentum"),
    (lambda params: optim.SGD([{"params": params[:1], "lr": 0.1}, {"params": params[1:], "lr": 0.0}]),
     "differ in lr"),
])
def test_optimizer_settings_are_kept_or_refused(parties, make, refused):
    alice, bob, crypto_provider = parties
    model = nn.Linear(2, 1).fix_precision(precision_fractional=16, base=2).share(alice, bob, crypto_provider=crypto_provider)
    with pytest.raises(NotImplementedError, match=refused):
        make(list(model.parameters())).fix_precision()


@pytest.mark.parametrize("shared", [True, False])
def test_a_quotient_out_of_range_is_caught_not_wrapped(parties, shared):
    """x / 0.030817 = x * 1000000 / 30817: x * 1000000 wrapped around the ring and came back in range."""
    x = torch.tensor([281474976.71066284], dtype=torch.float64)  # x / d is 9.1e9, past the 1.07e9 of 16 bits
    kw = dict(precision_fractional=16, base=2)
    value = share(x, parties, **kw) if shared else x.fix_precision(**kw)
    with pytest.raises(sm.FixedPointOverflowError):
        quotient = value / 0.030817
        quotient.get().float_precision() if shared else quotient.float_precision()
    small = torch.tensor([2.0, -3.5])
    value = share(small, parties, **kw) if shared else small.fix_precision(**kw)
    quotient = value / 0.030817
    got = quotient.get().float_precision() if shared else quotient.float_precision()
    assert torch.allclose(got.double(), small.double() / 0.030817, atol=2**-15)


def test_a_divisor_below_2_to_the_minus_17_is_refused(parties):
    with pytest.raises(sm.EncodingError, match="less than 2\\^-17"):
        share([1.0], parties, precision_fractional=16, base=2) / 1e-6
