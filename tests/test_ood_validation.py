"""OOD validation (energy_ft_selected, docs/outlier-exposure.md): the validation outliers' split, the epoch selected by
their FPR95, the margin search, and the recipe end to end on digits."""
import dataclasses

import numpy as np
import pytest
import torch
from test_recipes import tiny_profile

from harness import checkpoints, data, outliers, recipes, splits, train
from harness.recipes import outlier_exposure
from harness.errors import HarnessError

QUIET = train.Options(quiet=True)


def _images(values) -> np.ndarray:
    """One 4x4 image per value, every pixel of it at that value."""
    return np.repeat(np.asarray(values, np.uint8), 4 * 4 * 3).reshape(-1, 4, 4, 3)


# ---------------------------------------------------------------- the split

def test_the_split_skips_test_ood_images_and_planted_overlap_is_a_one_line_error():
    source = _images(range(30))
    test_sets = {"planted": source[:20], "other": _images([200, 201])}
    val, info = outliers.validation_split("src", source, 10, test_sets)
    assert len(val) == 10 and (val.labels == -1).all()
    assert not splits.image_digests(val.images) & splits.image_digests(source[:20])
    assert info["disjoint_from"] == ["other", "planted"] and info["seed"] == outliers.VAL_SEED
    assert info["test_ood_images_skipped"] >= 1  # the seeded order meets planted images before its 10th clean one
    again, _ = outliers.validation_split("src", source, 10, test_sets)
    assert np.array_equal(val.images, again.images)  # seeded: the same images every time
    with pytest.raises(HarnessError, match=r"outlier set 'src': a validation OOD split of 11 images cannot be "
                                           r"disjoint from the test OOD sets \(planted, other\): only 10 of its 30") as e:
        outliers.validation_split("src", source, 11, test_sets)
    assert "\n" not in str(e.value)


def test_the_pool_leaves_the_validation_images_out_and_keeps_its_size():
    val = data.load("digits-5-9", "train", image_size=32).images[:40]
    full = outliers.pool("digits-5-9", "digits-0-4", 32, None)
    pool = outliers.pool("digits-5-9", "digits-0-4", 32, None, exclude=frozenset(splits.image_digests(val)))
    assert len(pool) == len(full) - 40 and not splits.image_digests(pool.images) & splits.image_digests(val)
    capped = outliers.pool("digits-5-9", "digits-0-4", 32, 100, exclude=frozenset(splits.image_digests(val)))
    assert len(capped) == 100


def test_the_planned_split_is_disjoint_from_the_test_ood_sets_and_the_training_outliers():
    profile = tiny_profile()
    run = checkpoints.plan(recipes.get("energy_ft_selected", val_ood_size=30), "digits-0-4", profile, 0)
    test_ood = data.load_ood("digits-5-9", image_size=32).images  # the smoke profile's one dataset-backed OOD set
    val = splits.image_digests(run.val_ood_set.images)
    assert len(run.val_ood_set) == 30 and not val & splits.image_digests(test_ood)
    assert not val & splits.image_digests(run.aux_set.images)
    assert run.val_ood_info["disjoint_from"] == ["digits-5-9"] and run.val_ood_info["n"] == 30
    assert run.identity()["val_ood_sha256"] == run.val_ood_info["sha256"]
    # the profile's cap on every OOD set caps the validation outliers too
    capped = checkpoints.plan(recipes.get("energy_ft_selected", val_ood_size=30), "digits-0-4",
                              tiny_profile(ood_pool_limit=12), 0)
    assert len(capped.val_ood_set) == 12 and capped.key != run.key
    # energy_ft draws no validation outliers: its pool and key stay as they were
    plain = checkpoints.plan("energy_ft", "digits-0-4", profile, 0)
    assert plain.val_ood_set is None and "val_ood_sha256" not in plain.identity()
    assert len(plain.aux_set) == len(run.aux_set) + 30


