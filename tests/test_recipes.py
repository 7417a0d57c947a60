"""Recipes: reference settings, validation, and a tiny end-to-end run of each one on digits."""
import dataclasses

import pytest
import torch

from harness import checkpoints, models, profiles, recipes, splits
from harness.errors import HarnessError


def tiny_profile(**changes):
    """The smoke profile shrunk to seconds: WRN-10-1, one epoch per recipe, 40 training images."""
    sizes = {"model": "wrn-10-1", "epochs": {r: 1 for r in recipes.names()}, "train_limit": 40, "test_limit": 50}
    return dataclasses.replace(profiles.get("smoke"), **{**sizes, **changes})


def test_reference_settings():
    scratch = recipes.get("scratch")
    assert (scratch.drop_rate, scratch.lr, scratch.weight_decay, scratch.momentum, scratch.nesterov,
            scratch.batch_size, scratch.epochs, scratch.augment) == (0.3, 0.1, 5e-4, 0.9, True, 128, 100, True)
    assert recipes.REFERENCE_MODEL == "wrn-40-2" == profiles.get("paper").model
    assert recipes.get("pretrain").settings() == scratch.settings()
    ft = recipes.get("finetune")
    assert (ft.drop_rate, ft.lr, ft.weight_decay, ft.batch_size, ft.epochs) == (0.0, 0.001, 5e-4, 128, 10)
    assert ft.epochs_for("cifar10", {}) == 10 and ft.epochs_for("tinyimagenet", {}) == 20
    assert ft.epochs_for("tinyimagenet", {"finetune": 3}) == 3
    assert recipes.get("linear_probe").augment is False
    assert recipes.get("wise_ft").alpha == 0.5 and not recipes.get("wise_ft").trains
    assert [u.recipe for u in recipes.get("wise_ft").upstreams] == ["pretrain", "finetune"]
    assert recipes.get("lp_ft").upstream == recipes.Upstream("linear_probe", "same")
    assert recipes.get("scratch").upstream is None
    # the OE calibration protocol: the base and the fine-tune hold out the same contiguous 10 % tail
    calib, oe_calib = recipes.get("scratch_calib"), recipes.get("oe_calib")
    assert oe_calib.upstream == recipes.Upstream("scratch_calib", "same")
    assert calib.holdout_for("cifar10") == oe_calib.holdout_for("cifar100") == splits.Holdout(0.1, "tail")
    assert (oe_calib.lr, oe_calib.epochs, oe_calib.objective) == (0.001, 10, "outlier_exposure")


def test_registry_errors():
    assert set(recipes.names()) == {"scratch", "pretrain", "finetune", "linear_probe", "lp_ft", "wise_ft",
                                    "scratch_focal", "scratch_adaptive_focal", "adam_base", "tst", "vtst",
                                    "temperature_scaling", "baseline", "oe_scratch", "oe", "scratch_calib", "oe_calib", "energy_ft",
                                    "energy_ft_selected",
                                    "clip_zero_shot", "clip_finetune", "clip_linear_probe", "clip_lp_ft", "clip_wise_ft",
                                    "byol", "barlow_twins", "dino", "simclr", "finetune_byol",
                                    "finetune_barlow_twins", "finetune_dino", "finetune_simclr"}
    with pytest.raises(HarnessError, match="unknown recipe 'fine_tune'; known recipes: scratch, pretrain"):
        recipes.get("fine_tune")
    with pytest.raises(HarnessError, match="no setting 'learning_rate'; valid settings: .*lr"):
        recipes.get("finetune", learning_rate=0.1)
    with pytest.raises(HarnessError, match="lr must be > 0, got -1"):
        recipes.get("scratch", lr=-1)
    with pytest.raises(HarnessError, match="alpha must be in \\[0, 1\\], got 1.5"):
        recipes.get("wise_ft", alpha=1.5)
    with pytest.raises(HarnessError, match="unknown model 'vgg'"):
        recipes.get("scratch", model="vgg")
    with pytest.raises(HarnessError, match="epochs must be of type int, got 'ten'"):
        recipes.get("scratch", epochs="ten")
    assert recipes.get("scratch", lr="0.01", epochs="5", nesterov="false").settings()["lr"] == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipes.get("scratch").lr = 1.0


def test_interpolate_endpoints_exact():
    torch.manual_seed(0)
    pre, ft = models.create("wrn-10-1", 9), models.create("wrn-10-1", 4)
    for m, n in ((pre, 3), (ft, 8)):
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_()
                mod.num_batches_tracked.fill_(n)
    sp, sf = pre.state_dict(), ft.state_dict()
    zero = recipes.interpolate(sp, sf, 0.0)
    one = recipes.interpolate(sp, sf, 1.0)
    for k in sf:
        assert torch.equal(one[k], sf[k]), k
        assert torch.equal(zero[k], sf[k] if k.startswith("fc.") else sp[k]), k
    half = recipes.interpolate(sp, sf, 0.5)
    k = "block2.layer.0.bn1.running_mean"
    torch.testing.assert_close(half[k], (sp[k] + sf[k]) / 2)
    assert half["bn1.num_batches_tracked"].item() == 8  # alpha >= 0.5: the fine-tuned end's count


