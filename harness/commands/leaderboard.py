"""`python -m harness leaderboard`: render the static leaderboard site from stored result records."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import options


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "leaderboard", help="render the static leaderboard site from result records",
        description="Render index.html, one page per case and static files from every readable record "
                    "under --results (recursively). Unreadable records are listed, never fatal.")
    parser.add_argument("--results", type=options.directory, default=Path("results"), metavar="DIR",
                        help="folder of result records (default: results)")
    parser.add_argument("--out", type=options.directory, default=Path("site"), metavar="DIR",
                        help="folder to write the site into (default: site)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.site.leaderboard import build_site  # jinja2 only loads when this command runs

    site = build_site(args.results, args.out)
    for problem in site.problems:
        print(f"warning: skipped unreadable or invalid record {problem.path}: {problem.reason}", file=sys.stderr)
    print(f"{site.cases} cases from {site.records} records ({len(site.problems)} unreadable or invalid)",
          file=sys.stderr)
    print(site.index)
    return 0
