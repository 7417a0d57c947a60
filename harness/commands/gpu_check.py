"""`python -m harness gpu-check`: the prepared check for a short GPU lease (harness/gpu_check.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import options, profiles


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gpu-check", help="environment, loader throughput, and the CIFAR-10 paper recipes that fit a time budget",
        description="Measure the fast vs reference loader throughput, plan the CIFAR-10 scratch and pretrain + "
                    "finetune recipes from it, run what fits in --budget-s, and write everything under --out.")
    parser.add_argument("--out", type=options.directory, required=True, metavar="DIR", help="where results go")
    parser.add_argument("--profile", default="paper", choices=profiles.names(),
                        help="paper (GPU, default) or paper-dryrun (the same path on the CPU)")
    parser.add_argument("--budget-s", type=options.positive_int, default=540,
                        help="seconds the whole check may take (default 540: a 10-minute command with margin)")
    parser.add_argument("--device", help="cuda, cuda:N or cpu (default: cuda if present)")
    parser.add_argument("--data-root", type=options.directory, help="imported datasets (default: $HARNESS_DATA_ROOT)")
    parser.add_argument("--cache-dir", type=options.directory, help="checkpoint cache (default: <data root>/checkpoints)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.gpu_check import run as check

    summary = check(args.profile, Path(args.out), args.budget_s, data_root=args.data_root, device=args.device,
                    cache_dir=args.cache_dir)
    print(f"wrote {args.out}/summary.json ({len(summary['ran'])} of {len(summary['plan'])} stages run, "
          f"{summary['wall_s']:.0f} s)")
    return 0
