"""The leaderboard's shift view: accuracy and calibration under corruption, the WiSE-FT alpha curve, feature
distortion. Built from the shift keys of the records (docs/metrics.md, Conventions):

    shift/<corruption>/<severity>/<m>   one corruption at one severity (1..5)
    shift/severity<k>/<m>               the mean over corruptions at severity k
    shift/mean/<m>                      the mean over every corruption and severity
    shift/<set>/<m>                     one natural-shift set (imagenetv2, imagenet-r, ...)
    shift/natural/<m>                   the mean over the natural-shift sets
    distortion/id, distortion/shift     feature distortion on in-distribution and shifted inputs

with <m> one of accuracy, ece, rms (percent) and nll (nats). Only records with such keys appear; the view is not
rendered at all when none has them. Each natural-shift set also gets every case's effective robustness
(harness.robustness: the line fitted over the cases of one profile and dataset).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness import robustness
from harness.bands import NATURAL_SHIFT_MEAN as NATURAL
from harness.errors import HarnessError
from harness.site.cells import DASH, Cell, Column, cell, digits, decimals, number
from harness.site.charts import Chart, Point, tradeoff_chart
from harness.site.records import Case, grouped, profile_kind

HEAT_METRICS = (("accuracy", "Accuracy (%)", False), ("ece", "ECE, 15 bins (%)", True))
SUMMARY = (
    Column("accuracy", "ID accuracy", "In-distribution test accuracy (%)"),
    Column("shift/mean/accuracy", "Shift accuracy", "Accuracy over every corruption and severity (%)"),
    Column("shift/mean/ece", "Shift ECE", "ECE over every corruption and severity (%)", True),
    Column("shift/mean/rms", "Shift RMS", "RMS calibration error over every corruption and severity (%)", True),
    Column("shift/mean/nll", "Shift NLL", "NLL over every corruption and severity (nats)", True),
    Column("distortion/id", "Distortion, ID", "Feature distortion on in-distribution inputs"),
    Column("distortion/shift", "Distortion, shift", "Feature distortion on shifted inputs"),
)
HEAT_LEVELS = 6  # CSS classes heat-0 (best in the table) .. heat-5 (worst)
# The WiSE-FT recipes (an alpha curve each), and the recipes drawn as single points beside it with their legend
# names.
WISE_FT = ("wise_ft", "clip_wise_ft")
TRANSFER_POINTS = (("linear_probe", "LP"), ("finetune", "FT"), ("lp_ft", "LP-FT"), ("clip_zero_shot", "zero-shot"),
                   ("clip_linear_probe", "LP"), ("clip_finetune", "FT"), ("clip_lp_ft", "LP-FT"))


def has_shift(case: Case) -> bool:
    return any(k.startswith(("shift/", "distortion/")) for k in case.metrics)


@dataclass(frozen=True)
class HeatCell:
    text: str
    level: str  # "heat-<k>", "" without a value
    title: str


@dataclass(frozen=True)
class HeatMap:
    label: str
    severities: tuple[str, ...]
    rows: tuple[tuple[str, tuple[HeatCell, ...]], ...]  # corruptions, then "all corruptions"
    mean: HeatCell


@dataclass(frozen=True)
class ShiftModel:
    variant: str
    case: Case
    maps: tuple[HeatMap, ...]


@dataclass(frozen=True)
class Robustness:
    """Per natural-shift set and case: shifted accuracy and effective robustness (pp), and the mean ER."""

    sets: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[str, ...]], ...]  # (variant, case href, per set "acc / ER", mean ER)
    unfitted: tuple[str, ...]  # sets whose line could not be fitted, with why


@dataclass(frozen=True)
class ShiftGroup:
    profile: str
    kind: str
    dataset: str
    models: tuple[ShiftModel, ...]
    summary: tuple[tuple[str, str, tuple[Cell, ...]], ...]  # (variant, case href, cells)
    curve: Chart | None
    robustness: Robustness | None


def _grid(metrics: dict) -> tuple[list[str], list[str]]:
    corruptions, severities = set(), set()
    for key in metrics:
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == "shift" and parts[2].isdigit():
            corruptions.add(parts[1])
            severities.add(parts[2])
        elif len(parts) == 3 and parts[1].startswith("severity") and parts[1][8:].isdigit():
            severities.add(parts[1][8:])
    return sorted(corruptions), sorted(severities, key=int)


def _heat_map(case: Case, metric: str, label: str, lower_is_better: bool) -> HeatMap:
    corruptions, severities = _grid(case.metrics)
    keys = [[f"shift/{c}/{s}/{metric}" for s in severities] for c in corruptions]
    keys.append([f"shift/severity{s}/{metric}" for s in severities])
    mean_key = f"shift/mean/{metric}"
    values = [number(case.metrics.get(k, {}).get("mean")) for row in keys for k in row]
    values.append(number(case.metrics.get(mean_key, {}).get("mean")))
    present = [v for v in values if v is not None]
    lo, hi = (min(present), max(present)) if present else (0.0, 0.0)
    places = decimals(metric)

    def heat(key: str, where: str) -> HeatCell:
        value = number(case.metrics.get(key, {}).get("mean"))
        if value is None:
            return HeatCell("\u2014", "", f"{where}: not measured")
        badness = 0.0 if hi == lo else ((value - lo) if lower_is_better else (hi - value)) / (hi - lo)
        return HeatCell(digits(value, places), f"heat-{round(badness * (HEAT_LEVELS - 1))}",
                        f"{where}: {label} {digits(value, places)}")

    rows = [(c, tuple(heat(k, f"{c}, severity {s}") for k, s in zip(row, severities)))
            for c, row in zip(corruptions, keys)]
    rows.append(("all corruptions", tuple(heat(k, f"mean over corruptions, severity {s}")
                                          for k, s in zip(keys[-1], severities))))
    return HeatMap(label, tuple(severities), tuple(rows), heat(mean_key, "mean over every corruption and severity"))


def _natural_sets(cases: list[Case]) -> list[str]:
    """The natural-shift sets of the cases' keys: shift/<set>/accuracy that is no corruption summary."""
    found = {k.split("/")[1] for c in cases for k in c.metrics
             if k.count("/") == 2 and k.startswith("shift/") and k.endswith("/accuracy")}
    return sorted(found - {"mean", NATURAL} - {s for s in found if s.startswith("severity") and s[8:].isdigit()})


