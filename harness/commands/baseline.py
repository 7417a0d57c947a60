"""`python -m harness baseline update --profile P --results DIR`."""
from __future__ import annotations

from pathlib import Path

from harness import baselines, options


def register(subparsers) -> None:
    parser = subparsers.add_parser("baseline", help="regression baselines of the CPU profiles")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    update = actions.add_parser("update", help="write the entries of the recorded cases into "
                                "benchmarks/baselines/<profile>.json (other cases' entries are kept): the spread "
                                "over every recorded seed, and the exact entries of the profile's seeds")
    update.add_argument("--profile", required=True, choices=sorted(baselines.GATED_PROFILES))
    update.add_argument("--results", type=options.directory, action="append",
                        help="results directory, repeatable: the seeds of all of them make the spread "
                             "(default results/<profile>)")
    update.add_argument("--out-dir", type=options.directory, default=baselines.BASELINE_DIR,
                        help="where baselines live")
    update.add_argument("--replace", action="store_true",
                        help="rewrite the whole file from these records (drops cases that are not recorded)")
    update.set_defaults(func=run)


def run(args) -> int:
    results = args.results or [Path("results") / args.profile]
    path, n = baselines.update(args.profile, results, args.out_dir, replace=args.replace)
    shown = ", ".join(map(str, results))
    print(f"wrote {path} ({n} records from {shown}{'' if args.replace else '; other cases kept'})")
    return 0
