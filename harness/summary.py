"""The compact table printed at the end of `pytest benchmarks`."""
from __future__ import annotations

from harness.spread import GATED_PROFILES, outcomes

COLUMNS = (("acc", "accuracy"), ("AUROC", "ood/mean/auroc"), ("AUPR", "ood/mean/aupr@ood"),
           ("FPR95", "ood/mean/fpr95@ood"), ("RMS", "calib/rms"), ("MAD", "calib/mad"), ("ECE", "calib/ece"))


def _status(record: dict) -> str:
    verdicts = record["verdicts"]
    bands = verdicts.get("bands") or []
    parts = []
    if bands:
        failed = sum(v["passed"] is False for v in bands)
        measured = sum(v["passed"] is not None for v in bands)
        parts.append(f"{'dry-run ' if record.get('dry_run') else ''}bands {measured - failed}/{measured}")
    baseline = verdicts.get("baseline")
    if baseline is not None:
        decided = outcomes(baseline)
        parts.append(f"gated ({'+'.join(o.tier for o in decided)})" + "".join(
            f", {o.outside}/{o.total} {'moved' if o.tier == 'exact' else 'outside'} ({o.tier}"
            f"{': FAILED' if o.failed else ''})" for o in decided if o.outside))
    elif verdicts.get("not_gated") and not record.get("dry_run"):
        parts.append("not gated")
    elif record["profile"] in GATED_PROFILES:
        parts.append("no baseline")
    return ", ".join(parts) or "-"


def summary_table(records: list[dict]) -> list[str]:
    rows = [["case"] + [name for name, _ in COLUMNS] + ["status"]]
    for record in sorted(records, key=lambda r: (r["profile"], r["case_id"], r["seed"])):
        metrics = record["report"]["metrics"]
        cells = [f"{metrics[key]['mean']:.2f}" if key in metrics else "-" for _, key in COLUMNS]
        case = record["case_id"] + (f" s{record['seed']}" if record["seed"] else "")
        rows.append([case] + cells + [_status(record)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i in (0, len(widths) - 1) else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
