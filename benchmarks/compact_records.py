"""Compact copies of result records, for committing under results/ and publishing with the leaderboard.

    python benchmarks/compact_records.py SRC_DIR DST_DIR

Keeps what the pages show and drops what only a full record needs: numbers rounded to 4 decimals (the pages show
2), ROC curves thinned to at most 21 points per set (the chart is 200 pixels wide), and of the baseline verdicts
only the spread tier's (the exact tier's hold one kind of machine's bits). Every compact record is read back
through the record validator; an invalid one is an error, never written.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness import store

ROC_POINTS = 21


def _rounded(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _thin(curve: dict) -> dict:
    n = len(curve["fpr"])
    if n <= ROC_POINTS:
        return curve
    keep = sorted({round(i * (n - 1) / (ROC_POINTS - 1)) for i in range(ROC_POINTS)})
    return {axis: [values[i] for i in keep] for axis, values in curve.items()}


def compact(record: dict) -> dict:
    out = json.loads(json.dumps(record))
    out.pop("path", None)
    curves = out["report"].get("curves", {})
    curves["roc"] = {name: _thin(curve) for name, curve in curves.get("roc", {}).items()}
    baseline = out["verdicts"].get("baseline")
    if baseline is not None:
        out["verdicts"]["baseline"] = [v for v in baseline if v.get("tier") == "spread"] or None
    return _rounded(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    args = parser.parse_args()
    records, problems = store.read_records(args.src)
    if problems:
        raise SystemExit(f"error: {args.src}: {len(problems)} unreadable records, e.g. {problems[0]}")
    args.dst.mkdir(parents=True, exist_ok=True)
    for record in records:
        path = args.dst / f"{record['case_id']}-s{record['seed']}.json"
        path.write_text(json.dumps(compact(record), separators=(",", ":")) + "\n", encoding="utf-8")
    kept, problems = store.read_records(args.dst)
    if problems:
        raise SystemExit(f"error: a compact record does not validate: {problems[0]}")
    size = sum(p.stat().st_size for p in args.dst.glob("*.json"))
    print(f"{len(kept)} records -> {args.dst} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
