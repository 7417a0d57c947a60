"""The CPU-scale table of docs/outlier-exposure.md: per seed and as mean +- std over seeds, each model
and score of test_outlier_exposure's claims (baseline, oe, energy_ft; MSP and energy) over the OOD sets every record
of the seed has, and each direction claim's gap per seed (what the claims' margins were set from).

usage: python benchmarks/outlier_exposure_table.py DIR [DIR ...]   (one --results-dir per seed)
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from test_outlier_exposure import PAPERS, claim_inputs  # noqa: E402

from harness import bands, runner  # noqa: E402

ROWS = (("baseline", "msp"), ("baseline", "energy"), ("oe", "msp"), ("oe", "energy"), ("energy_ft", "msp"),
        ("energy_ft", "energy"))
METRICS = ("ood/mean/auroc", "ood/mean/fpr95@id", "ood/mean/fpr95@ood")


def seed_records(directory: str) -> list[dict]:
    records = [json.loads(p.read_text()) for p in Path(directory).glob("*.json")]
    return [r for r in records if "report" in r and (r["recipe"]["name"], r["score"]["name"]) in ROWS]


def main(directories: list[str]) -> None:
    if not directories:
        sys.exit(__doc__.strip().splitlines()[-1])
    claims = [c for c in runner.load_bands().claims if c.paper in PAPERS]
    rows: dict[tuple, list[list[float]]] = {}
    gaps: dict[str, list[float]] = {}
    for directory in directories:
        records = seed_records(directory)
        if not records:
            sys.exit(f"{directory}: no record of {', '.join('-'.join(r) for r in ROWS)}")
        seeds = {r["seed"] for r in records}
        inputs = claim_inputs(records, ("msp", "energy"), METRICS)
        accuracy = {r["recipe"]["name"]: r["report"]["metrics"]["accuracy"]["mean"] for r in records}
        print(f"seed {sorted(seeds)} ({directory})")
        for recipe, score in ROWS:
            if recipe not in inputs[score]:
                continue
            values = [accuracy[recipe]] + [inputs[score][recipe][m]["mean"] for m in METRICS]
            rows.setdefault((recipe, score), []).append(values)
            print(f"  {recipe:10s} {score:7s} " + " ".join(f"{v:7.2f}" for v in values))
        for claim in claims:
            both = claim_inputs(records, claim.scores, [claim.metric])
            (verdict,) = bands.check_claims([claim], claim.dataset, both[claim.scores[0]],
                                            baseline_results=both[claim.scores[1]])
            if verdict.gap is not None:
                gaps.setdefault(verdict.message().split(" by ")[0], []).append(verdict.gap)
    print("mean +- std over seeds: accuracy, AUROC, FPR95 (ID positive), FPR95 (OOD positive)")
    for (recipe, score), values in rows.items():
        arr = np.array(values)
        print(f"  {recipe:10s} {score:7s} n={len(arr)} " +
              " ".join(f"{m:6.2f} +- {s:5.2f}" for m, s in zip(arr.mean(0), arr.std(0))))
    print("claim gaps per seed (positive = the claimed direction)")
    for head, values in gaps.items():
        print(f"  {head}: " + " / ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main(sys.argv[1:])
