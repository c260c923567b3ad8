"""Command line: `python -m secure_mnist train | bench | party | infer-cnn`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tqdm import tqdm

from .errors import SecureMNISTError

from .training import ACTIVATIONS, BatchLog, TrainingConfig, train_encrypted, train_plaintext

PARTY_MODES = ("in-process", "processes")


def _training_arguments(parser: argparse.ArgumentParser, activations: tuple[str, ...] = tuple(sorted(ACTIVATIONS)),
                        default_activation: str | None = None) -> None:
    defaults = TrainingConfig()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--test-batch-size", type=int, default=defaults.test_batch_size)
    parser.add_argument("--n-train-items", type=int, default=defaults.n_train_items)
    parser.add_argument("--n-test-items", type=int, default=defaults.n_test_items)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seeds the model's initial weights")
    parser.add_argument("--precision-fractional", type=int, default=defaults.precision_fractional)
    parser.add_argument("--base", type=int, default=defaults.base, help="fixed-point base (10: PySyft's, 2: binary)")
    parser.add_argument("--activation", choices=activations, default=default_activation or defaults.activation)
    parser.add_argument("--crypto-seed", type=int, default=None,
                        help="derive every party's randomness from this number: reproducible runs, "
                             "for testing only (the shares become predictable)")


def _process_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parties", choices=PARTY_MODES, default="in-process",
                        help="run alice, bob and the crypto provider here, or each in its own process")
    parser.add_argument("--master", default=None, help="HOST:PORT of the rendezvous (processes; default: a free local port)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds without an answer after which a party counts as lost (processes)")


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The training flags, as given, for the spawned parties."""
    names = ["batch_size", "test_batch_size", "n_train_items", "n_test_items", "epochs", "lr", "seed",
             "precision_fractional", "base", "activation", "crypto_seed"]
    resolved = {**vars(args), "activation": _config(args).activation}  # bench's "both" is not a party's
    out = []
    for name in names:
        value = resolved[name]
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    for name in ("checkpoint", "resume"):
        if getattr(args, name, None):
            out += [f"--{name}", getattr(args, name)]
    return out


def _config(args: argparse.Namespace) -> TrainingConfig:
    activation = "relu" if args.activation == "both" else args.activation
    return TrainingConfig(
        batch_size=args.batch_size, test_batch_size=args.test_batch_size, n_train_items=args.n_train_items,
        n_test_items=args.n_test_items, epochs=args.epochs, lr=args.lr, seed=args.seed,
        precision_fractional=args.precision_fractional, base=args.base, activation=activation,
    )


def _traffic_text(entry: BatchLog) -> str:
    if not entry.traffic:
        return ""
    return " ".join(f"{name} ↑{sent / 1e6:.1f}/↓{received / 1e6:.1f}MB"
                    for name, (sent, received) in entry.traffic.items() if sent or received)


