"""The benchmark cases' shared machinery: the run context from the options, skips, the closing summary."""
from __future__ import annotations

import collections
import contextlib
import os
import time
from argparse import ArgumentTypeError
from datetime import datetime
from pathlib import Path

import pytest

from harness import data as hdata
from harness import options, profiles, runner, shards, store
from harness.errors import HarnessError
from harness.runner import Case, RunContext, Session, resolve_device
from harness.summary import summary_table

_CONTEXT_KEY = pytest.StashKey[RunContext]()
_START_KEY = pytest.StashKey[float]()
_SESSION_KEY = pytest.StashKey[Session]()
_RECORDS_KEY = pytest.StashKey[list]()
_OUTCOMES: dict[str, tuple[str, str]] = {}  # benchmark case nodeid -> ("passed" | "failed" | "skipped", reason)


def _data_root(config: pytest.Config) -> Path | None:
    if config.getoption("--data-root") is not None or not os.environ.get("HARNESS_DATA_ROOT"):
        return config.getoption("--data-root")
    try:
        return options.directory(os.environ["HARNESS_DATA_ROOT"])
    except ArgumentTypeError as exc:
        raise pytest.UsageError(f"$HARNESS_DATA_ROOT: {exc}") from None


def _ood_sets_available(profile: profiles.Profile, requested: str, data_root: Path | None) -> None:
    """Every set named in --ood-sets must be synthetic or imported: a typo is a usage error, not a missing set."""
    names = requested.removeprefix("+").split(",")
    for plan in profile.datasets:
        size = hdata.spec(plan.id, data_root).image_size if hdata.is_known(plan.id, data_root) else 32
        for name in names:
            if name in hdata.synthetic.KINDS:
                continue
            spec = hdata.registry.get_ood(name)
            for split in spec.splits:
                hdata.load(spec.dataset, split, data_root=data_root, image_size=size, mmap=True)


def _context(config: pytest.Config) -> RunContext:
    data_root = _data_root(config)
    try:
        if config.getoption("--profile-file"):
            profiles.add_file(config.getoption("--profile-file"), data_root)
        profile = profiles.get(config.getoption("--profile"))
        if config.getoption("--ood-sets"):
            profile = profile.with_ood_sets(config.getoption("--ood-sets"))
            _ood_sets_available(profile, config.getoption("--ood-sets"), data_root)
        device = resolve_device(config.getoption("--device"))
        band_file = runner.load_bands()  # every band file, whatever the profile: a typo fails every run
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    if profile.device == "cpu" and device.startswith("cuda"):
        device = "cpu"  # CPU profiles are the deterministic regression gates: they stay on the CPU
    if device == "cpu" and profile.cpu_threads:
        import torch

        torch.set_num_threads(profile.cpu_threads)
    results = config.getoption("--results-dir") or Path("results") / profile.name
    return RunContext(profile=profile, device=device, results_dir=Path(results), data_root=data_root,
                      cache_dir=config.getoption("--cache-dir"), num_to_avg=config.getoption("--num-to-avg"),
                      download=config.getoption("--download"), quiet=config.getoption("verbose") < 0,
                      bands=band_file)


def pytest_configure(config: pytest.Config) -> None:
    """Validate the options before collection, so a typo is a usage error, not 20 failing cases."""
    config.stash[_CONTEXT_KEY] = _context(config)
    if config.getoption("--shard"):
        try:
            shards.parse(config.getoption("--shard"))
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from None
    _OUTCOMES.clear()


@pytest.fixture(scope="session")
def harness_session(request) -> Session:
    session = Session(request.config.stash[_CONTEXT_KEY])
    request.config.stash[_SESSION_KEY] = session
    return session


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


