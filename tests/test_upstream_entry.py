"""A model entry as a recipe's upstream (`--upstream-entry`, a case's `entry`): a linear probe on a user's solo-learn
backbone through the normal recipe path, and the leakage guard on the entry's declared training data."""
import dataclasses

import pytest
import torch

from checkpoint_factory import SOLO_ENTRY, solo_learn_state, write_solo_learn
from harness import cli, profiles, recipes
from harness.runner import Case, RunContext, Session

# The backbone without its online classifier: an upstream only, as most users' SSL files are used.
BACKBONE = SOLO_ENTRY.replace('head_prefix = "classifier."', "head = false")


@pytest.fixture
def entries(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    write_solo_learn(folder / "byol.ckpt")
    (folder / "byol.toml").write_text(BACKBONE)
    (folder / "leaky.toml").write_text(BACKBONE.replace("digits-5-9:train", "digits-0-4:test"))
    (folder / "elsewhere.toml").write_text(BACKBONE.replace('"byol.ckpt"', '"missing.ckpt"'))
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(folder))
    return folder


@pytest.mark.slow
def test_linear_probe_on_a_solo_learn_backbone_runs_through_the_recipe_path(entries, tmp_path):
    tiny = dataclasses.replace(profiles.get("smoke"), train_limit=40, test_limit=40, ood_pool_limit=40, num_to_avg=2,
                               epochs={r: 1 for r in recipes.names()})
    session = Session(RunContext(tiny, "cpu", tmp_path / "results", cache_dir=tmp_path / "cache"))
    record = session.run(Case("transfer", "digits-0-4", "linear_probe", entry="byol"), seed=0)
    assert record["case_id"] == "digits-0-4-linear_probe-on-byol-msp" and record["model"] == "resnet18-cifar"
    assert record["recipe"]["upstream"]["entry"] == "byol" and record["recipe"]["pretrain_dataset"] == "user checkpoint"
    assert "model entry byol" in record["verdicts"]["not_gated"]
    probe = torch.load(next((tmp_path / "cache").glob("*.pt")), weights_only=True)["state_dict"]
    backbone = solo_learn_state()
    assert torch.equal(probe["conv1.weight"], backbone["backbone.conv1.weight"])  # frozen: the file's weights
    assert torch.equal(probe["layer4.1.bn2.running_var"], backbone["backbone.layer4.1.bn2.running_var"])
    assert probe["fc.weight"].shape == (5, 512)
    assert cli.main(["leaderboard", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "site")]) == 0
    assert "from model entry byol" in (tmp_path / "site" / "index.html").read_text()


def test_train_refuses_an_upstream_that_declares_the_test_split(entries, capsys):
    assert cli.main(["train", "--recipe", "linear_probe", "--dataset", "digits-0-4", "--upstream-entry", "leaky"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "declared training data digits-0-4:test of model entry leaky" in err
    assert "test split never trains" in err


def test_upstream_entry_errors(entries, capsys):
    assert cli.main(["train", "--recipe", "finetune", "--dataset", "digits-0-4", "--upstream-entry", "nope"]) == 2
    assert "unknown model entry 'nope'; entries: byol, elsewhere, leaky" in capsys.readouterr().err
    assert cli.main(["train", "--recipe", "finetune", "--dataset", "digits-0-4", "--upstream-entry", "elsewhere"]) == 2
    assert "missing.ckpt is absent; get it with: place the checkpoint file" in capsys.readouterr().err
    assert cli.main(["train", "--recipe", "finetune", "--dataset", "digits-0-4", "--upstream-entry", "byol",
                     "--upstream-checkpoint", "x.pt", "--upstream-sha256", "0" * 64]) == 2
    assert "give one of them" in capsys.readouterr().err
