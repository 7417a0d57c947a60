"""Result records -> a static leaderboard site (jinja2 templates and static files in this package).

Pages: the index (a table per profile and dataset, the paper profile first, the CPU profiles labelled as
regression gates), a page per case, a page per paper with bands (harness.site.findings,
harness.site.paper_tables), the recipe x score matrix, the claims, the metric conventions and, when shift records
exist, the shift view (harness.site.shift_view). Everything shown is computed in Python; the templates only lay it
out. The same records always give byte-identical files: every iteration is sorted, floats have fixed formats, and
nothing depends on when or where the site is rendered.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

import harness
from harness import band_files
from harness import bands as hbands
from harness.errors import HarnessError
from harness.site import findings
from harness.site.cells import (DASH, Cell, Column, as_dict, as_list, canonical, cell, decimals, digits, fmt,
                                number, plural, status, text)
from harness.site.charts import reliability_chart, roc_chart
from harness.site.records import Case, cases_of, grouped, ident, metrics_of, ood_set_names, profile_kind, time_of
from harness.site.shift_view import SUMMARY as SHIFT_SUMMARY
from harness.site.shift_view import shift_groups
from harness.site.ssl_view import study_groups
from harness.spread import GATED_PROFILES, outcomes
from harness.store import Problem, read_records

# The package whose templates/ and static/ folders (package data) the site is rendered from.
PACKAGE = __package__
STATIC_FILES = ("style.css", "sort.js")

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


# ---------------------------------------------------------------- gates

@dataclass(frozen=True)
class Badge:
    status: str  # pass | fail | unchecked | proxy
    text: str
    title: str = ""


@dataclass(frozen=True)
class GateLine:
    """One gate of a record: its name, its verdict counts as badges, and a note (metrics checked, or why not)."""
    name: str  # "bands" | "gated (exact+spread)" (the baseline tiers that gated) | "baseline" (no entry) | "not gated"
    badges: tuple[Badge, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Gate:
    """Which gate decided whether a record passes: the paper bands, the regression baseline, or none (and why)."""
    lines: tuple[GateLine, ...]
    sort: str  # pass rate over the deciding verdicts, "" when there are none


def _verdicts(record: dict, name: str) -> list[dict] | None:
    value = as_dict(record.get("verdicts")).get(name)
    return as_list(value) if isinstance(value, list) else None


def _tier_badge(o) -> str:
    """An exact tier fails on one metric ("2 fail"); the spread tier by quorum ("12/30 outside", or "pass")."""
    if o.tier == "exact":
        return f"{o.outside} fail" if o.failed else "pass"
    return f"{o.outside}/{o.total} outside" if o.failed else "pass" + (f" ({o.outside}/{o.total} outside)"
                                                                        if o.outside else "")


def _gate(record: dict) -> Gate:
    """The gate verdicts the way harness.runner.failures applies them: non-proxy band misses fail a case (paper
    profile), baseline misses or a missing baseline entry fail it (CPU profiles) unless the record says why the
    baseline does not gate it (verdicts.not_gated)."""
    profile = text(record.get("profile"))
    bands, baseline = _verdicts(record, "bands") or [], _verdicts(record, "baseline")
    not_gated = as_dict(record.get("verdicts")).get("not_gated")
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
        decided = outcomes(baseline)
        badges = tuple(Badge("fail" if o.failed else "pass", _tier_badge(o), o.text()) for o in decided)
        lines.append(GateLine(f"gated ({'+'.join(o.tier for o in decided)})", badges,
                              f"{plural(len(baseline), 'metric')} checked"))
        passed, failed = passed + sum(not o.failed for o in decided), failed + sum(o.failed for o in decided)
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


# ---------------------------------------------------------------- index

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
    sizes: str  # what the profile trains: model, data sizes, epochs (from the record's profile_source)
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class ProfileSection:
    kind: str  # harness.site.records.PROFILE_KINDS
    groups: tuple[Group, ...]


def _sizes(record: dict) -> str:
    """What the profile trains and tests, in one line: the data caps, the test set, the epochs
    (profile_source.content and report.n_id of the record)."""
    content = as_dict(as_dict(record.get("profile_source")).get("content"))
    n_id = as_dict(record.get("report")).get("n_id")
    parts = []
    if content.get("train_limit"):
        parts.append(f"training set capped at {text(content['train_limit'])} images")
    if isinstance(n_id, int):
        parts.append(f"{n_id} test images")
    epochs = as_dict(content.get("epochs"))
    if epochs:
        parts.append("epochs " + ", ".join(f"{k} {text(epochs[k])}" for k in sorted(epochs)))
    return "; ".join(parts)


def _sections(cases: list[Case]) -> list[ProfileSection]:
    sections: dict[str, list[Group]] = {}
    for profile, dataset, members in grouped(cases):
        members.sort(key=lambda c: (c.recipe, c.score, c.case_id))
        rows = tuple(Row(c, tuple(cell(c.metrics, col.key, c.bands) for col in INDEX_COLUMNS), _gate(c.record))
                     for c in members)
        models = ", ".join(sorted({text(c.record.get("model")) for c in members}))
        # Every case of a group runs one profile: the first one that stores its profile describes them all.
        sizes = _sizes(next((c.record for c in members if c.record.get("profile_source")), members[0].record))
        sections.setdefault(profile_kind(profile), []).append(
            Group(profile, dataset, ident(profile, dataset), models, sizes, rows))
    return [ProfileSection(kind, tuple(groups)) for kind, groups in sections.items()]


# ---------------------------------------------------------------- per-case page
# A case page shows its newest run in full (the index shows the mean over seeds); the seeds are listed apart.

@dataclass(frozen=True)
class Run:
    time: str
    seed: str
    commit: str
    device: str
    accuracy: Cell
    auroc: Cell


def _run(record: dict) -> Run:
    provenance = as_dict(record.get("provenance"))
    return Run(time_of(record), text(record.get("seed")), text(provenance.get("git_commit"))[:12],
               text(provenance.get("device")), cell(metrics_of(record), "accuracy", []),
               cell(metrics_of(record), "ood/mean/auroc", []))


@dataclass(frozen=True)
class OodRow:
    name: str
    cells: tuple[Cell, ...]
    n_samples: str
    n_available: str


def _ood_rows(case: Case) -> list[OodRow]:
    sets = as_dict(as_dict(case.record.get("report")).get("ood_sets"))
    metrics = metrics_of(case.record)
    named = ood_set_names(metrics)
    rows = []
    # A set the report lists but no key names (every metric undefined on it) still gets its row.
    for name in sorted((set(sets) | set(named)) - {"mean"}) + [n for n in named if n == "mean"]:
        info = as_dict(sets.get(name))
        cells = tuple(cell(metrics, f"ood/{name}/{col.key}", case.bands) for col in OOD_COLUMNS)
        rows.append(OodRow(name, cells, text(info.get("n_samples")) if info else DASH,
                           text(info.get("n_available")) if info else DASH))
    return rows


def _id_metrics(case: Case) -> list[tuple[str, str, Cell]]:
    known = dict(ID_METRICS)
    metrics = metrics_of(case.record)
    # Shift metrics (dozens of corruption x severity keys) have their own page.
    extra = sorted(k for k in metrics if not k.startswith(("ood/", "shift/")) and k not in known)
    return [(key, known.get(key, key), cell(metrics, key, case.bands))
            for key in [k for k, _ in ID_METRICS if k in metrics] + extra]


def _pairs(mapping: object, order: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    mapping = as_dict(mapping)
    keys = [k for k in order if k in mapping] + sorted(k for k in mapping if k not in order)
    return [(k, text(mapping[k])) for k in keys]


def _baseline_row(verdict: dict) -> dict:
    """A baseline verdict with its numbers in the metric's decimals, like every other table."""
    metric = text(verdict.get("metric"))
    places = decimals(metric)
    measured, expected = number(verdict.get("measured")), number(verdict.get("expected"))
    moved = DASH if measured is None or expected is None else f"{'+' if measured >= expected else ''}" \
        f"{digits(measured - expected, places)}"
    return {"metric": metric, "status": status(verdict.get("passed")), "measured": fmt(measured, places),
            "expected": fmt(expected, places), "tolerance": fmt(verdict.get("tolerance"), places), "moved": moved,
            "message": text(verdict.get("message")) if verdict.get("message") is not None else ""}