# ---------------------------------------------------------------- end to end on digits

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("ckpt")
    profile = tiny_profile()

    def obtain(recipe, dataset="digits-0-4", **overrides):
        return checkpoints.obtain(recipes.get(recipe, **overrides), dataset, profile, 0, cache_dir=cache, quiet=True)
    return obtain


@pytest.mark.parametrize("recipe", ["scratch", "pretrain", "finetune", "linear_probe", "lp_ft", "wise_ft"])
def test_each_recipe_end_to_end(run, recipe):
    model, info = run(recipe)
    assert info["model"] == "wrn-10-1" and info["dataset"] == "digits-0-4"
    assert 0 <= info["accuracy"] <= 100 and info["n_test"] == 50
    assert len(info["key"]) == 64 and info["settings"]["model"] == "wrn-10-1"
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    if recipe in ("finetune", "linear_probe"):
        assert info["upstream"] == {"recipe": "pretrain", "dataset": "digits-5-9"}
        assert info["upstreams"][0]["dataset"] == "digits-5-9"
    if recipe in ("finetune", "linear_probe", "lp_ft", "wise_ft"):
        assert info["pretrain_dataset"] == "digits-5-9"
    if recipes.get(recipe).trains:
        assert info["settings"]["epochs"] == 1 and len(info["history"]) == 1 and info["n_train"] == 40


def _backbone(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}


def test_finetune_starts_from_the_upstream_backbone(run):
    upstream, _ = run("pretrain", "digits-5-9")
    torch.manual_seed(0)
    start, frozen = recipes.get("finetune").build("wrn-10-1", 5, [upstream])
    assert frozen == []
    for k, v in _backbone(upstream).items():
        assert torch.equal(start.state_dict()[k], v), k
    assert start.fc.out_features == 5 and start.fc.in_features == start.feature_dim


def test_linear_probe_leaves_the_backbone_untouched(run):
    upstream, _ = run("pretrain", "digits-5-9")
    probed, _ = run("linear_probe")
    for k, v in _backbone(upstream).items():  # parameters and every BN buffer, num_batches_tracked included
        assert torch.equal(probed.state_dict()[k], v), k


def test_lp_ft_starts_from_the_probed_head(run):
    probed, _ = run("linear_probe")
    start, _ = recipes.get("lp_ft").build("wrn-10-1", 5, [probed])
    for k, v in probed.state_dict().items():
        assert torch.equal(start.state_dict()[k], v), k
    tuned, info = run("lp_ft")
    assert info["upstream"] == {"recipe": "linear_probe", "dataset": "digits-0-4"}
    assert not torch.equal(tuned.fc.weight, probed.fc.weight)


def test_wise_ft_endpoints(run):
    upstream, _ = run("pretrain", "digits-5-9")
    tuned, _ = run("finetune")
    at_zero, _ = run("wise_ft", alpha=0.0)
    at_one, _ = run("wise_ft", alpha=1.0)
    for k, v in tuned.state_dict().items():
        assert torch.equal(at_one.state_dict()[k], v), k
        assert torch.equal(at_zero.state_dict()[k], v if k.startswith("fc.") else upstream.state_dict()[k]), k


# ---------------------------------------------------------------- calibration recipes (Jordahn & Olmos 2024)

def test_two_stage_reference_settings():
    tst = recipes.get("tst")
    assert (tst.optimizer, tst.lr, tst.weight_decay, tst.batch_size, tst.epochs, tst.select, tst.augment) == (
        "adam_constant", 1e-4, 0.0, 256, 40, "best_holdout_nll", True)
    assert (tst.latent, tst.base, tst.objective) == (128, "scratch", "cross_entropy")
    assert tst.holdout_for("cifar10") == splits.Holdout(0.2, "random")
    assert tst.holdout_for("cifar100") == splits.Holdout(0.05, "random")
    vtst = recipes.get("vtst")
    assert (vtst.objective, vtst.eval_samples, vtst.latent) == ("variational", 10, 128)
    base = recipes.get("adam_base")
    assert (base.optimizer, base.lr, base.batch_size, base.epochs, base.select) == (
        "adam_constant", 1e-4, 256, 600, "best_holdout_nll")
    # DeepMind's WideResNet, the TST reference's network: WRN-28-10 on the paper profile, the profile's size elsewhere
    assert base.model_for("wrn-40-2", []) == "wrn-28-10-dm" and base.model_for("wrn-10-1", []) == "wrn-10-1-dm"
    assert base.model_for("resnet18", []) == "resnet18"
    # BatchNorm modes: the TST reference leaves the frozen body's BatchNorm in train mode; Kumar et al.'s LP-FT
    # fine-tunes with the whole network in eval mode; a linear probe keeps its features fixed
    assert (tst.batchnorm, vtst.batchnorm, base.batchnorm) == ("train", "train", "train")
    assert (recipes.get("lp_ft").batchnorm, recipes.get("linear_probe").batchnorm) == ("eval", "eval")
    assert recipes.get("finetune").batchnorm == "train"
    assert recipes.get("tst", base="adam_base").upstream == recipes.Upstream("adam_base", "same")
    assert recipes.get("scratch_focal").objective == "focal"
    assert recipes.get("scratch_adaptive_focal").objective == "adaptive_focal"
    assert recipes.get("scratch").holdout_for("cifar10") is None
    ts = recipes.get("temperature_scaling")
    assert not ts.trains and ts.holdout_for("cifar10") == splits.Holdout(0.2)


