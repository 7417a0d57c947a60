"""Paper bands: load band files, check a run's metrics against them, explain a miss.

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

import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from harness import spread
from harness.errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

BANDS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "bands"


def default_dir() -> Path:
    """The band files the suite checks and the site shows: $HARNESS_BANDS_DIR (e.g. a fork's own bands), else
    benchmarks/bands."""
    return Path(os.environ.get("HARNESS_BANDS_DIR") or BANDS_DIR)


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
PAPERS = ("hendrycks2019", "jordahn2024", "hendrycks2019oe", "liu2020", "kumar2022")

_NAME = r"[a-z0-9][a-z0-9_.-]*"
# Under distribution shift (README "Conventions"): per corruption and severity, per severity, over all.
_SHIFT_METRICS = r"(?:accuracy|ece|rms|nll)"
_SHIFT_KEY = (rf"shift/(?:{_NAME}/[1-9][0-9]*|severity[1-9][0-9]*|mean)/{_SHIFT_METRICS}|distortion/(?:id|shift)")
_METRIC_KEY = re.compile(
    rf"(?:{'|'.join(map(re.escape, _ID_METRICS))}|ood/{_NAME}/(?:{'|'.join(map(re.escape, _OOD_METRICS))})"
    rf"|{_SHIFT_KEY})\Z"
)
_NAME_RE = re.compile(rf"{_NAME}\Z")


def is_metric_key(key: str) -> bool:
    """True when `key` follows the Report's metric key grammar (SPEC.md)."""
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


# ---------------------------------------------------------------- loading

_BAND_FIELDS = {
    "paper": str, "dataset": str, "recipe": str, "score": str, "metric": str, "value": float,
    "tolerance": float, "low": float, "high": float, "source": str, "rationale": str,
    "proxy_unless_upstream": str, "note": str,
}
_BAND_REQUIRED = ("paper", "dataset", "recipe", "score", "metric", "value", "source", "rationale")
_CLAIM_FIELDS = {
    "paper": str, "dataset": str, "score": str, "metric": str, "recipe": str, "baseline": str,
    "direction": str, "margin": float, "paper_gap": float, "source": str, "rationale": str,
    "proxy_unless_upstream": str, "note": str, "profiles": list, "baseline_score": str,
    "seeds": "seeds", "gaps": "gaps", "level": float,
}
_CLAIM_REQUIRED = tuple(k for k in _CLAIM_FIELDS if k not in (
    "proxy_unless_upstream", "note", "profiles", "baseline_score", "seeds", "gaps", "level", "margin"))
_NAMED = ("paper", "dataset", "recipe", "score", "baseline", "proxy_unless_upstream", "baseline_score")
_KINDS = {"band": (_BAND_FIELDS, _BAND_REQUIRED), "claim": (_CLAIM_FIELDS, _CLAIM_REQUIRED)}

_HEADER = re.compile(r"""\s*(\[\[?)\s*([A-Za-z0-9_.\-"' ]+?)\s*\]\]?\s*(?:#.*)?\Z""")
_KEY = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[.=]""")


@dataclass
class _Table:
    name: str
    array: bool
    line: int
    keys: dict[str, int] = field(default_factory=dict)

    def at(self, key: str) -> int:
        return self.keys.get(key, self.line)


def _scan(text: str) -> tuple[list[_Table], dict[str, int]]:
    """Line of every table header and of each key under it, plus the top-level keys.

    tomllib keeps no positions, so errors in a parsed table are located by this
    line scan. It only needs to recognise header lines and `key =` lines, so it
    skips the insides of multi-line strings and nothing else.
    """
    tables: list[_Table] = []
    top: dict[str, int] = {}
    open_quote = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quote:
            if open_quote in line:
                open_quote = None
            continue
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            tables.append(_Table(header.group(2).strip("\"'"), header.group(1) == "[[", number))
        elif key:
            name = next(g for g in key.groups() if g is not None)
            (tables[-1].keys if tables else top).setdefault(name, number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                open_quote = quote
                break
    return tables, top


def read_toml(path: str | Path, kind: str) -> tuple[dict, str]:
    """(parsed TOML, text) of a `kind` file ("band file", "model entry"); unreadable or invalid -> HarnessError
    '<file>:<line>: message'."""
    where = _Located(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        where.fail(None, f"{kind} not found")
    except (OSError, UnicodeDecodeError) as exc:
        where.fail(None, f"cannot read {kind}: {exc}")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        where.fail(int(found.group(1)) if found else None, f"TOML syntax error: {exc}")


class _Located:
    """Raises HarnessError as '<file>:<line>: <message>'."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int | None, message: str) -> NoReturn:
        raise HarnessError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


def _label(kind: str, index: int, entry: Mapping) -> str:
    parts = [str(entry[k]) for k in ("dataset", "recipe", "baseline", "score", "metric")
             if isinstance(entry.get(k), str)]
    return f"{kind} #{index + 1}" + (f" ({' '.join(parts)})" if parts else "")


def _check_entry(kind: str, index: int, entry: Mapping, table: _Table, where: _Located) -> None:
    fields, required = _KINDS[kind]
    label = _label(kind, index, entry)
    for key, value in entry.items():
        line = table.at(key)
        if key not in fields:
            where.fail(line, f"{label}: unknown field {key!r} (expected one of: {', '.join(fields)})")
        if fields[key] is str:
            ok, wanted = isinstance(value, str) and value.strip() != "", "a non-empty string"
        elif fields[key] is list:
            ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) and _NAME_RE.match(v)
                                                                  for v in value)
            wanted = "a non-empty list of profile names"
        elif fields[key] == "seeds":
            ok = isinstance(value, list) and bool(value) and len(set(value)) == len(value) and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value)
            wanted = "a non-empty list of distinct seeds (integers >= 0)"
        elif fields[key] == "gaps":
            ok = isinstance(value, list) and bool(value) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
            wanted = "a non-empty list of finite numbers"
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            wanted = "a finite number"
        if not ok:
            where.fail(line, f"{label}: field {key!r} must be {wanted}, got {value!r}")
    for key in required:
        if key not in entry:
            where.fail(table.line, f"{label}: missing field {key!r}")
    for key in _NAMED:
        if key in entry and not _NAME_RE.match(entry[key]):
            where.fail(table.at(key), f"{label}: {key} {entry[key]!r} is not a valid name "
                                        f"(lowercase letters, digits, '-', '_', '.')")
    if entry["paper"] not in PAPERS:
        where.fail(table.at("paper"), f"{label}: unknown paper {entry['paper']!r} (known: {', '.join(PAPERS)}; "
                                      "a new paper's tag goes into harness.bands.PAPERS)")
    if not is_metric_key(entry["metric"]):
        where.fail(table.at("metric"), f"{label}: unknown metric key {entry['metric']!r} (expected e.g. "
                                       "'accuracy', 'calib/rms', 'ood/<set>/auroc', 'ood/mean/aupr@ood')")


