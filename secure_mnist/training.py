"""The tutorial's experiment: train its MNIST network on secret-shared data, and the same in plaintext.

Defaults are the tutorial's (PySyft Part 12 bis): batch 64, 640 training and 640 test items,
10 epochs, learning rate 0.02, seed 1, three decimal digits of precision, MSE loss on one-hot
labels, ReLU. Alice owns the first half of the training and test batches, bob the second half:
each shares its own batches, so neither ever sees the other's images.

PRESETS hold other recommended settings: `full-mnist` trains on all 60,000 images with softmax
cross-entropy and momentum, forgetting each batch's opening after its step so that memory does
not grow with the dataset beyond the shares themselves.
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
from .data.mnist import ITEMS as MNIST_ITEMS, load_mnist, load_mnist_rows, normalized_images
from .encoding import FixedPointEncoder
from .losses import LOSSES
from .memory import peak_rss_by_process
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
    loss: str = "mse"
    momentum: float = 0.0
    lr_drops: tuple[int, ...] = ()  # epochs from which the learning rate is divided by 10 (once per entry)
    # Keep each training batch's opening for later epochs (fewer bytes sent), or forget it after
    # its step and open the batch again under a fresh mask (memory that does not grow with the data).
    keep_openings: bool = True
    # Test after every epoch (the client then learns one test count per epoch), not only at the end.
    test_every_epoch: bool = False

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        self.lr_drops = tuple(sorted(self.lr_drops))
        if any(epoch < 2 for epoch in self.lr_drops):
            raise ValueError(f"the learning rate can drop from epoch 2 on, got {list(self.lr_drops)}")
        for name in ("batch_size", "test_batch_size", "n_train_items", "n_test_items", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def lr_at(self, epoch: int) -> float:
        """The (public) learning rate of an epoch: lr, divided by 10 at each drop reached."""
        return self.lr * 0.1 ** sum(1 for drop in self.lr_drops if epoch >= drop)

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


# Recommended settings by name; every flag still overrides them (see __main__).
PRESETS: dict[str, dict] = {
    "full-mnist": {
        "n_train_items": 60_000, "n_test_items": 10_000, "batch_size": 64, "test_batch_size": 1000,
        "epochs": 5, "lr": 0.02, "momentum": 0.9, "lr_drops": (4,), "loss": "cross-entropy", "activation": "relu",
        "base": 2, "precision_fractional": 16, "keep_openings": False, "test_every_epoch": True,
    },
}


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
    data owners do (only the client's draws matter: it alone builds real weights).
    """
    n_items = config.n_train_items if train else config.n_test_items
    size = config.batch_size if train else config.test_batch_size
    n_batches = -(-n_items // size)
    n_rows = min(n_batches * size, MNIST_ITEMS[train])  # the last batch is short when MNIST runs out
    dataset = torch.utils.data.TensorDataset(torch.empty(n_rows, 1, 28, 28, device="meta"),
                                             torch.empty(n_rows, dtype=torch.int64, device="meta"))
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
            stop = min((indices[-1] + 1) * size, MNIST_ITEMS[train])  # a short last batch, as the placeholders'
            images, labels = load_mnist_rows(train, indices[0] * size, stop)
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
class EpochLog:
    epoch: int
    seconds: float  # training only
    loss: float | None  # mean of the batches' revealed losses (None where the loss is not seen)
    test_seconds: float = 0.0
    correct: int | None = None  # test count after this epoch, when tested (and seen)
    total: int | None = None


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
    epochs: list[EpochLog] = field(default_factory=list)
    peak_rss: dict[str, int] | None = None  # bytes, per process (parties joined by '+')

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None else 100.0 * self.correct / self.total

    def to_dict(self) -> dict:
        out = asdict(self)
        out["accuracy"] = self.accuracy
        return out


Callback = Callable[[BatchLog, int], None]
EpochCallback = Callable[[EpochLog], None]


def _revealed(value: torch.Tensor) -> float | None:
    """A value decrypted for the client: a number where the client runs, None in other processes."""
    return None if value.is_meta else value.item()


def train_encrypted(config: TrainingConfig, session: Session | None = None, on_batch: Callback | None = None,
                    checkpoint_dir: str | None = None, resume_from: str | None = None,
                    on_epoch: EpochCallback | None = None) -> RunResult:
    """Train and test the tutorial's network with every value secret-shared between alice and bob.

    The same function runs in one process (all parties) or in each party's own process: every
    party executes the same sequence of operations on what it holds.
    """
    session = session or Session(encoder=config.encoder)
    seed = config.initial_seed()
    if session.is_local(session.client):  # only the client draws weights; the others build none
        torch.manual_seed(seed)
    train_data = private_batches(config, session, train=True)
    test_data = private_batches(config, session, train=False)
    model = build_model(config, session)
    encrypt_parameters(model, session, config.encoder)
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_function = LOSSES[config.loss]
    first_epoch = 1
    if resume_from:
        first_epoch = checkpoints.load(resume_from, session, model, config, _inputs(train_data), optimizer) + 1
    result = RunResult("encrypted", None, _items_in(test_data),
                       initial_seed=seed if session.is_local(session.client) else None)
    before = session.comm.stats.snapshot()
    traffic_before = session.traffic_by_party()
    started = time.perf_counter()
    correct, tested = None, False  # the count is None outside the client's process: track testing apart
    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        optimizer.lr = config.lr_at(epoch)
        epoch_start = time.perf_counter()
        for index, (data, target) in enumerate(train_data):
            start = time.perf_counter()
            # (a crypto provider in its own process deals the step from its plan: no loss there)
            loss = session.dealing.run_step(lambda: train_step(model, optimizer, loss_function, data, target),
                                            lambda: step_inputs(data, target, optimizer), kind="train")
            loss_value = None if loss is None else _revealed(loss.decrypt())
            if not config.keep_openings:
                _forget_openings(data, target)
            traffic = session.traffic_by_party()
            log = BatchLog(epoch, index, loss_value, time.perf_counter() - start,
                           _difference(traffic, traffic_before))
            traffic_before = traffic
            result.batch_logs.append(log)
            if on_batch:
                on_batch(log, len(train_data))
        epoch_log = EpochLog(epoch, time.perf_counter() - epoch_start,
                             _mean_loss(result.batch_logs[-len(train_data):]))
        if checkpoint_dir:
            checkpoints.save(checkpoint_dir, session, model, config, epoch, _inputs(train_data), optimizer)
        if config.test_every_epoch or epoch == config.epochs:
            test_start = time.perf_counter()
            correct, tested = _test_encrypted(model, test_data, config.keep_openings), True
            epoch_log.test_seconds = time.perf_counter() - test_start
            epoch_log.correct, epoch_log.total = correct, result.total
        result.epochs.append(epoch_log)
        if on_epoch:
            on_epoch(epoch_log)
    if not tested:  # resumed after the last epoch: test what was restored
        correct = _test_encrypted(model, test_data, config.keep_openings)
    result.correct = correct
    session.comm.flush()
    result.seconds = time.perf_counter() - started
    traffic_stats = session.comm.stats.since(before)
    result.bytes_sent, result.rounds = traffic_stats.total_bytes(), traffic_stats.rounds
    result.peak_rss = peak_rss_by_process(session)
    return result


def _test_encrypted(model: nn.Module, test_data, keep_openings: bool) -> int | None:
    """The number of correct test predictions, revealed to the client only (None elsewhere)."""
    model.eval()
    correct = None
    with torch.no_grad():
        for data, target in test_data:
            pred = model(data).argmax(dim=1)
            hits = pred.eq(target.view_as(pred)).sum()
            correct = hits if correct is None else correct + hits
            if not keep_openings:
                _forget_openings(data, target)
    revealed = _revealed(correct.decrypt())
    return None if revealed is None else int(round(revealed))


def _items_in(batches) -> int:
    """How many items the batches hold (the last one may be short)."""
    return sum(len(data) for data, _ in batches)


def _forget_openings(*tensors: AutogradTensor) -> None:
    """Drop the openings of a batch's shared tensors: they are opened again under fresh masks next time."""
    for tensor in tensors:
        tensor.child.child.forget_opening()


def _mean_loss(logs: list[BatchLog]) -> float | None:
    losses = [log.loss for log in logs if log.loss is not None]
    return sum(losses) / len(losses) if losses else None


def train_step(model: nn.Module, optimizer: SGD, loss_function: Callable, data: AutogradTensor,
               target: AutogradTensor) -> AutogradTensor:
    """One step of the tutorial's loop on shared values: forward, loss, backward, update; the
    loss, still shared."""
    optimizer.zero_grad()
    output = model(data)
    loss = loss_function(output, target)
    loss.backward()
    optimizer.step()
    return loss


def step_inputs(data: AutogradTensor, target: AutogradTensor, optimizer: SGD) -> list[AdditiveSharingTensor]:
    """The shared tensors a training step finds and leaves behind (see `Dealing.run_step`)."""
    return [data.child.child, target.child.child, *(param.child.child for param in optimizer.params)]


def _inputs(batches: list[tuple[AutogradTensor, AutogradTensor]]) -> list[AdditiveSharingTensor]:
    """The shared tensors under each batch's inputs (what the checkpoints keep the openings of)."""
    return [data.child.child for data, _ in batches]


def _difference(now, before):
    if now is None or before is None:
        return None
    return {name: (sent - before[name][0], received - before[name][1]) for name, (sent, received) in now.items()}


def train_plaintext(config: TrainingConfig, on_batch: Callback | None = None,
                    on_epoch: EpochCallback | None = None) -> RunResult:
    """The same network, data, initialisation, loss and optimizer in ordinary float32 PyTorch."""
    torch.manual_seed(config.initial_seed())
    train_data = plaintext_batches(config, train=True)
    test_data = plaintext_batches(config, train=False)
    model = Net(config.activation)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_function = LOSSES[config.loss]
    result = RunResult("plaintext", 0, _items_in(test_data))
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        epoch_start = time.perf_counter()
        for index, (images, labels) in enumerate(train_data):
            start = time.perf_counter()
            optimizer.zero_grad()
            output = model(images)
            loss = loss_function(output, one_hot(labels))
            loss.backward()
            optimizer.step()
            log = BatchLog(epoch, index, loss.item(), time.perf_counter() - start)
            result.batch_logs.append(log)
            if on_batch:
                on_batch(log, len(train_data))
        epoch_log = EpochLog(epoch, time.perf_counter() - epoch_start, _mean_loss(result.batch_logs[-len(train_data):]))
        if config.test_every_epoch or epoch == config.epochs:
            test_start = time.perf_counter()
            model.eval()
            with torch.no_grad():
                result.correct = sum(int((model(x).argmax(dim=1) == y).sum()) for x, y in test_data)
            epoch_log.test_seconds = time.perf_counter() - test_start
            epoch_log.correct, epoch_log.total = result.correct, result.total
        result.epochs.append(epoch_log)
        if on_epoch:
            on_epoch(epoch_log)
    result.seconds = time.perf_counter() - started
    return result
