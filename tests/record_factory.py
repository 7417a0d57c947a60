"""A realistic result record, shaped as harness.store writes it, for tests that need records on disk."""
from __future__ import annotations

import json
from pathlib import Path

OOD_SUFFIXES = ("auroc", "aupr@ood", "fpr95@ood", "aupr@id", "fpr95@id", "calib/rms", "calib/mad",
                "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
                "fpr95_first@ood", "fpr95_first@id", "aupr_trapz@ood", "aupr_trapz@id")
ID_KEYS = ("accuracy", "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
           "calib/ece", "calib/ece10", "calib/adaptive_ece", "calib/nll", "calib/brier", "error_detection/auroc")


def make_record(case_id: str = "digits-finetune-msp", *, profile: str = "smoke", dataset: str = "digits-0-4",
                recipe: str = "finetune", score: str = "msp", accuracy: float = 95.0, auroc: float = 91.0,
                time: str = "2026-11-23T16:30:00Z", seed: int = 0, sets: tuple[str, ...] = ("gaussian", "blobs"),
                num_to_avg: int = 3, drop: tuple[str, ...] = ()) -> dict:
    """A record shaped like harness.store writes it (docs/metrics.md), with metrics derived from accuracy and auroc."""
    metrics = {key: {"mean": accuracy / 10 + i, "std": 0.0, "n": 1} for i, key in enumerate(ID_KEYS)}
    metrics["accuracy"]["mean"] = accuracy
    metrics["calib/nll"]["mean"] = 0.1234
    metrics["calib/brier"]["mean"] = 0.0789  # raw, in [0, 2]
    for i, name in enumerate(sets):
        for j, suffix in enumerate(OOD_SUFFIXES):
            value = auroc - 2 * i if suffix == "auroc" else 10.0 + i + j
            metrics[f"ood/{name}/{suffix}"] = {"mean": value, "std": 0.5, "n": num_to_avg}
    for suffix in OOD_SUFFIXES:
        per_set = [metrics[f"ood/{name}/{suffix}"]["mean"] for name in sets]
        metrics[f"ood/mean/{suffix}"] = {"mean": sum(per_set) / len(per_set), "std": 0.5, "n": num_to_avg}
    for key in drop:
        metrics.pop(key)
    roc = {name: {"fpr": [0.0, 0.1, 0.4, 1.0], "tpr": [0.0, 0.6 - 0.1 * i, 0.9, 1.0]} for i, name in enumerate(sets)}
    bins = [{"lo": k / 15, "hi": (k + 1) / 15, "confidence": None if k < 10 else (k + 0.5) / 15,
             "accuracy": None if k < 10 else (k + 0.2) / 15, "count": 0 if k < 10 else 10 * (k - 9)}
            for k in range(15)]
    return {
        "schema_version": 1, "case_id": case_id, "profile": profile, "paper": "hendrycks2019", "dataset": dataset,
        "model": "wrn-16-1",
        "recipe": {"name": recipe, "settings": {"epochs": 2, "lr": 0.1, "nesterov": True, "schedule": {"kind": "cosine"}},
                   "upstream": {"recipe": "pretrain", "dataset": "digits-5-9"}},
        "score": {"name": score, "params": {}}, "seed": seed,
        "report": {"metrics": metrics, "ood_sets": {n: {"n_samples": 200, "n_available": 300} for n in sets},
                   "curves": {"roc": roc, "reliability": bins}, "score": {"name": score, "params": {}},
                   "num_to_avg": num_to_avg, "seed": 1, "n_id": 500},
        "timings": {"train_s": 12.5, "eval_s": 1.25},
        "verdicts": {"bands": [{"metric": "ood/mean/auroc", "measured": auroc - 1, "low": 85.0, "high": 95.0,
                                "paper_value": 88.25, "source": "Hendrycks 2019, Table 1", "passed": True,
                                "proxy": False},
                               {"metric": "accuracy", "measured": accuracy, "low": 96.0, "high": 99.0,
                                "paper_value": 97.5, "source": "Hendrycks 2019, Table 3", "passed": False,
                                "proxy": True}],
                     "baseline": [{"metric": "accuracy", "measured": accuracy, "expected": accuracy,
                                   "tolerance": 1.0, "passed": True}]},
        "provenance": {"git_commit": "0123456789abcdef0123", "git_dirty": False, "harness_version": "0.1.0",
                       "python": "3.11.9", "torch": "2.4.0", "cuda": None, "device": "cpu (x86_64, 2 cores)",
                       "hostname": "ci", "platform": "Linux", "time_utc": time},
    }


