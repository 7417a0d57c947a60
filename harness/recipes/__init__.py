"""Training recipes: one frozen dataclass each, holding the reference hyperparameters and upstream dependencies.

A recipe says *what* is learned. A profile only scales it (epoch count, training-set size, the model for the
CPU profiles); `harness.checkpoints.obtain` resolves recipe + profile + dataset into a run and caches it.

Dependencies are `Upstream(recipe, on)`: `on="upstream"` trains that recipe on the upstream (pretraining)
dataset, `on="same"` on this recipe's own dataset. So `lp_ft` reuses the cached `linear_probe` model and
`wise_ft` reuses the cached `pretrain` and `finetune` models.
"""
from __future__ import annotations

import dataclasses

from harness.errors import HarnessError
# The modules that register the recipes (@register); names() lists the recipes in this order.
from harness.recipes import transfer, calibration, outlier_exposure, clip, ssl  # noqa: F401  isort: skip
from harness.recipes.base import (REFERENCE_MODEL, RECIPES, Recipe, Upstream, _Trained,  # noqa: F401
                                  base_normalization, identity_settings)
from harness.recipes.transfer import Scratch, interpolate  # noqa: F401

names = RECIPES.names


def get(name: str, **overrides) -> Recipe:
    """The recipe `name` with its reference settings, `overrides` replacing some (strings are converted)."""
    cls = RECIPES.get(name)
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
