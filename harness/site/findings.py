"""The leaderboard's reading views of the cases: paper tables side by side, recipe x score matrix, claims, metric
conventions. Each function returns plain data for one template; nothing here renders HTML.

Every view shows whatever records exist: a missing case or metric is "not measured", never an error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness import bands as hbands
from harness.site.cells import DASH, SEEDS, Cell, Column, cell, decimals, digits, fmt, number
from harness.site.paper_tables import LAYOUTS, Col, Paper, Row, Section, Table
from harness.site.records import Case, grouped, ident, ood_set_names, profile_kind, profile_order

# ---------------------------------------------------------------- choosing cases


def _pick(cases: list[Case], recipe: str, prefer_paper: str = "") -> Case | None:
    """The case of a recipe among cases of one (profile, dataset, score): the one whose case id names the recipe
    alone (not a variant such as wise_ft-alpha0.5), then one from the paper's own group, then by case id."""
    found = [c for c in cases if c.recipe == recipe]
    found.sort(key=lambda c: (c.variant != recipe, c.record.get("paper") != prefer_paper, c.case_id))
    return found[0] if found else None


def _index(cases: list[Case]) -> dict[tuple[str, str, str], list[Case]]:
    """Cases by (profile, dataset, score)."""
    out: dict[tuple[str, str, str], list[Case]] = {}
    for case in cases:
        out.setdefault((case.profile, case.dataset, case.score), []).append(case)
    return out


def _mean(case: Case | None, key: str) -> float | None:
    return None if case is None else number(case.metrics.get(key, {}).get("mean"))


# ---------------------------------------------------------------- paper pages

STATUS_LABELS = {"in": "in band", "out": "out of band", "proxy": "proxy", "none": "not measured",
                 "unbanded": "measured, no band", "blank": ""}


@dataclass(frozen=True)
class PaperCell:
    published: str
    measured: str
    std: str
    status: str  # a key of STATUS_LABELS
    label: str
    title: str  # the band, its source, and where the measured value comes from
    href: str  # the case page, "" when not measured


@dataclass(frozen=True)
class PaperRow:
    label: str
    cells: tuple[PaperCell, ...]


@dataclass(frozen=True)
class PaperTableView:
    name: str
    title: str
    tag: str
    groups: tuple[tuple[str, int], ...]  # column group headers with their spans
    columns: tuple[str, ...]
    sections: tuple[tuple[str, tuple[PaperRow, ...]], ...]
    note: str
    counts: tuple[tuple[str, int], ...]  # cells per status, for the table's summary line


@dataclass(frozen=True)
class PaperPage:
    tag: str
    title: str
    summary: str
    href: str
    tables: tuple[PaperTableView, ...]


def _paper_cell(score: str, dataset: str, recipe: str, key: str, published: float | None,
                printed: int | None, band: hbands.Band | None, case: Case | None) -> PaperCell:
    places = decimals(key)
    shown = DASH if published is None else digits(published, places if printed is None else printed)
    stat = case.metrics.get(key, {}) if case else {}
    mean = number(stat.get("mean"))
    where = f"{dataset} / {recipe} / {score} / {key}"
    if band is None and published is None:
        return PaperCell("", "", "", "blank", "", "", "")
    band_text = "no band" if band is None else (
        f"band [{band.low:.2f}, {band.high:.2f}] (paper {band.value:g}); source: {band.source}")
    if mean is None:
        why = "no paper-profile run of this case" if case is None else f"the run of {case.case_id} has no {key}"
        return PaperCell(shown, DASH, "", "none", STATUS_LABELS["none"], f"{where}: {why}; {band_text}", "")
    n, std = stat.get("n"), number(stat.get("std"))
    spread = digits(std, places) if isinstance(n, int) and n > 1 and std is not None else ""
    over = f"mean over {n} seeds ({case.seed_list})" if stat.get("over") == SEEDS else f"seed {case.seed_list}"
    if band is None:
        status = "unbanded"
    else:
        (verdict,) = hbands.check([band], dataset, recipe, score, {key: {"mean": mean}}, case.pretrain_dataset)
        status = "proxy" if verdict.proxy else "in" if verdict.passed else "out"
    label = STATUS_LABELS[status]
    if status == "proxy":
        inside = band.low <= mean <= band.high
        label = f"proxy, {'in' if inside else 'out of'} band"
        band_text += f"; proxy: upstream {case.pretrain_dataset or 'unknown'}, the paper's is {band.proxy_unless_upstream}"
    return PaperCell(shown, digits(mean, places), spread, status, label,
                     f"{where}: {label}; {band_text}; measured by {case.case_id}, {over}", case.href)


