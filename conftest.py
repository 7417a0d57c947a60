"""Pytest options of the harness (one group, `pytest --help` lists them under "harness") and GPU pinning for xdist."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from harness import options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "uncertainty harness benchmark options")
    group.addoption("--profile", default="smoke",
                    help="smoke (default, CPU, offline) | mini (CPU, real data) | paper (GPU) | a --profile-file one")
    group.addoption("--profile-file", default=None, metavar="PATH",
                    help="a TOML file in the format of harness/profiles.toml: its profiles join (or, by name, "
                         "replace) the built-in ones for this run")
    group.addoption("--ood-sets", default=None, metavar="A,B | +A,B", type=options.name_list,
                    help="replace the profile's OOD sets (A,B) or add to them (+A,B): synthetic kinds or imported "
                         "datasets; baselines gate only the profile's own sets")
    group.addoption("--data-root", default=None, type=options.directory,
                    help="imported datasets (default: $HARNESS_DATA_ROOT, else the per-user cache dir)")
    group.addoption("--device", default="auto", help="auto (CUDA if present, else CPU) | cpu | cuda | cuda:N")
    group.addoption("--results-dir", default=None, type=options.directory,
                    help="where result records go (default results/<profile>)")
    group.addoption("--seeds", default=None, type=options.seed_list,
                    help="comma-separated training seeds (default: the profile's); seeds outside the profile's "
                         "are gated by the baselines' spread tier only")
    group.addoption("--num-to-avg", type=options.positive_int, default=None,
                    help="OOD repetitions >= 1 (default: the profile's, 5); another count is not baseline-gated")
    group.addoption("--download", action="store_true",
                    help="let torchvision download missing datasets that it knows, and fetch model entries' "
                         "checkpoint URLs (off: offline)")
    group.addoption("--cache-dir", default=None, type=options.directory,
                    help="trained-checkpoint cache (default: <data root>/checkpoints)")
    group.addoption("--shard", default=None, metavar="K/N", type=options.shard,
                    help="run the K-th of N deterministic parts of the case list (1 <= K <= N); every model's "
                         "cases stay on one shard")
    group.addoption("--allow-ungated", action="store_true",
                    help="exit 0 even when no gate checked any record of the run (default: such a run fails)")
    group.addoption("--allow-skips", action="store_true",
                    help="exit 0 even when benchmark cases were skipped (default: a skipped case fails the run)")

def _visible_gpus() -> list[str]:
    """GPU ids without initialising CUDA (that must wait until CUDA_VISIBLE_DEVICES is pinned)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)
    if worker is None:
        return
    gpus = _visible_gpus()
    if gpus:
        index = int(worker["workerid"].removeprefix("gw"))
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
