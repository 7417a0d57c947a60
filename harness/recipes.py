"""Training recipes: one frozen dataclass each, holding the reference hyperparameters and upstream dependencies.

A recipe says *what* is learned. A profile only scales it (epoch count, training-set size, the model for the
CPU profiles); `harness.checkpoints.obtain` resolves recipe + profile + dataset into a run and caches it.

Dependencies are `Upstream(recipe, on)`: `on="upstream"` trains that recipe on the upstream (pretraining)
dataset, `on="same"` on this recipe's own dataset. So `lp_ft` reuses the cached `linear_probe` model and
`wise_ft` reuses the cached `pretrain` and `finetune` models.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from harness import models, objectives, outliers, splits, train
from harness.errors import HarnessError
from harness.train import Hyper

REFERENCE_MODEL = "wrn-40-2"
# Settings added after checkpoints existed, at the value every earlier checkpoint was trained with: at that
# value they stay out of the checkpoint key, so the keys of earlier runs do not change.
_KEY_NEUTRAL = {"objective": "cross_entropy", "optimizer": "sgd_nesterov_cosine", "select": "last",
                "holdout": 0.0, "holdout_rule": "random", "cifar100_holdout": 0.0}


@dataclass(frozen=True)
class Upstream:
    recipe: str
    on: str  # "upstream" | "same"


@dataclass(frozen=True)
class Recipe:
    """Base of every recipe. `model=None` means the profile's model (the paper profile's is wrn-40-2)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    upstreams: ClassVar[tuple[Upstream, ...]] = ()
    trains: ClassVar[bool] = True
    eval_only: ClassVar[tuple[str, ...]] = ()  # settings that change evaluation, not the weights: not in the key
    optional_types: ClassVar[dict[str, type]] = {}  # the type a string converts to, for settings that default to None

    model: str | None = None
    # A holdout split carved from the training set (harness.splits): it never trains; it selects the epoch
    # (select = "best_holdout_nll") and fits the temperature. 0 = none. cifar100_holdout, when not 0,
    # replaces `holdout` on CIFAR-100 (the TST reference holds out 5 % there, 20 % elsewhere).
    holdout: float = 0.0
    holdout_rule: str = "random"
    cifar100_holdout: float = 0.0

    def __post_init__(self) -> None:
        if self.model is not None:
            models.spec(self.model)
        for name in ("holdout", "cifar100_holdout"):
            _check(self, name, getattr(self, name) == 0 or 0 < getattr(self, name) <= splits.MAX_FRACTION,
                   f"0 (no holdout) or in (0, {splits.MAX_FRACTION}]")
        _check(self, "holdout_rule", self.holdout_rule in splits.RULES, f"one of {', '.join(splits.RULES)}")

    def holdout_for(self, dataset: str) -> splits.Holdout | None:
        fraction = self.cifar100_holdout if self.cifar100_holdout and dataset.startswith("cifar100") else self.holdout
        return splits.Holdout(fraction, self.holdout_rule) if fraction else None

    def resolve(self, dataset: str, profile_aux: str | None, data_root=None) -> Recipe:
        """This recipe with the settings it takes from the dataset and the profile filled in (the outlier set,
        the energy margins); most recipes take none."""
        return self

    def model_for(self, profile_model: str, upstream_models: list[str]) -> str:
        """The architecture of this recipe's model under a profile whose model is `profile_model`."""
        return self.model or profile_model

    def skeleton(self, model_name: str, num_classes: int) -> nn.Module:
        """An untrained model of this recipe's architecture: what a cached state dict is loaded into."""
        return models.create(model_name, num_classes, drop_rate=getattr(self, "drop_rate", 0.0))

    @property
    def upstream(self) -> Upstream | None:
        """The first dependency (None for recipes trained from scratch)."""
        return self.upstreams[0] if self.upstreams else None

    def settings(self) -> dict:
        return dataclasses.asdict(self)

    def epochs_for(self, dataset: str, profile_epochs: dict[str, int]) -> int:
        return 0

    def build(self, model_name: str, num_classes: int, inputs: list[nn.Module]) -> tuple[nn.Module, list[nn.Module]]:
        """The model to train (or the final model, if the recipe does not train) and the modules to freeze.
        `inputs` are the trained upstream models, in the order of `upstreams`."""
        raise NotImplementedError

    def hyper(self, epochs: int) -> Hyper:
        raise NotImplementedError


