"""`python -m secure_mnist bench`: one training step, plaintext against encrypted, side by side.

Both run in the same process, interleaved, on the same network, batch and initial weights, so
machine noise hits both alike; we report medians and their ratio, where the encrypted time goes,
and what it sends.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from . import profiling
from .engine import current_engine
from .losses import LOSSES
from .mpc.session import Session
from .mpc.softmax import LOSS_CATEGORY
from .nn import encrypt_parameters, share_batch
from .optim import SGD
from .training import (Net, TrainingConfig, build_model, one_hot, placeholder_batches, plaintext_batches,
                       step_inputs, train_step)


@dataclass
class StepBenchmark:
    activation: str
    median_ms: float
    breakdown_ms: dict[str, float]
    dealer_ms: float  # of the step, the crypto provider's dealing (an offline phase in SPDZ terms)
    bytes_per_step: int
    rounds_per_step: int
    loss_ms: float = 0.0  # of the step, the loss's forward pass (softmax and cross-entropy), all categories


@dataclass
class BenchResult:
    batch_size: int
    repeats: int
    loss: str
    plaintext_ms: dict[str, float]  # per activation: each encrypted step is compared with its own
    encrypted: dict[str, StepBenchmark] = field(default_factory=dict)
    encoding: dict[str, float] = field(default_factory=dict)  # base, fractional digits, momentum
    engine: str = field(default_factory=current_engine)  # which kernels ran the ring's products

    @classmethod
    def settings_of(cls, config: TrainingConfig) -> dict[str, float]:
        return {"base": config.base, "precision_fractional": config.precision_fractional, "momentum": config.momentum}

    def ratio(self, activation: str) -> float:
        return self.encrypted[activation].median_ms / self.plaintext_ms[activation]


def _plaintext_step(config: TrainingConfig, images: torch.Tensor, targets: torch.Tensor):
    torch.manual_seed(config.initial_seed())
    model = Net(config.activation)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_function = LOSSES[config.loss]

    def step() -> None:
        optimizer.zero_grad()
        output = model(images)
        loss = loss_function(output, targets)
        loss.backward()
        optimizer.step()
        loss.item()  # the loss is printed each batch, as in the tutorial

    return step


def _encrypted_step(config: TrainingConfig, images: torch.Tensor, targets: torch.Tensor,
                    session: Session | None = None):
    """One step of the tutorial's loop on shared data; the loss is revealed to the client, as the
    tutorial prints it, which also makes the client wait for the workers when they run elsewhere."""
    session = session or Session(encoder=config.encoder)
    if session.is_local(session.client):  # only the client draws weights; the others build none
        torch.manual_seed(config.initial_seed())
    model = build_model(config, session)
    encrypt_parameters(model, session)
    data, target = share_batch(images, session), share_batch(targets, session)
    optimizer = SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    loss_function = LOSSES[config.loss]

    def step() -> None:
        loss = session.dealing.run_step(lambda: train_step(model, optimizer, loss_function, data, target),
                                        lambda: step_inputs(data, target, optimizer), kind="bench")
        if loss is not None:
            loss.decrypt()

    return step, session


def run_benchmark(config: TrainingConfig | None = None, repeats: int = 20, plaintext_inner: int = 20,
                  activations: tuple[str, ...] = ("relu", "square")) -> BenchResult:
    """Median step times; plaintext steps are timed in groups of `plaintext_inner` (they are tiny).

    The breakdown is the mean over the same steps (in ms per step; `other` is what no protocol
    category claimed); the dealer's part is its share of the mean step, applied to the median.
    """
    config = config or TrainingConfig()
    images, labels = plaintext_batches(config, train=True)[0]
    targets = one_hot(labels)
    configs = {a: TrainingConfig(**{**config.__dict__, "activation": a}) for a in activations}
    plain = {a: _plaintext_step(c, images, targets) for a, c in configs.items()}
    secure = {a: _encrypted_step(c, images, targets) for a, c in configs.items()}
    for _ in range(3):  # warm-up: allocator, lazy initialisation
        for activation in activations:
            plain[activation]()
            secure[activation][0]()
    plain_times: dict[str, list[float]] = {a: [] for a in activations}
    secure_times: dict[str, list[float]] = {a: [] for a in activations}
    parts: dict[str, dict[str, float]] = {a: {} for a in activations}
    dealer: dict[str, float] = {a: 0.0 for a in activations}
    loss_seconds: dict[str, float] = {a: 0.0 for a in activations}
    before = {a: session.comm.stats.snapshot() for a, (_, session) in secure.items()}
    for _ in range(repeats):
        for activation in activations:
            start = time.perf_counter()
            for _ in range(plaintext_inner):
                plain[activation]()
            plain_times[activation].append((time.perf_counter() - start) / plaintext_inner)
            # The profiler runs on the timed steps themselves (it costs a clock read per protocol
            # call), so the breakdown and the medians come from the same, interleaved steps.
            with profiling.breakdown() as step_parts:
                start = time.perf_counter()
                secure[activation][0]()
                secure_times[activation].append(time.perf_counter() - start)
            for name, seconds in step_parts.seconds.items():
                parts[activation][name] = parts[activation].get(name, 0.0) + seconds
            dealer[activation] += step_parts.within["crypto provider (dealing)"]
            loss_seconds[activation] += step_parts.within[LOSS_CATEGORY]
    result = BenchResult(images.shape[0], repeats, config.loss,
                         {a: statistics.median(t) * 1e3 for a, t in plain_times.items()},
                         encoding=BenchResult.settings_of(config))
    for activation, (_, session) in secure.items():
        traffic = session.comm.stats.since(before[activation])
        mean_ms = 1e3 * sum(secure_times[activation]) / repeats
        breakdown = {name: 1e3 * seconds / repeats for name, seconds in sorted(parts[activation].items())}
        breakdown["other (autograd, optimizer, refresh, Python)"] = mean_ms - sum(breakdown.values())
        median_ms = statistics.median(secure_times[activation]) * 1e3
        # the dealer's share of the mean step, applied to the median
        dealer_ms = median_ms * (1e3 * dealer[activation] / repeats) / mean_ms
        result.encrypted[activation] = StepBenchmark(activation, median_ms, breakdown, dealer_ms,
                                                     traffic.total_bytes() // repeats, traffic.rounds // repeats,
                                                     1e3 * loss_seconds[activation] / repeats)
    return result


def format_report(result: BenchResult) -> str:
    lines = [
        f"One training step of the tutorial's network (784-128-64-10), batch {result.batch_size}, "
        f"loss {result.loss}, {result.repeats} interleaved repeats, {torch.get_num_threads()} torch threads, "
        f"{result.engine} engine",
        f"  encoding: base {result.encoding['base']}, {result.encoding['precision_fractional']} fractional digits; "
        f"SGD momentum {result.encoding['momentum']}",
    ]
    for activation, bench in result.encrypted.items():
        lines.append(f"  {activation}: plaintext PyTorch step median {result.plaintext_ms[activation]:.3f} ms, "
                     f"encrypted step median {bench.median_ms:.2f} ms, ratio {result.ratio(activation):.1f}x")
        lines.append(f"    sent per step: {bench.bytes_per_step / 1e6:.2f} MB in {bench.rounds_per_step} rounds "
                     "between the workers (dealer messages not counted as rounds)")
        for name, ms in bench.breakdown_ms.items():
            lines.append(f"    {name:<48} {ms:8.2f} ms")
        if bench.loss_ms:
            lines.append(f"    of all these, softmax and cross-entropy (forward): {bench.loss_ms:8.2f} ms (mean)")
        online = bench.median_ms - bench.dealer_ms
        lines.append(f"    of all these, the crypto provider's dealing:    {bench.dealer_ms:8.2f} ms "
                     f"(without it, the online phase: {online:.2f} ms, "
                     f"{online / result.plaintext_ms[activation]:.1f}x plaintext)")
    return "\n".join(lines)


def to_json(result: BenchResult) -> dict:
    return {
        "batch_size": result.batch_size,
        "repeats": result.repeats,
        "loss": result.loss,
        "encoding": result.encoding,
        "engine": result.engine,
        "torch_threads": torch.get_num_threads(),
        "plaintext_ms": result.plaintext_ms,
        "encrypted": {
            a: {"median_ms": b.median_ms, "ratio": result.ratio(a), "breakdown_ms": b.breakdown_ms,
                "dealer_ms": b.dealer_ms, "online_ratio": (b.median_ms - b.dealer_ms) / result.plaintext_ms[a],
                "bytes_per_step": b.bytes_per_step, "rounds_per_step": b.rounds_per_step, "loss_ms": b.loss_ms}
            for a, b in result.encrypted.items()
        },
    }


# -- parties in separate processes -------------------------------------------------------------------
@dataclass
class PartyTiming:
    seconds: float
    waiting: float
    serializing: float
    bytes_sent: int  # the protocol's payloads, as in one process
    bytes_received: int
    cpu: float  # processor time this process used (all threads): what it cost, waiting excluded
    channel: float = 0.0  # sealing and opening messages (AES-GCM), by the clock
    overhead_bytes: int = 0  # what the channel added to the payloads sent: one tag per message
    setup_bytes: int = 0  # hello and handshake, sent once per run

    @property
    def computing(self) -> float:
        return self.seconds - self.waiting - self.serializing - self.channel


WARM_UP_STEPS = 2


def process_benchmark_job(session: Session, config: TrainingConfig, repeats: int) -> dict | None:
    """Every party runs this (SPMD). The client times each step up to the moment it gets the loss,
    which it does after every step as the tutorial does; the others report their time split."""
    images, labels = (plaintext_batches(config, train=True)[0] if session.is_local(session.client)
                      else placeholder_batches(config, train=True)[0])
    step, _ = _encrypted_step(config, images, one_hot(labels), session)
    comm = session.comm
    for _ in range(WARM_UP_STEPS):
        step()
    comm.flush()
    before = comm.stats.snapshot()
    waiting0, serializing0, channel0, overhead0 = (comm.seconds_waiting, comm.seconds_serializing,
                                                   comm.channel_seconds, comm.overhead_bytes_sent)
    times = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    comm.flush()
    total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    me = next(p for p in session.parties() if session.is_local(p))
    traffic = comm.stats.since(before)
    own = torch.tensor([total, comm.seconds_waiting - waiting0, comm.seconds_serializing - serializing0,
                        traffic.bytes_sent[me.name], traffic.bytes_received[me.name], cpu,
                        comm.channel_seconds - channel0, comm.overhead_bytes_sent - overhead0, comm.setup_bytes_sent],
                       dtype=torch.float64)
    if me is not session.client:
        comm.send_untracked(me.name, session.client.name, own)
        return None
    timings = {me.name: PartyTiming(*own.tolist())}
    for party in session.parties():
        if party is not me:
            timings[party.name] = PartyTiming(*comm.recv_untracked(me.name, party.name, own.shape, torch.float64).tolist())
    return {"step_ms": statistics.median(times) * 1e3, "rounds_per_step": traffic.rounds // repeats, "parties": timings,
            "cipher": comm.cipher}


def cpu_ms_per_step(measured: dict, repeats: int) -> float:
    """Processor time all parties used per step, together."""
    return 1e3 * sum(t.cpu for t in measured["parties"].values()) / repeats


def channel_cost(measured: dict, repeats: int) -> dict:
    """What the encrypted channel costs per step, all parties together: time in AES-GCM, the tags'
    bytes, and the one-time hello and handshake spread over every step this bench ran."""
    parties = measured["parties"].values()
    steps = WARM_UP_STEPS + repeats
    setup = sum(t.setup_bytes for t in parties)
    payload = sum(t.bytes_sent for t in parties) / repeats
    overhead = sum(t.overhead_bytes for t in parties) / repeats
    return {"cipher": measured.get("cipher", "unknown"),
            "aead_ms_per_step": 1e3 * sum(t.channel for t in parties) / repeats,
            "aead_ms_per_step_by_party": {name: 1e3 * t.channel / repeats for name, t in measured["parties"].items()},
            "overhead_bytes_per_step": overhead, "payload_bytes_per_step": payload,
            "setup_bytes": int(setup), "setup_bytes_per_step": setup / steps, "steps": steps}


def format_process_report(plaintext_ms: float, measured: dict, repeats: int, config: TrainingConfig,
                          cores: int | None = None) -> str:
    """The text report. `cores`: how many the parties shared, when they all ran on this machine;
    then the step cannot be shorter than their CPU time spread evenly over those cores."""
    ratio = measured["step_ms"] / plaintext_ms
    lines = [
        f"One training step ({config.activation}), batch {config.batch_size}, parties in separate processes "
        f"(TCP links, {repeats} steps, {current_engine()} engine)",
        f"  plaintext PyTorch step: median {plaintext_ms:.3f} ms",
        f"  encrypted step: median {measured['step_ms']:.2f} ms, ratio {ratio:.1f}x plaintext",
        "  per party, per step: computing / serializing / channel / waiting (wall clock), CPU time, "
        "bytes sent / received",
    ]
    for name, t in measured["parties"].items():
        per = 1e3 / repeats
        lines.append(f"    {name:<16} {t.computing * per:7.2f} / {t.serializing * per:5.2f} / {t.channel * per:5.2f} / "
                     f"{t.waiting * per:7.2f} ms, CPU {t.cpu * per:6.2f} ms"
                     f"   {t.bytes_sent / repeats / 1e6:6.2f} / {t.bytes_received / repeats / 1e6:6.2f} MB")
    cpu_ms = cpu_ms_per_step(measured, repeats)
    lines.append(f"  all parties together: {cpu_ms:.2f} ms of CPU per step")
    if cores:
        floor = cpu_ms / cores
        lines.append(f"    shared by {cores} cores, no step can be shorter than {floor:.2f} ms "
                     f"({floor / plaintext_ms:.1f}x plaintext), however well the parties take turns")
    cost = channel_cost(measured, repeats)
    if cost["cipher"] == "none":
        lines.append("  channel: none (--insecure-channel): messages travel unencrypted and unauthenticated")
    else:
        share = cost["overhead_bytes_per_step"] / cost["payload_bytes_per_step"] if cost["payload_bytes_per_step"] else 0.0
        lines.append(f"  channel ({cost['cipher']}), per step, all parties: {cost['aead_ms_per_step']:.2f} ms sealing "
                     f"and opening; {cost['overhead_bytes_per_step']:.0f} bytes of tags ({100 * share:.2f}% of the "
                     f"payload); handshake {cost['setup_bytes']} bytes once per run, "
                     f"{cost['setup_bytes_per_step']:.0f} per step over the {cost['steps']} steps of this bench")
    return "\n".join(lines)


def plaintext_median_ms(config: TrainingConfig, repeats: int = 20, inner: int = 20) -> float:
    images, labels = plaintext_batches(config, train=True)[0]
    plain = _plaintext_step(config, images, one_hot(labels))
    for _ in range(3):
        plain()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            plain()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples) * 1e3
