"""Command line: `python -m secure_mnist train | bench | party | infer-cnn`."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import replace

from tqdm import tqdm

from .engine import ENGINES, current_engine, set_engine
from .errors import SecureMNISTError

from .losses import LOSSES
from .training import ACTIVATIONS, PRESETS, BatchLog, EpochLog, TrainingConfig, train_encrypted, train_plaintext

PARTY_MODES = ("in-process", "processes")


BENCH_DEFAULT_ACTIVATION = "both (mse), relu (cross-entropy)"


def _training_arguments(parser: argparse.ArgumentParser, activations: tuple[str, ...] = tuple(sorted(ACTIVATIONS)),
                        default_activation: str | None = None) -> None:
    defaults = TrainingConfig()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--test-batch-size", type=int, default=defaults.test_batch_size)
    parser.add_argument("--n-train-items", type=int, default=defaults.n_train_items)
    parser.add_argument("--n-test-items", type=int, default=defaults.n_test_items)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=_seed, default=defaults.seed,
                        help="seeds the model's initial weights (public: every party knows the settings); "
                             "'secret': the client draws them from its own randomness")
    parser.add_argument("--precision-fractional", type=int, default=defaults.precision_fractional)
    parser.add_argument("--base", type=int, default=defaults.base, help="fixed-point base (10: PySyft's, 2: binary)")
    parser.add_argument("--activation", choices=activations, default=default_activation or defaults.activation)
    parser.add_argument("--loss", choices=sorted(LOSSES), default=defaults.loss,
                        help="mse: the tutorial's squared error; cross-entropy: softmax and log loss on shares")
    parser.add_argument("--momentum", type=float, default=defaults.momentum, help="SGD momentum (public)")
    parser.add_argument("--lr-drops", type=int, nargs="*", default=list(defaults.lr_drops), metavar="EPOCH",
                        help="epochs from which the learning rate is divided by 10 (one division per entry)")
    parser.add_argument("--forget-openings", action="store_true",
                        help="open each training batch again every epoch under a fresh mask instead of keeping "
                             "its opening: memory that does not grow with the dataset, more bytes sent")
    parser.add_argument("--test-every-epoch", action="store_true",
                        help="test after every epoch (the client learns one test count per epoch)")
    parser.add_argument("--crypto-seed", type=int, default=None,
                        help="derive every party's randomness from this number: reproducible runs, "
                             "for testing only (the shares become predictable)")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help="the ring's kernels: 'compiled' (C, built with gcc on first use; the default where "
                             "it builds) or 'reference' (plain torch); the results are the same bit for bit")


def _seed(text: str) -> int | str:
    if text == "secret":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is an integer or 'secret', not {text!r}") from None


def _process_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parties", choices=PARTY_MODES, default="in-process",
                        help="run alice, bob and the crypto provider here, or each in its own process")
    parser.add_argument("--master", default=None, help="HOST:PORT of the rendezvous (processes; default: a free local port)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds without an answer after which a party counts as lost (processes)")
    _channel_arguments(parser)


def _channel_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=None,
                        help="the run's join secret, the same for every party (default: $SECURE_MNIST_TOKEN; "
                             "train and bench draw a random one for the parties they start). Prefer the "
                             "environment variable: other users of the machine can read arguments with ps")
    parser.add_argument("--insecure-channel", action="store_true",
                        help="send messages between processes unencrypted and unauthenticated: only to "
                             "measure what the encrypted channel costs, or to see what a capture reveals")


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The training flags, as given, for the spawned parties."""
    names = ["batch_size", "test_batch_size", "n_train_items", "n_test_items", "epochs", "lr", "seed",
             "precision_fractional", "base", "activation", "crypto_seed", "loss", "momentum"]
    resolved = {**vars(args), "activation": _config(args).activation}  # bench's "both" is not a party's
    out = []
    for name in names:
        value = resolved[name]
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    if args.lr_drops:
        out += ["--lr-drops", *map(str, args.lr_drops)]
    if args.forget_openings:
        out.append("--forget-openings")
    if args.test_every_epoch:
        out.append("--test-every-epoch")
    if args.engine:
        out += ["--engine", args.engine]
    for name in ("checkpoint", "resume"):
        if getattr(args, name, None):
            out += [f"--{name}", getattr(args, name)]
    if args.insecure_channel:  # the token is never forwarded here: it goes in the environment
        out.append("--insecure-channel")
    return out