@dataclass(frozen=True)
class _Trained(Recipe):
    """Settings shared by every recipe that runs the training loop (defaults: the reference scratch run)."""

    drop_rate: float = 0.3
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    nesterov: bool = True
    batch_size: int = 128
    epochs: int = 100
    augment: bool = True
    objective: str = "cross_entropy"
    optimizer: str = "sgd_nesterov_cosine"
    select: str = "last"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "objective", self.objective in objectives.names(), f"one of {', '.join(objectives.names())}")
        _check(self, "optimizer", self.optimizer in train.OPTIMIZERS, f"one of {', '.join(train.OPTIMIZERS)}")
        _check(self, "select", self.select in train.SELECTIONS, f"one of {', '.join(train.SELECTIONS)}")
        _check(self, "select", self.select != "best_holdout_nll" or self.holdout > 0, "'last' when holdout is 0")
        _check(self, "weight_decay", self.optimizer != "adam_constant" or self.weight_decay == 0,
               "0 with optimizer 'adam_constant'")
        _check(self, "drop_rate", 0 <= self.drop_rate < 1, "in [0, 1)")
        _check(self, "lr", self.lr > 0, "> 0")
        _check(self, "weight_decay", self.weight_decay >= 0, ">= 0")
        _check(self, "momentum", 0 <= self.momentum < 1, "in [0, 1)")
        _check(self, "nesterov", not self.nesterov or self.momentum > 0, "False when momentum is 0")
        _check(self, "batch_size", self.batch_size >= 1, ">= 1")
        _check(self, "epochs", self.epochs >= 1, ">= 1")

    def epochs_for(self, dataset: str, profile_epochs: dict[str, int]) -> int:
        return profile_epochs.get(self.name, self.epochs)

    def hyper(self, epochs: int) -> Hyper:
        return Hyper(epochs=epochs, lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                     momentum=self.momentum, nesterov=self.nesterov, augment=self.augment,
                     optimizer=self.optimizer, objective=self.objective, select=self.select)


@dataclass(frozen=True)
class Scratch(_Trained):
    name: ClassVar[str] = "scratch"
    summary: ClassVar[str] = "train from random init (WRN-40-2, dropout 0.3, lr 0.1, 100 epochs)"

    def build(self, model_name, num_classes, inputs):
        return models.create(model_name, num_classes, drop_rate=self.drop_rate), []


@dataclass(frozen=True)
class Pretrain(Scratch):
    name: ClassVar[str] = "pretrain"
    summary: ClassVar[str] = "the scratch recipe on the upstream dataset; the source of every transfer recipe"


@dataclass(frozen=True)
class Finetune(_Trained):
    """Hendrycks et al. 2019: all weights tuned, new head, no dropout, lr 0.001, 10 epochs (20 on Tiny ImageNet)."""

    name: ClassVar[str] = "finetune"
    summary: ClassVar[str] = "load the pretrained weights, new head, tune everything (lr 0.001, 10 epochs)"
    upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream("pretrain", "upstream"),)

    drop_rate: float = 0.0
    lr: float = 0.001
    epochs: int = 10
    tinyimagenet_epochs: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "tinyimagenet_epochs", self.tinyimagenet_epochs >= 1, ">= 1")

    def epochs_for(self, dataset: str, profile_epochs: dict[str, int]) -> int:
        if self.name in profile_epochs:
            return profile_epochs[self.name]
        return self.tinyimagenet_epochs if dataset.startswith("tinyimagenet") else self.epochs

    def build(self, model_name, num_classes, inputs):
        return _transfer(model_name, num_classes, inputs[0], self.drop_rate), []


@dataclass(frozen=True)
class LinearProbe(_Trained):
    """Multinomial logistic regression on frozen features: the backbone (BatchNorm statistics included) stays
    in eval mode and only `fc` trains, on un-augmented images so the features are fixed. Chosen here, not
    from a paper: lr 0.1 (the head sees O(1) post-ReLU features), weight decay 5e-4 (the L2 penalty), 10 epochs."""

    name: ClassVar[str] = "linear_probe"
    summary: ClassVar[str] = "frozen pretrained backbone (BN stats too), train a new linear head"
    upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream("pretrain", "upstream"),)

    drop_rate: float = 0.0
    lr: float = 0.1
    epochs: int = 10
    augment: bool = False

    def build(self, model_name, num_classes, inputs):
        model = _transfer(model_name, num_classes, inputs[0], self.drop_rate)
        return model, models.backbone_modules(model)


