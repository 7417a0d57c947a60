"""Result records -> a static leaderboard site (jinja2 templates in the repo's leaderboard/ folder).

Everything shown is computed here (table cells, plot coordinates); the templates only lay it out.
The same records always give byte-identical files: every iteration is sorted, floats have fixed
formats, and nothing depends on when or where the site is rendered.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

import harness
from harness.baselines import GATED_PROFILES
from harness.errors import HarnessError
from harness.store import Problem, read_records

SITE_SOURCE = Path(harness.__file__).resolve().parents[1] / "leaderboard"
STATIC_FILES = ("style.css", "sort.js")
DASH = "\u2014"
# Okabe-Ito colours (colour-blind safe, yellow left out: too faint on white); dashes tell apart sets past them.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3")


@dataclass(frozen=True)
class Column:
    key: str  # metric key, or the suffix after ood/<set>/ on the per-set table
    label: str
    title: str
    lower_is_better: bool = False


INDEX_COLUMNS = (
    Column("accuracy", "Accuracy", "In-distribution test accuracy (%)"),
    Column("ood/mean/auroc", "AUROC", "Mean over OOD sets of the AUROC (%)"),
    Column("ood/mean/aupr@ood", "AUPR", "Mean over OOD sets of the AUPR, OOD as positive (%)"),
    Column("ood/mean/fpr95@ood", "FPR95", "Mean over OOD sets of the FPR at 95% OOD recall (%)", True),
    Column("calib/rms", "RMS", "RMS calibration error (%)", True),
    Column("calib/mad", "MAD", "Mean absolute calibration error (%)", True),
    Column("calib/ece", "ECE", "Expected calibration error, 15 bins (%)", True),
    Column("calib/nll", "NLL", "Negative log-likelihood (nats)", True),
)
OOD_COLUMNS = (
    Column("auroc", "AUROC", "AUROC (%), the same in both conventions"),
    Column("aupr@ood", "AUPR", "AUPR with OOD as positive (%)"),
    Column("fpr95@ood", "FPR95", "ID flagged as OOD at 95% OOD recall (%)", True),
    Column("aupr@id", "AUPR", "AUPR with ID as positive (%)"),
    Column("fpr95@id", "FPR95", "OOD accepted at 95% ID recall (%)", True),
    Column("calib/rms", "RMS", "RMS calibration error, OOD counted as wrong (%)", True),
    Column("calib/mad", "MAD", "Mean absolute calibration error, OOD counted as wrong (%)", True),
    Column("calib/soft_f1", "Soft F1", "Soft F1 of confidence vs correctness, OOD counted as wrong (%)"),
)
ID_METRICS = (
    ("accuracy", "Accuracy (%)"),
    ("error_detection/auroc", "Error detection AUROC (%)"),
    ("calib/rms", "RMS calibration error (%)"),
    ("calib/mad", "MAD calibration error (%)"),
    ("calib/rms_all_bins", "RMS calibration error, all bins (%)"),
    ("calib/mad_all_bins", "MAD calibration error, all bins (%)"),
    ("calib/soft_f1", "Soft F1 (%)"),
    ("calib/ece", "ECE, 15 bins (%)"),
    ("calib/ece10", "ECE, 10 bins (%)"),
    ("calib/adaptive_ece", "Adaptive ECE (%)"),
    ("calib/nll", "NLL (nats)"),
    ("calib/brier", "Brier score"),
)
PROVENANCE_FIELDS = ("git_commit", "git_dirty", "harness_version", "python", "torch", "cuda", "device",
                     "hostname", "platform", "time_utc")


# ---------------------------------------------------------------- numbers and cells

def _decimals(key: str) -> int:
    return 4 if key.endswith("brier") else 3 if key.endswith("nll") else 2


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _digits(number: float, decimals: int) -> str:
    """Fixed decimals; a huge value (a valid record can hold an NLL of 1e300) in exponent form, not 300 digits."""
    return f"{number:.{decimals}f}" if abs(number) < 1e9 else f"{number:.{decimals}e}"


def _fmt(value: object, decimals: int) -> str:
    number = _number(value)
    return DASH if number is None else _digits(number, decimals)


def _text(value: object) -> str:
    """Any JSON value as display text; containers as canonical JSON."""
    if value is None:
        return DASH
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Mark:
    """A band on a shown number: the paper's value and whether the number landed inside the band."""
    paper: str
    status: str  # "pass" | "fail" | "unchecked"
    title: str