def _run_training(args: argparse.Namespace, session=None) -> int:
    """The client's side of `train` (every party runs train_encrypted; only the client reports)."""
    config = _config(args)
    total = (config.epochs) * -(-config.n_train_items // config.batch_size)
    bar = tqdm(total=total, desc="encrypted training", unit="batch", file=sys.stderr, disable=args.quiet)

    def log(entry: BatchLog, n_batches: int) -> None:
        bar.update(1)
        bar.set_postfix_str(f"loss {entry.loss:.4f}, {entry.seconds:.3f}s, {_traffic_text(entry)}")
        if not args.quiet:
            done = entry.batch * config.batch_size
            bar.write(f"Train Epoch: {entry.epoch} [{done}/{n_batches * config.batch_size} "
                      f"({100.0 * entry.batch / n_batches:.0f}%)]\tLoss: {entry.loss:.6f}\tTime: {entry.seconds:.3f}s")

    if session is None:
        from .mpc.session import Session

        session = Session(encoder=config.encoder, seed=args.crypto_seed)
    try:
        encrypted = train_encrypted(config, session, on_batch=log, checkpoint_dir=args.checkpoint,
                                    resume_from=args.resume)
    finally:
        bar.close()
    print(f"\nTest set: Accuracy: {encrypted.correct}/{encrypted.total} ({encrypted.accuracy:.0f}%)")
    per_batch = [log.traffic for log in encrypted.batch_logs if log.traffic]
    sent = sum(s for traffic in per_batch for s, _ in traffic.values()) if per_batch else encrypted.bytes_sent
    print(f"Encrypted run ({args.parties}): {encrypted.seconds:.1f} s, {sent / 1e9:.2f} GB sent by all parties "
          f"during training, {encrypted.rounds} rounds between the workers")
    report = {"config": config.__dict__, "parties": args.parties, "encrypted": encrypted.to_dict()}
    if not args.no_plaintext:
        plaintext = train_plaintext(config)
        print(f"Plaintext PyTorch, same seed, data and initialisation: {plaintext.correct}/{plaintext.total} "
              f"({plaintext.accuracy:.1f}%) in {plaintext.seconds:.2f} s; encrypted is "
              f"{encrypted.accuracy - plaintext.accuracy:+.1f} points")
        report["plaintext"] = plaintext.to_dict()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.parties == "in-process":
        return _run_training(args)
    from .launch import party_session, run_with_local_parties

    def client(master: str) -> int:
        session = party_session("me", master, _config(args), args.timeout, args.crypto_seed)
        try:
            return _run_training(args, session)
        finally:
            session.comm.close()

    return run_with_local_parties("train", _forwarded(args), client, args.timeout, args.master)


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    if args.parties == "processes":
        from .launch import party_session, run_with_local_parties

        def client(master: str) -> dict:
            session = party_session("me", master, _config(args), args.timeout, args.crypto_seed)
            try:
                return bench.process_benchmark_job(session, _config(args), args.repeats)
            finally:
                session.comm.close()

        measured = run_with_local_parties("bench", _forwarded(args) + ["--repeats", str(args.repeats)], client,
                                          args.timeout, args.master)
        plaintext_ms = bench.plaintext_median_ms(_config(args))
        if args.json:
            print(json.dumps({"parties": "processes", "plaintext_ms": plaintext_ms, "encrypted_ms": measured["step_ms"],
                              "ratio": measured["step_ms"] / plaintext_ms, "rounds_per_step": measured["rounds_per_step"],
                              "cpu_ms_per_step": bench.cpu_ms_per_step(measured, args.repeats), "cores": os.cpu_count(),
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
    from .launch import party_from_environment, party_session

    name, master = (party_from_environment() if args.name == "auto" else (args.name, args.master))
    if not master:
        raise ValueError("party needs --master HOST:PORT (or 'auto' under torchrun)")
    config = _config(args)
    session = party_session(name, master, config, args.timeout, args.crypto_seed)
    try:
        if name == "me":  # the client started by hand: it drives and reports
            args.parties, args.quiet, args.no_plaintext, args.json = "processes", False, False, None
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
    print(f"  time: {result.seconds:.1f} s, {result.ms_per_image:.1f} ms per image; "
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
    train.add_argument("--no-plaintext", action="store_true", help="skip the plaintext comparison run")
    train.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")
    train.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    train.add_argument("--checkpoint", metavar="DIR", help="after each epoch, every party saves its own state in DIR")
    train.add_argument("--resume", metavar="DIR", help="continue from the parties' checkpoints in DIR")
    train.set_defaults(run=_train)
    bench = commands.add_parser("bench", help="time a plaintext and an encrypted training step side by side",
                                formatter_class=defaults)
    _training_arguments(bench, activations=("both", *sorted(ACTIVATIONS)), default_activation="both")
    _process_arguments(bench)
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
    try:
        return args.run(args)
    except SecureMNISTError as error:  # a clear message, not a traceback
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        parser.error(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
