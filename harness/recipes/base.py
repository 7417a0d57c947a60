"""What every recipe shares: the Recipe base class, the training settings, recipes built on a trained `base`
model, the registry every recipe module fills (`@register`), and the checkpoint key's settings."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from harness import models, normalizations, objectives, splits, train
from harness.errors import HarnessError
from harness.registry import Registry
from harness.train import Hyper

REFERENCE_MODEL = "wrn-40-2"
# Settings added after checkpoints existed, at the value every earlier checkpoint was trained with: at that
# value they stay out of the checkpoint key, so the keys of earlier runs do not change.
_KEY_NEUTRAL = {"objective": "cross_entropy", "optimizer": "sgd_nesterov_cosine", "select": "last",
                "holdout": 0.0, "holdout_rule": "random", "cifar100_holdout": 0.0, "batchnorm": "train",
                "normalization": "half"}


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
    # settings that do not decide a stored model's weights (how it is evaluated, which of several stored models a
    # search keeps): not in the key
    eval_only: ClassVar[tuple[str, ...]] = ()
    optional_types: ClassVar[dict[str, type]] = {}  # the type a string converts to, for settings that default to None
    linear_head: ClassVar[bool] = True  # the model ends in a plain Linear head: only such a model can be a `base`

    model: str | None = None
    # A holdout split carved from the training set (harness.splits): it never trains; it selects the epoch (a
    # `select` rule that reads it: train.SELECTIONS) and fits the temperature. 0 = none. cifar100_holdout, when
    # not 0, replaces `holdout` on CIFAR-100 (the TST reference holds out 5 % there, 20 % elsewhere).
    holdout: float = 0.0
    holdout_rule: str = "random"
    cifar100_holdout: float = 0.0
    # The paper's input normalization (harness.normalizations); None: the base model's (recipes on a base)
    normalization: str | None = "half"

    def __post_init__(self) -> None:
        if self.model is not None:
            models.spec(self.model)
        _check(self, "normalization", self.normalization is None or self.normalization in normalizations.names(),
               f"one of {', '.join(normalizations.names())}")
        for name in ("holdout", "cifar100_holdout"):
            _check(self, name, getattr(self, name) == 0 or 0 < getattr(self, name) <= splits.MAX_FRACTION,
                   f"0 (no holdout) or in (0, {splits.MAX_FRACTION}]")
        _check(self, "holdout_rule", self.holdout_rule in splits.RULES, f"one of {', '.join(splits.RULES)}")

    def obtain(self, dataset: str, profile, seed: int, *, entry=None, upstream=lambda: None, device: str = "cpu",
               data_root=None, cache_dir=None, quiet: bool = True) -> tuple[nn.Module, dict]:
        """The case's model and its record info: how a recipe kind gets its model is the kind's, so the runner
        asks every recipe the same way. The default trains (cached) with harness.checkpoints.obtain, the case's
        model entry (`upstream()`: its checkpoint after the leakage guard, None without one) as the pretrained
        model; the CLIP recipes build theirs from the entry itself (harness.recipes.clip)."""
        from harness import checkpoints  # it imports the recipes
        return checkpoints.obtain(self, dataset, profile, seed, device=device,
                                  upstream_dataset=profile.plan(dataset).upstream, upstream_checkpoint=upstream(),
                                  data_root=data_root, cache_dir=cache_dir, quiet=quiet)

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
    batchnorm: str = "train"  # train.BATCHNORM_MODES: the mode of every BatchNorm layer while training

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "batchnorm", self.batchnorm in train.BATCHNORM_MODES, f"one of {', '.join(train.BATCHNORM_MODES)}")
        _check(self, "objective", self.objective in objectives.names(), f"one of {', '.join(objectives.names())}")
        _check(self, "optimizer", self.optimizer in train.OPTIMIZERS, f"one of {', '.join(train.OPTIMIZERS)}")
        _check(self, "select", self.select in train.SELECTIONS, f"one of {', '.join(train.SELECTIONS)}")
        _check(self, "select", "holdout" not in train.SELECTIONS[self.select].needs or self.holdout > 0,
               "'last' when holdout is 0")
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
                     optimizer=self.optimizer, objective=self.objective, select=self.select,
                     batchnorm=self.batchnorm)


class _OnBase:
    """A recipe that starts from the trained `base` model (a field of the recipe) of the same dataset and keeps
    that model's architecture (Tst, TemperatureScaling, Oe)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_base(self)
        own, base = self.normalization, base_normalization(self.base)
        _check(self, "normalization", own is None or own == base,
               f"its base's ({self.base} trains with {base!r}): its weights were trained for that input")

    @property
    def upstreams(self) -> tuple[Upstream, ...]:
        return (Upstream(self.base, "same"),)

    def resolve(self, dataset, profile_aux, data_root=None):
        resolved = super().resolve(dataset, profile_aux, data_root)
        return dataclasses.replace(resolved, normalization=base_normalization(self.base))

    def model_for(self, profile_model, upstream_models):
        return upstream_models[0]

    def build(self, model_name, num_classes, inputs):
        """A copy of the base model (Tst replaces its head instead)."""
        model = self.skeleton(model_name, num_classes)
        models.load_state_dict(model, inputs[0].state_dict(), source=f"{self.base} model")
        return model, []


RECIPES: Registry[type[Recipe]] = Registry("recipe")
register = RECIPES.register  # class decorator: a Recipe subclass, under its `name`


def base_normalization(name: str) -> str:
    """The input normalization recipe `name` trains with, following its bases down to one that names it."""
    recipe = RECIPES.get(name)()
    return recipe.normalization if recipe.normalization is not None else base_normalization(recipe.base)


def _check_base(recipe: Recipe) -> None:
    # A base must end in a plain Linear head: the recipes that replace or reuse another model's head cannot.
    valid = [n for n in RECIPES.names() if RECIPES.get(n).linear_head]
    _check(recipe, "base", recipe.base in valid, f"one of {', '.join(valid)}")


def identity_settings(recipe: Recipe, settings: dict) -> dict:
    """The settings that enter the checkpoint key: without eval-only settings and key-neutral defaults."""
    return {k: v for k, v in settings.items()
            if k not in recipe.eval_only and not (k in _KEY_NEUTRAL and v == _KEY_NEUTRAL[k])}


def _check(recipe: Recipe, field: str, ok: bool, expected: str) -> None:
    if not ok:
        raise HarnessError(f"recipe {recipe.name!r}: {field} must be {expected}, got {getattr(recipe, field)!r}")


