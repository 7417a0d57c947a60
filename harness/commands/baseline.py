"""`python -m harness baseline update --profile P --results DIR`."""
from __future__ import annotations

from pathlib import Path

from harness import baselines, options, profiles


def register(subparsers) -> None:
    parser = subparsers.add_parser("baseline", help="regression baselines of the CPU profiles")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    update = actions.add_parser("update", help="write the entries of the recorded cases into "
                                "benchmarks/baselines/<profile>.json (other cases' entries are kept)")
    update.add_argument("--profile", required=True, choices=profiles.names())
    update.add_argument("--results", type=options.directory, help="results directory (default results/<profile>)")
    update.add_argument("--out-dir", type=options.directory, default=baselines.BASELINE_DIR,
                        help="where baselines live")
    update.add_argument("--replace", action="store_true",
                        help="rewrite the whole file from these records (drops cases that are not recorded)")
    update.set_defaults(func=run)


def run(args) -> int:
    results = args.results or Path("results") / args.profile
    path, n = baselines.update(args.profile, results, args.out_dir, replace=args.replace)
    print(f"wrote {path} ({n} cases from {results}{'' if args.replace else '; other cases kept'})")
    return 0