@dataclass(frozen=True)
class LpFt(Finetune):
    """Kumar et al. 2022: fine-tune everything starting from the linear-probed head (the cached `linear_probe`
    model of the same dataset) instead of a random head; the tuning stage uses the finetune settings."""

    name: ClassVar[str] = "lp_ft"
    summary: ClassVar[str] = "linear probe, then fine-tune everything from the probed head"
    upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream("linear_probe", "same"),)

    def build(self, model_name, num_classes, inputs):
        model = models.create(model_name, num_classes, drop_rate=self.drop_rate)
        models.load_state_dict(model, inputs[0].state_dict(), source="linear-probe model")
        return model, []


@dataclass(frozen=True)
class WiseFt(Recipe):
    """Wortsman et al. 2022: theta = (1 - alpha) * theta_pretrained + alpha * theta_finetuned for every backbone
    tensor, BatchNorm running statistics included. The pretrained head has the upstream's classes, so the head
    is the fine-tuned one at every alpha. Integer buffers (BN num_batches_tracked) come from the nearer endpoint.
    alpha = 0 and 1 return the endpoints' tensors exactly."""

    name: ClassVar[str] = "wise_ft"
    summary: ClassVar[str] = "interpolate pretrained and fine-tuned weights at alpha (no training)"
    upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream("pretrain", "upstream"), Upstream("finetune", "same"))
    trains: ClassVar[bool] = False

    alpha: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "alpha", 0 <= self.alpha <= 1, "in [0, 1]")

    def build(self, model_name, num_classes, inputs):
        pretrained, finetuned = inputs
        model = models.create(model_name, num_classes, drop_rate=Finetune.drop_rate)
        models.load_state_dict(model, interpolate(pretrained.state_dict(), finetuned.state_dict(), self.alpha),
                               source="interpolated weights")
        return model, []


def interpolate(theta_0: dict[str, torch.Tensor], theta_1: dict[str, torch.Tensor], alpha: float,
                head_prefix: str = "fc.") -> dict[str, torch.Tensor]:
    """(1 - alpha) * theta_0 + alpha * theta_1 over theta_1's keys; the head (`head_prefix`) is theta_1's."""
    out = {}
    for key, end in theta_1.items():
        if key.startswith(head_prefix):
            out[key] = end.clone()
            continue
        if key not in theta_0 or theta_0[key].shape != end.shape:
            raise HarnessError(f"cannot interpolate: {key!r} is missing from the pretrained weights or has another "
                               f"shape there")
        start = theta_0[key]
        if alpha == 0 or (not end.is_floating_point() and alpha < 0.5):
            out[key] = start.clone()
        elif alpha == 1 or not end.is_floating_point():
            out[key] = end.clone()
        else:
            out[key] = (1 - alpha) * start + alpha * end
    return out


@dataclass(frozen=True)
class ScratchFocal(Scratch):
    name: ClassVar[str] = "scratch_focal"
    summary: ClassVar[str] = "the scratch recipe with the focal loss (gamma 3)"

    objective: str = "focal"


@dataclass(frozen=True)
class ScratchAdaptiveFocal(Scratch):
    name: ClassVar[str] = "scratch_adaptive_focal"
    summary: ClassVar[str] = "the scratch recipe with the adaptive focal loss (gamma 5 where p_t < 0.2, else 3)"

    objective: str = "adaptive_focal"