def test_a_test_ood_set_holding_the_outliers_is_a_one_line_error(monkeypatch):
    # planted: the profile's test OOD set is the outliers' own train split
    monkeypatch.setattr(data, "load_ood", lambda name, data_root=None, image_size=32: data.load(
        "digits-5-9", "train", image_size=image_size))
    with pytest.raises(HarnessError, match="cannot be disjoint from the test OOD sets \\(digits-5-9\\): only 0 of"):
        checkpoints.plan(recipes.get("energy_ft_selected", val_ood_size=30), "digits-0-4", tiny_profile(), 0)


# ---------------------------------------------------------------- the selection rule

class _Brightness(torch.nn.Module):
    """One logit: the mean of the normalized image, so the energy score orders images by brightness."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.mean(dim=(1, 2, 3))[:, None]


def test_validation_fpr95_is_the_energy_papers_fpr95_of_the_energy_score():
    in_dist = data.ImageSet(_images(range(100, 120)), np.zeros(20, np.int64), ("id",))
    # 5 of 10 outliers brighter than every ID image: at the threshold keeping 19 of 20 ID images, those 5 pass
    ood = data.ImageSet(_images([*range(5), *range(200, 205)]), np.full(10, -1, np.int64), ())
    assert train.val_fpr95(_Brightness(), in_dist, ood, batch_size=7) == 0.5
    assert train.val_fpr95(_Brightness(), in_dist, ood.subset(np.arange(5)), batch_size=7) == 0.0


@pytest.fixture(scope="module")
def digits():
    full = data.load("digits-0-4", "train", image_size=16)
    return full.subset(train.balanced_indices(full.labels, 32, seed=0))


def _net():
    torch.manual_seed(0)
    from harness import models
    return models.create("wrn-10-1", 5, drop_rate=0.0)


SELECT = train.Hyper(epochs=3, lr=3e-3, weight_decay=0.0, batch_size=16, optimizer="adam_constant",
                     select="best_val_fpr95")


@pytest.mark.parametrize("fprs, chosen", [([0.5, 0.2, 0.4], 2), ([0.3, 0.3, 0.3], 1), ([0.9, 0.8, 0.1], 3)])
def test_the_epoch_with_the_lowest_validation_fpr95_is_kept(digits, monkeypatch, fprs, chosen):
    held, ood = digits.subset(np.arange(8)), data.ImageSet(_images(range(10)), np.full(10, -1, np.int64), ())
    seen = iter(fprs)
    monkeypatch.setattr(train, "val_fpr95", lambda model, id_set, ood_set, **kw: next(seen))
    model = _net()
    result = train.fit(model, digits, SELECT, seed=1, options=QUIET, holdout=held, val_ood=ood)
    assert [h["val_fpr95"] for h in result.history] == fprs and result.selected_epoch == chosen
    # constant lr: the first `chosen` epochs of the run are a run of `chosen` epochs, whose last weights those are
    reference = _net()
    train.fit(reference, digits, dataclasses.replace(SELECT, epochs=chosen, select="last"), seed=1, options=QUIET)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_the_rule_needs_its_validation_outliers(digits):
    with pytest.raises(HarnessError, match="select 'best_val_fpr95' needs a non-empty validation OOD split; the run "
                                           "has none"):
        train.fit(_net(), digits, SELECT, options=QUIET, holdout=digits.subset(np.arange(8)))


@pytest.mark.parametrize("change, message", [
    ({"select": "last"}, "select must be 'best_val_fpr95'"),
    ({"val_ood_size": "0"}, "val_ood_size must be >= 1, got 0"),
    ({"margin_step": "0"}, "margin_step must be > 0, got 0.0"),
    ({"holdout": "0"}, "select must be 'last' when holdout is 0"),
])
def test_bad_settings_are_one_line_errors(change, message):
    with pytest.raises(HarnessError, match=message) as e:
        recipes.get("energy_ft_selected", **change)
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- the margin search

def test_the_grid_is_centred_on_the_papers_margins():
    recipe = recipes.get("energy_ft_selected")
    assert recipe.grid("cifar10")[0] == (-23.0, -5.0) and len(recipe.grid("cifar10")) == 9
    assert {m for m, _ in recipe.grid("cifar10")} == {-25.0, -23.0, -21.0}
    assert {m for _, m in recipe.grid("cifar10")} == {-7.0, -5.0, -3.0}
    # digits-0-4's margins (-7, -3): (-5, -5) has no gap between the hinges and is left out
    assert len(recipe.grid("digits-0-4")) == 8 and (-5.0, -5.0) not in recipe.grid("digits-0-4")
    assert recipes.get("energy_ft_selected", m_in=-10.0, m_out=0.0, margin_step=1.0).grid("cifar10")[:2] == [
        (-10.0, 0.0), (-10.0, -1.0)]


def _fake_obtain(fpr_of):
    """A stand-in for the training of one grid point: its validation FPR95 is `fpr_of(m_in, m_out)`."""
    def obtain(recipe, dataset, profile, seed, **kwargs):
        info = {"key": f"{recipe.m_in}/{recipe.m_out}", "selected_epoch": 2,
                "history": [{"val_fpr95": 1.0}, {"val_fpr95": fpr_of(recipe.m_in, recipe.m_out)}]}
        return (recipe.m_in, recipe.m_out), info
    return obtain


@pytest.mark.parametrize("fpr_of, chosen", [
    (lambda m_in, m_out: abs(m_in + 25) + abs(m_out + 3), (-25.0, -3.0)),  # lowest at a corner
    (lambda m_in, m_out: 0.4, (-23.0, -5.0)),  # a tie keeps the paper's margins
])
def test_the_search_records_every_point_and_keeps_the_best(monkeypatch, fpr_of, chosen):
    monkeypatch.setattr(outlier_exposure.EnergyFt, "obtain", _fake_obtain(fpr_of))
    recipe = recipes.get("energy_ft_selected")
    model, info = recipe.obtain("cifar10", "paper", 0)
    search = info["margin_search"]
    assert [(p["m_in"], p["m_out"]) for p in search["points"]] == recipe.grid("cifar10")
    assert [p["val_fpr95"] for p in search["points"]] == [fpr_of(*p) for p in recipe.grid("cifar10")]
    assert model == chosen and search["chosen"] == {"m_in": chosen[0], "m_out": chosen[1]}
    assert info["key"] == f"{chosen[0]}/{chosen[1]}" and search["centre"] == [-23.0, -5.0] and search["step"] == 2.0


# ---------------------------------------------------------------- end to end on digits

def test_energy_ft_selected_end_to_end_on_digits(tmp_path):
    profile = tiny_profile()
    model, info = recipes.get("energy_ft_selected", val_ood_size=30).obtain(
        "digits-0-4", profile, 0, cache_dir=tmp_path, quiet=True)
    search = info["margin_search"]
    assert len(search["points"]) == 8 and len({p["key"] for p in search["points"]}) == 8
    best = min(search["points"], key=lambda p: p["val_fpr95"])
    assert info["key"] == best["key"] and (info["settings"]["m_in"], info["settings"]["m_out"]) == (
        best["m_in"], best["m_out"])
    assert 0 <= best["val_fpr95"] <= 1 and info["history"][0]["val_fpr95"] == best["val_fpr95"]
    assert info["holdout"] == {"fraction": 0.1, "rule": "tail", "n": 4, "seen_by_upstream_training": 4}
    assert info["val_ood"]["n"] == 30 and info["val_ood"]["disjoint_from"] == ["digits-5-9"]
    assert info["upstream"] == {"recipe": "baseline", "dataset": "digits-0-4"} and info["n_train"] == 36
    # every point from the same base; the grid's step is not part of a point's key: a search with another step
    # that meets the same point reuses it
    _, cached = recipes.get("energy_ft_selected", val_ood_size=30, margin_step=4.0).obtain(
        "digits-0-4", profile, 0, cache_dir=tmp_path, quiet=True)
    assert cached["margin_search"]["points"][0]["key"] == search["points"][0]["key"]
    assert cached["margin_search"]["points"][0]["val_fpr95"] == search["points"][0]["val_fpr95"]
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