def _mean_of(case: Case, key: str) -> float | None:
    return number(case.metrics.get(key, {}).get("mean"))


def _robustness(members: list[Case]) -> Robustness | None:
    """Effective robustness of every case on every natural-shift set, the line fitted over the cases measured on it
    (Taori et al. 2020); a set with fewer than 2 distinct ID accuracies has no line (said so)."""
    sets = _natural_sets(members)
    if not sets:
        return None
    er: dict[tuple[str, str], float] = {}
    unfitted = []
    for name in sets:
        measured = [(c, _mean_of(c, "accuracy"), _mean_of(c, f"shift/{name}/accuracy")) for c in members]
        measured = [(c, x, y) for c, x, y in measured if x is not None and y is not None]
        try:
            line = robustness.fit([x for _, x, _ in measured], [y for _, _, y in measured])
        except HarnessError as exc:
            unfitted.append(f"{name}: {exc}")
            continue
        er.update({(c.variant, name): robustness.effective_robustness(x, y, line) for c, x, y in measured})
    rows = []
    for c in members:
        texts = []
        for name in sets:
            acc, value = _mean_of(c, f"shift/{name}/accuracy"), er.get((c.variant, name))
            texts.append(DASH if acc is None else digits(acc, 2) + ("" if value is None else f" / {value:+.2f}"))
        values = [er[(c.variant, s)] for s in sets if (c.variant, s) in er]
        texts.append(f"{sum(values) / len(values):+.2f}" if values else DASH)
        rows.append((c.variant, c.href, tuple(texts)))
    return Robustness(tuple(sets), tuple(rows), tuple(unfitted))


def _alpha(case: Case) -> float | None:
    return number(case.settings.get("alpha"))


def _curve(members: list[Case]) -> Chart | None:
    """ID accuracy against shifted accuracy: WiSE-FT joined in alpha order, LP, FT, LP-FT as single points."""
    corrupted = any("shift/mean/accuracy" in c.metrics for c in members)
    shifted = "shift/mean/accuracy" if corrupted else f"shift/{NATURAL}/accuracy"

    def point(case: Case, group: str, label: str) -> Point | None:
        x, y = (_mean_of(case, k) for k in ("accuracy", shifted))
        return None if x is None or y is None else Point(group, label, x, y)

    wise = sorted((c for c in members if c.recipe in WISE_FT and _alpha(c) is not None), key=_alpha)
    points = [point(c, "WiSE-FT", f"\u03b1 {_alpha(c):g}") for c in wise]
    for recipe, name in TRANSFER_POINTS:
        points += [point(c, name, name) for c in members if c.recipe == recipe]
    points = [p for p in points if p is not None]
    if not any(p.group == "WiSE-FT" for p in points):
        return None
    under = "under corruption" if corrupted else "under natural shift (mean over the sets)"
    return tradeoff_chart(f"WiSE-FT: ID accuracy vs accuracy {under}", "ID accuracy (%)", "Shift accuracy (%)",
                          points)


def shift_groups(cases: list[Case]) -> list[ShiftGroup]:
    """Per (profile, dataset) with shift records: a heat map pair per model, the summary table and the curve.

    The corruption metrics do not depend on the OOD score, so each recipe variant appears once (MSP first)."""
    out = []
    for profile, dataset, found in grouped([c for c in cases if has_shift(c)]):
        by_variant: dict[str, Case] = {}
        for case in sorted(found, key=lambda c: (c.score != "msp", c.score, c.case_id)):
            by_variant.setdefault(case.variant, case)
        members = [by_variant[v] for v in sorted(by_variant)]
        models = tuple(ShiftModel(c.variant, c, tuple(_heat_map(c, m, label, low) for m, label, low in HEAT_METRICS))
                       for c in members if _grid(c.metrics)[1])
        summary = tuple((c.variant, c.href, tuple(cell(c.metrics, col.key, []) for col in SUMMARY)) for c in members)
        out.append(ShiftGroup(profile, profile_kind(profile), dataset, models, summary, _curve(members),
                              _robustness(members)))
    return out
