"""Encrypted inference of a plaintext-trained CNN, written as a PySyft 0.2 user wrote it.

The model owner trains a small CNN (conv, ReLU, max-pool, linear) in plain PyTorch, then
`model.fix_precision().share(alice, bob, crypto_provider=...)`; the data owner shares its
images the same way; `model(data).argmax(dim=1)` runs on shares, and only the predictions are
revealed, to the client. `python -m secure_mnist infer-cnn` measures how often the encrypted
predictions agree with the plaintext ones, and the time per image.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .data.mnist import load_mnist, normalized_images


class SmallCNN(nn.Module):
    """conv 5x5 (1 -> 8 channels), ReLU, 2x2 max-pool, linear (1152 -> 10): ~98% on MNIST."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, channels, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels * 12 * 12, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        return self.fc(x.flatten(1))


def train_plaintext_cnn(n_train_items: int = 60000, epochs: int = 1, batch_size: int = 64, lr: float = 2e-3,
                        seed: int = 0) -> SmallCNN:
    """SmallCNN trained in plain PyTorch (Adam, cross-entropy) on the first MNIST training images."""
    if n_train_items < 1 or epochs < 1 or batch_size < 1:
        raise ValueError("n_train_items, epochs and batch_size must be at least 1")
    torch.manual_seed(seed)
    images, labels = load_mnist(train=True)
    data, labels = normalized_images(images[:n_train_items]), labels[:n_train_items]
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        for start in range(0, len(data), batch_size):
            optimizer.zero_grad()
            F.cross_entropy(model(data[start:start + batch_size]), labels[start:start + batch_size]).backward()
            optimizer.step()
    return model.eval()


@dataclass
class InferenceResult:
    n_images: int
    agree: int                 # encrypted prediction == plaintext prediction
    plaintext_correct: int
    encrypted_correct: int
    seconds: float             # sharing the images, the encrypted forward pass, revealing the predictions
    cpu_seconds: float         # processor time of this process (all parties) in that time: robust to a busy machine
    bytes_sent: int            # between all parties, in that time (the model is shared before)
    precision: str

    @property
    def agreement(self) -> float:
        return self.agree / self.n_images

    @property
    def ms_per_image(self) -> float:
        return 1e3 * self.seconds / self.n_images

    @property
    def cpu_ms_per_image(self) -> float:
        return 1e3 * self.cpu_seconds / self.n_images

    def to_dict(self) -> dict:
        return {**asdict(self), "agreement": self.agreement, "ms_per_image": self.ms_per_image,
                "cpu_ms_per_image": self.cpu_ms_per_image}


def encrypted_inference(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 100,
                        precision_fractional: int = 3, base: int = 10) -> InferenceResult:
    """Predictions of a copy of `model`, encrypted PySyft-style, on `images`, against plaintext."""
    from . import syft as sy

    with torch.no_grad():
        plaintext = model(images).argmax(dim=1)
    hook = sy.TorchHook(torch)
    alice, bob = sy.VirtualWorker(hook, id="alice"), sy.VirtualWorker(hook, id="bob")
    crypto_provider = sy.VirtualWorker(hook, id="crypto_provider")
    encrypted = copy.deepcopy(model).fix_precision(precision_fractional=precision_fractional, base=base)
    encrypted.share(alice, bob, crypto_provider=crypto_provider)
    stats = next(encrypted.parameters()).child.session.comm.stats
    before = stats.snapshot()
    start, cpu_start = time.perf_counter(), time.process_time()
    predictions = []
    with torch.no_grad():
        for first in range(0, len(images), batch_size):
            data = images[first:first + batch_size].fix_precision(precision_fractional=precision_fractional, base=base)
            data = data.share(alice, bob, crypto_provider=crypto_provider)
            predictions.append(encrypted(data).argmax(dim=1).get().float_precision().round().long())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    predicted = torch.cat(predictions)
    return InferenceResult(
        n_images=len(images), agree=int((predicted == plaintext).sum()),
        plaintext_correct=int((plaintext == labels).sum()), encrypted_correct=int((predicted == labels).sum()),
        seconds=seconds, cpu_seconds=cpu_seconds, bytes_sent=stats.since(before).total_bytes(),
        precision=next(encrypted.parameters()).child.encoder.describe(),
    )


def mnist_test_set(n_test_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n MNIST test images, normalised as the tutorial does, and their labels."""
    images, labels = load_mnist(train=False)
    return normalized_images(images[:n_test_items]), labels[:n_test_items]
