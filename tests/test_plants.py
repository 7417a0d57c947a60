"""The gate's power: each planted regression of tests/gate_plants.py, run through `pytest benchmarks` on a kind of
machine whose exact baseline entries do not apply (another kernel probe), must fail the spread tier.

A plant the spread tier cannot catch stays listed below as a strict xfail with the measurement that shows it, so
that it is named, not dropped (and the test fails the day it starts being caught). docs/findings/gates.md has the
table of which tier caught which plant.
"""
from __future__ import annotations

import pytest

from gate_plants import PLANTS, run_planted

NOT_CAUGHT: dict[str, str] = {}  # plant -> why the spread tier misses it (measured; docs/findings/gates.md)


@pytest.mark.slow
@pytest.mark.parametrize("plant", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=NOT_CAUGHT[name])) if name in NOT_CAUGHT
    else name for name in PLANTS])
def test_the_spread_tier_fails_a_planted_regression(plant, tmp_path):
    out, record = run_planted(plant, tmp_path)
    spread = [v for v in record["verdicts"]["baseline"] or [] if v.get("tier") == "spread"]
    moved = [v["metric"] for v in spread if not v["passed"]]
    assert spread and moved, f"{plant}: no spread-tier metric moved ({len(spread)} checked)"
    assert out.returncode == 1 and "baseline (spread):" in out.stdout, out.stdout[-3000:]
