"""The tutorial's experiment: train its MNIST network on secret-shared data, and the same in plaintext.

Defaults are the tutorial's (PySyft Part 12 bis): batch 64, 640 training and 640 test items,
10 epochs, learning rate 0.02, seed 1, three decimal digits of precision, MSE loss on one-hot
labels, ReLU. Alice owns the first half of the training and test batches, bob the second half:
each shares its own batches, so neither ever sees the other's images.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .autograd import AutogradTensor
from .data.mnist import load_mnist, load_mnist_rows, normalized_images
from .encoding import FixedPointEncoder
from .mpc.fixed_point import FixedPrecisionTensor
from .mpc.session import Session
from .mpc.sharing import AdditiveSharingTensor
from .nn import encrypt_parameters
from .optim import SGD
from . import checkpoints

N_CLASSES = 10


@dataclass
class TrainingConfig:
    batch_size: int = 64
    test_batch_size: int = 64
    n_train_items: int = 640
    n_test_items: int = 640
    epochs: int = 10
    lr: float = 0.02
    seed: int | None = 1  # the initial weights' seed; None: the client draws a secret one
    precision_fractional: int = 3
    base: int = 10
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        for name in ("batch_size", "test_batch_size", "n_train_items", "n_test_items", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def initial_seed(self) -> int:
        """The seed of torch's generator before the data and the model are set up.

        The default, the tutorial's seed 1, makes the initial weights the tutorial's: public, so
        every party that knows the settings knows them. With seed None the client draws a seed from
        the operating system's randomness, and the weights it shares are its secret.
        """
        return secrets.randbits(63) if self.seed is None else self.seed

    @property
    def encoder(self) -> FixedPointEncoder:
        return FixedPointEncoder(base=self.base, precision_fractional=self.precision_fractional)


def square(x):
    """The quadratic activation the tutorial discusses: one multiplication, no comparison."""
    return x * x


ACTIVATIONS: dict[str, Callable] = {"relu": F.relu, "square": square}


class Net(nn.Module):
    """The tutorial's network: 784 -> 128 -> 64 -> 10, fully connected."""

    def __init__(self, activation: str = "relu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x):
        x = x.view(-1, 28 * 28)
        x = self.activation(self.fc1(x))
        x = self.activation(self.fc2(x))
        return self.fc3(x)


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    if labels.is_meta:
        return torch.empty(*labels.shape, N_CLASSES, device="meta")
    return F.one_hot(labels, N_CLASSES).to(torch.float32)


def plaintext_batches(config: TrainingConfig, train: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first items of MNIST in order, normalised like the tutorial, in batches.

    Batches come from a DataLoader as in the tutorial (which also means one draw from torch's
    random generator per pass, so the model initialised afterwards gets the tutorial's weights).
    """
    images, labels = load_mnist(train=train)
    n_items = config.n_train_items if train else config.n_test_items
    size = config.batch_size if train else config.test_batch_size
    n_batches = -(-n_items // size)  # the tutorial keeps batch i while i < n_items / batch_size
    dataset = torch.utils.data.TensorDataset(normalized_images(images[: n_batches * size]), labels[: n_batches * size])
    loader = torch.utils.data.DataLoader(dataset, batch_size=size)
    return [(x, y) for i, (x, y) in enumerate(loader) if i < n_items / size]


def owners(session: Session, n_batches: int) -> list:
    """Alice owns the first half of the batches, bob the rest."""
    alice, bob = session.workers
    return [alice if i < (n_batches + 1) // 2 else bob for i in range(n_batches)]


def placeholder_batches(config: TrainingConfig, train: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the right shapes with no data (meta tensors), for processes that own none of it.

    They come from a DataLoader too, so every process draws from torch's generator exactly as the
    data owners do, and the model initialised afterwards is the same everywhere.
    """
    n_items = config.n_train_items if train else config.n_test_items
    size = config.batch_size if train else config.test_batch_size
    n_batches = -(-n_items // size)
    dataset = torch.utils.data.TensorDataset(torch.empty(n_batches * size, 1, 28, 28, device="meta"),
                                             torch.empty(n_batches * size, dtype=torch.int64, device="meta"))
    loader = torch.utils.data.DataLoader(dataset, batch_size=size)
    return [(x, y) for i, (x, y) in enumerate(loader) if i < n_items / size]


def private_batches(config: TrainingConfig, session: Session, train: bool) -> list[tuple[AutogradTensor, AutogradTensor]]:
    """Each batch secret-shared by the worker that owns it: inputs, and one-hot labels for training.

    A process loads only the items its own parties own (alice's process alice's batches, and so
    on); the crypto provider's and the client's load none. Every process still walks the
    placeholders' DataLoader, so torch's generator moves exactly as in the tutorial.
    """
    placeholders = placeholder_batches(config, train)
    batch_owners = owners(session, len(placeholders))
    size = config.batch_size if train else config.test_batch_size
    encoder = config.encoder
    shared = []
    for owner in dict.fromkeys(batch_owners):  # each owner's batches, in order
        indices = [i for i, o in enumerate(batch_owners) if o is owner]
        if session.is_local(owner):
            images, labels = load_mnist_rows(train, indices[0] * size, (indices[-1] + 1) * size)
            batches = list(zip(normalized_images(images).split(size), labels.split(size)))
        else:
            batches = [placeholders[i] for i in indices]
        for images, labels in batches:
            targets = one_hot(labels) if train else labels.to(torch.float32)
            x = FixedPrecisionTensor.encode(images, encoder).share(session, owner=owner)
            y = FixedPrecisionTensor.encode(targets, encoder).share(session, owner=owner)
            shared.append((AutogradTensor(x), AutogradTensor(y)))
    return shared


def build_model(config: TrainingConfig, session: Session) -> Net:
    """The tutorial's network; real weights only where the client (the model owner) runs."""
    if session.is_local(session.client):
        return Net(config.activation)
    with torch.device("meta"):
        return Net(config.activation)


@dataclass
class BatchLog:
    epoch: int
    batch: int
    loss: float | None  # None in the processes of parties that do not see the loss
    seconds: float
    traffic: dict[str, tuple[int, int]] | None = None  # bytes (sent, received) per party, this batch


@dataclass
class RunResult:
    mode: str
    correct: int | None
    total: int
    batch_logs: list[BatchLog] = field(default_factory=list)
    seconds: float = 0.0
    bytes_sent: int = 0
    rounds: int = 0
    initial_seed: int | None = None  # the seed the client used (secret with --seed secret): never sent

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else 100.0 * self.correct / self.total

    def to_dict(self) -> dict:
        out = asdict(self)
        out["accuracy"] = self.accuracy
        return out


Callback = Callable[[BatchLog, int], None]


def _revealed(value: torch.Tensor) -> float | None:
    """A value decrypted for the client: a number where the client runs, None in other processes."""
    return None if value.is_meta else value.item()


def train_encrypted(config: TrainingConfig, session: Session | None = None, on_batch: Callback | None = None,
                    checkpoint_dir: str | None = None, resume_from: str | None = None) -> RunResult:
    """Train and test the tutorial's network with every value secret-shared between alice and bob.

    The same function runs in one process (all parties) or in each party's own process: every
    party executes the same sequence of operations on what it holds.
    """
    session = session or Session(encoder=config.encoder)
    seed = config.initial_seed()  # only the client's matters: the others build no weights
    torch.manual_seed(seed)
    train_data = private_batches(config, session, train=True)
    test_data = private_batches(config, session, train=False)
    model = build_model(config, session)
    encrypt_parameters(model, session, config.encoder)
    optimizer = SGD(model.parameters(), lr=config.lr)
    first_epoch = 1
    if resume_from:
        first_epoch = checkpoints.load(resume_from, session, model, config, _inputs(train_data)) + 1
    result = RunResult("encrypted", None, len(test_data) * config.test_batch_size,
                       initial_seed=seed if session.is_local(session.client) else None)
    before = session.comm.stats.snapshot()
    traffic_before = session.traffic_by_party()
    started = time.perf_counter()
    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        for index, (data, target) in enumerate(train_data):
            start = time.perf_counter()
            optimizer.zero_grad()
            output = model(data)
            loss = ((output - target) ** 2).sum().refresh() / output.shape[0]
            loss.backward()
            optimizer.step()
            loss_value = _revealed(loss.decrypt())
            traffic = session.traffic_by_party()
            log = BatchLog(epoch, index, loss_value, time.perf_counter() - start,
                           _difference(traffic, traffic_before))
            traffic_before = traffic
            result.batch_logs.append(log)
            if on_batch:
                on_batch(log, len(train_data))
        if checkpoint_dir:
            checkpoints.save(checkpoint_dir, session, model, config, epoch, _inputs(train_data))
    model.eval()
    correct = None
    with torch.no_grad():
        for data, target in test_data:
            pred = model(data).argmax(dim=1)
            hits = pred.eq(target.view_as(pred)).sum()
            correct = hits if correct is None else correct + hits
    revealed = _revealed(correct.decrypt())
    result.correct = None if revealed is None else int(round(revealed))
    session.comm.flush()
    result.seconds = time.perf_counter() - started
    traffic_stats = session.comm.stats.since(before)
    result.bytes_sent, result.rounds = traffic_stats.total_bytes(), traffic_stats.rounds
    return result


def _inputs(batches: list[tuple[AutogradTensor, AutogradTensor]]) -> list[AdditiveSharingTensor]:
    """The shared tensors under each batch's inputs (what the checkpoints keep the openings of)."""
    return [data.child.child for data, _ in batches]


def _difference(now, before):
    if now is None or before is None:
        return None
    return {name: (sent - before[name][0], received - before[name][1]) for name, (sent, received) in now.items()}


def train_plaintext(config: TrainingConfig, on_batch: Callback | None = None) -> RunResult:
    """The same network, data, initialisation and loss in ordinary float32 PyTorch."""
    torch.manual_seed(config.initial_seed())
    train_data = plaintext_batches(config, train=True)
    test_data = plaintext_batches(config, train=False)
    model = Net(config.activation)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    result = RunResult("plaintext", 0, len(test_data) * config.test_batch_size)
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        for index, (images, labels) in enumerate(train_data):
            start = time.perf_counter()
            optimizer.zero_grad()
            output = model(images)
            loss = ((output - one_hot(labels)) ** 2).sum() / output.shape[0]
            loss.backward()
            optimizer.step()
            log = BatchLog(epoch, index, loss.item(), time.perf_counter() - start)
            result.batch_logs.append(log)
            if on_batch:
                on_batch(log, len(train_data))
    model.eval()
    with torch.no_grad():
        result.correct = sum(int((model(x).argmax(dim=1) == y).sum()) for x, y in test_data)
    result.seconds = time.perf_counter() - started
    return result