class _OnBase:
    """A recipe that starts from the trained `base` model (a field of the recipe) of the same dataset and keeps
    that model's architecture (Tst, TemperatureScaling, Oe)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_base(self)

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        return (Upstream(self.base, "same"),)

    def model_for(self, profile_model, upstream_models):
        return upstream_models[0]

    def build(self, model_name, num_classes, inputs):
        """A copy of the base model (Tst replaces its head instead)."""
        model = self.skeleton(model_name, num_classes)
        models.load_state_dict(model, inputs[0].state_dict(), source=f"{self.base} model")
        return model, []


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


@dataclass(frozen=True)
class AdamBase(_TwoStageSettings):
    """The TST paper's stage 1: WRN-28-10 from scratch with the two-stage settings, up to 600 epochs (the
    profiles scale that: see their epochs tables). Dropout 0: REFERENCE.md states none for this model."""

    name: ClassVar[str] = "adam_base"
    summary: ClassVar[str] = "TST stage 1: from scratch, Adam 1e-4 constant, batch 256, best holdout NLL"
    paper_model: ClassVar[str] = "wrn-28-10"

    epochs: int = 600

    def model_for(self, profile_model, upstream_models):
        # A profile that runs the papers' own model (the paper profile) runs this paper's; CPU profiles scale it.
        return self.model or (self.paper_model if profile_model == REFERENCE_MODEL else profile_model)

    def build(self, model_name, num_classes, inputs):
        return self.skeleton(model_name, num_classes), []


@dataclass(frozen=True)
class Tst(_OnBase, _TwoStageSettings):
    """Stage 2 (TST): the trained `base` model of the same dataset with its body frozen, BatchNorm statistics
    included (the reference leaves BatchNorm in train mode, so its running statistics drift while the head
    trains; the harness keeps the body exactly the model that was selected), and a new MLP head with latent
    size Z = `latent`, trained on augmented images (the frozen body runs forward at every step)."""

    name: ClassVar[str] = "tst"
    summary: ClassVar[str] = "freeze a trained model's body, train a new MLP head (Jordahn & Olmos 2024)"

    epochs: int = 40
    base: str = "scratch"
    latent: int = 128

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


@dataclass(frozen=True)
class TemperatureScaling(_OnBase, Recipe):
    """Guo et al. 2017 on a trained `base` model: the weights unchanged, one temperature fitted on the holdout
    split (by the evaluation, harness.calibration). With base = adam_base the split is the one the base never
    trained on; a base trained on the whole training set (scratch) has seen it: the record says how many."""

    name: ClassVar[str] = "temperature_scaling"
    summary: ClassVar[str] = "the base model as is, with a temperature fitted on a holdout split"
    trains: ClassVar[bool] = False

    base: str = "scratch"
    holdout: float = 0.2
    cifar100_holdout: float = 0.05

    def skeleton(self, model_name, num_classes):
        return get(self.base).skeleton(model_name, num_classes)


@dataclass(frozen=True)
class OeScratch(_Trained):
    """Outlier Exposure from scratch (hendrycks/outlier-exposure oe_scratch.py): the scratch settings (lr 0.1,
    100 epochs, dropout 0.3), every step 128 training images + `aux_batch_size` outliers in one forward pass,
    CE + 0.5 x cross-entropy to uniform on the outliers. `aux` None: the profile's outlier set for the dataset."""

    name: ClassVar[str] = "oe_scratch"
    summary: ClassVar[str] = "train from scratch with Outlier Exposure (128 + 256 outliers, CE + 0.5 x CE to uniform)"

    objective: str = "outlier_exposure"
    aux: str | None = None
    aux_batch_size: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "objective", self.objective in objectives.outlier_names(),
               f"an outlier objective ({', '.join(objectives.outlier_names())})")
        _check(self, "aux_batch_size", self.aux_batch_size >= 1, ">= 1")

    def resolve(self, dataset, profile_aux, data_root=None):
        aux = self.aux or profile_aux
        if aux is None:
            raise HarnessError(f"recipe {self.name!r} needs an outlier set for {dataset!r}: the profile names none "
                               f"(its datasets table's aux field); name one with --aux NAME")
        outliers.check_aux(aux, dataset)
        return dataclasses.replace(self, aux=aux)

    def objective_settings(self) -> tuple[tuple[str, float], ...]:
        return ()

    def hyper(self, epochs: int) -> Hyper:
        return dataclasses.replace(super().hyper(epochs), aux_batch_size=self.aux_batch_size,
                                   objective_settings=self.objective_settings())

    def build(self, model_name, num_classes, inputs):
        return models.create(model_name, num_classes, drop_rate=self.drop_rate), []


@dataclass(frozen=True)
class Oe(_OnBase, OeScratch):
    """Outlier Exposure fine-tuning (oe_tune.py): the trained `base` model of the same dataset (the reference's
    baseline: `scratch`), its dropout kept, lr 0.001, 10 epochs, per-step cosine."""

    name: ClassVar[str] = "oe"
    summary: ClassVar[str] = "fine-tune a trained model with Outlier Exposure (lr 0.001, 10 epochs)"

    lr: float = 0.001
    epochs: int = 10
    base: str = "scratch"


@dataclass(frozen=True)
class ScratchCalib(Scratch):
    """The Outlier Exposure paper's calibration baseline (cifar10_calib_wrn_baseline): the scratch recipe trained
    without the last 10 % of the training set (of each class: harness.splits `tail`), which fits the temperature."""

    name: ClassVar[str] = "scratch_calib"
    summary: ClassVar[str] = "the scratch recipe with the last 10 % of each class held out (OE calibration)"

    holdout: float = 0.1
    holdout_rule: str = "tail"


@dataclass(frozen=True)
class OeCalib(Oe):
    """Outlier Exposure fine-tuning of `scratch_calib` with the same tail held out (cifar10_calib_wrn_oe_tune)."""

    name: ClassVar[str] = "oe_calib"
    summary: ClassVar[str] = "oe on scratch_calib, the same 10 % tail held out (OE calibration)"

    base: str = "scratch_calib"
    holdout: float = 0.1
    holdout_rule: str = "tail"