def _band(index: int, entry: Mapping, table: _Table, where: _Located) -> Band:
    _check_entry("band", index, entry, table, where)
    label = _label("band", index, entry)
    value = float(entry["value"])
    has_tol, has_bounds = "tolerance" in entry, ("low" in entry, "high" in entry)
    if has_tol and any(has_bounds):
        where.fail(table.at("tolerance"), f"{label}: give either 'tolerance' or 'low' and 'high', not both")
    if has_tol:
        if entry["tolerance"] < 0:
            where.fail(table.at("tolerance"), f"{label}: tolerance must be >= 0, got {entry['tolerance']}")
        low, high = value - entry["tolerance"], value + entry["tolerance"]
    elif all(has_bounds):
        low, high = float(entry["low"]), float(entry["high"])
        if not low <= value <= high:
            where.fail(table.at("low"), f"{label}: band [low, high] = [{low}, {high}] must contain value {value}")
    else:
        where.fail(table.line, f"{label}: missing field 'tolerance' (or both 'low' and 'high')")
    return Band(entry["paper"], entry["dataset"], entry["recipe"], entry["score"], entry["metric"], value,
                low, high, entry["source"], entry["rationale"], entry.get("proxy_unless_upstream"),
                entry.get("note"), where.path, table.line)


def _claim(index: int, entry: Mapping, table: _Table, where: _Located) -> Claim:
    _check_entry("claim", index, entry, table, where)
    label = _label("claim", index, entry)
    if entry["direction"] not in ("higher", "lower"):
        where.fail(table.at("direction"), f"{label}: direction must be 'higher' or 'lower' (which way is better), "
                                            f"got {entry['direction']!r}")
    if ("margin" in entry) == ("gaps" in entry):
        where.fail(table.at("margin"), f"{label}: give 'margin' (a paper claim) or 'seeds' and 'gaps' (a claim "
                                       f"measured over seeds, decided by its test), not both or neither")
    if entry.get("margin", 0) < 0:
        where.fail(table.at("margin"), f"{label}: margin must be >= 0, got {entry['margin']}")
    if entry.get("baseline_score") == entry["score"]:
        where.fail(table.at("baseline_score"), f"{label}: baseline_score equals score; leave it out")
    if entry["recipe"] == entry["baseline"] and "baseline_score" not in entry:
        where.fail(table.at("baseline"), f"{label}: recipe and baseline are both {entry['recipe']!r} "
                                         f"(set baseline_score to compare two scores on one model)")
    if ("seeds" in entry) != ("gaps" in entry) or len(entry.get("seeds", ())) != len(entry.get("gaps", ())):
        where.fail(table.at("gaps"), f"{label}: 'seeds' and 'gaps' go together, one gap per seed")
    if not 0.5 < entry.get("level", 0.95) < 1:
        where.fail(table.at("level"), f"{label}: level must be between 0.5 and 1, got {entry['level']}")
    return Claim(entry["paper"], entry["dataset"], entry["score"], entry["metric"], entry["recipe"],
                 entry["baseline"], entry["direction"], float(entry.get("margin", 0)), float(entry["paper_gap"]),
                 entry["source"], entry["rationale"], entry.get("proxy_unless_upstream"), entry.get("note"),
                 where.path, table.line, tuple(entry.get("profiles", ["paper"])), entry.get("baseline_score"),
                 tuple(entry.get("seeds", ())), tuple(float(g) for g in entry.get("gaps", ())),
                 float(entry.get("level", 0.95)))


