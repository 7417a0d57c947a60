"""benchmarks/test_models.py as a user runs it: `pytest benchmarks -k models` runs the entries whose checkpoints are
present and skips the others with the command that fetches them; a run without -k does not collect absent ones."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkpoint_factory import write_wrn
from harness import profiles, shards
from harness.runner import LOADED

REPO = Path(__file__).resolve().parents[1]


def _pytest(models_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_MODELS_DIR": str(models_dir)}
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    write_wrn(folder / "mine.pt")
    entry = 'architecture = "wrn-10-1"\nnum_classes = 5\ndataset = "digits-0-4"\n[checkpoint]\npath = "{}"\n'
    (folder / "mine.toml").write_text(entry.format("mine.pt"))
    (folder / "released.toml").write_text(entry.replace('path = "{}"', 'url = "{}"\ngit_blob = "' + "a" * 40 + '"')
                                          .format("https://example.org/released.pt"))
    return folder


@pytest.mark.slow
def test_present_entries_run_and_absent_ones_skip_with_the_fetch_command(models_dir, tmp_path):
    results = tmp_path / "results"
    out = _pytest(models_dir, "-k", "models and (msp or energy)", "-rs", "--results-dir", str(results))
    assert out.returncode == 1, out.stdout[-3000:]  # a skipped case fails the run unless --allow-skips
    assert out.stdout.splitlines()[-1].lstrip().startswith("2 passed"), out.stdout[-2000:]
    # the absent entry's two cases skip, naming the fetch command (an optional module, e.g. test_ssl without
    # lightly, may add a skip of its own)
    assert re.search(r"SKIPPED \[2\] \S+: model entry released: .* get it with: python -m harness evaluate --entry "
                     r"released --download", out.stdout), out.stdout[-2000:]
    record = json.loads((results / "digits-0-4-loaded-mine-msp-s0.json").read_text())
    assert record["loaded"]["entry"] == "mine" and record["verdicts"]["not_gated"].startswith("model entry mine")

    collected = _pytest(models_dir, "--collect-only")
    ids = [line for line in collected.stdout.splitlines() if "test_models.py::" in line]
    assert len(ids) == 7 and all("loaded-mine-" in line for line in ids), collected.stdout[-2000:]


def test_loaded_cases_are_spread_over_shards_without_training_anything():
    smoke = profiles.get("smoke")
    assert shards.trained_models(LOADED, {}, "digits-0-4", 0, smoke) == set()
    assert shards.assign([(LOADED, {}, "digits-0-4", 0), ("scratch", {}, "digits-0-4", 1)], 2, smoke) == [1, 2]


def test_entry_bands_are_checked_where_the_paper_bands_are(tmp_path, monkeypatch):
    """On a banded profile (here the paper dry run, cut to the digits row) an entry's bands enter the record."""
    import dataclasses

    from harness.runner import Case, RunContext, Session

    folder = tmp_path / "models"
    folder.mkdir()
    write_wrn(folder / "mine.pt")
    band = '[[band]]\nmetric = "{}"\nscore = "msp"\nvalue = {}\ntolerance = 1.0\nsource = "a table"\n'
    (folder / "mine.toml").write_text('architecture = "wrn-10-1"\nnum_classes = 5\ndataset = "digits-0-4"\n'
                                      'ood_sets = ["gaussian"]\n[checkpoint]\npath = "mine.pt"\n'
                                      + band.format("accuracy", 50.0) + band.format("ood/mean/auroc", 50.0))
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(folder))
    dry = profiles.get("paper-dryrun")
    plan = dataclasses.replace(dry.datasets[0], id="digits-0-4", upstream="digits-5-9", ood=("gaussian", "blobs"))
    digits_dry = dataclasses.replace(dry, datasets=(plan,))
    monkeypatch.setitem(profiles._PROFILES, "paper-dryrun", digits_dry)  # the records look the profile up by name
    session = Session(RunContext(digits_dry, "cpu", tmp_path / "r"))
    record = session.run(Case("models", "digits-0-4", LOADED, entry="mine"), seed=0)
    accuracy, auroc = record["verdicts"]["bands"]
    assert accuracy["metric"] == "accuracy" and accuracy["passed"] is False  # an untrained model: 20 %, not 50
    assert auroc["passed"] is None and "not the paper's" in auroc["message"]  # gaussian + blobs, the paper: gaussian
