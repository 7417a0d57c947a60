"""How often would the spread tier fail a good run? The false-alarm half of docs/findings/gates.md.

    python benchmarks/gate_false_alarms.py --profile smoke SEEDS_DIR [--other OTHER_DIR ...]

SEEDS_DIR holds the records of several seeds of a profile (`pytest benchmarks --seeds 0,1,2,3,4 --results-dir
SEEDS_DIR`). For each seed in turn, the spread is built from the other seeds alone and the held-out seed is checked
against it (leave one out: a seed the spread was not built from, as a run on another kind of machine behaves).
OTHER_DIR holds records of the same code on another kind of machine (e.g. `ATEN_CPU_CAPABILITY=avx2 pytest
benchmarks ...` on an AVX-512 machine), checked against the spread of every seed. Printed per K (harness.spread):
the cases the spread tier would fail, and the largest share of a case's metrics outside their intervals.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import baselines, spread
from harness.store import read_records

KS = (1.0, 2.0, 3.0, 4.0)


def _gateable(directory: Path, profile: str) -> list[dict]:
    return baselines.gateable(read_records(directory)[0], profile)


def _judge(records: list[dict], spreads: dict, k: float) -> tuple[int, float, str]:
    """(cases failed, the largest share of a case's metrics outside, the case and seed it was) at this K."""
    base = {"spread": spreads, "spread_k": k, "tolerances": baselines.TOLERANCES, "cases": {}}
    failed, worst, where = 0, 0.0, "-"
    for record in records:
        verdicts = [v.to_json() for v in baselines.check(record, base) or []]
        for outcome in spread.outcomes(verdicts):
            failed += outcome.failed
            if outcome.outside / outcome.total > worst:
                worst, where = outcome.outside / outcome.total, f"{record['case_id']} s{record['seed']}"
    return failed, worst, where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("seeds_dir", type=Path)
    parser.add_argument("--other", type=Path, action="append", default=[])
    args = parser.parse_args()
    records = _gateable(args.seeds_dir, args.profile)
    seeds = sorted({r["seed"] for r in records})
    others = [r for d in args.other for r in _gateable(d, args.profile)]
    full = baselines.spread_entries(records, len(seeds))
    held_out = [([r for r in records if r["seed"] == seed],
                 baselines.spread_entries([r for r in records if r["seed"] != seed], len(seeds) - 1))
                for seed in seeds]
    print(f"{len(records)} records: {len({r['case_id'] for r in records})} cases x seeds {seeds}; "
          f"{len(others)} records of another kind of machine; quorum {spread.QUORUM:.3g}")
    print("| K | held-out seeds: cases failed | largest share outside (case) | another probe: cases failed | "
          "largest share outside (case) |")
    print("|---|---|---|---|---|")
    for k in KS:
        loo = [_judge(mine, spreads, k) for mine, spreads in held_out]
        failed, (worst, where) = sum(f for f, _, _ in loo), max(((w, c) for _, w, c in loo), default=(0.0, "-"))
        o_failed, o_worst, o_where = _judge(others, full, k)
        print(f"| {k:g} | {failed} of {len(records)} | {worst:.2f} ({where}) | {o_failed} of {len(others)} | "
              f"{o_worst:.2f} ({o_where}) |")


if __name__ == "__main__":
    main()