def _table_view(table: Table, score: str, band_at, case_at) -> PaperTableView:
    groups: list[list] = []
    for col in table.columns:
        if groups and groups[-1][0] == col.group:
            groups[-1][1] += 1
        else:
            groups.append([col.group, 1])
    sections = []
    for section in table.sections:
        rows = []
        for row in section.rows:
            # A generic layout holds NaN where a row has no band in a column: such cells stay blank.
            cells = tuple(_paper_cell(score, row.dataset, col.recipe, row.prefix + col.suffix,
                                      value if math.isfinite(value) else None, table.places,
                                      band_at(row.dataset, col.recipe, row.prefix + col.suffix),
                                      case_at(row.dataset, col.recipe))
                          for col, value in zip(table.columns, row.values))
            rows.append(PaperRow(row.label, cells))
        sections.append((section.heading, tuple(rows)))
    statuses = [c.status for _, rows in sections for r in rows for c in r.cells if c.status != "blank"]
    counts = tuple((STATUS_LABELS[s], statuses.count(s)) for s in STATUS_LABELS if statuses.count(s))
    return PaperTableView(table.name, table.title, table.tag, tuple((g, n) for g, n in groups),
                          tuple(c.label for c in table.columns), tuple(sections), table.note, counts)


def _generic_layout(tag: str, paper_bands: list[hbands.Band]) -> Paper:
    """A paper without a layout: its bands, a table per recipe, a row per dataset, a column per metric."""
    metrics = sorted({b.metric for b in paper_bands})
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for b in paper_bands:
        rows.setdefault((b.dataset, b.recipe), {})[b.metric] = b.value
    # Col.recipe is per column in a layout; here each row has its own, so a table per recipe keeps the shape.
    tables = []
    for recipe in sorted({r for _, r in rows}):
        table_rows = tuple(Row(dataset, dataset, "", tuple(values.get(m, float("nan")) for m in metrics))
                           for (dataset, r), values in sorted(rows.items()) if r == recipe)
        tables.append(Table(recipe, f"Bands of recipe {recipe}", "",
                            tuple(Col("", m, recipe, m) for m in metrics), (Section("", table_rows),)))
    scores = sorted({b.score for b in paper_bands})
    return Paper(tag, tag, scores[0], "No printed layout is stored for this paper: its bands, one table per recipe "
                 "(sources on hover).", tuple(tables))


def paper_pages(band_file: hbands.BandFile | None, cases: list[Case]) -> list[PaperPage]:
    """A page per paper with bands: its tables as printed, each published cell beside the paper profile's mean."""
    if band_file is None:
        return []
    by_key = {(b.paper, b.dataset, b.recipe, b.score, b.metric): b for b in band_file.bands}
    paper_cases = _index([c for c in cases if c.profile == "paper"])
    pages = []
    for tag in sorted({b.paper for b in band_file.bands}):
        layout = LAYOUTS.get(tag) or _generic_layout(tag, [b for b in band_file.bands if b.paper == tag])

        def band_at(dataset: str, recipe: str, key: str, tag=tag, score=layout.score):
            return by_key.get((tag, dataset, recipe, score, key))

        def case_at(dataset: str, recipe: str, tag=tag, score=layout.score):
            return _pick(paper_cases.get(("paper", dataset, score), []), recipe, tag)

        tables = tuple(_table_view(table, layout.score, band_at, case_at) for table in layout.tables)
        pages.append(PaperPage(tag, layout.title, layout.summary, f"papers/{ident(tag)}.html", tables))
    return pages


# ---------------------------------------------------------------- recipe x score matrix

