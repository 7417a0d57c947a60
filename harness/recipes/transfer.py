"""Transfer recipes: train from scratch, pretrain upstream, fine-tune, linear-probe, LP-FT, WiSE-FT."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from harness import models
from harness.errors import HarnessError
from harness.recipes.base import Recipe, Upstream, _check, _Trained, register


@register
@dataclass(frozen=True)
class Scratch(_Trained):
    name: ClassVar[str] = "scratch"
    summary: ClassVar[str] = "train from random init (WRN-40-2, dropout 0.3, lr 0.1, 100 epochs)"

    def build(self, model_name, num_classes, inputs):
        return models.create(model_name, num_classes, drop_rate=self.drop_rate), []


@register
@dataclass(frozen=True)
class Pretrain(Scratch):
    name: ClassVar[str] = "pretrain"
    summary: ClassVar[str] = "the scratch recipe on the upstream dataset; the source of every transfer recipe"


@register
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


@register
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
    batchnorm: str = "eval"

    def build(self, model_name, num_classes, inputs):
        model = _transfer(model_name, num_classes, inputs[0], self.drop_rate)
        return model, models.backbone_modules(model)


@register
@dataclass(frozen=True)
class LpFt(Finetune):
    """Kumar et al. 2022: fine-tune everything starting from the linear-probed head (the cached `linear_probe`
    model of the same dataset) instead of a random head; the tuning stage uses the finetune settings with every
    BatchNorm in eval mode (their code's `use_net_val_mode`: running statistics used and kept fixed)."""

    name: ClassVar[str] = "lp_ft"
    summary: ClassVar[str] = "linear probe, then fine-tune everything from the probed head"
    upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream("linear_probe", "same"),)

    batchnorm: str = "eval"

    def build(self, model_name, num_classes, inputs):
        model = models.create(model_name, num_classes, drop_rate=self.drop_rate)
        models.load_state_dict(model, inputs[0].state_dict(), source="linear-probe model")
        return model, []


@register
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




def _transfer(model_name: str, num_classes: int, upstream: nn.Module, drop_rate: float) -> nn.Module:
    """The upstream backbone with a new Linear(feature_dim, num_classes) head."""
    model = models.create(model_name, num_classes, drop_rate=drop_rate)
    models.load_state_dict(model, upstream.state_dict(), source="upstream model", skip_prefixes=("fc.",))
    return models.replace_head(model, num_classes)
