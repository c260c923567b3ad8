"""Security properties, tested rather than claimed (honest-but-curious parties)."""

from __future__ import annotations

import pytest
import numpy as np
import torch

import secure_mnist as sm
from helpers import new_session
from secure_mnist.mpc.sharing import share_secret
from secure_mnist.training import Net

stats = pytest.importorskip("scipy.stats")


def _top_bytes(tensor: torch.Tensor) -> torch.Tensor:
    return ((tensor >> 56) & 0xFF).reshape(-1)


def test_one_share_is_independent_of_the_secret():
    """Alice's share of 0 and her share of a large value are both uniform and indistinguishable."""
    session = new_session(seed=11)
    alice = session.workers[0]
    secrets = {"zero": torch.zeros(20000, dtype=torch.int64),
               "large": torch.full((20000,), 2**45 - 12345, dtype=torch.int64)}
    shares = {}
    for name, secret in secrets.items():
        shares[name] = share_secret(session, session.client, secret).share_of(alice)
        counts = torch.bincount(_top_bytes(shares[name]), minlength=256).numpy()
        assert stats.chisquare(counts).pvalue > 1e-4, f"share of the {name} secret is not uniform"
    # Two-sample test on the shares as numbers: the secret leaves no trace in the distribution.
    a = shares["zero"].double().numpy()
    b = shares["large"].double().numpy()
    assert stats.ks_2samp(a, b).pvalue > 1e-4
    # And a share is not the secret, nor the secret plus a constant.
    assert not torch.equal(shares["large"] - shares["zero"], secrets["large"] - secrets["zero"])


def _training_step_with_recorded_inboxes(session: sm.Session):
    torch.manual_seed(0)
    model = Net()
    images = torch.randn(8, 1, 28, 28)
    targets = torch.nn.functional.one_hot(torch.arange(8) % 10, 10).float()
    plain_weights = [p.detach().clone() for p in model.parameters()]
    inbox = session.comm.record_inboxes()
    sm.encrypt_parameters(model, session)
    data, target = sm.share_batch(images, session), sm.share_batch(targets, session)
    optimizer = sm.SGD(model.parameters(), lr=0.02)
    output = model(data)
    loss = ((output - target) ** 2).sum().refresh() / 8
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model(data).argmax(dim=1).eq(target.argmax(dim=1)).sum()
    encodings = torch.cat([session.encoder.encode(t).reshape(-1) for t in (images, targets, *plain_weights)])
    weight, bias = plain_weights[0], plain_weights[1]
    hidden = torch.relu(images.view(8, -1) @ weight.t() + bias)  # the first layer's activations
    return inbox, encodings, session.encoder.encode(hidden).reshape(-1)


def test_no_party_receives_a_secret_or_its_encoding():
    session = new_session(seed=12)
    inbox, encodings, hidden = _training_step_with_recorded_inboxes(session)
    secrets = torch.cat([encodings, hidden]).unique()
    secrets = secrets[(secrets != 0) & (secrets != 1)]  # 0 and 1 occur as opened random bits
    for worker in session.workers:
        received = torch.cat([t.reshape(-1).to(torch.int64) for t in inbox[worker.name]])
        assert received.numel() > 200_000  # the test looked at a real amount of traffic
        found = torch.isin(received, secrets).sum().item()
        assert found == 0, f"{worker.name} received {found} values equal to encoded secrets"


def test_the_crypto_provider_receives_nothing_at_all():
    session = new_session(seed=13)
    inbox, _, _ = _training_step_with_recorded_inboxes(session)
    assert inbox.get(session.provider.name, []) == []


def test_what_a_worker_receives_looks_uniformly_random():
    """Every word a worker receives (apart from opened random bits) is uniform over Z_2^64."""
    session = new_session(seed=14)
    inbox, _, _ = _training_step_with_recorded_inboxes(session)
    alice = session.workers[0].name
    words = [t.reshape(-1) for t in inbox[alice] if t.dtype == torch.int64 and t.numel() > 64 and t.max() > 1]
    counts = torch.bincount(_top_bytes(torch.cat(words)), minlength=256).numpy()
    assert stats.chisquare(counts).pvalue > 1e-4


def test_the_client_only_receives_what_it_asked_for():
    """The orchestrator gets shares only when it calls get(): here, of the loss and the final count."""
    session = new_session(seed=15)
    inbox, _, _ = _training_step_with_recorded_inboxes(session)
    assert session.client.name not in inbox  # nothing was revealed in that step
    x = sm.share_batch(torch.ones(3), session)
    x.decrypt()
    assert [tuple(t.shape) for t in inbox[session.client.name]] == [(3,), (3,)]


def test_the_inbox_check_would_catch_a_leak():
    """Control: the same check flags a message that does carry an encoded secret."""
    session = new_session(seed=16)
    inbox = session.comm.record_inboxes()
    secret = session.encoder.encode(torch.randn(100))
    bob, alice = session.workers[1], session.workers[0]
    session.comm.send(bob.name, alice.name, secret)  # what a broken protocol might do
    session.comm.recv(alice.name, bob.name, secret.shape)
    assert torch.isin(inbox[alice.name][0], secret[(secret != 0) & (secret != 1)]).sum() > 90


def test_the_prg_is_the_aes_ctr_keystream_read_as_words():
    """Draws of any size, one after another, are consecutive pieces of AES-128-CTR's keystream:
    small ones served from keystream read ahead, across its refills, and large ones straight."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from secure_mnist.mpc.randomness import PRG

    seed = bytes(range(16))
    prg = PRG(seed)
    sizes = [(3,), (0,), (5, 7), (1,), (300_000,), (2,), (8_000,), (8_191,), (5_000,), (4_000,), (16_384,), (1,), (7, 3)]
    draws = [prg.ring(shape) for shape in sizes]
    keystream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(16 * prg.position))
    words = torch.frombuffer(bytearray(keystream), dtype=torch.int64)
    position = 0
    for shape, draw in zip(sizes, draws):
        count = draw.numel()
        assert draw.shape == torch.Size(shape) and draw.dtype == torch.int64
        assert torch.equal(draw.reshape(-1), words[position:position + count])
        position += -(-count // 2) * 2  # each draw takes whole 16-byte blocks
    assert PRG(seed, position=prg.position).ring((4,)).tolist() == prg.ring((4,)).tolist()
    small = prg.ring((5,))
    assert not np.shares_memory(small.numpy(), prg._ahead)  # a kept draw does not pin the read-ahead
