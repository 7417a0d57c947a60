"""`python -m harness evaluate`: a user's checkpoint file becomes a record the leaderboard shows as loaded."""
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkpoint_factory import write_profile, write_solo_learn, write_wrn
from harness import cli, profiles, store
from harness.runner import Case, RunContext, Session

REPO = Path(__file__).resolve().parents[1]
SOLO_OPTIONS = ["--model", "resnet18-cifar", "--strip-prefix", "backbone.", "--head-prefix", "classifier.",
                "--normalize", "0.4914,0.4822,0.4465,0.247,0.243,0.261"]


@pytest.fixture
def files(tmp_path, monkeypatch):
    # --profile-file joins the process's profile registry: a copy keeps it from leaking into other tests
    monkeypatch.setattr(profiles, "_PROFILES", dict(profiles._PROFILES))
    return {"wrn": write_wrn(tmp_path / "wrn.pt"), "solo": write_solo_learn(tmp_path / "byol.ckpt"),
            "profile": write_profile(tmp_path), "results": tmp_path / "results"}


def _evaluate(files, checkpoint, *options):
    return ["evaluate", "--checkpoint", str(checkpoint), "--dataset", "digits-0-4", "--profile-file",
            str(files["profile"]), "--profile", "tiny-eval", "--results-dir", str(files["results"]), *options]


def test_a_file_is_evaluated_and_shown_as_loaded(files, tmp_path, capsys):
    assert cli.main(_evaluate(files, files["wrn"], "--model", "wrn-10-1", "--score", "msp", "energy")) == 0
    out = capsys.readouterr().out
    assert "digits-0-4-loaded-wrn-energy" in out and "AUROC" in out and "record: " in out

    records, problems = store.read_records(files["results"])
    assert not problems and len(records) == 2
    record = next(r for r in records if r["case_id"] == "digits-0-4-loaded-wrn-msp")
    assert record["recipe"]["name"] == "loaded" and record["model"] == "wrn-10-1"
    assert record["loaded"]["sha256"] == hashlib.sha256(files["wrn"].read_bytes()).hexdigest()
    assert record["loaded"]["file"] == str(files["wrn"]) and record["loaded"]["entry"] is None
    assert record["report"]["n_id"] == 40 and {"gaussian", "digits-5-9"} == set(record["report"]["ood_sets"])

    assert cli.main(["leaderboard", "--results", str(files["results"]), "--out", str(tmp_path / "site")]) == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count("loaded, not trained: ") == 2 and str(files["wrn"]) in index


@pytest.mark.slow
def test_a_loaded_checkpoint_measures_exactly_what_its_trained_case_measured(files, tmp_path):
    """The same weights through the two paths (trained case, loaded file) give every metric identically."""
    profiles.add_file(files["profile"])
    ctx = RunContext(profiles.get("tiny-eval"), "cpu", tmp_path / "trained", cache_dir=tmp_path / "cache")
    trained = Session(ctx).run(Case("hendrycks2019", "digits-0-4", "scratch"), seed=0)
    checkpoint = tmp_path / "cache" / f"{trained['checkpoint']['key']}.pt"  # the cache's own file format
    assert cli.main(_evaluate(files, checkpoint, "--model", "wrn-10-1")) == 0
    [loaded] = store.read_records(files["results"])[0]
    assert loaded["report"]["metrics"] == trained["report"]["metrics"] and len(loaded["report"]["metrics"]) > 30


def _harness(*args):
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ))


