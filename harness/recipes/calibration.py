"""Calibration recipes: focal losses from scratch, and the two-stage recipes of Jordahn & Olmos 2024 (a base
trained with Adam and a holdout, then TST / V-TST heads on its frozen body) and temperature scaling of a base."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from harness import models
from harness.recipes.base import RECIPES, REFERENCE_MODEL, Recipe, _check, _OnBase, _Trained, register
from harness.recipes.transfer import Scratch


@register
@dataclass(frozen=True)
class ScratchFocal(Scratch):
    name: ClassVar[str] = "scratch_focal"
    summary: ClassVar[str] = "the scratch recipe with the focal loss (gamma 3)"

    objective: str = "focal"
    normalization: str | None = "tst"  # trained as the TST paper trains the models it compares


@register
@dataclass(frozen=True)
class ScratchAdaptiveFocal(Scratch):
    name: ClassVar[str] = "scratch_adaptive_focal"
    summary: ClassVar[str] = "the scratch recipe with the adaptive focal loss (gamma 5 where p_t < 0.2, else 3)"

    objective: str = "adaptive_focal"
    normalization: str | None = "tst"


@dataclass(frozen=True)
class _TwoStageSettings(_Trained):
    """Both stages of Jordahn & Olmos 2024: Adam lr 1e-4 (no weight decay, constant), batch 256, keep the epoch
    with the lowest NLL on a random 20 % holdout (5 % on CIFAR-100)."""

    drop_rate: float = 0.0
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 256
    optimizer: str = "adam_constant"
    select: str = "best_holdout_nll"
    holdout: float = 0.2
    cifar100_holdout: float = 0.05


@register
@dataclass(frozen=True)
class AdamBase(_TwoStageSettings):
    """The TST paper's stage 1: WRN-28-10 from scratch with the two-stage settings, up to 600 epochs (the
    profiles scale that: see their epochs tables). The network is DeepMind's WideResNet variant the TST reference
    trains (`wrn-28-10-dm`: BatchNorm momentum 0.01, SAME padding, no dropout); a CPU profile runs the `-dm`
    variant of its own small WideResNet (docs/sources.md#two-stage-training-tst-v-tst)."""

    name: ClassVar[str] = "adam_base"
    summary: ClassVar[str] = "TST stage 1: from scratch, Adam 1e-4 constant, batch 256, best holdout NLL"
    paper_model: ClassVar[str] = "wrn-28-10-dm"

    epochs: int = 600
    normalization: str | None = "tst"

    def model_for(self, profile_model, upstream_models):
        # A profile that runs the papers' own model (the paper profile) runs this paper's; CPU profiles scale it.
        return self.model or (self.paper_model if profile_model == REFERENCE_MODEL
                              else models.wrn_variant(profile_model, "dm"))

    def build(self, model_name, num_classes, inputs):
        return self.skeleton(model_name, num_classes), []


@register
@dataclass(frozen=True)
class Tst(_OnBase, _TwoStageSettings):
    """Stage 2 (TST): the trained `base` model of the same dataset with its body's weights frozen and a new MLP
    head with latent size Z = `latent`, trained on augmented images (the frozen body runs forward at every step).
    `batchnorm = "train"` (the default) is the reference's: its Lightning module leaves the body's BatchNorm in
    train mode, so the running statistics move while the head trains; "eval" keeps the body exactly the model
    that was selected."""

    name: ClassVar[str] = "tst"
    summary: ClassVar[str] = "freeze a trained model's body, train a new MLP head (Jordahn & Olmos 2024)"
    linear_head: ClassVar[bool] = False

    epochs: int = 40
    base: str = "scratch"
    latent: int = 128
    normalization: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "latent", not isinstance(self.latent, bool) and self.latent >= 1, "an integer >= 1 (Z)")

    def head(self, in_features: int, num_classes: int) -> nn.Module:
        return models.MLPHead(in_features, num_classes, self.latent)

    def skeleton(self, model_name, num_classes):
        model = models.create(model_name, num_classes)
        model.fc = self.head(model.feature_dim, num_classes)
        return model

    def build(self, model_name, num_classes, inputs):
        model = self.skeleton(model_name, num_classes)
        models.load_state_dict(model, inputs[0].state_dict(), source=f"{self.base} model", skip_prefixes=("fc.",))
        return model, models.backbone_modules(model)


@register
@dataclass(frozen=True)
class Vtst(Tst):
    """V-TST: the TST stage with the variational head and the `variational` objective (CE + KL / Z); evaluated
    with the softmax averaged over M = `eval_samples` draws (the record also holds M = 1)."""

    name: ClassVar[str] = "vtst"
    summary: ClassVar[str] = "TST with a variational head: sampled latent, CE + KL / Z; softmax averaged over M"
    eval_only: ClassVar[tuple[str, ...]] = ("eval_samples",)

    objective: str = "variational"
    eval_samples: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "eval_samples", not isinstance(self.eval_samples, bool) and self.eval_samples >= 1,
               "an integer >= 1 (M)")

    def head(self, in_features, num_classes):
        return models.VariationalHead(in_features, num_classes, self.latent, self.eval_samples)


@register
@dataclass(frozen=True)
class TemperatureScaling(_OnBase, Recipe):
    """Guo et al. 2017 on a trained `base` model: the weights unchanged, one temperature fitted on the holdout
    split (by the evaluation, harness.calibration). With base = adam_base the split is the one the base never
    trained on; a base trained on the whole training set (scratch) has seen it: the record says how many."""

    name: ClassVar[str] = "temperature_scaling"
    summary: ClassVar[str] = "the base model as is, with a temperature fitted on a holdout split"
    trains: ClassVar[bool] = False
    linear_head: ClassVar[bool] = False  # the base's head, which may be an MLP (tst)

    base: str = "scratch"
    holdout: float = 0.2
    cifar100_holdout: float = 0.05
    normalization: str | None = None

    def skeleton(self, model_name, num_classes):
        return RECIPES.get(self.base)().skeleton(model_name, num_classes)
