"""Paper bands: the Band and Claim entries, the metric key grammar, checking a run's metrics against them and
explaining a miss. Reading band files into them: harness.band_files.

A band file (`benchmarks/bands/<paper>.toml`) holds `[[band]]` tables, one
published number each with the interval a faithful run must land in, and
`[[claim]]` tables, direction claims between two recipes ("finetune beats
scratch on ood/mean/auroc by at least 1.0"). The field reference is the header
of `benchmarks/bands/hendrycks2019.toml`.

Bands describe the papers' recipes on the papers' full data, so only the
`paper` profile is checked against them. This module knows nothing of
profiles: the caller (the benchmark suite) decides when to call `check`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from harness import spread
from harness.errors import HarnessError

_ID_METRICS = (
    "accuracy", "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
    "calib/ece", "calib/ece10", "calib/adaptive_ece", "calib/nll", "calib/brier", "error_detection/auroc",
)
# The calibration views of harness.calibration: at the fitted temperature, and a sampled head at one sample.
_ID_METRICS += tuple(f"calib@{view}/{key.removeprefix('calib/')}" for view in ("T", "M1")
                     for key in _ID_METRICS if key.startswith("calib/")) + ("calib@T/temperature", "accuracy@M1")
_OOD_METRICS = (
    "auroc", "aupr@ood", "fpr95@ood", "aupr@id", "fpr95@id",
    "fpr95_first@ood", "fpr95_first@id", "aupr_trapz@ood", "aupr_trapz@id",  # the peers' definitions
    "calib/rms", "calib/mad", "calib/rms_all_bins", "calib/mad_all_bins", "calib/soft_f1",
)
# With OOD data at the fitted temperature (harness.calibration.ood_temperature_metrics).
_OOD_METRICS += tuple(key.replace("calib/", "calib@T/") for key in _OOD_METRICS if key.startswith("calib/"))
# Paper tags that have a band file; a record's "paper" field is one of these. A new band file adds its tag.
PAPERS = ("hendrycks2019", "jordahn2024", "hendrycks2019oe", "liu2020", "kumar2022", "wortsman2022")

_NAME = r"[a-z0-9][a-z0-9_.-]*"
# Under distribution shift (docs/metrics.md, Conventions): per corruption and severity, per severity, over all;
# per natural-shift set and over those (`natural`); both as shift/<name>/<m>.
NATURAL_SHIFT_MEAN = "natural"  # shift/natural/<m>: the mean over a profile row's natural-shift sets
_SHIFT_METRICS = r"(?:accuracy|ece|rms|nll)"
# Effective robustness (harness.robustness) is no record's key: a line fitted across a row's cases gives it, so
# only a claim's inputs hold it (shift/<set>/effective_robustness, shift/natural/effective_robustness).
_SHIFT_KEY = (rf"shift/(?:{_NAME}/[1-9][0-9]*|{_NAME})/{_SHIFT_METRICS}|shift/{_NAME}/effective_robustness"
              rf"|distortion/(?:id|shift)")
_METRIC_KEY = re.compile(
    rf"(?:{'|'.join(map(re.escape, _ID_METRICS))}|ood/{_NAME}/(?:{'|'.join(map(re.escape, _OOD_METRICS))})"
    rf"|{_SHIFT_KEY})\Z"
)
NAME_RE = re.compile(rf"{_NAME}\Z")  # a dataset, recipe, score or paper name in a band file


def is_metric_key(key: str) -> bool:
    """True when `key` follows the Report's metric key grammar (docs/metrics.md)."""
    return bool(_METRIC_KEY.match(key))


@dataclass(frozen=True)
class Band:
    """One published number and the interval [low, high] a faithful run must land in."""
    paper: str
    dataset: str
    recipe: str
    score: str
    metric: str
    value: float
    low: float
    high: float
    source: str
    rationale: str
    proxy_unless_upstream: str | None = None
    note: str | None = None
    path: str = ""
    line: int = 0


