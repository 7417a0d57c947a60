"""The benchmark cases' shared machinery: the run context from the options, skips, the closing summary."""
from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path

import pytest

from casekit import seeds
from harness import profiles, store
from harness.errors import HarnessError
from harness.runner import Case, RunContext, Session, resolve_device
from harness.summary import summary_table

_CONTEXT_KEY = pytest.StashKey[RunContext]()
_START_KEY = pytest.StashKey[float]()


def _context(config: pytest.Config) -> RunContext:
    try:
        profile = profiles.get(config.getoption("--profile"))
        device = resolve_device(config.getoption("--device"))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    if profile.device == "cpu" and device.startswith("cuda"):
        device = "cpu"  # CPU profiles are the deterministic regression gates: they stay on the CPU
    if device == "cpu" and profile.cpu_threads:
        import torch

        torch.set_num_threads(profile.cpu_threads)
    results = config.getoption("--results-dir") or Path("results") / profile.name
    data_root = config.getoption("--data-root") or os.environ.get("HARNESS_DATA_ROOT")
    return RunContext(profile=profile, device=device, results_dir=Path(results),
                      data_root=Path(data_root) if data_root else None,
                      cache_dir=Path(config.getoption("--cache-dir")) if config.getoption("--cache-dir") else None,
                      num_to_avg=config.getoption("--num-to-avg"), download=config.getoption("--download"),
                      quiet=config.getoption("verbose") < 1)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options before collection, so a typo is a usage error, not 20 failing cases."""
    config.stash[_CONTEXT_KEY] = _context(config)
    seeds(config)


@pytest.fixture(scope="session")
def harness_session(request) -> Session:
    return Session(request.config.stash[_CONTEXT_KEY])


@pytest.fixture
def run_case(harness_session, benchmark, capsys):
    """Run a case (skipping it with the reason when its device or data is absent) and time it with pytest-benchmark.

    With -v, training progress goes straight to the terminal (past pytest's capture)."""

    def run(case: Case, seed: int) -> dict:
        reason = harness_session.unavailable(case)
        if reason:
            pytest.skip(reason)
        live = capsys.disabled() if not harness_session.ctx.quiet else contextlib.nullcontext()
        with live:
            record = benchmark.pedantic(harness_session.run, args=(case, seed), rounds=1, iterations=1)
        benchmark.extra_info.update({
            "case_id": case.id, "seed": seed, "profile": record["profile"], "timings": record["timings"],
            "metrics": {k: v["mean"] for k, v in record["report"]["metrics"].items()},
        })
        return record

    return run


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_START_KEY] = time.time()


def _written_at(record: dict) -> float:
    stamp = record["provenance"].get("time_utc") or "1970-01-01T00:00:00Z"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """A table of this run's records; read from disk so that xdist workers' results are included."""
    if not any("benchmarks" in str(arg) for arg in config.args) or hasattr(config, "workerinput"):
        return
    ctx_results = config.getoption("--results-dir") or Path("results") / config.getoption("--profile")
    started = config.stash.get(_START_KEY, 0.0)
    records, _ = store.read_records(Path(ctx_results))
    mine = [r for r in records if _written_at(r) >= int(started)]
    if not mine:
        return
    terminalreporter.section("uncertainty harness results")
    for line in summary_table(mine):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"{len(mine)} records in {Path(ctx_results).resolve()}")
