"""A metric of a stored record by key, for the study tables: `ood/mean-real/<metric>` is the mean over the record's
real OOD sets alone (the synthetic ones carry mini's seed noise: docs/findings/claims.md)."""
from __future__ import annotations

import statistics

from harness.data import registry


def value(record: dict, key: str) -> float:
    metrics = record["report"]["metrics"]
    if key.startswith("ood/mean-real/"):
        sets = [s for s in record["report"]["ood_sets"] if not registry.get_ood(s).synthetic]
        return statistics.fmean(metrics[f"ood/{s}/{key.split('/', 2)[2]}"]["mean"] for s in sets)
    if key not in metrics:
        raise SystemExit(f"error: {record['case_id']} seed {record['seed']} has no {key}")
    return metrics[key]["mean"]
