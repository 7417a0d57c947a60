"""Result records: one JSON file per case run (schema in the README), written atomically.

Readers never crash on a bad file: `read_records` returns the problems beside the records.
"""
from __future__ import annotations

import json
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

from harness import __version__

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


def _check(record: object) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    version = record.get("schema_version")
    if not isinstance(version, int):
        return "no integer schema_version"
    if version > SCHEMA_VERSION:
        return f"written by a newer harness (schema {version}; this one reads up to {SCHEMA_VERSION})"
    missing = [k for k in REQUIRED_FIELDS if k not in record]
    if missing:
        return f"missing fields {missing}"
    metrics = record["report"].get("metrics") if isinstance(record["report"], dict) else None
    if not isinstance(metrics, dict):
        return "report has no metrics"
    return None


def read_record(path: Path) -> dict:
    """One record; raises ValueError with the reason when it cannot be used."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable: {exc}") from None
    except json.JSONDecodeError as exc:
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
    }