@pytest.mark.parametrize("recipe, change, message", [
    ("scratch", {"objective": "focall"}, "objective must be one of cross_entropy, focal, adaptive_focal, variational"),
    ("tst", {"optimizer": "adamw"}, "optimizer must be one of sgd_nesterov_cosine, adam_constant, .*got 'adamw'"),
    ("tst", {"holdout": "0.7"}, r"holdout must be 0 \(no holdout\) or in \(0, 0.5\], got 0.7"),
    ("scratch", {"holdout": "-0.1"}, r"holdout must be 0 \(no holdout\) or in \(0, 0.5\]"),
    ("tst", {"holdout_rule": "first"}, "holdout_rule must be one of random, tail"),
    ("tst", {"latent": "0"}, r"latent must be an integer >= 1 \(Z\), got 0"),
    ("vtst", {"eval_samples": "0"}, r"eval_samples must be an integer >= 1 \(M\), got 0"),
    ("tst", {"base": "tst"}, "base must be one of scratch, pretrain, .*adam_base.*, got 'tst'"),
    ("scratch", {"select": "best_holdout_nll"}, "select must be 'last' when holdout is 0"),
    ("tst", {"weight_decay": "5e-4"}, "weight_decay must be 0 with optimizer 'adam_constant'"),
])
def test_bad_calibration_settings_are_one_line_errors(recipe, change, message):
    with pytest.raises(HarnessError, match=message) as info:
        recipes.get(recipe, **change)
    assert "\n" not in str(info.value)


def test_new_settings_leave_earlier_keys_alone_and_enter_when_changed():
    scratch = recipes.get("scratch")
    kept = recipes.identity_settings(scratch, scratch.settings())
    assert not {"objective", "optimizer", "select", "holdout", "holdout_rule", "cifar100_holdout"} & set(kept)
    focal = recipes.get("scratch", objective="focal")
    assert recipes.identity_settings(focal, focal.settings())["objective"] == "focal"
    vtst = recipes.get("vtst")
    assert "eval_samples" not in recipes.identity_settings(vtst, vtst.settings())
    assert (checkpoints.plan("vtst", "digits-0-4", tiny_profile(), 0).key
            == checkpoints.plan(recipes.get("vtst", eval_samples=1), "digits-0-4", tiny_profile(), 0).key)


@pytest.mark.parametrize("recipe", ["tst", "vtst"])
def test_two_stage_keeps_the_base_body_and_selects_by_holdout(run, recipe):
    base, _ = run("scratch")
    model, info = run(recipe)
    for k, v in _backbone(base).items():  # the frozen body's weights; its BatchNorm statistics move (the reference's)
        assert torch.equal(model.state_dict()[k], v) != k.endswith(("running_mean", "running_var",
                                                                    "num_batches_tracked")), k
    fixed, _ = run(recipe, batchnorm="eval")
    for k, v in _backbone(base).items():
        assert torch.equal(fixed.state_dict()[k], v), k
    head = model.fc
    assert isinstance(head, models.VariationalHead if recipe == "vtst" else models.MLPHead)
    assert head.classifier.in_features == 128 and head.classifier.out_features == 5
    assert info["selected_epoch"] == 1 and "holdout_nll" in info["history"][0]
    assert info["holdout"] == {"fraction": 0.2, "rule": "random", "n": 8, "seen_by_upstream_training": 8}
    assert info["n_train"] == 32 and info["upstream"] == {"recipe": "scratch", "dataset": "digits-0-4"}
    again, cached = run(recipe)  # loaded into the recipe's own skeleton from the cache
    assert cached["from_cache"]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
        if recipe == "vtst":
            probs = model(x).exp()
            torch.testing.assert_close(probs.sum(1), torch.ones(3))


@pytest.mark.parametrize("recipe", ["scratch_focal", "scratch_adaptive_focal", "adam_base", "temperature_scaling"])
def test_calibration_recipes_end_to_end(run, recipe):
    model, info = run(recipe)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    if recipe == "temperature_scaling":
        base, _ = run("scratch")
        assert all(torch.equal(v, base.state_dict()[k]) for k, v in model.state_dict().items())
        assert info["holdout"]["n"] == 8 and info["n_train"] == 0
    if recipe == "adam_base":
        assert info["holdout"]["seen_by_upstream_training"] is None and info["n_train"] == 32


def test_a_model_with_its_papers_normalization_converts_alike_trained_and_cached(run):
    model, info = run("baseline")  # OE's baseline.py: the OE papers' CIFAR statistics
    again, cached = run("baseline")
    assert cached["from_cache"] and info["settings"]["normalization"] == "oe"
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    assert torch.equal(model.input_scale, again.input_scale)
