"""Command line: `python -m secure_mnist train` and `python -m secure_mnist bench`."""

from __future__ import annotations

import argparse
import json
import sys

from tqdm import tqdm

from .training import ACTIVATIONS, BatchLog, TrainingConfig, train_encrypted, train_plaintext


def _training_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default=defaults.activation)


def _config(args: argparse.Namespace) -> TrainingConfig:
    return TrainingConfig(
        batch_size=args.batch_size, test_batch_size=args.test_batch_size, n_train_items=args.n_train_items,
        n_test_items=args.n_test_items, epochs=args.epochs, lr=args.lr, seed=args.seed,
        precision_fractional=args.precision_fractional, base=args.base, activation=args.activation,
    )


def _train(args: argparse.Namespace) -> int:
    config = _config(args)
    total = config.epochs * -(-config.n_train_items // config.batch_size)
    bar = tqdm(total=total, desc="encrypted training", unit="batch", file=sys.stderr, disable=args.quiet)

    def log(entry: BatchLog, n_batches: int) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{entry.loss:.4f}", step=f"{entry.seconds:.3f}s")
        if not args.quiet:
            done = entry.batch * config.batch_size
            bar.write(f"Train Epoch: {entry.epoch} [{done}/{n_batches * config.batch_size} "
                      f"({100.0 * entry.batch / n_batches:.0f}%)]\tLoss: {entry.loss:.6f}\tTime: {entry.seconds:.3f}s")

    encrypted = train_encrypted(config, on_batch=log)
    bar.close()
    print(f"\nTest set: Accuracy: {encrypted.correct}/{encrypted.total} ({encrypted.accuracy:.0f}%)")
    print(f"Encrypted run: {encrypted.seconds:.1f} s, {encrypted.bytes_sent / 1e9:.2f} GB sent, "
          f"{encrypted.rounds} rounds between the workers")
    report = {"config": config.__dict__, "encrypted": encrypted.to_dict()}
    if not args.no_plaintext:
        plaintext = train_plaintext(config)
        print(f"Plaintext PyTorch, same seed, data and initialisation: {plaintext.correct}/{plaintext.total} "
              f"({plaintext.accuracy:.1f}%) in {plaintext.seconds:.1f} s; encrypted is "
              f"{encrypted.accuracy - plaintext.accuracy:+.1f} points")
        report["plaintext"] = plaintext.to_dict()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import format_report, run_benchmark, to_json

    result = run_benchmark(_config(args), repeats=args.repeats)
    if args.json:
        print(json.dumps(to_json(result), indent=2))
    else:
        print(format_report(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secure_mnist", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="encrypted training on MNIST, with a plaintext run to compare")
    _training_arguments(train)
    train.add_argument("--no-plaintext", action="store_true", help="skip the plaintext comparison run")
    train.add_argument("--quiet", action="store_true", help="no progress bar or per-batch lines")
    train.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    train.set_defaults(run=_train)
    bench = commands.add_parser("bench", help="time a plaintext and an encrypted training step side by side")
    _training_arguments(bench)
    bench.add_argument("--repeats", type=int, default=20)
    bench.add_argument("--json", action="store_true", help="print machine-readable JSON")
    bench.set_defaults(run=_bench)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        parser.error(str(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