@dataclass(frozen=True)
class EnergyFt(Oe):
    """Energy-bounded fine-tuning (wetliu/energy_ood train.py): the OE fine-tuning settings with
    CE + 0.1 x (mean relu(E_in - m_in)^2 + mean relu(m_out - E_out)^2), E = -logsumexp(logits). The margins are
    the dataset's (registry energy_margins) unless set here."""

    name: ClassVar[str] = "energy_ft"
    summary: ClassVar[str] = "fine-tune a trained model with energy-bounded hinges on ID and outlier energies"

    optional_types: ClassVar[dict[str, type]] = {"m_in": float, "m_out": float}

    objective: str = "energy_margin"
    m_in: float | None = None
    m_out: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "m_in", self.m_in is None or self.m_out is None or self.m_in < self.m_out,
               f"below m_out ({self.m_out!r})")

    def resolve(self, dataset, profile_aux, data_root=None):
        resolved = super().resolve(dataset, profile_aux, data_root)
        if self.m_in is not None and self.m_out is not None:
            return resolved
        if self.m_in is not None or self.m_out is not None:
            raise HarnessError(f"recipe {self.name!r}: set both m_in and m_out, or neither (the dataset's)")
        m_in, m_out = outliers.margins(dataset, data_root)
        return dataclasses.replace(resolved, m_in=m_in, m_out=m_out)

    def objective_settings(self):
        if self.m_in is None or self.m_out is None:
            raise HarnessError(f"recipe {self.name!r}: the margins are not resolved (Recipe.resolve)")
        return (("m_in", float(self.m_in)), ("m_out", float(self.m_out)))


def _check_base(recipe: Recipe) -> None:
    # A base must end in a plain Linear head: the recipes that replace or reuse another model's head cannot.
    valid = [n for n, cls in _RECIPES.items() if not issubclass(cls, (Tst, TemperatureScaling))]
    _check(recipe, "base", recipe.base in valid, f"one of {', '.join(valid)}")


def identity_settings(recipe: Recipe, settings: dict) -> dict:
    """The settings that enter the checkpoint key: without eval-only settings and key-neutral defaults."""
    return {k: v for k, v in settings.items()
            if k not in recipe.eval_only and not (k in _KEY_NEUTRAL and v == _KEY_NEUTRAL[k])}


def _transfer(model_name: str, num_classes: int, upstream: nn.Module, drop_rate: float) -> nn.Module:
    """The upstream backbone with a new Linear(feature_dim, num_classes) head."""
    model = models.create(model_name, num_classes, drop_rate=drop_rate)
    models.load_state_dict(model, upstream.state_dict(), source="upstream model", skip_prefixes=("fc.",))
    return models.replace_head(model, num_classes)


def _check(recipe: Recipe, field: str, ok: bool, expected: str) -> None:
    if not ok:
        raise HarnessError(f"recipe {recipe.name!r}: {field} must be {expected}, got {getattr(recipe, field)!r}")


_RECIPES: dict[str, type[Recipe]] = {r.name: r for r in (
    Scratch, Pretrain, Finetune, LinearProbe, LpFt, WiseFt, ScratchFocal, ScratchAdaptiveFocal, AdamBase, Tst, Vtst,
    TemperatureScaling, OeScratch, Oe, ScratchCalib, OeCalib, EnergyFt)}


def names() -> tuple[str, ...]:
    return tuple(_RECIPES)


def get(name: str, **overrides) -> Recipe:
    """The recipe `name` with its reference settings, `overrides` replacing some (strings are converted)."""
    cls = _RECIPES.get(name)
    if cls is None:
        raise HarnessError(f"unknown recipe {name!r}; valid recipes: {', '.join(_RECIPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise HarnessError(f"recipe {name!r} has no setting {', '.join(map(repr, unknown))}; "
                           f"valid settings: {', '.join(fields)}")
    defaults = {k: cls.optional_types[k]() if k in cls.optional_types else fields[k].default for k in overrides}
    return cls(**{k: _coerce(name, k, v, defaults[k]) for k, v in overrides.items()})


def _coerce(recipe: str, field: str, value, default):
    """CLI values arrive as strings; convert them to the type of the field's default."""
    if not isinstance(value, str) or default is None or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError(value)
            return value.lower() in ("true", "1")
        return type(default)(value)
    except ValueError:
        kind = type(default).__name__
        raise HarnessError(f"recipe {recipe!r}: {field} must be of type {kind}, got {value!r}") from None
