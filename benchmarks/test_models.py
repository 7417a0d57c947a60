"""Model entries (benchmarks/models/*.toml): models loaded, not trained, evaluated like every other case.

Every entry on a dataset of the profile becomes one case per score (the profile's OOD sets; the record is marked
loaded: file, sha256, entry). An entry whose checkpoint file is absent (the released models: the repository holds
their addresses, not their bytes) is collected only when the run selects cases by keyword (`-k models`,
`-k oe-cifar10`, ...): then it skips with the command that fetches it, and, like every skipped case, makes the run
exit 1 unless --allow-skips. A run without -k (CI, `pytest benchmarks`) does not collect absent entries, so files a
machine does not have never fail it; docs/own-model.md.
"""
import pytest
from casekit import assert_verdicts, case_params

from harness import model_entries, profiles, scores
from harness.errors import HarnessError
from harness.runner import LOADED, Case


def _entries() -> list[model_entries.Entry]:
    try:
        return model_entries.load_all()
    except HarnessError as exc:  # a malformed entry is a usage error naming file:line, not 40 failing cases
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc):
    profile = profiles.get(metafunc.config.getoption("--profile"))
    datasets = {plan.id for plan in profile.datasets}
    requested = bool(metafunc.config.getoption("keyword"))
    root = metafunc.config.getoption("--data-root")
    entries = [e for e in _entries()
               if e.dataset in datasets and (requested or e.absent(root) is None)]
    cases = [Case("models", e.dataset, LOADED, score, entry=e.name) for e in entries for score in scores.names()]
    metafunc.parametrize("case,seed", case_params(metafunc.config, cases))


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))
