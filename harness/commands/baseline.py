"""`python -m harness baseline update --profile P --results DIR`."""
from __future__ import annotations

from pathlib import Path

from harness import baselines, profiles


def register(subparsers) -> None:
    parser = subparsers.add_parser("baseline", help="regression baselines of the CPU profiles")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    update = actions.add_parser("update", help="rewrite benchmarks/baselines/<profile>.json from result records")
    update.add_argument("--profile", required=True, choices=profiles.names())
    update.add_argument("--results", type=Path, help="results directory (default results/<profile>)")
    update.add_argument("--out-dir", type=Path, default=baselines.BASELINE_DIR, help="where baselines live")
    update.set_defaults(func=run)


def run(args) -> int:
    results = args.results or Path("results") / args.profile
    path, n = baselines.update(args.profile, results, args.out_dir)
    print(f"wrote {path} ({n} cases from {results})")
    return 0
