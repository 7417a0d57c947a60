"""Planted regressions for the gate-power test: a pytest plugin (`-p gate_plants`, HARNESS_PLANT=<name>) that
makes one mistake of the kind a contributor makes, before the benchmark cases are collected.

Each plant patches the harness the way a one-line change would: a hyper-parameter, an augmentation, the
evaluation mode, a normalization constant, the mean over OOD sets. tests/test_plants.py runs a smoke case under
each and asserts that the baselines' spread tier fails it. `python tests/gate_plants.py` prints the table of
docs/findings/gates.md: each plant on this machine's kind (both tiers) and under another kernel probe (spread).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CASE = "digits-0-4-scratch-msp"


def _scale_hyper(field: str, factor: float) -> None:
    from harness import recipes

    original = recipes._Trained.hyper

    def hyper(self, epochs):
        h = original(self, epochs)
        return dataclasses.replace(h, **{field: getattr(h, field) * factor})

    recipes._Trained.hyper = hyper


def weight_decay_x10() -> None:
    _scale_hyper("weight_decay", 10.0)


def lr_halved() -> None:
    _scale_hyper("lr", 0.5)


def no_horizontal_flip() -> None:
    from harness.data import loaders

    original = loaders._crop_flip
    loaders._crop_flip = lambda x, dy, dx, flip: original(x, dy, dx, torch.zeros_like(flip))


def evaluation_in_train_mode() -> None:
    torch.nn.Module.eval = lambda self: self  # BatchNorm on batch statistics, dropout on, while evaluating


def dropout_off() -> None:
    from harness import models, recipes

    recipes.Scratch.build = lambda self, model_name, num_classes, inputs: (
        models.create(model_name, num_classes, drop_rate=0.0), [])


def cifar_normalization() -> None:
    """The CIFAR mean/std in place of the harness's 0.5/0.5, for training and evaluation alike."""
    from harness.data import imageset, loaders

    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)

    def normalize_nchw(x):
        return ((x.to(torch.float32) / 255 - mean.to(x.device)) / std.to(x.device)).contiguous()

    imageset.normalize_nchw = loaders.normalize_nchw = normalize_nchw


def ood_mean_over_wrong_sets() -> None:
    """ood/mean/* averaged over all but the last OOD set (an off-by-one in the set list)."""
    import numpy as np

    from harness import runner

    original = runner.evaluate_arrays

    def evaluate_arrays(*args, **kwargs):
        report = original(*args, **kwargs)
        sets = list(report.ood_sets)[:-1]
        for key in [k for k in report.metrics if k.startswith("ood/mean/")]:
            suffix = key.removeprefix("ood/mean/")
            report.metrics[key] = {**report.metrics[key],
                                   "mean": float(np.mean([report.metrics[f"ood/{s}/{suffix}"]["mean"] for s in sets]))}
        return report

    runner.evaluate_arrays = evaluate_arrays


PLANTS = {plant.__name__: plant for plant in (weight_decay_x10, lr_halved, no_horizontal_flip,
                                              evaluation_in_train_mode, dropout_off, cifar_normalization,
                                              ood_mean_over_wrong_sets)}


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get("HARNESS_PLANT", "")
    if name not in PLANTS:
        raise pytest.UsageError(f"HARNESS_PLANT={name!r}: expected one of {', '.join(PLANTS)}")
    PLANTS[name]()


def run_planted(plant: str, tmp_path: Path, *, other_probe: bool = True) -> tuple[subprocess.CompletedProcess, dict]:
    """`pytest benchmarks -k <CASE>` with the plant applied, in a fresh cache; (the run, its record)."""
    env = {**os.environ, "HARNESS_PLANT": plant, "PYTHONPATH": str(REPO / "tests"),
           "HARNESS_DATA_ROOT": str(tmp_path / "data")}
    if other_probe:
        env["ATEN_CPU_CAPABILITY"] = "avx2"  # another kernel probe on AVX-512 machines; the native one on AVX2 ones
    out = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "gate_plants", "-p", "no:cacheprovider",
                          "-q", "-k", f"hendrycks2019 and {CASE.removeprefix('digits-0-4-')}",
                          "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    records = list((tmp_path / "r").glob(f"{CASE}*.json"))
    assert len(records) == 1, out.stdout[-3000:] + out.stderr[-2000:]
    return out, json.loads(records[0].read_text())


def _caught(record: dict, tier: str) -> str:
    verdicts = [v for v in record["verdicts"]["baseline"] or [] if v.get("tier", "exact") == tier]
    if not verdicts:
        return "not applied"
    moved = [v for v in verdicts if not v["passed"]]
    return f"caught ({len(moved)} of {len(verdicts)} metrics)" if moved else f"missed (0 of {len(verdicts)})"


if __name__ == "__main__":
    print("| plant | accuracy | mean AUROC | this kind: exact | this kind: spread | other probe: spread |")
    print("|---|---|---|---|---|---|")
    for name in PLANTS:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            _, native = run_planted(name, Path(a), other_probe=False)
            _, other = run_planted(name, Path(b))
        metrics = native["report"]["metrics"]
        print(f"| {name} | {metrics['accuracy']['mean']:.2f} | {metrics['ood/mean/auroc']['mean']:.2f} | "
              f"{_caught(native, 'exact')} | {_caught(native, 'spread')} | {_caught(other, 'spread')} |", flush=True)