@pytest.mark.slow
def test_as_a_user_runs_it_on_the_smoke_profile(files, tmp_path):
    """The issue's acceptance: `python -m harness evaluate ... --dataset digits-0-4` for a WRN-10-1 (the smoke
    profile, its whole test set) and a resnet18-cifar file in solo-learn's layout (the tiny profile: a ResNet-18
    runs ~15 images/s on a shared 2-core CI machine), then `python -m harness leaderboard`."""
    results = tmp_path / "results"
    tiny = ["--profile-file", str(files["profile"]), "--profile", "tiny-eval"]
    for checkpoint, options, profile in ((files["wrn"], ["--model", "wrn-10-1"], "smoke"),
                                         (files["solo"], SOLO_OPTIONS + tiny, "tiny-eval")):
        out = _harness("evaluate", "--checkpoint", str(checkpoint), "--dataset", "digits-0-4", "--results-dir",
                       str(results), *options)
        assert out.returncode == 0, out.stderr
        assert f"profile {profile}" in out.stdout and "AUROC" in out.stdout
    solo = store.read_record(results / "digits-0-4-loaded-byol-msp-s0.json")
    assert solo["model"] == "resnet18-cifar" and solo["recipe"]["settings"]["mapping"]["strip_prefix"] == "backbone."
    out = _harness("leaderboard", "--results", str(results), "--out", str(tmp_path / "site"))
    assert out.returncode == 0 and "2 cases from 2 records (0 unreadable" in out.stderr, out.stderr
    assert (tmp_path / "site" / "index.html").read_text().count("loaded, not trained: ") == 2


@pytest.mark.parametrize("options,message", [
    (["--model", "wrn-10-1", "--sha256", "0" * 64], "checkpoint.sha256: .* has sha256 .*, expected 0{64}"),
    (["--model", "wrn-16-1"], "does not fit WideResNet: missing key 'block1.layer.1.bn1.weight'"),
    (["--model", "wrn-10-1", "--normalize", "0.5,0.5,0.5"], "--normalize: .*expected MEAN,STD .* got 3 values"),
    (["--model", "vgg16"], "--model: .*unknown model 'vgg16'"),
    (["--model", "wrn-10-1", "--num-classes", "10"], "the head has 5 classes, 10 were expected"),
    # D2: a factory of another signature was a TypeError traceback
    (["--model", "torch.nn:Linear"], r"model 'torch.nn:Linear': Linear\(num_classes=5\) failed \(TypeError: "),
    (["--model", "wrn-10-1", "--name", "../../x"], "--name '../../x': expected a name of lower-case letters"),
])
def test_bad_input_is_one_line_exit_2(files, capsys, options, message):
    assert cli.main(_evaluate(files, files["wrn"], *options)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and re.search(message, err), err
    assert not files["results"].exists()


@pytest.mark.parametrize("make, message", [
    (lambda path: path.write_bytes(b""), "empty.pt is empty (0 bytes)"),  # D1: an IndexError traceback
    (lambda path: path.mkdir(), "empty.pt is a directory; expected a state-dict file"),  # was "does not exist"
])
def test_an_empty_file_or_a_directory_is_named(files, tmp_path, capsys, make, message):
    make(tmp_path / "empty.pt")
    assert cli.main(_evaluate(files, tmp_path / "empty.pt", "--model", "wrn-10-1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: --checkpoint: ") and message in err, err


def test_missing_file_and_pickled_code(files, tmp_path, capsys):
    assert cli.main(_evaluate(files, tmp_path / "absent.pt", "--model", "wrn-10-1")) == 2
    assert "absent.pt does not exist" in capsys.readouterr().err
    import torch

    from harness import models

    torch.save(models.create("wrn-10-1", 5), tmp_path / "module.pt")  # a whole module: unpickling runs code
    assert cli.main(_evaluate(files, tmp_path / "module.pt", "--model", "wrn-10-1")) == 2
    err = capsys.readouterr().err
    assert "never unpickles code" in err and "weights_only=False" not in err


def test_declared_training_data_holding_test_images_is_refused(files, capsys):
    """The leakage guard: a model that declares it trained on the test split is not evaluated on it."""
    assert cli.main(_evaluate(files, files["wrn"], "--model", "wrn-10-1", "--trained-on", "digits-0-4:test")) == 2
    err = capsys.readouterr().err
    assert "declared training data digits-0-4:test" in err and "test split" in err
    assert cli.main(_evaluate(files, files["wrn"], "--model", "wrn-10-1", "--trained-on", "digits-0-4:train")) == 0
    assert "checked: digits-0-4:train share no image" in capsys.readouterr().out
