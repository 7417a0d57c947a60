"""Band files: read `benchmarks/bands/*.toml` into harness.bands' Band and Claim entries, every problem a
one-line `file:line` error (the field reference is the header of `benchmarks/bands/hendrycks2019.toml`)."""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness import tomlfile
from harness.bands import NAME_RE, PAPERS, Band, BandFile, Claim, is_metric_key
from harness.errors import HarnessError
from harness.tomlfile import Located, Table

BANDS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "bands"


def default_dir() -> Path:
    """The band files the suite checks and the site shows: $HARNESS_BANDS_DIR (e.g. a fork's own bands), else
    benchmarks/bands."""
    return Path(os.environ.get("HARNESS_BANDS_DIR") or BANDS_DIR)


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

def _label(kind: str, index: int, entry: Mapping) -> str:
    parts = [str(entry[k]) for k in ("dataset", "recipe", "baseline", "score", "metric")
             if isinstance(entry.get(k), str)]
    return f"{kind} #{index + 1}" + (f" ({' '.join(parts)})" if parts else "")


def _check_entry(kind: str, index: int, entry: Mapping, table: Table, where: Located) -> None:
    fields, required = _KINDS[kind]
    label = _label(kind, index, entry)
    for key, value in entry.items():
        line = table.at(key)
        if key not in fields:
            where.fail(line, f"{label}: unknown field {key!r} (expected one of: {', '.join(fields)})")
        if fields[key] is str:
            ok, wanted = isinstance(value, str) and value.strip() != "", "a non-empty string"
        elif fields[key] is list:
            ok = isinstance(value, list) and bool(value) and all(isinstance(v, str) and NAME_RE.match(v)
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
        if key in entry and not NAME_RE.match(entry[key]):
            where.fail(table.at(key), f"{label}: {key} {entry[key]!r} is not a valid name "
                                        f"(lowercase letters, digits, '-', '_', '.')")
    if entry["paper"] not in PAPERS:
        where.fail(table.at("paper"), f"{label}: unknown paper {entry['paper']!r} (known: {', '.join(PAPERS)}; "
                                      "a new paper's tag goes into harness.bands.PAPERS)")
    if not is_metric_key(entry["metric"]):
        where.fail(table.at("metric"), f"{label}: unknown metric key {entry['metric']!r} (expected e.g. "
                                       "'accuracy', 'calib/rms', 'ood/<set>/auroc', 'ood/mean/aupr@ood')")


def _band(index: int, entry: Mapping, table: Table, where: Located) -> Band:
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


def _claim(index: int, entry: Mapping, table: Table, where: Located) -> Claim:
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
    where = Located(str(path))
    data, text = tomlfile.read(path, "band file")
    tables, top = tomlfile.scan(text)
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
        located += [Table(kind, True, 0)] * (len(entries) - len(located))
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
