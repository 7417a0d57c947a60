"""Result records: one JSON file per case run (schema in the README), written atomically.

Readers never crash on a bad file: `read_records` returns the problems beside the records.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__, machine

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("schema_version", "case_id", "profile", "dataset", "model", "recipe", "score",
                   "seed", "report", "timings", "verdicts", "provenance")


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "record"


def record_path(results_dir: Path, case_id: str, seed: int) -> Path:
    return Path(results_dir) / f"{slug(case_id)}-s{seed}.json"


def write_record(record: dict, results_dir: Path) -> Path:
    """Write via a temp file in the same folder and os.replace, so a reader sees the old or the new file, never half."""
    missing = [k for k in REQUIRED_FIELDS if k not in record]
    if missing:
        raise ValueError(f"record for {record.get('case_id')!r} lacks fields {missing}")
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = record_path(results_dir, record["case_id"], record["seed"])
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=results_dir, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# Ranges of metric means by key (docs/metrics.md): every metric is in
# percent, [0, 100], except calib/nll (nats, any finite value >= 0) and calib/brier (raw, [0, 2]).
# harness.evaluate._NOT_PERCENT names the same two keys; tests/test_store.py checks that they agree.
# A calibration view (harness.calibration: calib@T/<metric> at the fitted temperature, calib@M1/<metric> with one
# sample) keeps its metric's unit; calib@T/temperature is the fitted T itself (> 0, no percent).
METRIC_RANGES: dict[str, tuple[float, float | None]] = {
    "calib/nll": (0.0, None), "calib/brier": (0.0, 2.0), "calib/temperature": (0.0, None),
    # feature distortion is a ratio of mean squared norms (harness.shift.distortion): 0 = unchanged, no upper bound
    "distortion/id": (0.0, None), "distortion/shift": (0.0, None)}
PERCENT_RANGE: tuple[float, float | None] = (0.0, 100.0)
_VIEW = re.compile(r"calib@[^/]+/")
# A shift metric (shift/<corruption>/<severity>/<metric>, shift/severity<k>/<metric>, shift/mean/<metric>) keeps the
# unit of its in-distribution namesake: nll in nats, accuracy/ece/rms in percent.
_SHIFT = re.compile(r"shift/(?:[^/]+/)+")
# Float rounding (a mean of 100s, an AUROC of 1 + 1 ulp, a Brier score of -1e-17) must not make a real record
# invalid: bounds are checked this much wider. Far below the 2 to 4 decimals the leaderboard shows.
RANGE_SLACK = 1e-6
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # provenance.time_utc, as provenance() writes it
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_VERDICT_NUMBERS = ("measured", "expected", "tolerance", "low", "high", "paper_value")


def metric_range(key: str) -> tuple[float, float | None]:
    """(low, high) of a metric's mean; high None = no upper bound."""
    view = _VIEW.match(key) or _SHIFT.match(key)
    return METRIC_RANGES.get("calib/" + key[view.end():] if view else key, PERCENT_RANGE)