MATRIX_METRICS = (
    Column("ood/mean/auroc", "AUROC", "Mean over OOD sets of the AUROC (%)"),
    Column("ood/mean/aupr@ood", "AUPR, OOD+", "Mean AUPR with OOD as positive, average precision (%)"),
    Column("ood/mean/aupr@id", "AUPR, ID+", "Mean AUPR with ID as positive, average precision (%)"),
    Column("ood/mean/fpr95@ood", "FPR95, OOD+", "Mean FPR at 95% OOD recall, reference rule (%)", True),
    Column("ood/mean/fpr95@id", "FPR95, ID+", "Mean FPR at 95% ID recall, reference rule (%)", True),
    Column("ood/mean/fpr95_first@ood", "FPR95 first-reach, OOD+",
           "Mean FPR at 95% OOD recall, first-reach rule (OpenOOD v1.5, pytorch-ood) (%)", True),
    Column("ood/mean/fpr95_first@id", "FPR95 first-reach, ID+", "Mean FPR at 95% ID recall, first-reach rule (%)",
           True),
)


@dataclass(frozen=True)
class MatrixCell:
    cell: Cell
    best: bool
    href: str


@dataclass(frozen=True)
class MatrixPanel:
    metric: Column
    anchor: str
    rows: tuple[tuple[str, tuple[MatrixCell | None, ...]], ...]  # (recipe variant, a cell per score)


@dataclass(frozen=True)
class MatrixGroup:
    profile: str
    kind: str
    dataset: str
    anchor: str
    scores: tuple[str, ...]
    panels: tuple[MatrixPanel, ...]


def matrix(cases: list[Case]) -> list[MatrixGroup]:
    """Per (profile, dataset): rows recipe variants, columns scores, one panel per metric; best per column marked."""
    out = []
    for profile, dataset, members in grouped(cases):
        scores = tuple(sorted({c.score for c in members}))
        variants = sorted({c.variant for c in members})
        at = {(c.variant, c.score): c for c in sorted(members, key=lambda c: c.case_id, reverse=True)}
        panels = []
        for metric in MATRIX_METRICS:
            best = {}
            for score in scores:
                values = [_mean(at.get((v, score)), metric.key) for v in variants]
                values = [v for v in values if v is not None]
                best[score] = (min if metric.lower_is_better else max)(values) if len(values) > 1 else None
            rows = []
            for variant in variants:
                row = []
                for score in scores:
                    case = at.get((variant, score))
                    if case is None:
                        row.append(None)
                        continue
                    mean = _mean(case, metric.key)
                    row.append(MatrixCell(cell(case.metrics, metric.key, []), mean is not None and mean == best[score],
                                          case.href))
                rows.append((variant, tuple(row)))
            panels.append(MatrixPanel(metric, ident(profile, dataset, metric.key), tuple(rows)))
        out.append(MatrixGroup(profile, profile_kind(profile), dataset, ident(profile, dataset), scores,
                               tuple(panels)))
    return out


# ---------------------------------------------------------------- claims

@dataclass(frozen=True)
class ClaimRow:
    paper: str
    dataset: str
    score: str
    metric: str
    statement: str
    recipe_value: str
    baseline_value: str
    gap: str
    needs: str  # a paper claim's margin (">= 1"), a standing claim's gap interval, "" for a finding
    paper_gap: str
    status: str  # pass | fail | finding | unchecked
    verdict: str
    proxy: bool
    source: str
    rationale: str
    recipe_href: str
    baseline_href: str
    seeds: str = ""  # a claim set on seeds: "seed: gap" per seed
    decision: str = ""  # and its test's decision (harness.spread.Decision.text)


@dataclass(frozen=True)
class ClaimSection:
    profile: str
    kind: str
    rows: tuple[ClaimRow, ...]


