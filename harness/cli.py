"""`python -m harness <command>`: every module in harness/commands/ contributes one command."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import harness.commands
from harness import __version__
from harness.errors import HarnessError


DESCRIPTION = "Uncertainty harness: import datasets, train recipes, keep baselines, render the leaderboard."
EPILOG = """\
examples:
  python -m harness data import cifar10 cifar10-jpeg.tar.gz    decode a dataset once into the cache
  python -m harness data list                                  what the cache holds
  python -m harness train --recipe finetune --dataset digits-0-4 --profile smoke
  python -m harness leaderboard --results results --out site   write site/index.html
  python -m harness COMMAND --help                             a command's options

The benchmark suite itself runs under pytest: `pytest benchmarks [--profile smoke|mini|paper]`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(harness.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"harness.commands.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (HarnessError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file-system failure the option checks could not foresee (permissions, disk full)
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