def _shown(value: object) -> str:
    """A value in a reason: short, and the same for the same value."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _number_in(value: object, low: float, high: float | None) -> bool:
    return (_finite(value) and value >= low - RANGE_SLACK
            and (high is None or value <= high + RANGE_SLACK))


def _range_text(low: float, high: float | None) -> str:
    return f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _check_metric(key: str, stat: object) -> str | None:
    where = f"report.metrics[{json.dumps(key, ensure_ascii=False)}]"  # always quoted: keys hold '/' and '@'
    if not isinstance(stat, dict):
        return f"{where}: expected an object {{mean, std, n}}, got {_shown(stat)}"
    low, high = metric_range(key)
    if "mean" not in stat:
        return f"{where}: has no mean"
    if not _number_in(stat["mean"], low, high):
        return f"{where}.mean: expected a finite number {_range_text(low, high)}, got {_shown(stat['mean'])}"
    # evaluate.Report always writes std (0.0 for a single value); a spread wider than the range is impossible.
    spread = None if high is None else high - low
    if "std" not in stat:
        return f"{where}: has no std"
    if not _number_in(stat["std"], 0.0, spread):
        return f"{where}.std: expected a finite number {_range_text(0.0, spread)}, got {_shown(stat['std'])}"
    n = stat.get("n", 0)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return f"{where}.n: expected an integer >= 0, got {_shown(n)}"
    return None


def _check_fields(record: dict) -> str | None:
    for name in ("case_id", "profile", "dataset", "model"):
        if not isinstance(record[name], str) or not record[name].strip():
            return f"{name}: expected a non-empty string, got {_shown(record[name])}"
    for name in ("recipe", "score"):
        value = record[name]
        if not isinstance(value, dict):
            return f"{name}: expected an object {{name, ...}}, got {_shown(value)}"
        if not isinstance(value.get("name"), str) or not value["name"].strip():
            return f"{name}.name: expected a non-empty string, got {_shown(value.get('name'))}"
    if isinstance(record["seed"], bool) or not isinstance(record["seed"], int):
        return f"seed: expected an integer, got {_shown(record['seed'])}"
    report = record["report"]
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        return "report has no metrics"
    for key, stat in report["metrics"].items():
        reason = _check_metric(key, stat)
        if reason:
            return reason
    timings = record["timings"]
    if not isinstance(timings, dict):
        return f"timings: expected an object, got {_shown(timings)}"
    for key, value in timings.items():
        if not _number_in(value, 0.0, None):
            return f"{_at('timings', key)}: expected a finite number of seconds >= 0, got {_shown(value)}"
    return _check_verdicts(record["verdicts"]) or _check_provenance(record["provenance"])


def _check_verdicts(verdicts: object) -> str | None:
    if not isinstance(verdicts, dict):
        return f"verdicts: expected an object, got {_shown(verdicts)}"
    for name in ("bands", "baseline"):
        items = verdicts.get(name, [] if name == "bands" else None)
        if items is None and name == "baseline":
            continue
        if not isinstance(items, list):
            allowed = "a list" if name == "bands" else "a list or null"
            return f"verdicts.{name}: expected {allowed}, got {_shown(items)}"
        for i, item in enumerate(items):
            where = f"verdicts.{name}[{i}]"
            if not isinstance(item, dict):
                return f"{where}: expected an object, got {_shown(item)}"
            if not isinstance(item.get("metric"), str):
                return f"{where}.metric: expected a string, got {_shown(item.get('metric'))}"
            if item.get("passed") is not None and not isinstance(item["passed"], bool):
                return f"{where}.passed: expected true, false or null, got {_shown(item.get('passed'))}"
            for field in _VERDICT_NUMBERS:
                if item.get(field) is not None and not _finite(item[field]):
                    return f"{where}.{field}: expected a finite number or null, got {_shown(item[field])}"
    reason = verdicts.get("not_gated")
    if reason is not None and not isinstance(reason, str):
        return f"verdicts.not_gated: expected a string or null, got {_shown(reason)}"
    return None


def _check_provenance(provenance: object) -> str | None:
    if not isinstance(provenance, dict):
        return f"provenance: expected an object, got {_shown(provenance)}"
    stamp = provenance.get("time_utc")
    if not isinstance(stamp, str) or not _TIME.match(stamp):
        return f"provenance.time_utc: expected a UTC time like 2026-01-31T12:00:00Z, got {_shown(stamp)}"
    try:
        datetime.strptime(stamp, TIME_FORMAT)
    except ValueError:
        return f"provenance.time_utc: not a valid time, got {_shown(stamp)}"
    return None


def _non_finite(value: object) -> str | None:
    """The path of the first NaN or infinity anywhere in a parsed record (iterative: no recursion limit)."""
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path or "the record"
        if isinstance(item, dict):
            stack.extend((_at(path, k) if path else k, v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
    return None


def _check(record: object) -> str | None:
    """Why a parsed record cannot be used (naming the field), or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    version = record.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        return "no integer schema_version"
    if version > SCHEMA_VERSION:
        return f"written by a newer harness (schema {version}; this one reads up to {SCHEMA_VERSION})"
    if version < 1:
        return f"unknown schema_version {version}"
    missing = [k for k in REQUIRED_FIELDS if k not in record]
    if missing:
        return f"missing fields {missing}"
    reason = _check_fields(record)
    if reason:
        return reason
    where = _non_finite(record)
    if where:
        return f"{where}: NaN or infinity, which a record cannot hold (JSON has no such numbers)"
    return None


def read_record(path: Path) -> dict:
    """One record; raises ValueError with the reason when it cannot be used.

    Beyond parsing, the record is checked against the schema (types of every required field) and the ranges
    of its metrics (`metric_range`); NaN and Infinity, which json.loads accepts, are rejected.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable: {exc}") from None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, too many digits, nesting too deep
        raise ValueError(f"truncated or invalid JSON ({exc})") from None
    reason = _check(record)
    if reason:
        raise ValueError(reason)
    return record


def read_records(results_dir: Path) -> tuple[list[dict], list[Problem]]:
    """Every usable record under results_dir (recursively), sorted by path, and the files that were not usable."""
    records, problems = [], []
    root = Path(results_dir)
    if not root.is_dir():
        return [], [Problem(root, "no such results directory")]
    for path in sorted(root.rglob("*.json")):
        try:
            records.append(read_record(path))
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))
    return records, problems


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(device: str) -> dict:
    import torch

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    device_name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    elif device == "cpu":
        device_name = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "harness_version": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device": device_name,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "time_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel_probe": machine.kernel_probe() if device == "cpu" else None,
    }
