"""How much one case's numbers move from seed to seed, and how much of it the synthetic OOD sets bring.

    python benchmarks/seed_noise.py --case cifar10-scratch-msp RESULTS_DIR [RESULTS_DIR ...]

For the records of one case over several seeds: mean and std (over seeds) of the accuracy, and of AUROC and both
FPR95s averaged over all the profile's OOD sets, over the synthetic ones alone (Gaussian, Rademacher, Blobs) and
over the real ones alone, plus each set's own. The findings page of the claims quotes it (docs/findings/claims.md).
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from harness.data import registry
from harness.store import read_records

METRICS = ("auroc", "fpr95@id", "fpr95@ood")


def _row(label: str, values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"| {label} | {statistics.fmean(values):.2f} | {std:.2f} | {min(values):.2f} | {max(values):.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", required=True)
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    records = [r for d in args.results for r in read_records(d)[0] if r["case_id"] == args.case]
    if not records:
        raise SystemExit(f"error: no record of case {args.case!r} under {', '.join(map(str, args.results))}")
    sets = list(records[0]["report"]["ood_sets"])
    synthetic = [s for s in sets if s in registry.OOD_SETS and registry.OOD_SETS[s].synthetic]
    groups = {"all sets": sets, "synthetic sets": synthetic, "real sets": [s for s in sets if s not in synthetic]}
    print(f"{args.case}: seeds {sorted(r['seed'] for r in records)}; synthetic: {', '.join(synthetic)}")
    print("| metric | mean | std over seeds | min | max |\n|---|---|---|---|---|")
    print(_row("accuracy", [r["report"]["metrics"]["accuracy"]["mean"] for r in records]))
    for metric in METRICS:
        for label, chosen in groups.items():
            if chosen:
                print(_row(f"{metric}, mean over {label}", [
                    statistics.fmean(r["report"]["metrics"][f"ood/{s}/{metric}"]["mean"] for s in chosen)
                    for r in records]))
        for name in sets:
            print(_row(f"{metric}, {name}", [r["report"]["metrics"][f"ood/{name}/{metric}"]["mean"] for r in records]))


if __name__ == "__main__":
    main()