@dataclass(frozen=True)
class Cell:
    text: str
    std: str = ""
    sort: str = ""
    status: str = ""
    marks: tuple[Mark, ...] = ()


def _status(passed: object) -> str:
    return "pass" if passed is True else "fail" if passed is False else "unchecked"


def _cell(metrics: dict, key: str, bands: list[dict]) -> Cell:
    digits = _decimals(key)
    marks = tuple(
        Mark(paper=_fmt(b.get("paper_value"), digits).replace(DASH, ""), status=_status(b.get("passed")),
             title=f"band [{_fmt(b.get('low'), digits)}, {_fmt(b.get('high'), digits)}]"
                   f"{' (proxy)' if b.get('proxy') else ''}: {_status(b.get('passed'))}; source: {_text(b.get('source'))}")
        for b in bands if b.get("metric") == key)
    status = "fail" if any(m.status == "fail" for m in marks) else "pass" if marks and all(
        m.status == "pass" for m in marks) else ""
    stat = _dict(metrics.get(key))
    mean, std, n = _number(stat.get("mean")), _number(stat.get("std")), stat.get("n")
    if mean is None:
        return Cell(DASH, status=status, marks=marks)
    shows_std = isinstance(n, int) and n > 1 and std is not None
    return Cell(_digits(mean, digits), _digits(std, digits) if shows_std else "", repr(mean), status, marks)


@dataclass(frozen=True)
class Badge:
    status: str  # pass | fail | unchecked | proxy
    text: str
    title: str = ""


@dataclass(frozen=True)
class GateLine:
    """One gate of a record: its name, its verdict counts as badges, and a note (metrics checked, or why not)."""
    name: str  # "bands" | "baseline" | "not gated"
    badges: tuple[Badge, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Gate:
    """Which gate decided whether a record passes: the paper bands, the regression baseline, or none (and why)."""
    lines: tuple[GateLine, ...]
    sort: str  # pass rate over the deciding verdicts, "" when there are none


def _verdicts(record: dict, name: str) -> list[dict] | None:
    value = _dict(record.get("verdicts")).get(name)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _gate(record: dict) -> Gate:
    """The gate verdicts the way harness.runner.failures applies them: non-proxy band misses fail a case (paper
    profile), baseline misses or a missing baseline entry fail it (CPU profiles) unless the record says why the
    baseline does not gate it (verdicts.not_gated)."""
    profile = _text(record.get("profile"))
    bands, baseline = _verdicts(record, "bands") or [], _verdicts(record, "baseline")
    not_gated = _dict(record.get("verdicts")).get("not_gated")
    lines, passed, failed = [], 0, 0
    if bands:
        deciding = [b for b in bands if not b.get("proxy")]
        proxies = [b for b in bands if b.get("proxy")]
        ok, bad = sum(b.get("passed") is True for b in deciding), sum(b.get("passed") is False for b in deciding)
        unmeasured = len(deciding) - ok - bad
        proxy_misses = sum(b.get("passed") is False for b in proxies)
        badges = [Badge("pass", f"{ok} pass")] if ok else []
        badges += [Badge("fail", f"{bad} fail", "measured outside the paper's band")] if bad else []
        badges += [Badge("unchecked", f"{unmeasured} not measured", "the run has no such metric")] if unmeasured else []
        badges += [Badge("proxy", f"{len(proxies)} proxy",
                         f"model pre-trained on a proxy upstream: shown, never failing the case; "
                         f"{proxy_misses} of {len(proxies)} outside the band")] if proxies else []
        lines.append(GateLine("bands", tuple(badges)))
        passed, failed = passed + ok, failed + bad
    if baseline is not None:
        bad = sum(v.get("passed") is not True for v in baseline)
        badge = Badge("fail", f"{bad} fail", "moved past the tolerance, or missing") if bad else Badge("pass", "pass")
        lines.append(GateLine("baseline", (badge,), f"{_plural(len(baseline), 'metric')} checked"))
        passed, failed = passed + len(baseline) - bad, failed + bad
    elif isinstance(not_gated, str) and not_gated.strip():
        lines.append(GateLine("not gated", note=not_gated))
    elif profile in GATED_PROFILES:
        lines.append(GateLine("baseline", (Badge("fail", "no entry"),),
                              f"this case is missing from benchmarks/baselines/{profile}.json"))
        failed += 1
    if not lines:
        lines.append(GateLine("not gated", note="no paper band applies to this case" if profile == "paper" else
                              f"profile '{profile}' is gated neither by paper bands nor by a regression baseline"))
    return Gate(tuple(lines), repr(passed / (passed + failed)) if passed + failed else "")


# ---------------------------------------------------------------- records -> views

def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "x"


def _ident(*parts: str) -> str:
    """A safe, deterministic file or anchor name: readable slug plus a short hash of the exact id."""
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]
    return f"{'--'.join(_slug(p) for p in parts)}-{digest}"


