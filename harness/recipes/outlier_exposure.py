"""Outlier-exposure recipes: OE from scratch and as fine-tuning, the OE paper's calibration pair, and
energy-bounded fine-tuning; each resolves its outlier set (and margins) from the dataset and the profile."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from harness import models, objectives, outliers
from harness.errors import HarnessError
from harness.recipes.base import _check, _OnBase, _Trained, register
from harness.recipes.transfer import Scratch
from harness.train import Hyper


@register
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
    normalization: str | None = "oe"

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


@register
@dataclass(frozen=True)
class Oe(_OnBase, OeScratch):
    """Outlier Exposure fine-tuning (oe_tune.py): the trained `base` model of the same dataset (the reference's
    baseline.py: `baseline`), its dropout kept, lr 0.001, 10 epochs, per-step cosine, the base's normalization."""

    name: ClassVar[str] = "oe"
    summary: ClassVar[str] = "fine-tune a trained model with Outlier Exposure (lr 0.001, 10 epochs)"

    lr: float = 0.001
    epochs: int = 10
    base: str = "baseline"
    normalization: str | None = None


@register
@dataclass(frozen=True)
class Baseline(Scratch):
    """The OE and energy papers' baseline (hendrycks/outlier-exposure baseline.py, the model wetliu/energy_ood
    fine-tunes): the scratch recipe with their CIFAR input normalization; the base of `oe` and `energy_ft`."""

    name: ClassVar[str] = "baseline"
    summary: ClassVar[str] = "the scratch recipe with the OE / energy papers' normalization (their baseline.py)"

    normalization: str | None = "oe"


@register
@dataclass(frozen=True)
class ScratchCalib(Baseline):
    """The Outlier Exposure paper's calibration baseline (cifar10_calib_wrn_baseline): the scratch recipe trained
    without the last 10 % of the training set (of each class: harness.splits `tail`), which fits the temperature."""

    name: ClassVar[str] = "scratch_calib"
    summary: ClassVar[str] = "the scratch recipe with the last 10 % of each class held out (OE calibration)"

    holdout: float = 0.1
    holdout_rule: str = "tail"


@register
@dataclass(frozen=True)
class OeCalib(Oe):
    """Outlier Exposure fine-tuning of `scratch_calib` with the same tail held out (cifar10_calib_wrn_oe_tune)."""

    name: ClassVar[str] = "oe_calib"
    summary: ClassVar[str] = "oe on scratch_calib, the same 10 % tail held out (OE calibration)"

    base: str = "scratch_calib"
    holdout: float = 0.1
    holdout_rule: str = "tail"


@register
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

    def margins_for(self, dataset: str, data_root=None) -> tuple[float, float]:
        """(m_in, m_out): the recipe's when set, else the dataset's (registry energy_margins)."""
        if self.m_in is not None and self.m_out is not None:
            return self.m_in, self.m_out
        if self.m_in is not None or self.m_out is not None:
            raise HarnessError(f"recipe {self.name!r}: set both m_in and m_out, or neither (the dataset's)")
        return outliers.margins(dataset, data_root)

    def resolve(self, dataset, profile_aux, data_root=None):
        resolved = super().resolve(dataset, profile_aux, data_root)
        m_in, m_out = self.margins_for(dataset, data_root)
        return dataclasses.replace(resolved, m_in=m_in, m_out=m_out)

    def objective_settings(self):
        if self.m_in is None or self.m_out is None:
            raise HarnessError(f"recipe {self.name!r}: the margins are not resolved (Recipe.resolve)")
        return (("m_in", float(self.m_in)), ("m_out", float(self.m_out)))


@register
@dataclass(frozen=True)
class EnergyFtSelected(EnergyFt):
    """energy_ft with the two choices the energy paper leaves open made on validation outliers
    (docs/outlier-exposure.md): `val_ood_size` images of the outlier source that are in no test OOD set of the
    profile and never train (harness.outliers.validation_split) against the last 10 % of each class of the
    training set, which the fine-tune holds out (`tail`: with `base=scratch_calib` no stage has seen them). Each
    fine-tune keeps the epoch with the lowest validation FPR95 of the energy score (select best_val_fpr95); one
    fine-tune from the same base per point of the margin grid (`grid`), the point with the lowest validation
    FPR95 kept. The record's checkpoint holds every point's FPR95 and the choice (`margin_search`)."""

    name: ClassVar[str] = "energy_ft_selected"
    summary: ClassVar[str] = "energy_ft, its epoch and (m_in, m_out) chosen by FPR95 on validation outliers"
    # The grid decides which grid point's model is kept, not any point's weights: each point is stored under
    # its own margins, shared by searches with another step.
    eval_only: ClassVar[tuple[str, ...]] = ("margin_step",)

    select: str = "best_val_fpr95"
    holdout: float = 0.1
    holdout_rule: str = "tail"
    val_ood_size: int = 2000
    margin_step: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "select", self.select == "best_val_fpr95",
               "'best_val_fpr95' (the margin search compares the points' validation FPR95)")
        _check(self, "val_ood_size", self.val_ood_size >= 1, ">= 1")
        _check(self, "margin_step", self.margin_step > 0, "> 0")

    def grid(self, dataset: str, data_root=None) -> list[tuple[float, float]]:
        """The (m_in, m_out) points searched: the recipe's margins (unset: the dataset's, the paper's on CIFAR) and
        one `margin_step` either side of each, 3 x 3; the centre comes first, so a tie keeps the paper's margins.
        A point with m_in >= m_out is no pair of margins (the hinges need a gap) and is left out."""
        m_in, m_out = self.margins_for(dataset, data_root)
        steps = (0.0, -self.margin_step, self.margin_step)
        return [(m_in + a, m_out + b) for a in steps for b in steps if m_in + a < m_out + b]

    def obtain(self, dataset: str, profile, seed: int, **kwargs) -> tuple[nn.Module, dict]:
        """One fine-tune per grid point (each cached under its margins, from the same base), the one with the lowest
        validation FPR95 at its selected epoch kept; ties to the earlier point."""
        points, best = [], None
        for m_in, m_out in self.grid(dataset, kwargs.get("data_root")):
            point = dataclasses.replace(self, m_in=m_in, m_out=m_out)
            model, info = super(EnergyFtSelected, point).obtain(dataset, profile, seed, **kwargs)
            fpr95 = info["history"][info["selected_epoch"] - 1]["val_fpr95"]
            points.append({"m_in": m_in, "m_out": m_out, "val_fpr95": fpr95,
                           "selected_epoch": info["selected_epoch"], "key": info["key"]})
            if best is None or fpr95 < best[2]["val_fpr95"]:
                best = model, info, points[-1]
        model, info, chosen = best
        search = {"rule": "lowest validation FPR95 (energy score, 95 % of the ID holdout kept) over the grid, "
                          "each point at its selected epoch; ties to the earlier point (the centre first)",
                  "centre": list(self.margins_for(dataset, kwargs.get("data_root"))), "step": self.margin_step,
                  "points": points, "chosen": {"m_in": chosen["m_in"], "m_out": chosen["m_out"]}}
        return model, dict(info, margin_search=search)