def _written_at(record: dict) -> float:
    stamp = record["provenance"].get("time_utc") or "1970-01-01T00:00:00Z"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--shard K/N: keep this shard's cases (harness.shards), and each dataset's claims test where its cases run.
    A module with no case on this profile (model entries on none of its datasets) leaves pytest's empty-parameter
    placeholder: it is deselected, so the run reports no skip for a case that does not exist. The claims tests
    run last: a claim reads cases of other modules (the scratch model's energy case is test_scores')."""
    empty = [item for item in items if item.name.endswith("[NOTSET]")]
    if empty:
        config.hook.pytest_deselected(items=empty)
        items[:] = [item for item in items if item not in empty]
    items.sort(key=lambda item: "claim_dataset" in getattr(getattr(item, "callspec", None), "params", {}))
    if not config.getoption("--shard"):
        return
    k, n = shards.parse(config.getoption("--shard"))
    profile = config.stash[_CONTEXT_KEY].profile
    cases = [item for item in items if item.get_closest_marker("benchmark_case")]
    keys = [(c.recipe, dict(c.recipe_params), c.dataset, item.callspec.params["seed"])
            for item in cases for c in [item.callspec.params["case"]]]
    mine = {item for item, shard in zip(cases, shards.assign(keys, n, profile)) if shard == k}
    datasets = {item.callspec.params["case"].dataset for item in mine}
    keep = [item for item in items if item in mine or (
        item not in cases and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("claim_dataset") in datasets)]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Tally benchmark cases (on the xdist controller too: it receives every worker's reports)."""
    if "benchmark_case" not in report.keywords:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _OUTCOMES[report.nodeid] = ("skipped", reason.removeprefix("Skipped: "))
    elif report.failed:
        _OUTCOMES[report.nodeid] = ("failed", "")
    elif report.when == "call":
        _OUTCOMES.setdefault(report.nodeid, ("passed", ""))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_START_KEY] = time.time()


def skipped_summary() -> str | None:
    """One line when benchmark cases were skipped (the run measured less than it was asked to), else None."""
    skipped = [reason for outcome, reason in _OUTCOMES.values() if outcome == "skipped"]
    if not skipped:
        return None
    reason, count = collections.Counter(skipped).most_common(1)[0]
    others = "" if count == len(skipped) else f" (and {len(skipped) - count} for other reasons)"
    return (f"{len(skipped)} of {len(_OUTCOMES)} benchmark cases skipped, {count} because: {reason}{others}; "
            f"pass --allow-skips to exit 0 anyway")


def ungated_summary(records: list[dict]) -> str | None:
    """One line when this run wrote records and no gate checked any of them (a run that checked nothing must not
    pass unnoticed), else None."""
    if not records or any(runner.checked(r) for r in records):
        return None
    reasons = collections.Counter(r["verdicts"].get("not_gated") or "no band or baseline applies" for r in records)
    reason, count = reasons.most_common(1)[0]
    return (f"none of the {len(records)} records of this run was checked by a gate ({count} because: {reason}); "
            f"pass --allow-ungated to exit 0 anyway")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return
    if session.exitstatus == 0 and skipped_summary() and not session.config.getoption("--allow-skips"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if (session.exitstatus == 0 and not session.config.getoption("--allow-ungated")
            and ungated_summary(_run_records(session.config))):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _written_at(record: dict) -> float:
    stamp = record["provenance"].get("time_utc") or "1970-01-01T00:00:00Z"
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _run_records(config: pytest.Config) -> list[dict]:
    """The records this run wrote (read from disk once the run is over, so that xdist workers' records are
    included; the exit status and the closing table read the same list)."""
    if _CONTEXT_KEY not in config.stash:
        return []
    if _RECORDS_KEY not in config.stash:
        records, _ = store.read_records(config.stash[_CONTEXT_KEY].results_dir)
        started = config.stash.get(_START_KEY, 0.0)
        config.stash[_RECORDS_KEY] = [r for r in records if _written_at(r) >= int(started)]
    return config.stash[_RECORDS_KEY]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """A table of this run's records; read from disk so that xdist workers' results are included."""
    if hasattr(config, "workerinput"):
        return
    ctx = config.stash[_CONTEXT_KEY]
    mine = _run_records(config)
    if mine:
        terminalreporter.section("uncertainty harness results")
        for line in summary_table(mine):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"{len(mine)} records in {ctx.results_dir.resolve()}")
    session = config.stash.get(_SESSION_KEY, None)
    if session is not None and session.dry_run_claims:
        terminalreporter.section("direction claims (dry run: reported, not enforced)")
        for line in session.dry_run_claims:
            terminalreporter.write_line(line)
    skipped = skipped_summary()
    if skipped:
        terminalreporter.write_line(f"harness: {skipped}", red=not config.getoption("--allow-skips"), bold=True)
    ungated = ungated_summary(mine)
    if ungated:
        terminalreporter.write_line(f"harness: {ungated}", red=not config.getoption("--allow-ungated"), bold=True)
