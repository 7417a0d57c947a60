"""The per-seed gaps of every direction claim that names a profile, and the test that decides each.

    python benchmarks/claim_gaps.py --profile mini RESULTS_DIR [RESULTS_DIR ...]

Reads the records of several seeds (`pytest benchmarks --profile mini --seeds 0,1,2,3,4 --results-dir DIR`) and
computes each claim's gap at every seed exactly as the claims tests do (each benchmark module's `claim_verdicts`),
then the one-sided t-test of harness.spread.decide over those gaps. Prints a table per claim and the `seeds` /
`gaps` lines to put in its band file entry (docs/gates.md, "Claims at CPU scale").
"""
from __future__ import annotations

import argparse
from pathlib import Path

import test_hendrycks2019
import test_outlier_exposure
import test_transfer
import test_two_stage

from harness import runner, spread
from harness.store import read_records

MODULES = ((test_hendrycks2019, ("hendrycks2019",)), (test_outlier_exposure, test_outlier_exposure.PAPERS),
           (test_transfer, (test_transfer.PAPER,)), (test_two_stage, (test_two_stage.GROUP,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    records = [r for d in args.results for r in read_records(d)[0] if r["profile"] == args.profile]
    loaded = runner.load_bands()
    for module, papers in MODULES:
        claims = [c for c in loaded.claims if c.paper in papers and args.profile in c.profiles]
        for dataset in sorted({c.dataset for c in claims}):
            by_seed = module.claim_verdicts(records, [c for c in claims if c.dataset == dataset], dataset)
            for claim in (c for c in claims if c.dataset == dataset):
                gaps = {seed: v.gap for seed, verdicts in by_seed.items() for v in verdicts
                        if v.claim is claim and v.gap is not None}
                recipe, baseline = claim.sides()
                print(f"\n{claim.paper} {dataset}: {recipe} vs {baseline}, {claim.metric} ({claim.direction} is "
                      f"better)  [{claim.path}:{claim.line}]")
                print("  " + ", ".join(f"seed {s}: {g:+.4g}" for s, g in gaps.items()))
                if gaps:
                    print(f"  {spread.decide(list(gaps.values()), claim.level).text()}")
                    print(f"  seeds = [{', '.join(map(str, gaps))}]")
                    print(f"  gaps = [{', '.join(f'{g:.4g}' for g in gaps.values())}]")


if __name__ == "__main__":
    main()
