"""Regression baselines: the metrics of a profile's cases from real runs, checked in two tiers.

`benchmarks/baselines/<profile>.json` is written by `python -m harness baseline update` from result records.
- **Spread tier** (every machine): per case and metric, the distribution over several training seeds (mean, std,
  min, max, n); a run on any machine, at any seed, must fall inside it as harness.spread widens it.
- **Exact tier** (one kind of machine): per case and baseline seed, the metrics as measured on a machine with a
  given kernel probe (harness.machine); a run on that kind reproduces them bit for bit, so they gate within the
  tight TOLERANCES below.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import machine, profiles, spread
from harness.errors import HarnessError
from harness.profiles import Profile
# GATED_PROFILES and tiers are defined in harness.spread, which the site reads without torch; baselines.tiers
# stays the gate's name for them
from harness.spread import GATED_PROFILES, tiers, tolerance_for  # noqa: F401
from harness.store import read_records

BASELINE_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines"
FORMAT_VERSION = 2

# Exact tier: absolute tolerances (harness.spread.TOLERANCES, first matching pattern wins). CPU profiles are
# deterministic on a given CPU and thread count (two runs give identical records); the tolerance only absorbs float
# differences that do not change the kernel probe. The spread tier uses them as its floor.
TOLERANCES = spread.TOLERANCES


@dataclass(frozen=True)
class BaselineVerdict:
    metric: str
    measured: float | None
    expected: float
    tolerance: float
    passed: bool
    tier: str = "exact"
    low: float | None = None  # spread tier: the interval of harness.spread.bounds
    high: float | None = None
    n: int | None = None  # spread tier: the number of seeds

    def message(self) -> str:
        if self.tier == "spread":
            where = (f"spread of {self.n} seeds [{self.low:.4f}, {self.high:.4f}] (mean {self.expected:.4f}, "
                     f"widened by {self.tolerance:.4g})")
            if self.measured is None:
                return f"{self.metric}: missing from the run ({where})"
            return f"{self.metric} = {self.measured:.4f}, {where}"
        if self.measured is None:
            return f"{self.metric}: missing from the run (baseline {self.expected:.4f})"
        return (f"{self.metric} = {self.measured:.4f}, baseline {self.expected:.4f} +- {self.tolerance:g} "
                f"(moved by {self.measured - self.expected:+.4f})")

    def to_json(self) -> dict:
        out = {"metric": self.metric, "measured": self.measured, "expected": self.expected,
               "tolerance": self.tolerance, "passed": self.passed, "tier": self.tier, "message": self.message()}
        if self.tier == "spread":
            out.update(low=self.low, high=self.high, n=self.n)
        return out


def path_for(profile: str, directory: Path = BASELINE_DIR) -> Path:
    return Path(directory) / f"{profile}.json"


def load(profile: str, directory: Path = BASELINE_DIR) -> dict | None:
    path = path_for(profile, directory)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if (data.get("format_version") != FORMAT_VERSION or not isinstance(data.get("cases"), dict)
            or not isinstance(data.get("spread"), dict)):
        raise HarnessError(f"{path}: not a baseline file of format {FORMAT_VERSION} "
                           "(rewrite it with `python -m harness baseline update`)")
    return data


def case_key(record: dict) -> str:
    return f"{record['case_id']}/s{record['seed']}"


def not_gated(record: dict, profile: Profile) -> str | None:
    """Why the baseline does not gate this record, or None when it does.

    Only a deliberate change of what is measured takes a record out of the gate: a profile of the user's own, a
    dry run, or another number of OOD repetitions (`--num-to-avg`: another estimator spread than the baseline's).
    Another seed or another kind of machine is still gated, by the spread tier.
    """
    if profile.source is not None and not profile.source.builtin:
        return (f"profile {profile.name!r} comes from {profile.source.file}; baselines and bands gate the "
                f"built-in profiles only")
    if profile.dry_run_of:
        return (f"dry run of the {profile.dry_run_of!r} profile: its band and claim verdicts are computed and "
                f"reported, not enforced (the sizes are cut to the bone)")
    if profile.name not in GATED_PROFILES:
        return None
    repetitions = record["report"].get("num_to_avg")
    if repetitions != profile.num_to_avg:
        return (f"num_to_avg {repetitions} differs from the {profile.num_to_avg} OOD repetitions "
                f"the {profile.name!r} baseline was measured with")
    return None


def _own_kind(baseline: dict, key: str, probe: str) -> bool:
    """Whether the main entry of `key` was measured on a machine with kernel probe `probe` (an untagged entry:
    unless this kind of machine is known to train other numbers with the same code)."""
    tagged = baseline.get("case_machines", {}).get(key)
    return tagged == probe if tagged else probe not in baseline.get("untagged_entries_differ_on", {})


def entry(record: dict, baseline: dict, probe: str | None = None) -> dict | None:
    """The exact-tier metrics of this record on a machine with kernel probe `probe` (default: this one): the entry
    measured on that kind of machine (`by_machine`), else the main entry when it was measured on that kind."""
    probe = probe or machine.kernel_probe()
    key = case_key(record)
    own = baseline.get("by_machine", {}).get(probe, {}).get(key)
    if own is not None:
        return own
    return baseline["cases"][key] if key in baseline["cases"] and _own_kind(baseline, key, probe) else None


def check(record: dict, baseline: dict) -> list[BaselineVerdict] | None:
    """Verdicts of both tiers for every baseline metric of this case; None when neither tier has an entry."""
    metrics = _gated_means(record)
    verdicts = []
    exact = entry(record, baseline)
    for metric, value in sorted((exact or {}).items()):
        if metric not in metrics and _outside_selection(metric, record):
            continue
        tol = tolerance_for(metric, baseline["tolerances"])
        measured = metrics.get(metric)
        passed = measured is not None and abs(measured - value) <= tol
        verdicts.append(BaselineVerdict(metric, measured, value, tol, passed))
    seeds = baseline["spread"].get(record["case_id"])
    for metric, stat in sorted((seeds or {}).get("metrics", {}).items()):
        if metric not in metrics and _outside_selection(metric, record):
            continue
        low, high = spread.bounds(stat, tolerance_for(metric, baseline["tolerances"]), baseline["spread_k"])
        measured = metrics.get(metric)
        passed = measured is not None and low <= measured <= high
        verdicts.append(BaselineVerdict(metric, measured, stat["mean"], round(stat["min"] - low, 6), passed,
                                        "spread", round(low, 6), round(high, 6), stat["n"]))
    return verdicts or None


def _outside_selection(metric: str, record: dict) -> bool:
    """A metric that `--ood-sets` took out of the gate: a dropped set's, or a mean when a set was dropped."""
    selection = record.get("ood_selection")
    parts = metric.split("/")
    if not selection or parts[0] != "ood":
        return False
    return parts[1] in selection["dropped"] or (parts[1] == "mean" and bool(selection["dropped"]))


def _gated_means(record: dict) -> dict[str, float]:
    """The record's metric means as the baseline saw them: with sets added by `--ood-sets`
    (record["ood_selection"]), the `ood/mean/*` keys are recomputed over the profile's own sets (the mean of
    per-set means, as harness.evaluate computes it), so an added set neither moves nor escapes the gate."""
    metrics = record["report"]["metrics"]
    means = {key: stat["mean"] for key, stat in metrics.items()}
    selection = record.get("ood_selection")
    if not selection:
        return means
    own = [s for s in record["report"].get("ood_sets", {}) if s not in selection["added"]]
    for key in [k for k in means if k.startswith("ood/mean/")]:
        per_set = [metrics.get(f"ood/{s}/{key.removeprefix('ood/mean/')}") for s in own]
        if own and all(per_set) and not selection["dropped"]:
            means[key] = float(np.mean([stat["mean"] for stat in per_set]))
        else:
            del means[key]
    return means


def gateable(records: list[dict], profile: str) -> list[dict]:
    """The records of this profile that its baseline can gate (the others are named and skipped)."""
    plan = profiles.get(profile)
    mine = []
    for record in (r for r in records if r["profile"] == profile):
        reason = not_gated(record, plan) or ("run with --ood-sets: its means cover other OOD sets than the "
                                             "profile's" if record.get("ood_selection") else None)
        if reason:
            print(f"skipped {record['case_id']} (seed {record['seed']}): {reason}")
        else:
            mine.append(record)
    return mine


def spread_entries(records: list[dict], minimum: int) -> dict[str, dict]:
    """{case_id: {"seeds", "kernel_probes", "metrics": {metric: spread.summarize(...)}}} over the records' seeds;
    a case recorded at fewer than `minimum` distinct seeds is an error (one line naming it)."""
    by_case: dict[str, dict[tuple, dict]] = defaultdict(dict)
    for r in sorted(records, key=lambda r: r["provenance"].get("time_utc") or ""):
        # one value per (seed, kind of machine): a rerun on the same kind adds nothing, the latest one counts
        by_case[r["case_id"]][(r["seed"], r["provenance"].get("kernel_probe") or "")] = r
    out = {}
    for case_id, runs in sorted(by_case.items()):
        seeds = sorted({seed for seed, _ in runs})
        if len(seeds) < minimum:
            raise HarnessError(f"{case_id}: recorded at {len(seeds)} seed(s) ({', '.join(map(str, seeds))}); the "
                               f"spread tier needs at least {minimum}: run `pytest benchmarks --seeds "
                               f"{','.join(map(str, range(minimum)))}` and pass its results")
        values: dict[str, list[float]] = defaultdict(list)
        for r in runs.values():
            for metric, value in _gated_means(r).items():
                values[metric].append(value)
        out[case_id] = {"seeds": seeds, "kernel_probes": sorted({probe for _, probe in runs if probe}),
                        "metrics": {m: spread.summarize(v) for m, v in sorted(values.items())
                                    if len(v) == len(runs) and spread.HEADLINE.match(m)}}
    return out


def update(profile: str, results_dirs: Path | list[Path], directory: Path = BASELINE_DIR, *,
           replace: bool = False) -> tuple[Path, int]:
    """Write both tiers' entries of the cases recorded under results_dirs; returns (path, number of records used).

    Spread tier: every case recorded is summarized over all its recorded seeds (at least GATED_PROFILES[profile]).
    Exact tier: the records at the profile's own seeds, tagged with the kernel probe of the machine that measured
    them. By default the entries of other cases already in the file are kept (adding a case does not re-measure
    the others); `replace=True` rewrites the file from these records alone. Records the baseline cannot gate
    (see `not_gated`) are skipped and named.
    """
    if profile not in GATED_PROFILES:
        raise HarnessError(f"profile {profile!r} has no regression baseline (gated profiles: "
                           f"{', '.join(GATED_PROFILES)})")
    plan = profiles.get(profile)
    records = []
    for results_dir in [results_dirs] if isinstance(results_dirs, (str, Path)) else results_dirs:
        found, problems = read_records(results_dir)
        for problem in problems:
            print(f"skipped {problem}")
        records += found
    mine = gateable(records, profile)
    if not mine:
        shown = ", ".join(map(str, [results_dirs] if isinstance(results_dirs, (str, Path)) else results_dirs))
        raise HarnessError(f"no gateable records of profile {profile!r} under {shown}; run `pytest benchmarks "
                           f"--profile {profile} --seeds {','.join(map(str, range(GATED_PROFILES[profile])))} "
                           f"--results-dir DIR` first")
    new_spread = spread_entries(mine, GATED_PROFILES[profile])
    old = None if replace else load(profile, directory)
    cases = dict(old["cases"]) if old else {}
    machines = dict(old.get("case_machines", {})) if old else {}
    by_machine = {p: dict(e) for p, e in old.get("by_machine", {}).items()} if old else {}
    differ_on = old.get("untagged_entries_differ_on", {}) if old else {}
    for r in (r for r in mine if r["seed"] in plan.seeds):
        key, metrics = case_key(r), {k: v["mean"] for k, v in sorted(r["report"]["metrics"].items())}
        # where the record was measured (its provenance), else this machine: update may run elsewhere than the run
        probe = r["provenance"].get("kernel_probe") or machine.kernel_probe()
        main = {"cases": cases, "case_machines": machines, "untagged_entries_differ_on": differ_on}
        if key in cases and not _own_kind(main, key, probe):
            by_machine.setdefault(probe, {})[key] = metrics  # another kind of machine: its own entry beside
        else:
            cases[key], machines[key] = metrics, probe
    commits = {r["provenance"].get("git_commit") or "unknown" for r in mine} | set(old["from_commits"] if old else [])
    data = {
        "format_version": FORMAT_VERSION,
        "profile": profile,
        "from_commits": sorted(commits),
        "tolerances": TOLERANCES,
        "spread_k": spread.K,
        "spread": dict(sorted({**(old["spread"] if old else {}), **new_spread}.items())),
        "cases": dict(sorted(cases.items())),
        "case_machines": dict(sorted(machines.items())),
        "untagged_entries_differ_on": differ_on,
        "by_machine": {p: dict(sorted(e.items())) for p, e in sorted(by_machine.items())},
    }
    path = path_for(profile, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would make a committed baseline unreadable to other users
    os.replace(tmp, path)
    return path, len(mine)
