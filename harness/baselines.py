"""Regression baselines: the metrics of a profile's cases from real runs, checked within stated tolerances.

`benchmarks/baselines/<profile>.json` is written by `python -m harness baseline update` from result records;
every case of that profile then checks each metric's mean against it.
"""
from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import machine, profiles
from harness.errors import HarnessError
from harness.profiles import Profile
from harness.store import read_records

BASELINE_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines"
GATED_PROFILES = ("smoke", "mini")  # the deterministic CPU profiles; paper runs are gated by the bands instead
FORMAT_VERSION = 1

# Absolute tolerances, first matching pattern wins. CPU profiles are deterministic on a given CPU and thread
# count (two runs give identical records); the tolerance only absorbs float differences between CPU kernels
# (e.g. AVX2 vs AVX-512) that a few training epochs amplify. A broken metric moves far more than this.
TOLERANCES = {
    "calib*/nll": 0.05,  # calib/nll and its views (calib@T/nll at the fitted temperature, calib@M1/nll)
    "calib*/brier": 0.02,
    "*": 0.5,
}


@dataclass(frozen=True)
class BaselineVerdict:
    metric: str
    measured: float | None
    expected: float
    tolerance: float
    passed: bool

    def message(self) -> str:
        if self.measured is None:
            return f"{self.metric}: missing from the run (baseline {self.expected:.4f})"
        return (f"{self.metric} = {self.measured:.4f}, baseline {self.expected:.4f} +- {self.tolerance:g} "
                f"(moved by {self.measured - self.expected:+.4f})")

    def to_json(self) -> dict:
        return {"metric": self.metric, "measured": self.measured, "expected": self.expected,
                "tolerance": self.tolerance, "passed": self.passed, "message": self.message()}


def tolerance_for(metric: str, tolerances: dict[str, float]) -> float:
    for pattern, tol in tolerances.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return tol
    raise HarnessError(f"no tolerance pattern matches metric {metric!r}")


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
    if data.get("format_version") != FORMAT_VERSION or not isinstance(data.get("cases"), dict):
        raise HarnessError(f"{path}: not a baseline file of format {FORMAT_VERSION} "
                           "(rewrite it with `python -m harness baseline update`)")
    return data


def case_key(record: dict) -> str:
    return f"{record['case_id']}/s{record['seed']}"


def not_gated(record: dict, profile: Profile) -> str | None:
    """Why the baseline does not gate this record, or None when it does.

    A baseline holds the built-in profile's default seeds and repetitions; a run with other seeds (`--seeds`) or another
    number of OOD repetitions (`--num-to-avg`) is measured and recorded, but there is nothing to compare it with.
    """
    if profile.source is not None and not profile.source.builtin:
        return (f"profile {profile.name!r} comes from {profile.source.file}; baselines and bands gate the "
                f"built-in profiles only")
    if profile.dry_run_of:
        return (f"dry run of the {profile.dry_run_of!r} profile: its band and claim verdicts are computed and "
                f"reported, not enforced (the sizes are cut to the bone)")
    if profile.name not in GATED_PROFILES:
        return None
    if record["seed"] not in profile.seeds:
        return (f"seed {record['seed']} is not a baseline seed of profile {profile.name!r} "
                f"(baseline seeds: {', '.join(map(str, profile.seeds))})")
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
    """The metrics that gate this record on a machine with kernel probe `probe` (default: this one): the entry
    measured on that kind of machine (`by_machine`), else the main entry when it was measured on that kind."""
    probe = probe or machine.kernel_probe()
    key = case_key(record)
    own = baseline.get("by_machine", {}).get(probe, {}).get(key)
    if own is not None:
        return own
    return baseline["cases"][key] if key in baseline["cases"] and _own_kind(baseline, key, probe) else None


def other_machine(record: dict, baseline: dict) -> str | None:
    """Why this case's baseline cannot gate a run on this machine (its entries were measured where the CPU
    kernels round differently, see harness.machine), or None (gated, or no entry at all: a failure of its own)."""
    key, here = case_key(record), machine.kernel_probe()
    if key not in baseline["cases"] or entry(record, baseline, here) is not None:
        return None
    measured_on = baseline.get("case_machines", {}).get(key)
    if measured_on is None:
        return (f"the baseline entry predates kernel probes, and on this kind of machine (kernel probe {here}) the "
                f"same code trains other numbers ({baseline['untagged_entries_differ_on'][here]}); record one for "
                f"this kind with `python -m harness baseline update`")
    return (f"the baseline entry was measured on a machine whose CPU kernels round differently (kernel probe "
            f"{measured_on}, here {here}): CPU training is bit-reproducible only on one kind of machine; "
            f"record one for this kind with `python -m harness baseline update`")


def check(record: dict, baseline: dict) -> list[BaselineVerdict] | None:
    """Verdicts for every baseline metric of this case; None when the baseline has no entry for it here."""
    expected = entry(record, baseline)
    if expected is None:
        return None
    metrics = _gated_means(record)
    verdicts = []
    for metric, value in sorted(expected.items()):
        if metric not in metrics and _outside_selection(metric, record):
            continue
        tol = tolerance_for(metric, baseline["tolerances"])
        measured = metrics.get(metric)
        passed = measured is not None and abs(measured - value) <= tol
        verdicts.append(BaselineVerdict(metric, measured, value, tol, passed))
    return verdicts


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


def update(profile: str, results_dir: Path, directory: Path = BASELINE_DIR, *,
           replace: bool = False) -> tuple[Path, int]:
    """Write the baseline entries of the cases recorded under results_dir; returns (path, number of cases written).

    By default the entries of other cases already in the file are kept (adding a case does not re-measure the
    others); `replace=True` rewrites the file from these records alone. Records that the baseline cannot gate
    (other seeds or repetitions, see `not_gated`) are skipped and named.
    """
    plan = profiles.get(profile)
    records, problems = read_records(results_dir)
    for problem in problems:
        print(f"skipped {problem}")
    mine = []
    for record in (r for r in records if r["profile"] == profile):
        reason = not_gated(record, plan) or ("run with --ood-sets: its means cover other OOD sets than the "
                                             "profile's" if record.get("ood_selection") else None)
        if reason:
            print(f"skipped {record['case_id']} (seed {record['seed']}): {reason}")
        else:
            mine.append(record)
    if not mine:
        raise HarnessError(f"no gateable records of profile {profile!r} under {results_dir}; "
                           f"run `pytest benchmarks --profile {profile} --results-dir {results_dir}` first")
    old = None if replace else load(profile, directory)
    cases = dict(old["cases"]) if old else {}
    machines = dict(old.get("case_machines", {})) if old else {}
    by_machine = {p: dict(e) for p, e in old.get("by_machine", {}).items()} if old else {}
    differ_on = old.get("untagged_entries_differ_on", {}) if old else {}
    for r in mine:
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
    os.replace(tmp, path)
    return path, len(mine)
