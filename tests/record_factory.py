"""A realistic result record, shaped as harness.store writes it, for tests that need records on disk."""
from __future__ import annotations

import json
from pathlib import Path

OOD_SUFFIXES = ("auroc", "aupr@ood", "fpr95@ood", "aupr@id", "fpr95@id", "calib/rms", "calib/mad",
                "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1")
ID_KEYS = ("accuracy", "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
           "calib/ece", "calib/ece10", "calib/adaptive_ece", "calib/nll", "calib/brier", "error_detection/auroc")


def make_record(case_id: str = "digits-finetune-msp", *, profile: str = "smoke", dataset: str = "digits-0-4",
                recipe: str = "finetune", score: str = "msp", accuracy: float = 95.0, auroc: float = 91.0,
                time: str = "2026-11-23T16:30:00Z", seed: int = 0, sets: tuple[str, ...] = ("gaussian", "blobs"),
                num_to_avg: int = 3, drop: tuple[str, ...] = ()) -> dict:
    """A record shaped like harness.store writes it (SPEC.md), with metrics derived from accuracy and auroc."""
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
