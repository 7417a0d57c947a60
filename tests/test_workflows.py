"""The GitHub Actions workflows parse and reference only real commands, options and paths of this repo."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SHELL_OPERATORS = {"&&", "||", "|", ";"}
# pytest options (ours and pytest's) that take a separate value; their values are not test paths
PYTEST_VALUE_OPTIONS = {"--profile", "--results-dir", "--data-root", "--device", "--seeds", "--num-to-avg",
                        "--cache-dir", "--basetemp", "--benchmark-json", "-k", "-m", "-n", "-p"}
UPLOAD_ACTIONS = ("actions/upload-artifact@", "actions/upload-pages-artifact@")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the bare key `on` as true
    return doc


def commands(run: str) -> list[list[str]]:
    """Each shell command of a `run:` block as argv, split at newlines and shell operators."""
    found = []
    for line in run.replace("\\\n", " ").splitlines():
        argv: list[str] = []
        for token in shlex.split(line, comments=True):
            if token in SHELL_OPERATORS or token.startswith(">"):
                found.append(argv)
                argv = []
            else:
                argv.append(token)
        found.append(argv)
    return [argv for argv in found if argv]


def invocations(argv: list[str]) -> tuple[str, list[str]] | None:
    """('harness' | 'pytest' | 'pip' | 'mkdir', args) when argv runs one of those, else None."""
    if argv[:3] == ["python", "-m", "harness"]:
        return "harness", argv[3:]
    if argv[:1] == ["pytest"] or argv[:3] == ["python", "-m", "pytest"]:
        return "pytest", argv[1 if argv[0] == "pytest" else 3:]
    if argv[:2] == ["pip", "install"] or argv[:4] == ["python", "-m", "pip", "install"]:
        return "pip", argv[2 if argv[0] == "pip" else 4:]
    if argv[0] == "mkdir":
        return "mkdir", [a for a in argv[1:] if not a.startswith("-")]
    return None


def option_value(args: list[str], option: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


def pytest_paths(args: list[str]) -> list[str]:
    return [a for i, a in enumerate(args)
            if not a.startswith("-") and (i == 0 or args[i - 1] not in PYTEST_VALUE_OPTIONS)]


def covers(produced: set[str], path: str) -> bool:
    """path was written by an earlier step: it is, contains or lies inside a produced folder."""
    path = path.rstrip("/")
    return any(p == path or p.startswith(path + "/") or path.startswith(p + "/") for p in produced)


def all_jobs() -> list:
    return [pytest.param(workflow, job, id=f"{workflow.name}:{name}")
            for workflow in WORKFLOWS for name, job in load(workflow)["jobs"].items()]


@pytest.fixture(scope="module")
def pytest_help() -> str:
    return subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120).stdout


def test_the_four_workflows_exist():
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "gpu.yml", "mini.yml", "pages.yml"]


def test_mini_runs_on_main_and_nightly_and_fails_without_its_data():
    """The PR job keeps smoke and the tests; mini runs on pushes to main and nightly, and a missing data source
    is an error, not a silent pass."""
    doc = load(REPO / ".github" / "workflows" / "mini.yml")
    assert doc["on"]["push"]["branches"] == ["main"] and doc["on"]["schedule"]
    steps = doc["jobs"]["mini"]["steps"]
    data = next(s for s in steps if "MINI_DATA_URL" in s.get("run", ""))
    assert "::error ::mini not run" in data["run"] and "exit 1" in data["run"]
    assert any("--profile mini" in s.get("run", "") for s in steps)
    ci = load(REPO / ".github" / "workflows" / "ci.yml")
    assert not any("--profile mini" in s.get("run", "") for job in ci["jobs"].values() for s in job["steps"])


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda w: w.name)
def test_workflow_parses_with_triggers_and_jobs(workflow):
    doc = load(workflow)
    assert doc["name"] and doc["on"], workflow.name
    assert doc["jobs"], workflow.name
    for name, job in doc["jobs"].items():
        assert job["runs-on"], name
        assert job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize("workflow, job", all_jobs())
def test_commands_options_and_paths_are_real(workflow, job, pytest_help):
    parser = build_parser()
    produced: set[str] = set()  # folders earlier steps of this job write
    for step in job["steps"]:
        if "uses" in step and step["uses"].startswith(UPLOAD_ACTIONS):
            path = step["with"]["path"]
            assert (REPO / path).exists() or covers(produced, path), f"{workflow.name}: uploads unmade {path}"
        for argv in commands(step.get("run", "")):
            call = invocations(argv)
            if call is None:
                continue
            kind, args = call
            if kind == "harness":
                try:
                    parsed = parser.parse_args(args)
                except SystemExit:
                    pytest.fail(f"{workflow.name}: `python -m harness {' '.join(args)}` is not a valid command")
                if parsed.command == "leaderboard":
                    results = str(parsed.results)
                    assert (REPO / results).is_dir() or covers(produced, results), f"{workflow.name}: {results}"
                    produced.add(str(parsed.out))
            elif kind == "pytest":
                paths = pytest_paths(args)
                assert paths, f"{workflow.name}: pytest without a path"
                for path in paths:
                    assert (REPO / path).exists(), f"{workflow.name}: pytest path {path} is not in the repo"
                for option in (a.split("=")[0] for a in args if a.startswith("--")):
                    assert option in pytest_help, f"{workflow.name}: pytest has no option {option}"
                if option_value(args, "--results-dir"):
                    produced.add(option_value(args, "--results-dir"))
            elif kind == "pip":
                target = option_value(args, "-e")
                if target:
                    assert (REPO / target.split("[")[0]).is_dir(), f"{workflow.name}: pip -e {target}"
            else:
                produced.update(args)


def test_ci_runs_tests_smoke_and_leaderboard_on_pushes_and_pull_requests():
    doc = load(REPO / ".github" / "workflows" / "ci.yml")
    assert set(doc["on"]) == {"push", "pull_request"}
    runs = [s.get("run", "") for s in doc["jobs"]["cpu"]["steps"]]
    assert any("download.pytorch.org/whl/cpu" in r and "-e '.[dev]'" in r for r in runs)
    assert "pytest tests" in runs and any(r.startswith("pytest benchmarks") for r in runs)
    assert any(s.get("with", {}).get("python-version") == "3.11" for s in doc["jobs"]["cpu"]["steps"])


def test_gpu_workflow_runs_the_paper_profile_on_a_self_hosted_gpu_runner():
    doc = load(REPO / ".github" / "workflows" / "gpu.yml")
    assert {"workflow_dispatch", "schedule"} <= set(doc["on"])
    (job,) = doc["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "gpu"]
    gate = next(s for s in job["steps"] if "--profile paper" in s.get("run", ""))
    assert "if" not in gate and "continue-on-error" not in gate  # its exit status fails the run


def test_pages_workflow_deploys_with_least_privilege():
    doc = load(REPO / ".github" / "workflows" / "pages.yml")
    assert doc["permissions"] == {"contents": "read"}
    deploy = doc["jobs"]["deploy"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["steps"][-1]["uses"].startswith("actions/deploy-pages@")
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact@") for s in doc["jobs"]["build"]["steps"])
