"""Per-paper input normalization: each recipe family's, the base's for a recipe on a base, and the model's
conversion of the harness's input to it."""
import pytest
import torch

from harness import models, normalizations, recipes
from harness.errors import HarnessError


@pytest.mark.parametrize("recipe, expected", [
    ("scratch", "half"), ("pretrain", "half"), ("finetune", "half"), ("linear_probe", "half"), ("lp_ft", "half"),
    ("wise_ft", "half"),  # hendrycks/pre-training
    ("baseline", "oe"), ("oe_scratch", "oe"), ("oe", "oe"), ("energy_ft", "oe"), ("scratch_calib", "oe"),
    ("oe_calib", "oe"),  # hendrycks/outlier-exposure, wetliu/energy_ood
    ("adam_base", "tst"), ("scratch_focal", "tst"), ("scratch_adaptive_focal", "tst"),  # Decoupled-Layers
])
def test_each_family_trains_with_its_papers_normalization(recipe, expected):
    assert recipes.base_normalization(recipe) == expected


def test_a_recipe_on_a_base_takes_the_bases_normalization():
    assert recipes.get("tst", base="adam_base").resolve("cifar10", None).normalization == "tst"
    assert recipes.get("tst").resolve("cifar10", None).normalization == "half"  # on scratch
    assert recipes.get("temperature_scaling", base="adam_base").resolve("cifar10", None).normalization == "tst"
    with pytest.raises(HarnessError, match="normalization must be its base's"):
        recipes.get("oe", normalization="half")
    with pytest.raises(HarnessError, match="normalization must be one of half, oe, tst"):
        recipes.get("scratch", normalization="imagenet")


def test_statistics_per_dataset():
    assert normalizations.of("half", "cifar10") == ((0.5,) * 3, (0.5,) * 3)
    assert normalizations.of("oe", "cifar100")[0] == pytest.approx((125.3 / 255, 123.0 / 255, 113.9 / 255))
    assert normalizations.of("tst", "cifar100")[1] == (0.2011, 0.1987, 0.2025)
    assert normalizations.of("tst", "cifar10")[1] == (0.247, 0.243, 0.261)
    assert normalizations.of("tst", "digits-0-4") == normalizations.of("tst", "cifar10")
    with pytest.raises(HarnessError, match="unknown normalization"):
        normalizations.of(None, "cifar10")


def test_the_model_sees_the_papers_input():
    u = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    harness_input = (u.double() / 255 - 0.5) / 0.5
    mean, std = normalizations.of("oe", "cifar10")
    mean_t, std_t = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (mean, std))
    paper_input = (u.double() / 255 - mean_t) / std_t
    torch.manual_seed(0)
    plain = models.create("wrn-10-1", 4).double().eval()
    converted = models.create("wrn-10-1", 4).double().eval()
    converted.load_state_dict(plain.state_dict())
    models.set_input_normalization(converted, mean, std)
    with torch.no_grad():
        torch.testing.assert_close(converted.features(harness_input), plain.features(paper_input), rtol=1e-12,
                                   atol=1e-12)
    assert "input_scale" not in converted.state_dict()  # not saved: the recipe's setting restores it
    assert models.set_input_normalization(plain, *normalizations.HALF) is plain and not hasattr(plain, "input_scale")

