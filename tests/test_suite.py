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


def test_smoke_grid_covers_recipes_and_scores(tmp_path):
    out = _pytest("--collect-only", "-q")
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    for expected in ("digits-0-4-scratch-msp", "digits-0-4-finetune-msp", "digits-0-4-finetune-odin",
                     "digits-0-4-scratch-knn", "digits-0-4-linear_probe-msp", "digits-0-4-lp_ft-msp",
                     "digits-0-4-wise_ft-alpha0.5-msp"):
        assert any(f"[{expected}]" in line for line in ids), expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_paper_profile_without_gpu_skips_every_case_with_one_line_reason(tmp_path):
    out = _pytest("--profile", "paper", "-rs", "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    skips = [line for line in out.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips and "passed" not in out.stdout.splitlines()[-1] and "failed" not in out.stdout.splitlines()[-1]
    assert any("needs a CUDA GPU" in line and "--profile smoke|mini" in line for line in skips)
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.json"))


def test_mini_profile_without_data_skips_with_the_import_command(tmp_path):
    out = _pytest("--profile", "mini", "-rs", "-k", "scratch-msp", "--data-root", str(tmp_path / "empty"),
                  "--results-dir", str(tmp_path / "r"))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "python -m harness data import cifar10" in out.stdout


@pytest.mark.parametrize("args, message", [
    (("--profile", "papr"), "unknown profile 'papr'"),
    (("--device", "tpu"), "--device must be auto, cpu, cuda or cuda:N"),
    (("--seeds", "a,b"), "--seeds expects comma-separated integers"),
])
def test_bad_options_are_usage_errors(args, message):
    out = _pytest("--collect-only", "-q", *args)
    assert out.returncode != 0 and message in out.stdout + out.stderr


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
        "baseline: ood/mean/aupr@ood = 44.8000, baseline 20.9700 +- 0.5 (moved by +23.8300)"]


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