def _time(record: dict) -> str:
    return _text(_dict(record.get("provenance")).get("time_utc"))


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)


@dataclass(frozen=True)
class Run:
    time: str
    seed: str
    commit: str
    device: str
    accuracy: Cell
    auroc: Cell


@dataclass(frozen=True)
class Case:
    """The newest record of one (profile, case id) and how many runs it has."""
    record: dict
    runs: tuple[dict, ...]
    href: str  # relative to the site root

    @property
    def case_id(self) -> str:
        return _text(self.record["case_id"])

    @property
    def profile(self) -> str:
        return _text(self.record["profile"])

    @property
    def dataset(self) -> str:
        return _text(self.record["dataset"])

    @property
    def metrics(self) -> dict:
        return _dict(_dict(self.record.get("report")).get("metrics"))

    @property
    def bands(self) -> list[dict]:
        bands = _dict(self.record.get("verdicts")).get("bands")
        return [b for b in bands if isinstance(b, dict)] if isinstance(bands, list) else []

    @property
    def recipe(self) -> str:
        recipe = self.record.get("recipe")
        return _text(recipe.get("name") if isinstance(recipe, dict) else recipe)

    @property
    def upstream(self) -> str:
        up = _dict(_dict(self.record.get("recipe")).get("upstream"))
        return f"{_text(up.get('recipe'))} on {_text(up.get('dataset'))}" if up else ""

    @property
    def score(self) -> str:
        score = self.record.get("score")
        return _text(score.get("name") if isinstance(score, dict) else score)

    @property
    def score_params(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in _pairs(_dict(self.record.get("score")).get("params")))


def _cases(records: list[dict]) -> list[Case]:
    by_key: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        by_key.setdefault((_text(record["profile"]), _text(record["case_id"])), []).append(record)
    cases = []
    for (profile, case_id), runs in sorted(by_key.items()):
        runs.sort(key=lambda r: (_time(r), _canonical(r)), reverse=True)
        cases.append(Case(runs[0], tuple(runs), f"cases/{_ident(profile, case_id)}.html"))
    return cases


@dataclass(frozen=True)
class Row:
    case: Case
    cells: tuple[Cell, ...]
    gate: Gate


@dataclass(frozen=True)
class Group:
    profile: str
    dataset: str
    anchor: str
    models: str
    rows: tuple[Row, ...]


def _groups(cases: list[Case]) -> list[Group]:
    by_group: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        by_group.setdefault((case.profile, case.dataset), []).append(case)
    groups = []
    for (profile, dataset), members in sorted(by_group.items()):
        members.sort(key=lambda c: (c.recipe, c.score, c.case_id))
        rows = tuple(Row(c, tuple(_cell(c.metrics, col.key, c.bands) for col in INDEX_COLUMNS), _gate(c.record))
                     for c in members)
        models = ", ".join(sorted({_text(c.record.get("model")) for c in members}))
        groups.append(Group(profile, dataset, _ident(profile, dataset), models, rows))
    return groups


# ---------------------------------------------------------------- inline SVG charts

@dataclass(frozen=True)
class Shape:
    """One SVG primitive with ready-made attribute strings; `kind` picks the element in the template."""
    kind: str  # line | rect | polyline | text
    cls: str = ""
    x: str = ""
    y: str = ""
    x2: str = ""
    y2: str = ""
    width: str = ""
    height: str = ""
    points: str = ""
    stroke: str = ""
    dash: str = ""
    anchor: str = ""
    rotate: str = ""
    text: str = ""
    title: str = ""


@dataclass(frozen=True)
class Chart:
    label: str
    width: int
    height: int
    shapes: tuple[Shape, ...]


def _p(value: float) -> str:
    return f"{value:.2f}"


# Plot area of both charts: a unit square mapped to PLOT pixels, legend to the right.
LEFT, TOP, SIZE = 64, 16, 300
LEGEND_X = LEFT + SIZE + 24


def _sx(v: float) -> float:
    return LEFT + SIZE * v