def write_json(path: Path, record: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return path


# ---------------------------------------------------------------- synthetic sets for the leaderboard's views
# Made by the tests only, never stored with real results: their hostname says so.
SYNTHETIC = "synthetic-test-records"
A3_SETS = ("gaussian", "rademacher", "blobs", "dtd", "cifar100")  # SVHN left out: its cells read "not measured"


def _set_metrics(record: dict, values: dict[str, float], n: int = 5) -> dict:
    for key, value in values.items():
        record["report"]["metrics"][key] = {"mean": value, "std": 0.25 if key.startswith("ood/") else 0.0, "n": n}
    return record


def paper_profile_records(root: Path) -> Path:
    """Paper-profile cifar10 records shaped like the hendrycks2019 cases: MSP from scratch (seed 0) and fine-tuned
    (seeds 0 and 1, a proxy upstream), every A1-A4 key near the published value, one cell out of band; and an
    energy-score case for the matrix."""
    from harness.site.paper_tables import HENDRYCKS2019

    published: dict[tuple[str, str], float] = {}
    for table in HENDRYCKS2019.tables:
        for section in table.sections:
            for row in section.rows:
                for col, value in zip(table.columns, row.values):
                    if row.dataset == "cifar10" and "svhn" not in row.prefix:
                        published.setdefault((col.recipe, row.prefix + col.suffix), value)  # A1 before A3's Mean
    for recipe, seed, shift in (("scratch", 0, 0.0), ("finetune", 0, -0.5), ("finetune", 1, 0.5)):
        record = make_record(f"cifar10-{recipe}-msp", profile="paper", dataset="cifar10", recipe=recipe,
                             sets=A3_SETS, seed=seed, time=f"2026-11-2{seed}T10:00:00Z")
        record["provenance"]["hostname"] = SYNTHETIC
        record["recipe"]["pretrain_dataset"] = "tinyimagenet32-nocifar10" if recipe == "finetune" else None
        values = {key: value + shift for (r, key), value in published.items() if r == recipe}
        if recipe == "scratch":
            values["calib/rms"] = 12.0  # far outside the A2 band [4.8, 8.0]
        write_json(root / f"cifar10-{recipe}-msp-s{seed}.json", _set_metrics(record, values))
    energy = make_record("cifar10-scratch-energy", profile="paper", dataset="cifar10", recipe="scratch",
                         score="energy", sets=A3_SETS, auroc=93.0)
    energy["provenance"]["hostname"] = SYNTHETIC
    write_json(root / "cifar10-scratch-energy-s0.json", energy)
    return root


SHIFT_CORRUPTIONS = ("fog", "gaussian_noise")


def shift_record(case_id: str, recipe: str, accuracy: float, shifted: float, alpha: float | None = None) -> dict:
    """A smoke record with the shift keys (docs/metrics.md, Conventions): 2 corruptions x 5 severities, per-severity
    means, the overall mean, feature distortion."""
    record = make_record(case_id, recipe=recipe, dataset="digits-0-4", accuracy=accuracy)
    record["provenance"]["hostname"] = SYNTHETIC
    if alpha is not None:
        record["recipe"]["settings"]["alpha"] = alpha
    values = {}
    for severity in range(1, 6):
        for i, corruption in enumerate(SHIFT_CORRUPTIONS):
            acc = shifted + 4 * (3 - severity) - 2 * i
            values.update({f"shift/{corruption}/{severity}/accuracy": acc,
                           f"shift/{corruption}/{severity}/ece": 2.0 + severity + i,
                           f"shift/{corruption}/{severity}/rms": 3.0 + severity,
                           f"shift/{corruption}/{severity}/nll": 0.5 + 0.1 * severity})
        for metric in ("accuracy", "ece", "rms", "nll"):
            values[f"shift/severity{severity}/{metric}"] = sum(
                values[f"shift/{c}/{severity}/{metric}"] for c in SHIFT_CORRUPTIONS) / len(SHIFT_CORRUPTIONS)
    for metric in ("accuracy", "ece", "rms", "nll"):
        values[f"shift/mean/{metric}"] = sum(values[f"shift/severity{k}/{metric}"] for k in range(1, 6)) / 5
    values["distortion/id"], values["distortion/shift"] = 1.5, 2.5
    return _set_metrics(record, values, n=1)


def shift_records(root: Path) -> Path:
    """LP, FT, LP-FT and WiSE-FT at three alphas on digits-0-4 (smoke), every one with shift keys."""
    for case_id, recipe, acc, shifted, alpha in (
            ("digits-0-4-linear_probe-msp", "linear_probe", 72.0, 60.0, None),
            ("digits-0-4-finetune-msp", "finetune", 88.0, 55.0, None),
            ("digits-0-4-lp_ft-msp", "lp_ft", 86.0, 64.0, None),
            ("digits-0-4-wise_ft-alpha0.25-msp", "wise_ft", 80.0, 63.0, 0.25),
            ("digits-0-4-wise_ft-alpha0.5-msp", "wise_ft", 84.0, 62.0, 0.5),
            ("digits-0-4-wise_ft-alpha0.75-msp", "wise_ft", 87.0, 58.0, 0.75)):
        write_json(root / f"{case_id}-s0.json", shift_record(case_id, recipe, acc, shifted, alpha))
    return root
