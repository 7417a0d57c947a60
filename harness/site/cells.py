"""Numbers of result records as display text and table cells, the same way on every leaderboard page.

Floats get fixed decimals by metric key, so the same records always render the same bytes.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

DASH = "\u2014"
SEEDS = "seeds"  # a stat's "over" field when its mean and std are taken over training seeds (harness.site.records)


def decimals(key: str) -> int:
    return 4 if key.endswith("brier") else 3 if key.endswith("nll") else 2


def number(value: object) -> float | None:
    """A finite JSON number as a float, else None: an integer beyond a float's range (JSON allows 10**400) too."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        found = float(value)
    except OverflowError:
        return None
    return found if math.isfinite(found) else None


def digits(value: float, places: int) -> str:
    """Fixed decimals; a huge value (a valid record can hold an NLL of 1e300) in exponent form, not 300 digits."""
    return f"{value:.{places}f}" if abs(value) < 1e9 else f"{value:.{places}e}"


def fmt(value: object, places: int) -> str:
    found = number(value)
    return DASH if found is None else digits(found, places)


def text(value: object) -> str:
    """Any JSON value as display text; containers as canonical JSON."""
    if value is None:
        return DASH
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def as_dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def canonical(record: object) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Column:
    key: str  # metric key, or the suffix after ood/<set>/ on a per-set table
    label: str
    title: str
    lower_is_better: bool = False


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
    std_title: str = ""  # what the spread is over, when not the OOD repetitions


def status(passed: object) -> str:
    return "pass" if passed is True else "fail" if passed is False else "unchecked"


def _inside(mean: float | None, band: dict) -> bool | None:
    low, high = number(band.get("low")), number(band.get("high"))
    return None if mean is None or low is None or high is None else low <= mean <= high


def cell(metrics: dict, key: str, bands: list[dict]) -> Cell:
    """The metric `key` of `metrics` ({key: {mean, std, n}}) with the bands (record verdicts) that name it.

    A mean over seeds is checked against each band again: the record's verdict judged one seed."""
    places = decimals(key)
    stat = as_dict(metrics.get(key))
    mean, std, n = number(stat.get("mean")), number(stat.get("std")), stat.get("n")
    over_seeds = stat.get("over") == SEEDS
    marks = []
    for b in bands:
        if b.get("metric") != key:
            continue
        verdict = status(_inside(mean, b) if over_seeds else b.get("passed"))
        marks.append(Mark(paper=fmt(b.get("paper_value"), places).replace(DASH, ""), status=verdict,
                          title=f"band [{fmt(b.get('low'), places)}, {fmt(b.get('high'), places)}]"
                                f"{' (proxy)' if b.get('proxy') else ''}: {verdict}; source: {text(b.get('source'))}"))
    verdict = "fail" if any(m.status == "fail" for m in marks) else "pass" if marks and all(
        m.status == "pass" for m in marks) else ""
    if mean is None:
        return Cell(DASH, status=verdict, marks=tuple(marks))
    shows_std = isinstance(n, int) and n > 1 and std is not None
    return Cell(digits(mean, places), digits(std, places) if shows_std else "", repr(mean), verdict, tuple(marks),
                f"standard deviation over {n} seeds" if over_seeds and shows_std else "")