def _config(args: argparse.Namespace) -> TrainingConfig:
    activation = "relu" if args.activation == "both" else args.activation
    return TrainingConfig(
        batch_size=args.batch_size, test_batch_size=args.test_batch_size, n_train_items=args.n_train_items,
        n_test_items=args.n_test_items, epochs=args.epochs, lr=args.lr,
        seed=None if args.seed == "secret" else args.seed,
        precision_fractional=args.precision_fractional, base=args.base, activation=activation,
        loss=args.loss, momentum=args.momentum, lr_drops=tuple(args.lr_drops), keep_openings=not args.forget_openings,
        test_every_epoch=args.test_every_epoch,
    )


def _traffic_text(entry: BatchLog) -> str:
    if not entry.traffic:
        return ""
    return " ".join(f"{name} ↑{sent / 1e6:.1f}/↓{received / 1e6:.1f}MB"
                    for name, (sent, received) in entry.traffic.items() if sent or received)


def _percent(correct: int, total: int) -> str:
    """A percentage with just enough decimals to show one test item (75% of 640, 97.83% of 10,000)."""
    return f"{100.0 * correct / total:.{max(0, len(str(total)) - 3)}f}%"


def _run_training(args: argparse.Namespace, session=None) -> int:
    """The client's side of `train` (every party runs train_encrypted; only the client reports)."""
    config = _config(args)
    total = (config.epochs) * -(-config.n_train_items // config.batch_size)
    bar = tqdm(total=total, desc="encrypted training", unit="batch", file=sys.stderr, disable=args.quiet)
    last_epoch_seconds: list[float] = []
    log_file = _ResultsLog(args.log_json, config, args.parties) if args.log_json else None

    def log(entry: BatchLog, n_batches: int) -> None:
        bar.update(1)
        epoch_time = f", last epoch {last_epoch_seconds[-1]:.0f}s" if last_epoch_seconds else ""
        bar.set_postfix_str(f"epoch {entry.epoch}, loss {entry.loss:.4f}, {entry.seconds:.3f}s/batch{epoch_time}, "
                            f"{_traffic_text(entry)}")
        if not args.quiet and (entry.batch % args.log_interval == 0 or entry.batch == n_batches - 1):
            done = entry.batch * config.batch_size
            bar.write(f"Train Epoch: {entry.epoch} [{done}/{n_batches * config.batch_size} "
                      f"({100.0 * entry.batch / n_batches:.0f}%)]\tLoss: {entry.loss:.6f}\tTime: {entry.seconds:.3f}s")

    def epoch_done(entry: EpochLog) -> None:
        last_epoch_seconds.append(entry.seconds)
        tested = (f", test {entry.correct}/{entry.total} ({_percent(entry.correct, entry.total)}) "
                  f"in {entry.test_seconds:.1f} s" if entry.correct is not None else "")
        if not args.quiet:
            bar.write(f"Epoch {entry.epoch}: mean loss {entry.loss:.4f}, {entry.seconds:.1f} s{tested}")
        if log_file:
            log_file.add_epoch("encrypted", entry)

    if session is None:
        from .mpc.session import Session

        session = Session(encoder=config.encoder, seed=args.crypto_seed)
    try:
        encrypted = train_encrypted(config, session, on_batch=log, checkpoint_dir=args.checkpoint,
                                    resume_from=args.resume, on_epoch=epoch_done)
    finally:
        bar.close()
    # The parties are done: let them go (their farewell) before the client's own plaintext run.
    session.comm.close()
    print(f"\nTest set: Accuracy: {encrypted.correct}/{encrypted.total} ({_percent(encrypted.correct, encrypted.total)})")
    if encrypted.epochs:
        seconds = [e.seconds for e in encrypted.epochs]
        print(f"Training time per epoch: {min(seconds):.1f} to {max(seconds):.1f} s (mean {sum(seconds) / len(seconds):.1f} s)")
    if encrypted.peak_rss:
        print("Peak memory (RSS): " + ", ".join(f"{name} {peak / 2**20:.0f} MiB" for name, peak in encrypted.peak_rss.items()))
    per_batch = [log.traffic for log in encrypted.batch_logs if log.traffic]
    sent = sum(s for traffic in per_batch for s, _ in traffic.values()) if per_batch else encrypted.bytes_sent
    print(f"Encrypted run ({args.parties}): {encrypted.seconds:.1f} s, {sent / 1e9:.2f} GB sent by all parties "
          f"during training, {encrypted.rounds} rounds between the workers")
    report = {"config": config.__dict__, "parties": args.parties, "encrypted": encrypted.to_dict()}
    if log_file:
        log_file.finish("encrypted", encrypted)
    if _wants_plaintext(args):
        # The client trains on every owner's data here: only when asked, or when all parties
        # share this one process anyway.
        plaintext = train_plaintext(replace(config, seed=encrypted.initial_seed),
                                    on_epoch=(lambda e: log_file.add_epoch("plaintext", e)) if log_file else None)
        decimals = max(1, len(str(plaintext.total)) - 3)
        print(f"Plaintext PyTorch, same seed, data and initialisation: {plaintext.correct}/{plaintext.total} "
              f"({_percent(plaintext.correct, plaintext.total)}) in {plaintext.seconds:.2f} s; encrypted is "
              f"{encrypted.accuracy - plaintext.accuracy:+.{decimals}f} points")
        report["plaintext"] = plaintext.to_dict()
        if log_file:
            log_file.finish("plaintext", plaintext)
    elif args.parties == "processes" and not args.no_plaintext:
        print("No plaintext comparison: the client holds no training data. Add --plaintext to train the same "
              "network in plaintext here, which loads every owner's data into the client's process.")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


class _ResultsLog:
    """`--log-json FILE`: the run's settings and per-epoch results, rewritten after every epoch
    (a long run shows how far it got), with the date and the exact command that made it."""

    def __init__(self, path: str, config: TrainingConfig, parties: str) -> None:
        self.path = path
        self.data = {
            "format": 1,
            "command": "python -m secure_mnist " + shlex.join(sys.argv[1:]),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "finished": None, "parties": parties, "cores": os.cpu_count(), "config": dict(config.__dict__),
            "encrypted": {"epochs": []}, "plaintext": {"epochs": []},
        }
        self._write()

    def add_epoch(self, run: str, entry: EpochLog) -> None:
        self.data[run]["epochs"].append(dict(entry.__dict__))
        self._write()

    def finish(self, run: str, result) -> None:
        self.data[run].update({"correct": result.correct, "total": result.total, "accuracy": result.accuracy,
                               "seconds": result.seconds, "peak_rss": result.peak_rss,
                               "bytes_sent": result.bytes_sent, "rounds": result.rounds})
        self.data["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._write()

    def _write(self) -> None:
        temporary = f"{self.path}.tmp"
        with open(temporary, "w") as handle:
            json.dump(self.data, handle, indent=1)
        os.replace(temporary, self.path)


def _wants_plaintext(args: argparse.Namespace) -> bool:
    """The plaintext comparison: on by default in one process, only with --plaintext across processes."""
    if args.no_plaintext:
        return False
    return args.plaintext or args.parties == "in-process"


def _train(args: argparse.Namespace) -> int:
    if args.parties == "in-process":
        return _run_training(args)
    from .launch import join_token, party_session, run_with_local_parties

    token = join_token(args.token, args.insecure_channel, spawns_parties=True)

    def client(master: str) -> int:
        session = party_session("me", master, _config(args), args.timeout, args.crypto_seed, token)
        try:
            return _run_training(args, session)
        finally:
            session.comm.close()

    return run_with_local_parties("train", _forwarded(args), client, args.timeout, args.master, token)


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.parties == "processes":
        import torch

        from .launch import join_token, party_session, run_with_local_parties

        token = join_token(args.token, args.insecure_channel, spawns_parties=True)
        threads = torch.get_num_threads()  # a party process runs on one thread (party_session)

        def client(master: str) -> dict:
            session = party_session("me", master, _config(args), args.timeout, args.crypto_seed, token)
            try:
                return bench.process_benchmark_job(session, _config(args), args.repeats)
            finally:
                session.comm.close()

        measured = run_with_local_parties("bench", _forwarded(args) + ["--repeats", str(args.repeats)], client,
                                          args.timeout, args.master, token)
        # the plaintext step as in one process: every core's thread, once the parties are gone
        torch.set_num_threads(threads)
        plaintext_ms = bench.plaintext_median_ms(_config(args))
        if args.json:
            print(json.dumps({"parties": "processes", "plaintext_ms": plaintext_ms, "encrypted_ms": measured["step_ms"],
                              "ratio": measured["step_ms"] / plaintext_ms, "rounds_per_step": measured["rounds_per_step"],
                              "cpu_ms_per_step": bench.cpu_ms_per_step(measured, args.repeats), "cores": os.cpu_count(),
                              "channel": bench.channel_cost(measured, args.repeats),
                              "per_party": {n: t.__dict__ | {"computing": t.computing} for n, t in measured["parties"].items()}},
                             indent=2))
        else:
            print(bench.format_process_report(plaintext_ms, measured, args.repeats, _config(args), os.cpu_count()))
        return 0
    activations = ("relu", "square") if args.activation == "both" else (args.activation,)
    result = bench.run_benchmark(_config(args), repeats=args.repeats, activations=activations)
    print(json.dumps(bench.to_json(result), indent=2) if args.json else bench.format_report(result))
    return 0


def _party(args: argparse.Namespace) -> int:
    """One party of a multi-process run (started by `train --parties processes`, by hand, or by torchrun)."""
    from .launch import check_party, join_token, party_from_environment, party_session

    name, master = (party_from_environment() if args.name == "auto" else (args.name, args.master))
    check_party(name)
    if not master:
        raise ValueError("party needs --master HOST:PORT (or 'auto' under torchrun)")
    token = join_token(args.token, args.insecure_channel, spawns_parties=False)
    config = _config(args)
    session = party_session(name, master, config, args.timeout, args.crypto_seed, token)
    try:
        if name == "me":  # the client started by hand: it drives and reports
            args.parties, args.quiet, args.no_plaintext, args.json = "processes", False, not args.plaintext, None
            args.log_json, args.log_interval = None, 1
            if args.job == "bench":
                from . import bench

                print(bench.format_process_report(bench.plaintext_median_ms(config),
                                                  bench.process_benchmark_job(session, config, args.repeats),
                                                  args.repeats, config))
                return 0
            return _run_training(args, session)
        if args.job == "bench":
            from . import bench

            bench.process_benchmark_job(session, config, args.repeats)
        else:
            result = train_encrypted(config, session, checkpoint_dir=args.checkpoint, resume_from=args.resume)
            print(f"{name}: done, {result.bytes_sent / 1e9:.2f} GB sent, {result.rounds} rounds")
    finally:
        session.comm.close()
    return 0


def _infer_cnn(args: argparse.Namespace) -> int:
    """Train a small CNN in plaintext, then predict encrypted, PySyft-style; compare."""
    from .inference import encrypted_inference, mnist_test_set, train_plaintext_cnn

    started = time.perf_counter()
    model = train_plaintext_cnn(args.n_train_items, args.epochs, seed=args.seed)
    trained = time.perf_counter() - started
    images, labels = mnist_test_set(args.n_test_items)
    result = encrypted_inference(model, images, labels, args.batch_size, args.precision_fractional, args.base)
    if args.json:
        print(json.dumps({**result.to_dict(), "training_seconds": trained, "torch_threads": torch_threads()}, indent=2))
        return 0
    n = result.n_images
    print(f"SmallCNN (conv 5x5 1->8, ReLU, max-pool 2, linear 1152->10) trained in plaintext on "
          f"{args.n_train_items} images, {args.epochs} epoch(s), in {trained:.1f} s")
    print(f"Encrypted inference on {n} test images ({result.precision}, batches of {args.batch_size}, "
          f"{torch_threads()} torch threads):")
    print(f"  predictions equal to plaintext: {result.agree}/{n} ({100 * result.agreement:.2f}%)")
    print(f"  accuracy: plaintext {result.plaintext_correct}/{n}, encrypted {result.encrypted_correct}/{n}")
    print(f"  time: {result.seconds:.1f} s, {result.ms_per_image:.1f} ms per image "
          f"(processor time {result.cpu_ms_per_image:.1f} ms per image, all parties); "
          f"{result.bytes_sent / n / 1e3:.0f} kB sent per image")
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secure_mnist", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter
    train = commands.add_parser("train", help="encrypted training on MNIST, with a plaintext run to compare",
                                formatter_class=defaults)
    _training_arguments(train)
    _process_arguments(train)
    train.add_argument("--plaintext", action="store_true",
                       help="also train in plaintext for comparison (the default in one process; across "
                            "processes it loads every owner's data into the client)")
    train.add_argument("--no-plaintext", action="store_true", help="skip the plaintext comparison run")
    train.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")
    train.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    train.add_argument("--log-json", metavar="FILE",
                       help="write the settings and per-epoch results (time, loss, test count) to FILE after each epoch")
    train.add_argument("--log-interval", type=int, default=1, help="print a line every N batches")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="recommended settings (full-mnist: all 60,000 images, cross-entropy, momentum); "
                            "flags given as well override them")
    train.add_argument("--checkpoint", metavar="DIR", help="after each epoch, every party saves its own state in DIR")
    train.add_argument("--resume", metavar="DIR", help="continue from the parties' checkpoints in DIR")
    train.set_defaults(run=_train)
    bench = commands.add_parser("bench", help="time a plaintext and an encrypted training step side by side",
                                formatter_class=defaults)
    _training_arguments(bench, activations=("both", *sorted(ACTIVATIONS)), default_activation=BENCH_DEFAULT_ACTIVATION)
    _process_arguments(bench)
    bench.add_argument("--preset", choices=sorted(PRESETS),
                       help="time the step of a preset's settings (full-mnist: cross-entropy, momentum, base 2, "
                            "16 bits); flags given as well override them")
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("--json", action="store_true", help="print machine-readable JSON")
    bench.set_defaults(run=_bench)
    party = commands.add_parser("party", help="run one party (me, alice, bob, crypto_provider, or auto under torchrun)",
                                formatter_class=defaults)
    party.add_argument("name", help="me | alice | bob | crypto_provider | auto")
    party.add_argument("--master", default=None, help="HOST:PORT of the rendezvous (the client's machine)")
    party.add_argument("--timeout", type=float, default=60.0)
    party.add_argument("--job", choices=("train", "bench"), default="train")
    party.add_argument("--repeats", type=int, default=20)
    party.add_argument("--checkpoint", metavar="DIR")
    party.add_argument("--resume", metavar="DIR")
    party.add_argument("--plaintext", action="store_true",
                       help="(the client only) also train in plaintext, which loads every owner's data here")
    _channel_arguments(party)
    _training_arguments(party)
    party.set_defaults(run=_party)
    infer = commands.add_parser("infer-cnn", help="encrypted inference of a plaintext-trained CNN, PySyft-style, "
                                "compared with plaintext", formatter_class=defaults)
    infer.add_argument("--n-train-items", type=int, default=60000, help="plaintext training images")
    infer.add_argument("--epochs", type=int, default=1, help="plaintext training epochs")
    infer.add_argument("--seed", type=int, default=0, help="seeds the plaintext training")
    infer.add_argument("--n-test-items", type=int, default=1000, help="test images predicted encrypted")
    infer.add_argument("--batch-size", type=int, default=100, help="images per encrypted batch")
    infer.add_argument("--precision-fractional", type=int, default=3)
    infer.add_argument("--base", type=int, default=10, help="fixed-point base (10: PySyft's, 2: binary)")
    infer.add_argument("--json", action="store_true", help="print machine-readable JSON")
    infer.set_defaults(run=_infer_cnn)
    args = parser.parse_args(argv)
    if getattr(args, "preset", None):  # the preset's values become the defaults; given flags still win
        settings = dict(PRESETS[args.preset])
        settings["forget_openings"] = not settings.pop("keep_openings", True)
        if args.command == "train":
            train.set_defaults(**settings, log_interval=100)
        else:
            bench.set_defaults(**settings)
        args = parser.parse_args(argv)
    if getattr(args, "activation", None) == BENCH_DEFAULT_ACTIVATION:
        # Both activations for the tutorial's loss; with cross-entropy only ReLU: the square
        # activation's logits grow step after step on the bench's one batch until, at PySyft's
        # 3 digits, the training diverges (in plaintext from the same weights too).
        args.activation = "both" if args.loss == "mse" else "relu"
    try:
        if getattr(args, "engine", None):
            set_engine(args.engine)
        return args.run(args)
    except SecureMNISTError as error:  # a clear message, not a traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        parser.error(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
