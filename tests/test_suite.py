"""The benchmark suite's plumbing, run as a user runs it: case ids, skips with reasons, option errors, gates."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import baselines, cli, runner
from harness.runner import Case
from record_factory import make_record

REPO = Path(__file__).resolve().parents[1]


def _pytest(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_case_ids_are_readable():
    assert Case("hendrycks2019", "cifar10", "finetune").id == "cifar10-finetune-msp"
    assert Case("transfer", "cifar10", "wise_ft", recipe_params=(("alpha", 0.5),)).id == "cifar10-wise_ft-alpha0.5-msp"
    assert Case("scores", "cifar10", "scratch", "energy", score_params=(("temperature", 2.0),)).id == \
        "cifar10-scratch-energy-temperature2"


@pytest.mark.slow
def test_smoke_grid_covers_recipes_and_scores(tmp_path):
    out = _pytest("--collect-only", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    for expected in ("digits-0-4-scratch-msp", "digits-0-4-finetune-msp", "digits-0-4-finetune-odin",
                     "digits-0-4-scratch-knn", "digits-0-4-linear_probe-msp", "digits-0-4-lp_ft-msp",
                     "digits-0-4-wise_ft-alpha0.5-msp"):
        assert any(f"[{expected}]" in line for line in ids), expected
    # every claims test after every case: a claim reads cases of other modules (test_scores' energy cases)
    claims = [i for i, line in enumerate(ids) if "::test_direction_claims[" in line]
    assert claims and claims == list(range(len(ids) - len(claims), len(ids))), ids


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_paper_profile_without_gpu_fails_the_run_with_one_line_reason(tmp_path):
    """A run that measured nothing must not look green; --allow-skips is the explicit way out."""
    out = _pytest("--profile", "paper", "-rs", "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    summary = [line for line in out.stdout.splitlines() if line.startswith("harness: ")]
    assert len(summary) == 1 and "benchmark cases skipped" in summary[0] and "needs a CUDA GPU" in summary[0]
    assert "--allow-skips" in summary[0] and "passed" not in out.stdout.splitlines()[-1]
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))
    allowed = _pytest("--profile", "paper", "--allow-skips", "--results-dir", str(tmp_path / "r"))
    assert allowed.returncode == 0, allowed.stdout[-3000:]


@pytest.mark.slow
def test_mini_profile_without_data_fails_with_the_import_command(tmp_path):
    out = _pytest("--profile", "mini", "-rs", "-k", "scratch-msp", "--data-root", str(tmp_path / "empty"),
                  "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    summary = next(line for line in out.stdout.splitlines() if line.startswith("harness: "))
    assert "python -m harness data import cifar10" in summary


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (("--profile", "papr"), "unknown profile 'papr'"),
    (("--device", "tpu"), "--device must be auto, cpu, cuda or cuda:N"),
    (("--seeds=",), "argument --seeds: expected comma-separated integers"),
    (("--num-to-avg", "0"), "argument --num-to-avg: expected an integer >= 1, got 0"),
    (("--cache-dir", "README.md/x"), "argument --cache-dir: README.md/x: cannot be created: README.md is a file"),
])
def test_bad_options_are_usage_errors(args, message):
    """One per kind of check; tests/test_options.py covers the values (the same argparse types)."""
    out = _pytest("--collect-only", "-q", *args)
    assert out.returncode == 4 and message in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.slow
def test_a_band_file_typo_fails_every_profile_with_file_and_line(tmp_path):
    text = (REPO / "benchmarks" / "bands" / "hendrycks2019.toml").read_text()
    line = text[:text.index("\nlow = ")].count("\n") + 2
    (tmp_path / "hendrycks2019.toml").write_text(text.replace("\nlow = ", "\nlwo = ", 1))
    out = _pytest("--collect-only", "-q", env={"HARNESS_BANDS_DIR": str(tmp_path)})
    assert out.returncode == 4, out.stdout[-2000:] + out.stderr[-2000:]
    errors = [ln for ln in (out.stdout + out.stderr).splitlines() if f"hendrycks2019.toml:{line}:" in ln]
    assert len(errors) == 1 and "unknown field 'lwo'" in errors[0]


def test_failures_name_band_and_baseline_misses():
    record = make_record("cifar10-scratch-msp", profile="paper")
    record["path"] = "r.json"
    record["verdicts"]["bands"] = [
        {"metric": "ood/mean/auroc", "passed": False, "proxy": False, "message": "ood/mean/auroc = 80 outside"},
        {"metric": "accuracy", "passed": False, "proxy": True, "message": "proxy miss"},
        {"metric": "ood/svhn/auroc", "passed": None, "proxy": False, "message": "not measured"}]
    record["verdicts"]["baseline"] = None
    assert runner.failures(record) == ["band: ood/mean/auroc = 80 outside"]
    record["profile"] = "smoke"
    assert any("has no entry for this case" in f for f in runner.failures(record))
    moved = baselines.BaselineVerdict("ood/mean/aupr@ood", 44.8, 20.97, 0.5, False)
    record["verdicts"]["baseline"] = [moved.to_json(), baselines.BaselineVerdict("accuracy", 1, 1, 0.5, True).to_json()]
    assert runner.failures(record)[1:] == [
        "baseline (exact): 1 of 2 metrics moved past the tolerance or missing",
        "  ood/mean/aupr@ood = 44.8000, baseline 20.9700 +- 0.5 (moved by +23.8300)"]


def test_resolve_device():
    assert runner.resolve_device("cpu") == "cpu"
    assert runner.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="no CUDA device"):
            runner.resolve_device("cuda:0")


def test_cli_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("baseline", "data", "leaderboard", "train"):
        assert command in text