def _sy(v: float, top: float = TOP, height: float = SIZE) -> float:
    return top + height * (1 - v)


def _frame(xlabel: str, ylabel: str, x_label_y: float) -> list[Shape]:
    shapes = []
    for i in range(6):
        v, label = i / 5, f"{i / 5:g}"
        shapes += [Shape("line", "grid", _p(_sx(v)), _p(TOP), _p(_sx(v)), _p(TOP + SIZE)),
                   Shape("line", "grid", _p(LEFT), _p(_sy(v)), _p(LEFT + SIZE), _p(_sy(v))),
                   Shape("text", "tick", _p(_sx(v)), _p(TOP + SIZE + 16), anchor="middle", text=label),
                   Shape("text", "tick", _p(LEFT - 8), _p(_sy(v) + 4), anchor="end", text=label)]
    shapes += [Shape("rect", "frame", _p(LEFT), _p(TOP), width=_p(SIZE), height=_p(SIZE)),
               Shape("text", "axis-label", _p(LEFT + SIZE / 2), _p(x_label_y), anchor="middle", text=xlabel),
               Shape("text", "axis-label", "0", "0", anchor="middle", text=ylabel,
                     rotate=f"translate(18 {_p(TOP + SIZE / 2)}) rotate(-90)")]
    return shapes


def _legend_line(i: int, text: str, stroke: str, dash: str, cls: str = "series") -> list[Shape]:
    y = TOP + 10 + 20 * i
    return [Shape("line", cls, _p(LEGEND_X), _p(y), _p(LEGEND_X + 24), _p(y), stroke=stroke, dash=dash),
            Shape("text", "legend", _p(LEGEND_X + 30), _p(y + 4), text=_shorten(text), title=text)]


def _legend_box(i: int, text: str, cls: str) -> list[Shape]:
    y = TOP + 10 + 20 * i
    return [Shape("rect", cls, _p(LEGEND_X + 4), _p(y - 6), width="16.00", height="12.00"),
            Shape("text", "legend", _p(LEGEND_X + 30), _p(y + 4), text=text)]