def claims(band_file: hbands.BandFile | None, cases: list[Case]) -> list[ClaimSection]:
    """Every claim of every band file, judged per profile it names (Claim.profiles) on the records present."""
    if band_file is None:
        return []
    by = _index(cases)
    sections: dict[str, list[ClaimRow]] = {}
    for claim in band_file.claims:
        for profile in claim.profiles:
            score, baseline_score = claim.scores
            ours = _pick(by.get((profile, claim.dataset, score), []), claim.recipe, claim.paper)
            theirs = _pick(by.get((profile, claim.dataset, baseline_score), []), claim.baseline, claim.paper)
            (verdict,) = hbands.check_claims([claim], claim.dataset, {claim.recipe: ours.metrics} if ours else {},
                                             score=claim.score, upstream=ours.pretrain_dataset if ours else None,
                                             baseline_results={claim.baseline: theirs.metrics} if theirs else {})
            places = decimals(claim.metric)
            recipe, baseline = claim.sides()
            statement = (f"{recipe} beats {baseline} on {claim.metric}" if claim.direction == "higher"
                         else f"{recipe} has lower {claim.metric} than {baseline}")
            status = {"pass": "pass", "fail": "fail", "finding": "finding"}.get(verdict.status, "unchecked")
            decision = claim.decision
            needs = (f"≥ {claim.margin:g}" if decision is None else "" if not decision.stands else
                     f"[{fmt(verdict.low, places)}, {fmt(verdict.high, places)}]")
            seeds = ", ".join(f"{seed}: {fmt(gap, places)}" for seed, gap in zip(claim.seeds, claim.gaps))
            sections.setdefault(profile, []).append(ClaimRow(
                claim.paper, claim.dataset, claim.score, claim.metric, statement,
                fmt(_mean(ours, claim.metric), places), fmt(_mean(theirs, claim.metric), places),
                fmt(verdict.gap, places), needs, f"{claim.paper_gap:g}", status,
                verdict.status + (" (proxy)" if verdict.proxy and verdict.passed is not None else ""),
                verdict.proxy, claim.source, claim.rationale, ours.href if ours else "", theirs.href if theirs else "",
                seeds, decision.text() if decision else ""))
    return [ClaimSection(p, profile_kind(p), tuple(sections[p])) for p in sorted(sections, key=profile_order)]


# ---------------------------------------------------------------- metric conventions

@dataclass(frozen=True)
class Definition:
    suffix: str  # key after ood/<set>/
    metric: str
    positive: str
    rule: str
    users: str  # who computes it this way


DEFINITIONS = (
    Definition("auroc", "AUROC", "either", "area under the ROC curve",
               "Every library: the one detection metric that does not depend on the convention."),
    Definition("fpr95@ood", "FPR95", "OOD", "reference rule: the threshold whose OOD recall is closest to 95 %, "
               "the loosest one among equal recalls",
               "Hendrycks et al. (outlier-exposure, pre-training: fpr_and_fdr_at_recall); the harness's headline "
               "FPR95 and the one the paper bands hold."),
    Definition("fpr95_first@ood", "FPR95", "OOD", "first-reach rule: the tightest threshold whose OOD recall "
               "reaches 95 %", "OpenOOD v1.5, pytorch-ood and torch-uncertainty (fpr[argmax(tpr >= 0.95)] of "
               "sklearn's roc_curve)."),
    Definition("fpr95@id", "FPR95", "ID", "reference rule at 95 % ID recall (OOD accepted)",
               "The energy paper's convention (wetliu/energy_ood); OpenOOD v1 and ood-metrics also take ID as "
               "the positive class."),
    Definition("fpr95_first@id", "FPR95", "ID", "first-reach rule at 95 % ID recall",
               "The first-reach rule with ID as the positive class: shown to separate the effect of the rule from "
               "that of the positive class."),
    Definition("aupr@ood", "AUPR", "OOD", "average precision (step-wise)",
               "Hendrycks et al. (AUPR-out), sklearn's average_precision_score, torchmetrics."),
    Definition("aupr_trapz@ood", "AUPR", "OOD", "trapezoidal area under the precision-recall curve",
               "OpenOOD (aupr_out) and pytorch-ood (sklearn's auc(recall, precision))."),
    Definition("aupr@id", "AUPR", "ID", "average precision (step-wise), ID positive",
               "The energy paper's AUPR-in (wetliu/energy_ood), sklearn's average_precision_score."),
    Definition("aupr_trapz@id", "AUPR", "ID", "trapezoidal area, ID positive", "OpenOOD's aupr_in."),
)


@dataclass(frozen=True)
class ConventionGroup:
    profile: str
    kind: str
    dataset: str
    case: Case
    sets: tuple[str, ...]
    rows: tuple[tuple[Definition, tuple[Cell, ...]], ...]


def conventions(cases: list[Case]) -> list[ConventionGroup]:
    """One model per (profile, dataset) under every definition: MSP from scratch where it exists."""
    out = []
    for profile, dataset, members in grouped(cases):
        case = min(members, key=lambda c: (c.score != "msp", c.variant != "scratch", c.case_id))
        sets = tuple(ood_set_names(case.metrics))
        rows = tuple((d, tuple(cell(case.metrics, f"ood/{s}/{d.suffix}", []) for s in sets)) for d in DEFINITIONS)
        out.append(ConventionGroup(profile, profile_kind(profile), dataset, case, sets, rows))
    return out