def _case_context(case: Case) -> dict:
    record, report = case.record, as_dict(case.record.get("report"))
    baseline = sorted(_verdicts(record, "baseline") or [], key=lambda b: (text(b.get("metric")), canonical(b)))
    return {
        "case": case,
        "summary": [("profile", case.profile), ("paper", text(record.get("paper"))),
                    ("in-distribution dataset", case.dataset), ("model", text(record.get("model"))),
                    ("recipe", case.recipe), ("upstream", case.upstream or DASH),
                    *([("loaded, not trained", case.loaded)] if case.loaded else []),
                    ("score", f"{case.score} ({case.score_params})" if case.score_params else case.score),
                    ("seed", text(record.get("seed"))), ("seeds with runs", case.seed_list), ("OOD repetitions", text(report.get("num_to_avg"))),
                    ("evaluation seed", text(report.get("seed"))), ("ID test samples", text(report.get("n_id")))],
        "id_metrics": _id_metrics(case),
        "ood_columns": OOD_COLUMNS,
        "ood_rows": _ood_rows(case),
        "roc": roc_chart(as_dict(report.get("curves")).get("roc")),
        "reliability": reliability_chart(as_dict(report.get("curves")).get("reliability")),
        "bands": [{"metric": text(b.get("metric")), "status": status(b.get("passed")),
                   "measured": fmt(b.get("measured"), decimals(text(b.get("metric")))),
                   "low": fmt(b.get("low"), decimals(text(b.get("metric")))),
                   "high": fmt(b.get("high"), decimals(text(b.get("metric")))),
                   "paper": fmt(b.get("paper_value"), decimals(text(b.get("metric")))),
                   "proxy": text(bool(b.get("proxy"))), "source": text(b.get("source"))}
                  for b in sorted(case.bands, key=canonical)],
        "gate": _gate(record),
        "baseline": [_baseline_row(b) for b in baseline],
        "settings": _pairs(as_dict(record.get("recipe")).get("settings")),
        "timings": _pairs(record.get("timings")),
        "provenance": _pairs(record.get("provenance"), PROVENANCE_FIELDS),
        "runs": tuple(_run(r) for r in case.runs),
        "seeds": tuple(_run(r) for r in case.seeds) if len(case.seeds) > 1 else (),
        "seed_mean": (cell(case.metrics, "accuracy", []), cell(case.metrics, "ood/mean/auroc", [])),
        "shift": any(k.startswith("shift/") for k in metrics_of(record)),
    }


