"""The pre-training scaling study's table (docs/findings/pretraining-scale.md): per upstream size, the scratch,
fine-tuned and linear-probe models' accuracy, OOD detection and calibration over seeds, each row's CPU cost, and the
pre-training paper's claim per seed (fine-tuned beats scratch on mean AUROC and on RMS calibration error).

    python benchmarks/pretraining_scale_table.py --row 5k=MINI_DIR --row 20k=DIR20 --row 87.5k=DIR87 \\
        --scratch MINI_DIR

A row directory holds one run's records (`--results-dir`) of the `finetune` and `linear_probe` cases (MSP) at one
upstream size, any number of seeds; `--scratch` the `scratch` MSP records, which do not depend on the upstream.
A row's cost is the mean over seeds of the wall seconds its cases recorded (training, its upstream's pretraining
included when it was not cached, evaluation and shift), on the machine that ran it.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).parent))
from record_values import value as _value  # noqa: E402

from harness import spread  # noqa: E402
from harness.bands import Claim  # noqa: E402
from harness.data import registry  # noqa: E402
from harness.store import read_records  # noqa: E402

METRICS = (("accuracy", "accuracy"), ("AUROC", "ood/mean/auroc"), ("AUROC real", "ood/mean-real/auroc"),
           ("FPR95@id", "ood/mean/fpr95@id"), ("FPR95@ood", "ood/mean/fpr95@ood"), ("RMS", "calib/rms"),
           ("MAD", "calib/mad"), ("RMS w/ OOD", "ood/mean/calib/rms"), ("MAD w/ OOD", "ood/mean/calib/mad"))
RECIPES = ("finetune", "linear_probe", "lp_ft")
CLAIM = (("ood/mean/auroc", 1), ("calib/rms", -1))  # (metric, +1 when higher is the claimed direction)


def _records(directory: Path, recipes: tuple[str, ...]) -> dict[str, dict[int, dict]]:
    found, problems = read_records(directory)
    if problems or not found:
        raise SystemExit(f"error: {directory}: {problems[0] if problems else 'no records'}")
    out: dict[str, dict[int, dict]] = {}
    for r in found:
        if r["recipe"]["name"] in recipes and r["score"]["name"] == "msp":
            out.setdefault(r["recipe"]["name"], {})[r["seed"]] = r
    return out


def _cell(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}"


def _minutes(records: list[dict]) -> float:
    return statistics.fmean(sum(r["timings"].values()) for r in records) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", action="append", required=True, metavar="SIZE=DIR")
    parser.add_argument("--scratch", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for spec in args.row:
        size, sep, directory = spec.partition("=")
        if not sep:
            raise SystemExit(f"error: --row {spec!r}: expected SIZE=DIR")
        rows.append((size, _records(Path(directory), RECIPES)))
    scratch = _records(args.scratch, ("scratch",)).get("scratch", {})
    if not scratch:
        raise SystemExit(f"error: {args.scratch}: no scratch MSP record")
    print("| upstream | model | seeds | " + " | ".join(name for name, _ in METRICS) + " | CPU min / seed |")
    print("|---|---|---|" + "---|" * len(METRICS) + "---|")
    for size, by_recipe in [("-", {"scratch": scratch}), *rows]:
        for recipe, seeds in by_recipe.items():
            records = [seeds[s] for s in sorted(seeds)]
            cells = [_cell([_value(r, key) for r in records]) for _, key in METRICS]
            print(f"| {size} | {recipe} | {','.join(map(str, sorted(seeds)))} | " + " | ".join(cells)
                  + f" | {_minutes(records):.1f} |")
    # per real OOD set: one of them (Tiny-ImageNet-32 validation) is drawn from the upstream's own source
    real = [s for s in next(iter(scratch.values()))["report"]["ood_sets"] if not registry.get_ood(s).synthetic]
    print("\nAUROC per real OOD set (mean ± std over seeds)\n")
    print("| upstream | model | " + " | ".join(real) + " |")
    print("|---|---|" + "---|" * len(real))
    for size, by_recipe in [("-", {"scratch": scratch}), *rows]:
        for recipe, seeds in by_recipe.items():
            records = [seeds[s] for s in sorted(seeds)]
            print(f"| {size} | {recipe} | " + " | ".join(_cell([_value(r, f"ood/{s}/auroc") for r in records])
                                                    for s in real) + " |")
    print("\nThe pre-training claim per seed (gap > 0: fine-tuned better than scratch)\n")
    print("| upstream | metric | " + " | ".join(f"seed {s}" for s in sorted(scratch)) + " | every seed | t lower 95 % |")
    print("|---|---|" + "---|" * len(scratch) + "---|---|")
    for size, by_recipe in rows:
        tuned = by_recipe.get("finetune", {})
        for key, sign in CLAIM:
            gaps = {s: sign * (_value(tuned[s], key) - _value(scratch[s], key)) for s in sorted(scratch) if s in tuned}
            decision = spread.decide(list(gaps.values()), Claim.level)  # the claims' default level
            cells = [f"{gaps[s]:.2f}" if s in gaps else "-" for s in sorted(scratch)]
            held = "yes" if gaps and all(g > 0 for g in gaps.values()) else "no"
            print(f"| {size} | {key} | " + " | ".join(cells) + f" | {held} | {decision.lower:.2f} |")


if __name__ == "__main__":
    main()