@dataclass(frozen=True)
class Claim:
    """`recipe` is better than `baseline` on `metric` by at least `margin` (direction says which way is better)."""
    paper: str
    dataset: str
    score: str
    metric: str
    recipe: str
    baseline: str
    direction: str
    margin: float  # a paper claim's; a claim set on seeds (`gaps`) is decided by its test instead, margin 0
    paper_gap: float
    source: str
    rationale: str
    proxy_unless_upstream: str | None = None
    note: str | None = None
    path: str = ""
    line: int = 0
    profiles: tuple[str, ...] = ("paper",)  # the profiles whose runs the claim gates
    # The baseline's score when it differs from `score` (a claim that one score beats another on one model:
    # recipe == baseline); None = `score`.
    baseline_score: str | None = None
    # A claim measured at CPU scale: the per-seed gaps it was set on (gap > 0: the claimed direction) and the level
    # of the one-sided t-test that decides it (harness.spread.decide). Without gaps: a paper claim with a margin.
    seeds: tuple[int, ...] = ()
    gaps: tuple[float, ...] = ()
    level: float = 0.95

    @property
    def decision(self) -> spread.Decision | None:
        return spread.decide(self.gaps, self.level) if self.gaps else None

    @property
    def scores(self) -> tuple[str, str]:
        """(the recipe side's score, the baseline side's score)."""
        return self.score, self.baseline_score or self.score

    def sides(self) -> tuple[str, str]:
        """How the two sides are named in a message: the recipe, with its score when the scores differ."""
        if self.baseline_score is None:
            return self.recipe, self.baseline
        return f"{self.recipe} ({self.score})", f"{self.baseline} ({self.baseline_score})"


@dataclass(frozen=True)
class BandFile:
    path: str
    bands: tuple[Band, ...]
    claims: tuple[Claim, ...]


def _is_proxy(wanted: str | None, upstream: str | None) -> bool:
    # A class-exclusion variant of the paper's upstream ("imagenet32-nocifar10") is still that upstream.
    if wanted is None:
        return False
    return upstream is None or not (upstream == wanted or upstream.startswith(wanted + "-"))


def _proxy_text(wanted: str | None, upstream: str | None) -> str:
    return f"; proxy: upstream {upstream or 'unknown'}, the paper's is {wanted}"


@dataclass(frozen=True)
class Verdict:
    """One band checked against one run. passed is None when the run did not measure the metric."""
    metric: str
    measured: float | None
    low: float
    high: float
    paper_value: float
    source: str
    passed: bool | None
    proxy: bool
    band: Band = field(repr=False, compare=False)
    upstream: str | None = None

    @property
    def status(self) -> str:
        return "not measured" if self.passed is None else "pass" if self.passed else "fail"

    def message(self) -> str:
        context = f"paper {self.paper_value:.2f}; source: {self.source}"
        if self.proxy:
            context += _proxy_text(self.band.proxy_unless_upstream, self.upstream)
        band = f"[{self.low:.2f}, {self.high:.2f}]"
        if self.passed is None:
            return f"{self.metric} not measured (band {band}, {context})"
        where = "inside" if self.passed else "outside"
        return f"{self.metric} = {self.measured:.2f} {where} band {band} ({context})"

    def to_json(self) -> dict:
        return {"metric": self.metric, "measured": self.measured, "low": self.low, "high": self.high,
                "paper_value": self.paper_value, "source": self.source, "passed": self.passed, "proxy": self.proxy,
                "message": self.message()}


@dataclass(frozen=True)
class ClaimVerdict:
    """One direction claim checked. gap > 0 means `recipe` is better; passed is None when a side is missing, or
    when the claim is a finding (its seeds did not decide the direction: reported, never enforced).

    A paper claim passes when gap >= margin. A claim set on per-seed gaps that stands passes when the gap falls
    where its seeds' gaps fell, widened as the spread tier widens (harness.spread.bounds: a seed or a kind of
    machine cannot fail it, a broken recipe can); [low, high] is that interval."""
    dataset: str
    metric: str
    recipe: str
    baseline: str
    direction: str
    margin: float
    gap: float | None
    paper_gap: float
    source: str
    passed: bool | None
    proxy: bool
    claim: Claim = field(repr=False, compare=False)
    upstream: str | None = None
    low: float | None = None
    high: float | None = None

    @property
    def mode(self) -> str:
        """"margin" (a paper claim), "regression" (a standing claim set on seeds) or "finding" (not standing)."""
        decision = self.claim.decision
        return "margin" if decision is None else "regression" if decision.stands else "finding"

    @property
    def status(self) -> str:
        if self.gap is None:
            return "not measured"
        return "finding" if self.passed is None else "pass" if self.passed else "fail"

    def message(self) -> str:
        recipe, baseline = self.claim.sides()
        if self.direction == "higher":
            head = f"{recipe} beats {baseline} on {self.metric}"
        else:
            head = f"{recipe} has lower {self.metric} than {baseline}"
        if self.mode == "margin":
            context = f"needs >= {self.margin:.2f}"
        else:
            context = f"set on seeds {', '.join(map(str, self.claim.seeds))}: {self.claim.decision.text()}"
            if self.mode == "regression":
                context += f"; needs a gap in [{self.low:.4g}, {self.high:.4g}]"
        context += f"; paper {self.paper_gap:.2f}; source: {self.source}"
        if self.proxy:
            context += _proxy_text(self.claim.proxy_unless_upstream, self.upstream)
        if self.gap is None:
            return f"{self.dataset}: claim '{head}' not measured ({context})"
        outcome = "finding, not enforced" if self.mode == "finding" else "ok" if self.passed else "FAILED"
        return f"{self.dataset}: {head} by {self.gap:.4g} ({outcome}: {context})"

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "metric": self.metric, "recipe": self.recipe, "baseline": self.baseline,
                "direction": self.direction, "margin": self.margin, "gap": self.gap, "paper_gap": self.paper_gap,
                "source": self.source, "passed": self.passed, "proxy": self.proxy, "mode": self.mode,
                "message": self.message()}


