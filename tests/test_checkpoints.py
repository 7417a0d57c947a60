"""The checkpoint cache: keys, reuse, one training under concurrency, verified user checkpoints, the CLI."""
import dataclasses
import hashlib
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from harness import checkpoint_files, checkpoints, cli, models, profiles, recipes, train
from harness.errors import HarnessError


def tiny_profile(**changes):
    """The smoke profile shrunk to seconds: WRN-10-1, one epoch per recipe, 40 training images."""
    sizes = {"model": "wrn-10-1", "epochs": {r: 1 for r in recipes.names()}, "train_limit": 40, "test_limit": 50}
    return dataclasses.replace(profiles.get("smoke"), **{**sizes, **changes})


def _key(recipe="scratch", dataset="digits-0-4", profile=None, seed=0, **kw):
    return checkpoints.plan(recipe, dataset, profile or tiny_profile(), seed, **kw).key


def test_key_covers_what_determines_the_model():
    base = _key()
    assert base == _key()
    assert len({base, _key(seed=1), _key(recipe=recipes.get("scratch", lr=0.05)), _key(dataset="digits-5-9"),
                _key(profile=tiny_profile(train_limit=30)), _key(profile=tiny_profile(model="wrn-16-1")),
                _key(epochs=2), _key(loader="reference"), _key(recipe="pretrain")}) == 9
    # a changed upstream changes every key downstream of it
    slower_pretrain = tiny_profile(epochs={**{r: 1 for r in recipes.names()}, "pretrain": 2})
    assert _key("finetune") != _key("finetune", profile=slower_pretrain)
    assert _key("finetune") != _key("finetune", upstream_dataset="digits")
    # the profile's evaluation sizes do not retrain anything
    assert base == _key(profile=tiny_profile(test_limit=10, num_to_avg=1))


def test_identity_is_readable():
    run = checkpoints.plan("finetune", "digits-0-4", tiny_profile(), 0)
    ident = run.identity()
    assert ident["recipe"] == "finetune" and ident["settings"]["lr"] == 0.001
    assert ident["settings"]["model"] == "wrn-10-1" and ident["settings"]["epochs"] == 1
    assert ident["training_code_version"] == checkpoints.TRAINING_CODE_VERSION
    assert ident["upstreams"] == [run.upstreams[0].key] and run.upstreams[0].dataset == "digits-5-9"
    assert len(ident["data_sha256"]) == 64


def test_second_request_comes_from_the_cache(tmp_path, monkeypatch):
    profile = tiny_profile()
    model, info = checkpoints.obtain("scratch", "digits-0-4", profile, cache_dir=tmp_path, quiet=True)
    assert not info["from_cache"] and info["train_s"] > 0
    sidecar = json.loads((tmp_path / f"{info['key']}.json").read_text())
    assert sidecar["identity"]["recipe"] == "scratch" and sidecar["info"]["accuracy"] == info["accuracy"]
    assert not list(tmp_path.glob("*.partial.pt"))

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")
    monkeypatch.setattr(train, "fit", no_training)
    again, info2 = checkpoints.obtain("scratch", "digits-0-4", profile, cache_dir=tmp_path, quiet=True)
    assert info2["from_cache"] and info2["key"] == info["key"] and info2["accuracy"] == info["accuracy"]
    for k, v in model.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)


def test_damaged_cache_file_is_a_clear_error(tmp_path):
    _, info = checkpoints.obtain("scratch", "digits-0-4", tiny_profile(), cache_dir=tmp_path, quiet=True)
    path = tmp_path / f"{info['key']}.pt"
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(HarnessError, match="is damaged .*delete it to retrain"):
        checkpoints.obtain("scratch", "digits-0-4", tiny_profile(), cache_dir=tmp_path, quiet=True)


_WORKER = textwrap.dedent("""
    import dataclasses, json, sys
    from harness import checkpoints, profiles, recipes
    profile = dataclasses.replace(profiles.get("smoke"), model="wrn-10-1", epochs={r: 1 for r in recipes.names()},
                                  train_limit=40, test_limit=50)
    _, info = checkpoints.obtain("scratch", "digits-0-4", profile, 0, cache_dir=sys.argv[1], quiet=False)
    print(json.dumps(info["from_cache"]))
""")