def _shorten(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _unit_values(values: object) -> list[float] | None:
    if not isinstance(values, list):
        return None
    numbers = [_number(v) for v in values]
    return numbers if all(n is not None and -1e-9 <= n <= 1 + 1e-9 for n in numbers) else None


def roc_chart(roc: object) -> Chart | None:
    """ROC curves of every OOD set in one chart (OOD as positive); None when no curve is usable."""
    curves = []
    for name, curve in sorted(_dict(roc).items()):
        fpr, tpr = _unit_values(_dict(curve).get("fpr")), _unit_values(_dict(curve).get("tpr"))
        if fpr and tpr and len(fpr) == len(tpr) >= 2:
            curves.append((name, fpr, tpr))
    if not curves:
        return None
    shapes = _frame("False positive rate (ID flagged as OOD)", "True positive rate (OOD detected)", TOP + SIZE + 40)
    shapes.append(Shape("line", "chance", _p(_sx(0)), _p(_sy(0)), _p(_sx(1)), _p(_sy(1))))
    for i, (name, fpr, tpr) in enumerate(curves):
        stroke, dash = COLORS[i % len(COLORS)], DASHES[i // len(COLORS) % len(DASHES)]
        points = " ".join(f"{_p(_sx(x))},{_p(_sy(y))}" for x, y in zip(fpr, tpr))
        shapes.append(Shape("polyline", "series", points=points, stroke=stroke, dash=dash, title=name))
        shapes += _legend_line(i, name, stroke, dash)
    shapes += _legend_line(len(curves), "chance", "", "", "chance")
    height = max(TOP + SIZE + 52, TOP + 20 * (len(curves) + 1) + 10)
    return Chart("ROC curves, OOD as positive", LEGEND_X + 200, height, tuple(shapes))


def reliability_chart(bins: object) -> Chart | None:
    """Accuracy per confidence bin with its gap to the bin's mean confidence, and a strip of bin counts."""
    usable = []
    for b in bins if isinstance(bins, list) else []:
        b = _dict(b)
        lo, hi, count = _number(b.get("lo")), _number(b.get("hi")), b.get("count")
        if lo is None or hi is None or not 0 <= lo < hi <= 1 or not isinstance(count, int) or count < 0:
            continue
        usable.append((lo, hi, _number(b.get("confidence")), _number(b.get("accuracy")), count))
    if not usable:
        return None
    strip_top, strip_height = TOP + SIZE + 28, 48
    shapes = _frame("Confidence", "Accuracy", strip_top + strip_height + 36)
    shapes.append(Shape("line", "chance", _p(_sx(0)), _p(_sy(0)), _p(_sx(1)), _p(_sy(1))))
    top_count = max(c for *_, c in usable) or 1
    for lo, hi, conf, acc, count in usable:
        x, w = _p(_sx(lo) + 1), _p(SIZE * (hi - lo) - 2)
        tip = f"{lo:.2f}\u2013{hi:.2f}: {count} samples"
        if acc is not None:
            shapes.append(Shape("rect", "bar-acc", x, _p(_sy(acc)), width=w, height=_p(SIZE * acc),
                                title=f"{tip}, accuracy {acc:.3f}"))
            if conf is not None:
                shapes.append(Shape("rect", "bar-gap", x, _p(_sy(max(acc, conf))), width=w,
                                    height=_p(SIZE * abs(conf - acc)), title=f"{tip}, confidence {conf:.3f}"))
        h = strip_height * count / top_count
        shapes.append(Shape("rect", "bar-count", x, _p(strip_top + strip_height - h), width=w, height=_p(h),
                            title=tip))
    shapes += [Shape("line", "axis", _p(LEFT), _p(strip_top + strip_height), _p(LEFT + SIZE),
                     _p(strip_top + strip_height)),
               Shape("text", "tick", _p(LEFT - 8), _p(strip_top + 8), anchor="end", text=str(top_count)),
               Shape("text", "tick", _p(LEFT - 8), _p(strip_top + strip_height), anchor="end", text="0"),
               Shape("text", "tick", _p(LEFT + SIZE + 6), _p(strip_top + strip_height), text="samples")]
    shapes += (_legend_box(0, "Accuracy", "bar-acc") + _legend_box(1, "Gap to confidence", "bar-gap")
               + _legend_line(2, "Perfect calibration", "", "", "chance") + _legend_box(3, "Samples per bin",
                                                                                        "bar-count"))
    return Chart("Reliability diagram", LEGEND_X + 200, strip_top + strip_height + 48, tuple(shapes))


# ---------------------------------------------------------------- per-case page

@dataclass(frozen=True)
class OodRow:
    name: str
    cells: tuple[Cell, ...]
    n_samples: str
    n_available: str


def _ood_rows(case: Case) -> list[OodRow]:
    sets = _dict(_dict(case.record.get("report")).get("ood_sets"))
    named = {k.split("/")[1] for k in case.metrics if k.startswith("ood/") and k.count("/") >= 2}
    rows = []
    for name in sorted((set(sets) | named) - {"mean"}) + (["mean"] if "mean" in named else []):
        info = _dict(sets.get(name))
        cells = tuple(_cell(case.metrics, f"ood/{name}/{col.key}", case.bands) for col in OOD_COLUMNS)
        rows.append(OodRow(name, cells, _text(info.get("n_samples")) if info else DASH,
                           _text(info.get("n_available")) if info else DASH))
    return rows


def _id_metrics(case: Case) -> list[tuple[str, str, Cell]]:
    known = dict(ID_METRICS)
    extra = sorted(k for k in case.metrics if not k.startswith("ood/") and k not in known)
    return [(key, known.get(key, key), _cell(case.metrics, key, case.bands))
            for key in [k for k, _ in ID_METRICS if k in case.metrics] + extra]


def _pairs(mapping: object, order: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    mapping = _dict(mapping)
    keys = [k for k in order if k in mapping] + sorted(k for k in mapping if k not in order)
    return [(k, _text(mapping[k])) for k in keys]


def _baseline_row(verdict: dict) -> dict:
    """A baseline verdict with its numbers in the metric's decimals, like every other table."""
    metric = _text(verdict.get("metric"))
    digits = _decimals(metric)
    measured, expected = _number(verdict.get("measured")), _number(verdict.get("expected"))
    moved = DASH if measured is None or expected is None else f"{'+' if measured >= expected else ''}" \
        f"{_digits(measured - expected, digits)}"
    return {"metric": metric, "status": _status(verdict.get("passed")), "measured": _fmt(measured, digits),
            "expected": _fmt(expected, digits), "tolerance": _fmt(verdict.get("tolerance"), digits), "moved": moved,
            "message": _text(verdict.get("message")) if verdict.get("message") is not None else ""}


def _case_context(case: Case) -> dict:
    record, report = case.record, _dict(case.record.get("report"))
    baseline = sorted(_verdicts(record, "baseline") or [], key=lambda b: (_text(b.get("metric")), _canonical(b)))
    runs = tuple(Run(_time(r), _text(r.get("seed")), _text(_dict(r.get("provenance")).get("git_commit"))[:12],
                     _text(_dict(r.get("provenance")).get("device")),
                     _cell(_dict(_dict(r.get("report")).get("metrics")), "accuracy", []),
                     _cell(_dict(_dict(r.get("report")).get("metrics")), "ood/mean/auroc", []))
                 for r in case.runs)
    return {
        "case": case,
        "summary": [("profile", case.profile), ("paper", _text(record.get("paper"))),
                    ("in-distribution dataset", case.dataset), ("model", _text(record.get("model"))),
                    ("recipe", case.recipe), ("upstream", case.upstream or DASH),
                    ("score", f"{case.score} ({case.score_params})" if case.score_params else case.score),
                    ("seed", _text(record.get("seed"))), ("OOD repetitions", _text(report.get("num_to_avg"))),
                    ("evaluation seed", _text(report.get("seed"))), ("ID test samples", _text(report.get("n_id")))],
        "id_metrics": _id_metrics(case),
        "ood_columns": OOD_COLUMNS,
        "ood_rows": _ood_rows(case),
        "roc": roc_chart(_dict(report.get("curves")).get("roc")),
        "reliability": reliability_chart(_dict(report.get("curves")).get("reliability")),
        "bands": [{"metric": _text(b.get("metric")), "status": _status(b.get("passed")),
                   "measured": _fmt(b.get("measured"), _decimals(_text(b.get("metric")))),
                   "low": _fmt(b.get("low"), _decimals(_text(b.get("metric")))),
                   "high": _fmt(b.get("high"), _decimals(_text(b.get("metric")))),
                   "paper": _fmt(b.get("paper_value"), _decimals(_text(b.get("metric")))),
                   "proxy": _text(bool(b.get("proxy"))), "source": _text(b.get("source"))}
                  for b in sorted(case.bands, key=_canonical)],
        "gate": _gate(record),
        "baseline": [_baseline_row(b) for b in baseline],
        "settings": _pairs(_dict(record.get("recipe")).get("settings")),
        "timings": _pairs(record.get("timings")),
        "provenance": _pairs(record.get("provenance"), PROVENANCE_FIELDS),
        "runs": runs,
    }


# ---------------------------------------------------------------- rendering

@dataclass(frozen=True)
class Site:
    index: Path
    cases: int
    records: int
    problems: tuple[Problem, ...]


def _environment() -> jinja2.Environment:
    templates = SITE_SOURCE / "templates"
    if not (templates / "index.html.j2").is_file():
        raise HarnessError(f"leaderboard templates not found in {templates}: the leaderboard needs a source or "
                           "editable install of the harness (pip install -e .)")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _shown_path(path: Path, results_dir: Path) -> str:
    """Problem paths relative to the results folder, so the page does not depend on where it was rendered."""
    try:
        return Path(path).resolve().relative_to(results_dir.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def build_site(results_dir: Path, out_dir: Path) -> Site:
    """Render index.html, one page per case and the static files into out_dir."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise HarnessError(f"results directory {results_dir} does not exist (run `pytest benchmarks` first, "
                           "or pass --results DIR)")
    env = _environment()
    records, problems = read_records(results_dir)
    problems = sorted(problems, key=lambda p: _shown_path(p.path, results_dir))
    cases = _cases(records)
    index = env.get_template("index.html.j2").render(
        root="", version=harness.__version__, columns=INDEX_COLUMNS, groups=_groups(cases),
        n_records=len(records), n_cases=len(cases),
        problems=[(_shown_path(p.path, results_dir), p.reason) for p in problems])
    _write(out_dir / "index.html", index)
    page = env.get_template("case.html.j2")
    written = set()
    for case in cases:
        _write(out_dir / case.href, page.render(root="../", version=harness.__version__, **_case_context(case)))
        written.add(Path(case.href).name)
    for stale in sorted((out_dir / "cases").glob("*.html")):
        if stale.name not in written:
            stale.unlink()
    for name in STATIC_FILES:
        _write(out_dir / "static" / name, (SITE_SOURCE / "static" / name).read_text(encoding="utf-8"))
    return Site(out_dir / "index.html", len(cases), len(records), tuple(problems))
