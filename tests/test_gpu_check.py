"""The prepared GPU check, run on the CPU: throughput of both loaders, a plan from it, the stages that fit."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import gpu_check, profiles

REPO = Path(__file__).resolve().parents[1]


def _tiny():
    smoke = profiles.get("smoke")
    return dataclasses.replace(smoke, epochs={"scratch": 1, "pretrain": 1, "finetune": 1}, train_limit=100,
                               test_limit=60, num_to_avg=2)


@pytest.mark.slow
def test_a_generous_budget_runs_both_stages_and_writes_everything(tmp_path, capsys):
    summary = gpu_check.run(_tiny(), tmp_path / "out", budget_s=3600, data_root=tmp_path / "data",
                            device="cpu", cache_dir=tmp_path / "cache")
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"environment.json", "throughput.json", "plan.json", "summary.json",
                                              "records"}
    rates = json.loads((out / "throughput.json").read_text())
    assert rates["images_per_s"]["fast"] > 0 and rates["images_per_s"]["reference"] > 0
    assert rates["fast_over_reference"] == pytest.approx(rates["images_per_s"]["fast"] /
                                                          rates["images_per_s"]["reference"])
    assert [s["fits"] for s in summary["plan"]] == [True, True]
    assert [r["case"] for r in summary["ran"]] == ["digits-0-4-scratch-msp", "digits-0-4-finetune-msp"]
    assert len(list((out / "records").glob("*.json"))) == 2
    printed = capsys.readouterr().out
    assert "plan: scratch" in printed and "ratio" in printed


def test_a_stage_that_does_not_fit_is_skipped_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "throughput", lambda profile, device, data_root: {
        "images_per_s": {"fast": 1.0, "reference": 0.5}, "fast_over_reference": 2.0, "batch_size": 128})
    summary = gpu_check.run(_tiny(), tmp_path / "out", budget_s=150, data_root=tmp_path / "data", device="cpu",
                            cache_dir=tmp_path / "cache")
    # 100 images x 1 epoch at 1 image/s = 100 s x 1.25 fits in 150 s; pretrain + finetune (200 s) does not
    assert [s["fits"] for s in summary["plan"]] == [True, False] and len(summary["ran"]) == 1
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["stages"][1]["estimated_train_s"] == pytest.approx(200.0)


def test_missing_data_is_an_error_before_any_timing(tmp_path):
    with pytest.raises(Exception, match="python -m harness data import cifar10"):
        gpu_check.run("paper-dryrun", tmp_path / "out", budget_s=60, data_root=tmp_path / "empty", device="cpu")
    assert not (tmp_path / "out" / "throughput.json").exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_the_gpu_script_runs_on_the_cpu_in_dry_run_mode(tmp_path):
    """benchmarks/gpu/run.sh end to end on the paper-dryrun profile: the imports, the check, the log."""
    shared = os.environ.get("HARNESS_SHARED_DATA")
    if not shared:
        pytest.skip("set HARNESS_SHARED_DATA to the folder of cifar10-jpeg.tar.gz and tiny-imagenet-32.tar.gz")
    # CI has imported both archives into $HARNESS_DATA_ROOT already: the script's imports are then no-ops
    env = {**os.environ, "HARNESS_DATA_ROOT": os.environ.get("HARNESS_DATA_ROOT") or str(tmp_path / "data")}
    # --budget-s 1: the imports, the environment, both loaders' WRN-40-2 throughput and the plan, no training
    out = subprocess.run(["bash", "benchmarks/gpu/run.sh", shared, str(tmp_path / "out"), "--profile",
                          "paper-dryrun", "--device", "cpu", "--budget-s", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["profile"] == "paper-dryrun" and summary["throughput"]["model"] == "wrn-40-2"
    assert [s["fits"] for s in summary["plan"]] == [False, False] and summary["ran"] == []
    log = (tmp_path / "out" / "gpu-check.log").read_text()
    assert "throughput (wrn-40-2" in log and "skipped: does not fit the time left" in log