def test_concurrent_processes_train_once(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert sorted(json.loads(o[0]) for o in outs) == [False, True]  # trained by exactly one process
    stderr = "".join(o[1] for o in outs)
    assert sum(line.startswith("training scratch") for line in stderr.splitlines()) == 1
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1


def _user_checkpoint(tmp_path, num_classes=7):
    torch.manual_seed(1)
    model = models.create("wrn-10-1", num_classes)
    path = tmp_path / "released.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # as saved from DataParallel
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_user_checkpoint_is_verified_and_used(tmp_path):
    path, digest = _user_checkpoint(tmp_path)
    user = checkpoints.UserCheckpoint(str(path), digest)
    node = checkpoints.plan("finetune", "digits-0-4", tiny_profile(), upstream_checkpoint=user).upstreams[0]
    assert node == dataclasses.replace(user, model="wrn-10-1")
    model, info = checkpoints.obtain("finetune", "digits-0-4", tiny_profile(), cache_dir=tmp_path / "c", quiet=True,
                                     upstream_checkpoint=user)
    assert info["upstream"]["checkpoint"] == str(path)
    assert info["upstreams"][0]["key"] == f"user:{digest}"
    assert model.fc.out_features == 5
    assert _key("finetune", upstream_checkpoint=user) != _key("finetune")

    with pytest.raises(HarnessError, match="has sha256 .*expected 0{64}: wrong or damaged file"):
        checkpoint_files.load_verified(path, "0" * 64)
    with pytest.raises(HarnessError, match="64 hex digits"):
        checkpoint_files.load_verified(path, "abc")
    path.write_bytes(path.read_bytes()[:1000])
    truncated = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(HarnessError, match="cannot load checkpoint .*truncated"):
        checkpoint_files.load_verified(path, truncated)


def test_user_checkpoint_of_another_architecture_names_the_bad_key(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "wide.pt"
    torch.save({"state_dict": models.create("wrn-10-2", 7).state_dict()}, path)
    user = checkpoints.UserCheckpoint(str(path), hashlib.sha256(path.read_bytes()).hexdigest())
    with pytest.raises(HarnessError, match="key 'block1.layer.0.conv1.weight' has shape \\(32, 16, 3, 3\\)"):
        checkpoints.obtain("finetune", "digits-0-4", tiny_profile(), cache_dir=tmp_path, quiet=True,
                           upstream_checkpoint=user)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": models.create("wrn-10-1", 3)}, path)  # a whole module: needs unpickling code
    with pytest.raises(HarnessError, match="not a weights-only torch file"):
        checkpoint_files.load_verified(path, hashlib.sha256(path.read_bytes()).hexdigest())


def test_cli_trains_upstream_then_finetune(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("harness.commands.train.get_profile", lambda name: tiny_profile())
    argv = ["train", "--recipe", "finetune", "--dataset", "digits-0-4", "--cache-dir", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("upstream pretrain on digits-5-9: test accuracy ") and "trained in" in lines[0]
    assert lines[1].startswith("finetune on digits-0-4: test accuracy ") and str(tmp_path) in lines[1]
    assert cli.main(argv) == 0
    assert "(cached)" in capsys.readouterr().out.splitlines()[-1]
    assert cli.main(["train", "--recipe", "nope", "--dataset", "digits-0-4"]) == 2
    assert "error: unknown recipe 'nope'" in capsys.readouterr().err
    assert cli.main(argv + ["--set", "lr"]) == 2
    assert "--set expects NAME=VALUE" in capsys.readouterr().err


def test_cli_trains_vtst_and_names_both_stages_and_the_selected_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("harness.commands.train.get_profile", lambda name: tiny_profile())
    argv = ["train", "--recipe", "vtst", "--dataset", "digits-0-4", "--cache-dir", str(tmp_path), "--quiet"]
    assert cli.main(argv) == 0
    stage1, stage2 = capsys.readouterr().out.strip().splitlines()
    assert stage1.startswith("upstream scratch on digits-0-4: test accuracy ") and "), weights of epoch 1 -> " in stage1
    assert stage2.startswith("vtst on digits-0-4: test accuracy ") and "weights of epoch 1" in stage2


@pytest.mark.parametrize("setting, words", [
    ("objective=focall", "objective must be one of cross_entropy, focal, adaptive_focal, variational"),
    ("optimizer=sgd", "optimizer must be one of sgd_nesterov_cosine, adam_constant"),
    ("holdout=0.7", "holdout must be 0 (no holdout) or in (0, 0.5], got 0.7"),
    ("latent=0", "latent must be an integer >= 1 (Z), got 0"),
    ("eval_samples=-1", "eval_samples must be an integer >= 1 (M), got -1"),
])
def test_cli_bad_calibration_settings_exit_2_with_one_line(setting, words, capsys):
    assert cli.main(["train", "--recipe", "vtst", "--dataset", "digits-0-4", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_model_from_the_cache_says_so(tmp_path, capsys):
    profile = tiny_profile()
    checkpoints.obtain("scratch", "digits-0-4", profile, cache_dir=tmp_path, quiet=True)
    capsys.readouterr()
    _, info = checkpoints.obtain("scratch", "digits-0-4", profile, cache_dir=tmp_path, quiet=False)
    assert f"loaded scratch on digits-0-4 from the cache: {info['path']}" in capsys.readouterr().err