# ---------------------------------------------------------------- rendering

@dataclass(frozen=True)
class Site:
    index: Path
    cases: int
    records: int
    problems: tuple[Problem, ...]


def _environment() -> jinja2.Environment:
    try:
        loader = jinja2.PackageLoader(PACKAGE, "templates")
    except ValueError:  # the folder is missing: an install that left out the package data
        raise HarnessError(f"leaderboard templates not found in the package {PACKAGE}: reinstall the harness "
                           "with its package data (pip install .)") from None
    return jinja2.Environment(loader=loader, autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _shown_path(path: Path, results_dir: Path) -> str:
    """Problem paths relative to the results folder, so the page does not depend on where it was rendered."""
    try:
        return Path(path).resolve().relative_to(results_dir.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8"))


def _band_file(bands_dir: Path | None) -> hbands.BandFile | None:
    """The band files the suite checks; None when the folder is absent (an installed harness without benchmarks/).
    A malformed band file stops the build, as it stops the suite."""
    directory = Path(bands_dir) if bands_dir else band_files.default_dir()
    return band_files.load_all(directory) if directory.is_dir() else None


# Pages the build may or may not write; a page the records no longer call for is removed on the next build.
OPTIONAL_PAGES = ("shift.html", "ssl.html")
PAGE_FOLDERS = ("cases", "papers")


def build_site(results_dir: Path, out_dir: Path, bands_dir: Path | None = None) -> Site:
    """Render the index, a page per case, per paper, the matrix, claims, conventions and shift pages, and the
    static files into out_dir. `bands_dir`: the band files (default $HARNESS_BANDS_DIR, else benchmarks/bands)."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise HarnessError(f"results directory {results_dir} does not exist (run `pytest benchmarks` first, "
                           "or pass --results DIR)")
    env = _environment()
    band_file = _band_file(bands_dir)
    records, problems = read_records(results_dir)
    problems = sorted(problems, key=lambda p: _shown_path(p.path, results_dir))
    cases = cases_of(records)
    papers = findings.paper_pages(band_file, cases)
    shift = shift_groups(cases)
    ssl = study_groups(cases)
    nav = ([("index.html", "Leaderboard")] + [(p.href, f"Paper: {p.tag}") for p in papers]
           + [("matrix.html", "Recipe \u00d7 score"), ("claims.html", "Claims"), ("conventions.html", "Conventions")]
           + ([("shift.html", "Shift")] if shift else []) + ([("ssl.html", "SSL study")] if ssl else []))
    written: set[str] = set()

    def render(path: str, template: str, **context) -> None:
        root = "../" * path.count("/")
        page = env.get_template(template).render(root=root, version=harness.__version__, nav=nav, here=path,
                                                 **context)
        _write(out_dir / path, page)
        written.add(path)

    render("index.html", "index.html.j2", columns=INDEX_COLUMNS, sections=_sections(cases), n_records=len(records),
           n_cases=len(cases), problems=[(_shown_path(p.path, results_dir), p.reason) for p in problems])
    for case in cases:
        render(case.href, "case.html.j2", **_case_context(case))
    for paper in papers:
        render(paper.href, "paper.html.j2", paper=paper, status_labels=findings.STATUS_LABELS)
    render("matrix.html", "matrix.html.j2", groups=findings.matrix(cases))
    render("claims.html", "claims.html.j2", sections=findings.claims(band_file, cases))
    render("conventions.html", "conventions.html.j2", groups=findings.conventions(cases),
           definitions=findings.DEFINITIONS)
    if shift:
        render("shift.html", "shift.html.j2", groups=shift, summary_columns=SHIFT_SUMMARY)
    if ssl:
        render("ssl.html", "ssl.html.j2", groups=ssl)
    stale = [out_dir / name for name in OPTIONAL_PAGES] + [p for folder in PAGE_FOLDERS
                                                           for p in sorted((out_dir / folder).glob("*.html"))]
    for path in stale:
        if path.is_file() and path.relative_to(out_dir).as_posix() not in written:
            path.unlink()
    for name in STATIC_FILES:
        static = resources.files(PACKAGE).joinpath("static", name)
        _write(out_dir / "static" / name, static.read_text(encoding="utf-8"))
    return Site(out_dir / "index.html", len(cases), len(records), tuple(problems))
