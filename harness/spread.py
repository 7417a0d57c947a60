"""The spread rule: is a run one more draw of what several training seeds gave?

A CPU run is bit-reproducible only on one kind of machine (harness.machine); on any other kind it behaves like
one more training seed. The spread tier of the regression baselines and the regression check of the direction
claims therefore ask the same question: does the run fall where the seeds fell? For one value the answer is the
interval

    [min - w, max + w],  w = max(floor, K * std)

over the n recorded values (std with n - 1 degrees of freedom). The range keeps every recorded seed inside; K * std
allows for seeds that land further out than the n we saw; the floor (the exact tier's tolerance for the metric)
stops a metric that barely moves across seeds from failing on float noise.

For a case the answer is a quorum over its headline metrics (HEADLINE): the case fails when more than QUORUM of
them fall outside their intervals, or when one is missing. Measured (docs/findings/gates.md), the seed
distributions of these small models are heavy-tailed: a held-out seed lands up to ten stds beyond the other four
on a few metrics of a case at once (a training run that went another way), so no per-metric interval short of
uselessly wide is free of false alarms; a regression in the code moves most metrics of a case at once.
"""
from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import HarnessError

# The smallest move either tier treats as real (absolute; first matching pattern wins): the exact tier's tolerance,
# and the spread tier's floor. Percentage points for every metric but the two in nats and squared probability.
TOLERANCES = {
    "calib*/nll": 0.05,  # calib/nll and its views (calib@T/nll at the fitted temperature, calib@M1/nll)
    "calib*/brier": 0.02,
    "*": 0.5,
}
K = 3.0  # per-metric width in stds beyond the seed range (docs/findings/gates.md)
QUORUM = 1 / 3  # a case fails the spread tier when more than this share of its metrics fall outside
# The metrics the spread tier gates: in-distribution accuracy and calibration (every view), the means over OOD sets,
# the shift means and distortions. Per-set OOD and per-cell shift metrics are gated by the exact tier only: a
# single noise set saturates (AUROC 0 on four seeds, 6 on the fifth) and would only add noise to the quorum.
HEADLINE = re.compile(r"(accuracy(@M1)?|error_detection/auroc|calib[^/]*/[^/]+|ood/mean[^/]*/.+"
                      r"|shift/(mean|severity[0-9]+)/[^/]+|distortion/(id|shift))\Z")
# The deterministic CPU profiles the regression baselines gate, and the training seeds the spread tier of each is
# built from at least; paper runs are gated by the bands instead. Here, not in harness.baselines, so that the
# leaderboard and the end-of-run table read them without loading torch.
GATED_PROFILES = {"smoke": 5, "mini": 3}


def tolerance_for(metric: str, tolerances: dict[str, float] = TOLERANCES) -> float:
    for pattern, tol in tolerances.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return tol
    raise HarnessError(f"no tolerance pattern matches metric {metric!r}")


def summarize(values: Sequence[float]) -> dict:
    """{"mean", "std", "min", "max", "n"} of the values of one metric over seeds (std 0 for a single value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to summarize")
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": _round(mean), "std": _round(std), "min": _round(min(values)), "max": _round(max(values)), "n": n}


def bounds(stat: dict, floor: float, k: float = K) -> tuple[float, float]:
    """The interval a new draw must fall in (module docstring)."""
    width = max(floor, k * stat["std"])
    return stat["min"] - width, stat["max"] + width


def _round(value: float) -> float:
    # 6 significant digits keep the files small; the floors are orders of magnitude wider than the rounding
    return float(f"{value:.6g}")


MIN_SEEDS = 5  # a direction is decided over at least this many seeds (3 were shown to flip on a 4th)


@dataclass(frozen=True)
class Decision:
    """A one-sided t-test that the mean of per-seed gaps is above 0 (gap > 0: the claimed direction)."""
    n: int
    mean: float
    lower: float  # the lower end of the one-sided `level` confidence interval of the mean gap
    level: float

    @property
    def stands(self) -> bool:
        return self.n >= MIN_SEEDS and self.lower > 0

    def text(self) -> str:
        verdict = ("stands" if self.stands else
                   f"not decided (fewer than {MIN_SEEDS} seeds)" if self.n < MIN_SEEDS else
                   "no consistent effect")
        return (f"{verdict}: mean gap {self.mean:.4g} over {self.n} seeds, one-sided {self.level:.0%} t lower "
                f"bound {self.lower:.4g}")


def decide(gaps: Sequence[float], level: float) -> Decision:
    """The one-sided t-test of Decision over these per-seed gaps."""
    stat = summarize(gaps)
    n = stat["n"]
    if n < 2:
        return Decision(n, stat["mean"], -math.inf, level)
    from scipy.stats import t  # imported here: the leaderboard reads decisions without loading scipy eagerly

    lower = stat["mean"] - t.ppf(level, n - 1) * stat["std"] / math.sqrt(n)
    return Decision(n, stat["mean"], _round(lower), level)


def tiers(verdicts: list[dict] | None) -> list[str]:
    """The tiers that gated a record, in a fixed order ("exact" before "spread")."""
    present = {v.get("tier", "exact") for v in verdicts or []}
    return [tier for tier in ("exact", "spread") if tier in present]


@dataclass(frozen=True)
class Outcome:
    """One tier's decision over a record's baseline verdicts (JSON dicts of harness.baselines.BaselineVerdict)."""
    tier: str
    outside: int  # metrics outside their interval (or tolerance), missing ones included
    missing: int
    total: int

    @property
    def failed(self) -> bool:
        if self.tier == "exact":
            return self.outside > 0
        return self.missing > 0 or self.outside > QUORUM * self.total

    def text(self) -> str:
        if self.tier == "exact":
            return f"{self.outside} of {self.total} metrics moved past the tolerance or missing"
        return (f"{self.outside} of {self.total} metrics outside their seed spread"
                f"{f', {self.missing} missing' if self.missing else ''} (fails above {QUORUM * self.total:.4g})")


def outcomes(verdicts: list[dict] | None) -> list[Outcome]:
    """Each tier's decision, in the order of `tiers`."""
    verdicts = verdicts or []
    return [Outcome(tier, sum(v.get("passed") is not True for v in mine), sum(v.get("measured") is None for v in mine),
                    len(mine))
            for tier in tiers(verdicts)
            for mine in [[v for v in verdicts if v.get("tier", "exact") == tier]]]
