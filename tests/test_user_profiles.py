"""Your own data in the suite: `--profile-file` and `--ood-sets`, as a user runs them (pytest in a subprocess)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness import baselines, cli, options, profiles, tomlfile
from harness.errors import HarnessError

REPO = Path(__file__).resolve().parents[1]

PROFILE = """\
# a user's profile over their own ImageFolder dataset
[tiny]
description = "a user's two-class ImageFolder set, one epoch"
device = "cpu"
model = "wrn-10-1"
cpu_threads = 2
deterministic = true
loader = "fast"
num_to_avg = 2
eval_batch_size = 256
seeds = [0]
epochs = { scratch = 1 }

[[tiny.datasets]]
id = "my-data"
upstream = "digits-5-9"
ood = ["gaussian", "my-ood"]
"""


def _pytest(*args: str, data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_DATA_ROOT": str(data_root)}
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "-q", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=900, env=env)


def _images(folder: Path, n: int, seed: int, size=(32, 32)) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """A data root holding an unlabeled folder OOD set `my-ood` and a two-class ImageFolder set `my-data`."""
    root, src = tmp_path_factory.mktemp("root"), tmp_path_factory.mktemp("src")
    _images(src / "photos" / "a", 30, 0, size=(40, 48))
    for split, n in (("train", 40), ("test", 20)):
        for k, cls in enumerate(("cat", "dog")):
            _images(src / "mine" / split / cls, n, seed=10 * k + n)
    for name, path, fmt in (("my-ood", "photos", "folder"), ("my-data", "mine", "imagefolder")):
        assert cli.main(["data", "import", name, str(src / path), "--format", fmt, "--data-root", str(root)]) == 0
    return root


@pytest.mark.slow
def test_added_ood_set_is_recorded_and_the_baseline_still_gates(data_root, tmp_path):
    # The CI run has just trained the smoke models into $HARNESS_DATA_ROOT/checkpoints: reuse them when present.
    shared = Path(os.environ.get("HARNESS_DATA_ROOT", tmp_path / "none")) / "checkpoints"
    cache = shared if shared.is_dir() else tmp_path / "cache"
    out = _pytest("-k", "digits-0-4-scratch-msp", "--ood-sets", "+my-ood", "--cache-dir", str(cache),
                  "--results-dir", str(tmp_path / "r"), data_root=data_root)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    [path] = (tmp_path / "r").glob("*.json")
    record = json.loads(path.read_text())
    assert "ood/my-ood/auroc" in record["report"]["metrics"]
    assert record["ood_selection"]["added"] == ["my-ood"] and record["ood_selection"]["dropped"] == []
    verdicts = record["verdicts"]["baseline"]  # on every kind of machine: the spread tier gates at least
    assert record["verdicts"]["not_gated"] is None and "spread" in baselines.tiers(verdicts)
    assert verdicts and all(v["passed"] for v in verdicts)
    gated = {v["metric"] for v in verdicts}
    assert "ood/mean/auroc" in gated and not any("my-ood" in m for m in gated)
    # the record's own mean includes my-ood; the gate compared the mean over the profile's sets
    mean = next(v for v in verdicts if v["metric"] == "ood/mean/auroc")["measured"]
    assert mean != record["report"]["metrics"]["ood/mean/auroc"]["mean"]


@pytest.mark.slow
def test_a_profile_file_over_an_imagefolder_dataset_runs_and_is_recorded(data_root, tmp_path):
    file = tmp_path / "profiles.toml"
    file.write_text(PROFILE)
    run = ("--profile-file", str(file), "--profile", "tiny", "-k", "my-data-scratch-msp",
           "--results-dir", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"))
    out = _pytest(*run, data_root=data_root)
    # nothing gates a profile of the user's own: the run checked nothing, so it fails with one line
    assert out.returncode == 1, out.stdout[-4000:] + out.stderr[-2000:]
    assert "harness: none of the 1 records of this run was checked by a gate (1 because: profile 'tiny' comes " \
           "from" in out.stdout and "pass --allow-ungated to exit 0 anyway" in out.stdout, out.stdout[-2000:]
    out = _pytest(*run, "--allow-ungated", data_root=data_root)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    [path] = (tmp_path / "r").glob("*.json")
    record = json.loads(path.read_text())
    source = record["profile_source"]
    assert source["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest() and source["file"] == str(file)
    assert source["content"] == tomlfile.tomllib.loads(PROFILE)["tiny"] and source["builtin"] is False
    assert record["profile"] == "tiny" and record["dataset"] == "my-data"
    assert {"ood/gaussian/auroc", "ood/my-ood/auroc"} <= record["report"]["metrics"].keys()
    assert "comes from" in record["verdicts"]["not_gated"]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (("--ood-sets", "+nosuch"), "python -m harness data import nosuch"),
    (("--ood-sets", "+svhn"), "python -m harness data import svhn"),
    (("--profile", "nosuch"), "unknown profile 'nosuch'"),
])
def test_bad_sets_and_profile_names_are_usage_errors(data_root, args, message):
    out = _pytest("--collect-only", *args, data_root=data_root)
    text = out.stdout + out.stderr
    assert out.returncode == 4 and message in text and "Traceback" not in text, text[-2000:]


@pytest.mark.slow
def test_a_profile_file_typo_is_a_usage_error_with_file_and_line(data_root, tmp_path):
    file = tmp_path / "p.toml"
    file.write_text(PROFILE.replace("loader =", "lodaer ="))
    out = _pytest("--collect-only", "--profile-file", str(file), "--profile", "tiny", data_root=data_root)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if f"{file}:8:" in line]
    assert out.returncode == 4 and len(errors) == 1 and "unknown field 'lodaer'" in errors[0], out.stdout[-2000:]


@pytest.mark.parametrize("old, new, line, message", [
    ('model = "wrn-10-1"', 'model = "wrn-10-9"', 5, "unknown model 'wrn-10-9'"),
    ("num_to_avg = 2", "num_to_avg = -2", 9, "num_to_avg must be an integer in 1..2147483647, got -2"),
    # D7: a number beyond a C int reached torch.set_num_threads: INTERNALERROR> ValueError: Overflow
    ("cpu_threads = 2", "cpu_threads = 1000000000000", 6, "cpu_threads must be an integer in 0..4096"),
    ("seeds = [0]", "seeds = [4294967296]", 11, "seeds must be a non-empty list of distinct integers in 0.."),
    # D8: the name becomes results/<name>: a path-like name wrote two folders above the working directory
    ("[tiny]", '["../../escaped"]', 2, "profile '../../escaped': expected a name of lower-case letters"),
    ("[tiny]", '["a/b"]', 2, "profile 'a/b': expected a name"),
    ("seeds = [0]", "seeds = []", 11, "seeds must be a non-empty list"),
    ("epochs = { scratch = 1 }", "epochs = { scratch = 0 }", 12, "epochs: scratch must be an integer in 1.."),
    ("epochs = { scratch = 1 }", "epochs = { scrach = 1 }", 12, "epochs: unknown recipe 'scrach'"),
    ('id = "my-data"', 'id = "my-dta"', 15, "id: unknown dataset 'my-dta'"),
    ('upstream = "digits-5-9"\n', "", 14, "check ['upstream']"),
    ('"my-ood"]', '"my-odd"]', 17, "ood: unknown OOD set 'my-odd'"),
    ('loader = "fast"', 'loader = "fast"\ntrain_limit = 0', 9, "train_limit must be an integer in 1.."),
    ("[tiny]", "[tiny", 2, "invalid TOML"),
])
def test_profile_file_errors_name_file_line_and_field(data_root, tmp_path, old, new, line, message):
    file = tmp_path / "p.toml"
    file.write_text(PROFILE.replace(old, new, 1))
    with pytest.raises(HarnessError) as err:
        profiles.load_file(file, lambda n: n in {"digits-5-9", "gaussian", "my-data", "my-ood"})
    assert str(err.value).startswith(f"{file}:{line}: ") and message in str(err.value)


@pytest.mark.parametrize("old, new, line, message", [
    ('id = "my-data"', 'id = "my-dta"', 15, "id: unknown dataset 'my-dta'"),
    ('"my-ood"]', '"my-odd"]', 17, "ood: unknown OOD set 'my-odd'"),
    ('model = "wrn-10-1"', "'model' = \"wrn-10-9\"", 5, "unknown model 'wrn-10-9'"),
])
def test_profile_file_errors_name_the_line_under_quoted_table_names(data_root, tmp_path, old, new, line, message):
    """D9: with `["tiny"]` and `[["tiny".datasets]]` the errors named line 1."""
    file = tmp_path / "p.toml"
    file.write_text(PROFILE.replace("[tiny]", '[ "tiny" ]').replace("[[tiny.datasets]]", "[['tiny'.datasets]]")
                    .replace(old, new, 1))
    with pytest.raises(HarnessError) as err:
        profiles.load_file(file, lambda n: n in {"digits-5-9", "gaussian", "my-data", "my-ood"})
    assert str(err.value).startswith(f"{file}:{line}: ") and message in str(err.value)


def test_ood_sets_replace_or_add():
    smoke = profiles.get("smoke")
    assert smoke.with_ood_sets("gaussian,my-ood").ood_sets == ("gaussian", "my-ood")
    assert smoke.with_ood_sets("+my-ood,gaussian").ood_sets == smoke.ood_sets + ("my-ood",)
    for bad in ("", "+", "a,,b", "a,a", " , "):
        with pytest.raises(HarnessError, match="--ood-sets"):
            smoke.with_ood_sets(bad)
    # D10: names are stripped, as the docs say
    assert smoke.with_ood_sets(" gaussian , blobs ").ood_sets == ("gaussian", "blobs")
    assert smoke.with_ood_sets(" +blobs ").ood_sets == smoke.ood_sets


@pytest.mark.parametrize("argument", ["--ood-sets=", "--ood-sets= , ", "--shard=", "--shard=3/2"])
def test_empty_ood_sets_and_shard_are_usage_errors(argument):
    """D10: `--ood-sets ''` and `--shard ''` exited 0 and ran the full case list. The options' types
    (conftest.py) refuse them as pytest parses them, before any case is collected."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", argument,
                          "tests/conftest.py"], cwd=REPO, capture_output=True, text=True, timeout=120)
    option = argument.partition("=")[0]
    assert out.returncode == 4 and f"error: argument {option}: expected" in out.stderr, out.stderr


def test_ood_sets_option_hands_on_stripped_names():
    """D10: `--ood-sets ' gaussian , blobs '` was refused as unknown dataset ' gaussian '; every reader of the
    option (the profile, the availability check) gets the canonical text."""
    assert options.name_list(" gaussian , blobs ") == "gaussian,blobs"
    assert options.name_list(" + a ,b") == "+a,b"
