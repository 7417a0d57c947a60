"""Profiles are data: every name they use must exist in the registries they refer to."""
import dataclasses
from pathlib import Path

import pytest

from harness import checkpoints, models, profiles, recipes
from harness.data import registry, synthetic
from harness.errors import HarnessError


def test_the_profiles_exist_in_order():
    assert profiles.names() == ["smoke", "mini", "paper", "paper-dryrun", "clip"]


def test_paper_lists_the_three_in_distribution_rows_and_the_dry_run_mirrors_it():
    paper, dry = profiles.get("paper"), profiles.get("paper-dryrun")
    assert [p.id for p in paper.datasets] == ["cifar10", "cifar100", "tinyimagenet"]
    assert [p.upstream for p in paper.datasets] == ["tinyimagenet32-nocifar10", "tinyimagenet32-nocifar100",
                                                   "imagenet64-notinyimagenet"]
    assert dry.model == paper.model and dry.dry_run_of == "paper"
    # the same rows, sets and outliers; only the shifted set is cut to a few of the paper's cells
    assert [dataclasses.replace(p, shift=None) for p in dry.datasets] == \
        [dataclasses.replace(p, shift=None) for p in paper.datasets]
    for cut, full in zip(dry.datasets, paper.datasets):
        assert (cut.shift is None) == (full.shift is None)
        if cut.shift is not None:
            assert cut.shift.set == full.shift.set and cut.shift.images <= 20
    assert dry.device == "cpu" and dry.train_limit <= 200 and dry.num_to_avg == 2
    # every recipe that trains joins the dry run, at one epoch (a new recipe must be added here too); the CLIP
    # recipes (harness.recipes.clip) obtain their model from a model entry's weights: no paper-profile case has one
    trained = {name for name in recipes.names()
               if recipes.get(name).trains and type(recipes.get(name)).__module__ != "harness.recipes.clip"}
    assert dry.epochs == {name: 1 for name in trained}


@pytest.mark.parametrize("name", profiles.names())
def test_every_name_in_a_profile_is_known(name):
    profile = profiles.get(name)
    models.create(profile.model, num_classes=10)
    assert set(profile.epochs) <= set(recipes.names())
    assert all(n > 0 for n in profile.epochs.values())
    for plan in profile.datasets:
        registry.get(plan.id)
        registry.get(plan.upstream)
        for ood in plan.ood:
            assert ood in synthetic.KINDS or registry.get_ood(ood), ood
        assert profile.plan(plan.id) is plan


def test_cpu_profiles_are_deterministic_gates_and_paper_runs_on_the_gpu():
    assert profiles.get("smoke").device == profiles.get("mini").device == "cpu"
    assert profiles.get("smoke").deterministic and profiles.get("mini").deterministic
    paper = profiles.get("paper")
    # the recipes' own epochs, except adam_base: the TST paper's up-to-600 epochs are not affordable
    assert paper.device == "cuda" and paper.model == "wrn-40-2" and paper.epochs == {"adam_base": 100}
    assert paper.train_limit is None and paper.test_limit is None and paper.num_to_avg == 5


def test_smoke_needs_no_import():
    smoke = profiles.get("smoke")
    assert smoke.id_dataset == "digits-0-4" and smoke.upstream_dataset == "digits-5-9"
    assert registry.get("digits-0-4") and registry.get("digits-5-9")


def test_unknown_names_list_the_known_ones():
    with pytest.raises(HarnessError, match="known profiles: smoke, mini, paper, paper-dryrun"):
        profiles.get("papr")
    with pytest.raises(HarnessError, match="has no in-distribution dataset 'svhn'"):
        profiles.get("smoke").plan("svhn")


def test_upstream_train_limit_caps_the_upstream_only():
    replace = dataclasses.replace
    smoke = profiles.get("smoke")
    sized = replace(smoke, train_limit=60, upstream_train_limit=200)
    finetune = checkpoints.plan("finetune", "digits-0-4", sized)
    pretrain = finetune.upstreams[0]
    assert (pretrain.dataset, pretrain.train_limit, len(pretrain.train_set)) == ("digits-5-9", 200, 200)
    assert (finetune.train_limit, len(finetune.train_set)) == (60, 60)
    # the cap is part of the models' identity: another upstream size is another pretrained model
    assert checkpoints.plan("finetune", "digits-0-4", replace(sized, upstream_train_limit=100)).key != finetune.key
    assert replace(smoke, train_limit=60).train_limit_for("digits-5-9") == 60  # unset: the common cap


def test_the_pretraining_scale_study_is_mini_with_a_larger_upstream():
    study = profiles.load_file(Path(__file__).parents[1] / "benchmarks/studies/pretraining-scale.toml",
                               profiles._registered)
    mini = profiles.get("mini")
    assert sorted(study) == ["mini-up20k", "mini-up87k", "mini-up87k-ft10"]
    transfer = {"finetune": 10, "linear_probe": 10, "lp_ft": 10}  # the last row: the paper's fine-tuning epochs
    rows = [(20000, 2, {}), (87500, 1, {}), (87500, 1, transfer)]
    for profile, (size, pretrain_epochs, epochs) in zip(study.values(), rows):
        # sizes only: the in-distribution row, its OOD sets and every other epoch count are mini's
        assert (profile.upstream_train_limit, profile.epochs["pretrain"]) == (size, pretrain_epochs)
        assert profile.datasets == mini.datasets and profile.train_limit == mini.train_limit
        assert {k: v for k, v in profile.epochs.items() if k != "pretrain"} == \
            {k: epochs.get(k, mini.epochs[k]) for k in profile.epochs if k != "pretrain"}