# ---------------------------------------------------------------- checking

def _mean(metrics: Mapping, key: str) -> float | None:
    if key not in metrics:
        return None
    stat = metrics[key]
    mean = stat.get("mean") if isinstance(stat, Mapping) else getattr(stat, "mean", None)
    if mean is None:
        return None
    if isinstance(mean, bool) or not isinstance(mean, (int, float)):
        raise HarnessError(f"metric {key!r}: expected a Stat with a numeric 'mean', got {stat!r}")
    return float(mean)


def check(bands: BandFile | Iterable[Band], dataset: str, recipe: str, score: str, metrics: Mapping,
          upstream: str | None = None) -> list[Verdict]:
    """Verdicts of the bands for this (dataset, recipe, score), in file order.

    `metrics`: Report.metrics ({key: {"mean", "std", "n"}}); `upstream`: the
    upstream dataset the fine-tuned model was pre-trained on (None for scratch).
    A NaN measurement fails. Call this for `paper` profile runs only.
    """
    if not isinstance(metrics, Mapping):
        raise HarnessError(f"metrics must be a mapping of metric key -> Stat, got {type(metrics).__name__}")
    verdicts = []
    for band in bands.bands if isinstance(bands, BandFile) else bands:
        if (band.dataset, band.recipe, band.score) != (dataset, recipe, score):
            continue
        measured = _mean(metrics, band.metric)
        passed = None if measured is None else band.low <= measured <= band.high
        verdicts.append(Verdict(band.metric, measured, band.low, band.high, band.value, band.source, passed,
                                _is_proxy(band.proxy_unless_upstream, upstream), band, upstream))
    return verdicts


def check_claims(claims: BandFile | Iterable[Claim], dataset: str, results_by_recipe: Mapping[str, Mapping], *,
                 score: str | None = None, upstream: str | None = None,
                 baseline_results: Mapping[str, Mapping] | None = None) -> list[ClaimVerdict]:
    """Verdicts of the direction claims for `dataset`, given {recipe: Report.metrics}.

    `baseline_results`: {recipe: Report.metrics} of the baseline side, when it differs from `results_by_recipe`:
    needed by the claims that compare two scores (`baseline_score`; without it they are "not measured").

    `score`: only the claims about this score (None: all; the caller then passes
    metrics of the claims' score). A claim whose recipe or metric is missing is
    "not measured" (passed None).
    """
    verdicts = []
    for claim in claims.claims if isinstance(claims, BandFile) else claims:
        if claim.dataset != dataset or score not in (None, claim.score):
            continue
        ours = _mean(results_by_recipe.get(claim.recipe, {}), claim.metric)
        base = (baseline_results if baseline_results is not None
                else results_by_recipe if claim.baseline_score is None else {})
        theirs = _mean(base.get(claim.baseline, {}), claim.metric)
        gap = None
        if ours is not None and theirs is not None:
            gap = ours - theirs if claim.direction == "higher" else theirs - ours
        low = high = None
        if claim.decision is None:
            passed = None if gap is None else gap >= claim.margin
        else:
            low, high = spread.bounds(spread.summarize(claim.gaps), spread.tolerance_for(claim.metric))
            passed = None if gap is None or not claim.decision.stands else low <= gap <= high
        verdicts.append(ClaimVerdict(claim.dataset, claim.metric, claim.recipe, claim.baseline, claim.direction,
                                     claim.margin, gap, claim.paper_gap, claim.source, passed,
                                     _is_proxy(claim.proxy_unless_upstream, upstream), claim, upstream, low, high))
    return verdicts