def _band_key(b: Band) -> tuple:
    return (b.paper, b.dataset, b.recipe, b.score, b.metric)


def _claim_key(c: Claim) -> tuple:
    return (c.paper, c.dataset, c.score, c.metric, c.recipe, c.baseline, c.baseline_score)


def _no_duplicates(entries: Iterable, key, kind: str) -> None:
    seen: dict[tuple, Band | Claim] = {}
    for entry in entries:
        first = seen.setdefault(key(entry), entry)
        if first is not entry:
            raise HarnessError(f"{entry.path}:{entry.line}: duplicate {kind} for {' '.join(key(entry))} "
                               f"(first at {first.path}:{first.line})")


def _check_names(entries: Iterable, attr: str, known: Iterable[str] | None) -> None:
    if known is None:
        return
    known = set(known)
    for entry in entries:
        name = getattr(entry, attr)
        if name not in known:
            raise HarnessError(f"{entry.path}:{entry.line}: unknown {attr} {name!r} "
                               f"(known: {', '.join(sorted(known))})")


def load(path: str | Path, *, datasets: Iterable[str] | None = None,
         recipes: Iterable[str] | None = None, scores: Iterable[str] | None = None) -> BandFile:
    """Read and validate one band file; any problem -> HarnessError '<file>:<line>: <message>'.

    `datasets`, `recipes`, `scores`: the names the harness knows (its registries);
    when given, a band naming anything else is an error (a typo would otherwise
    make a band silently never apply).
    """
    where = _Located(str(path))
    data, text = read_toml(path, "band file")
    tables, top = _scan(text)
    for table in tables:
        if table.name in _KINDS and not table.array:
            where.fail(table.line, f"write [[{table.name}]], not [{table.name}]: one [[{table.name}]] table per entry")
        if table.name not in _KINDS:
            shown = f"[[{table.name}]]" if table.array else f"[{table.name}]"
            where.fail(table.line, f"unknown table {shown} (expected [[band]] or [[claim]])")
    for key in data:
        if key not in _KINDS or key in top:
            where.fail(top.get(key), f"unexpected top-level key {key!r}: write entries as [[band]] or [[claim]] tables")
    parsed: dict[str, list] = {}
    for kind, build in (("band", _band), ("claim", _claim)):
        entries = data.get(kind, [])
        located = [t for t in tables if t.name == kind]
        # Never drop an entry the scan missed: it gets no line number instead.
        located += [_Table(kind, True, 0)] * (len(entries) - len(located))
        parsed[kind] = [build(i, entry, table, where) for i, (entry, table) in enumerate(zip(entries, located))]
    result = BandFile(str(path), tuple(parsed["band"]), tuple(parsed["claim"]))
    _validate_set(result.bands, result.claims, datasets, recipes, scores)
    return result


def _validate_set(bands, claims, datasets, recipes, scores) -> None:
    _no_duplicates(bands, _band_key, "band")
    _no_duplicates(claims, _claim_key, "claim")
    _check_names([*bands, *claims], "dataset", datasets)
    _check_names([*bands, *claims], "score", scores)
    _check_names([c for c in claims if c.baseline_score], "baseline_score", scores)
    _check_names([*bands, *claims], "recipe", recipes)
    _check_names(claims, "baseline", recipes)


def load_all(directory: str | Path, *, datasets: Iterable[str] | None = None,
             recipes: Iterable[str] | None = None, scores: Iterable[str] | None = None) -> BandFile:
    """Every `*.toml` in `directory`, merged (duplicates across files are errors too)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HarnessError(f"{directory}: band directory not found")
    files = [load(p) for p in sorted(directory.glob("*.toml"))]
    bands = tuple(b for f in files for b in f.bands)
    claims = tuple(c for f in files for c in f.claims)
    _validate_set(bands, claims, datasets, recipes, scores)
    return BandFile(str(directory), bands, claims)


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
