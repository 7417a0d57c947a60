"""The SSL study's table of docs/ssl.md: per metric, backbones as rows and {fine-tuned, + energy fine-tuning} x
{msp, energy} as columns, mean ± std over seeds; then the study's question per seed: does an SSL backbone plus energy
fine-tuning beat the supervised one (energy score) on FPR95 and AUROC?

    python benchmarks/ssl_table.py DIR [DIR ...]

A DIR holds records of `benchmarks/test_ssl.py` (`--results-dir`), any seeds; the records of every DIR are pooled.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from record_values import value  # noqa: E402

from harness import spread  # noqa: E402
from harness.bands import Claim  # noqa: E402
from harness.ssl import study  # noqa: E402
from harness.store import read_records  # noqa: E402

METRICS = (("accuracy", "accuracy", 1), ("AUROC, mean over the OOD sets", "ood/mean/auroc", 1),
           ("AUROC, mean over the real OOD sets", "ood/mean-real/auroc", 1),
           ("FPR95 (ID positive), mean over the OOD sets", "ood/mean/fpr95@id", -1),
           ("FPR95 (ID positive), mean over the real OOD sets", "ood/mean-real/fpr95@id", -1),
           ("RMS calibration error", "calib/rms", -1))
QUESTION_METRICS = METRICS[1:5]
SSL = ("byol", "barlow_twins", "dino")
QUESTION = (study.STAGES[1], "energy")  # the energy fine-tuned models, energy score


def _cell(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args()
    # (backbone, stage, score) -> seed -> record
    table: dict[tuple[str, str, str], dict[int, dict]] = {}
    for directory in args.dirs:
        found, problems = read_records(directory)
        if problems:
            raise SystemExit(f"error: {directory}: {problems[0]}")
        for r in found:
            if r.get("group") != study.GROUP:
                continue
            variant = r["case_id"].removeprefix(f"{r['dataset']}-").removesuffix(f"-{r['score']['name']}")
            table.setdefault((*study.place(variant), r["score"]["name"]), {})[r["seed"]] = r
    if not table:
        raise SystemExit(f"error: {', '.join(map(str, args.dirs))}: no record of the SSL study (group '{study.GROUP}')")
    columns = [(stage, score) for stage in study.STAGES for score in study.SCORES]
    backbones = [b for b in study.BACKBONES if any(k[0] == b for k in table)]
    seeds = sorted({s for per_seed in table.values() for s in per_seed})
    for title, key, _ in METRICS:
        print(f"\n{title} (seeds {', '.join(map(str, seeds))})\n")
        print("| backbone | " + " | ".join(f"{stage}, {score}" for stage, score in columns) + " |")
        print("|---|" + "---|" * len(columns))
        for backbone in backbones:
            cells = []
            for column in columns:
                per_seed = table.get((backbone, *column), {})
                cells.append(_cell([value(r, key) for r in per_seed.values()]) if per_seed else "-")
            print(f"| {backbone} | " + " | ".join(cells) + " |")
    print(f"\nSSL backbone minus supervised, both energy fine-tuned, energy score (gap > 0: the SSL backbone better)\n")
    print("| backbone | metric | " + " | ".join(f"seed {s}" for s in seeds) + " | every seed | t lower 95 % |")
    print("|---|---|" + "---|" * len(seeds) + "---|---|")
    supervised = table.get(("supervised", *QUESTION), {})
    for backbone in SSL:
        mine = table.get((backbone, *QUESTION), {})
        for title, key, sign in QUESTION_METRICS:
            gaps = {s: sign * (value(mine[s], key) - value(supervised[s], key)) for s in seeds
                    if s in mine and s in supervised}
            if not gaps:
                continue
            cells = [f"{gaps[s]:.2f}" if s in gaps else "-" for s in seeds]
            lower = spread.decide(list(gaps.values()), Claim.level).lower if len(gaps) > 1 else float("nan")
            held = "yes" if all(g > 0 for g in gaps.values()) else "no"
            print(f"| {backbone} | {key} | " + " | ".join(cells) + f" | {held} | {lower:.2f} |")


if __name__ == "__main__":
    main()
