"""The per-seed gaps of every direction claim that names a profile, and the test that decides each.

    python benchmarks/claim_gaps.py --profile mini RESULTS_DIR [RESULTS_DIR ...]

Reads the records of several seeds (`pytest benchmarks --profile mini --seeds 0,1,2,3,4 --results-dir DIR`) and
computes each claim's gap at every seed exactly as the claims tests do (each benchmark module's `claim_verdicts`),
then the one-sided t-test of harness.spread.decide over those gaps. Prints each claim's gaps and decision; with
`--write`, puts them into the claim's entry in its band file (`seeds` and `gaps` replace a `margin`; the rest of
the entry, its rationale included, is left for you to edit) (docs/gates.md, "Claims at CPU scale").
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


def write_gaps(claim, gaps: dict[int, float]) -> None:
    """Replace the margin / seeds / gaps lines of the claim's [[claim]] table (it starts at claim.line)."""
    path = Path(claim.path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = claim.line - 1
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    body = [line for line in lines[start + 1:end] if line.split("=")[0].strip() not in ("margin", "seeds", "gaps")]
    at = next(i for i, line in enumerate(body) if line.split("=")[0].strip() == "paper_gap") + 1
    body[at:at] = [f"seeds = [{', '.join(map(str, gaps))}]\n",
                   f"gaps = [{', '.join(f'{g:.4g}' for g in gaps.values())}]\n"]
    path.write_text("".join(lines[:start + 1] + body + lines[end:]), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--write", action="store_true", help="put the seeds and gaps into the band files")
    args = parser.parse_args()
    records = [r for d in args.results for r in read_records(d)[0] if r["profile"] == args.profile]
    loaded = runner.load_bands()
    found = []
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
                if gaps:
                    found.append((claim, gaps))
    if args.write:  # bottom-up in each file, so that each claim's line number still points at its table
        for claim, gaps in sorted(found, key=lambda cg: (cg[0].path, -cg[0].line)):
            write_gaps(claim, gaps)
        print(f"\nwrote the seeds and gaps of {len(found)} claims into {', '.join(sorted({c.path for c, _ in found}))}")


if __name__ == "__main__":
    main()
