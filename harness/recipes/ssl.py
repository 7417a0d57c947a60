"""Self-supervised pre-training recipes (`byol`, `barlow_twins`, `dino`, `simclr`) and fine-tuning from them
(`finetune_byol`, ...): the SSL study of docs/ssl.md.

An SSL recipe is an upstream like `pretrain`: it trains on the upstream dataset's training images, whose labels it
never reads (objective `self_supervised`), and the fine-tuning recipes take only its backbone (the momentum copies,
projectors and predictor are saved in its checkpoint and stay there). The defaults are solo-learn's CIFAR settings
(vturrisi/solo-learn scripts/pretrain/cifar/<method>.yaml, the method's defaults in solo/methods/<method>.py,
the scheduler's in solo/methods/base.py): LARS (harness.ssl.lars), batch 256, 1000 epochs, ResNet-18 with the CIFAR
stem (`resnet18-cifar`) where the profile runs the papers' own model (the paper profile); a CPU profile trains its
own small model. The views, heads, momentum updates and losses are lightly's (harness.ssl.learners).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from harness import models
from harness.recipes.base import REFERENCE_MODEL, Upstream, _check, _Trained, register
from harness.recipes.transfer import Finetune, _transfer
from harness.ssl import lars  # noqa: F401  registers the optimizer `lars_warmup_cosine` (lightly is needed only to run it)

PAPER_MODEL = "resnet18-cifar"  # solo-learn's CIFAR backbone (docs/sources.md)


@dataclass(frozen=True)
class _SelfSupervised(_Trained):
    """What the four methods share (solo-learn's CIFAR scripts): LARS with momentum 0.9, batch 256, 1000 epochs,
    warmup-cosine per step; no dropout; no crop-and-flip (the method's views replace it)."""

    linear_head: ClassVar[bool] = False  # a learner, not a classifier: no recipe takes it as its `base`

    drop_rate: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    batch_size: int = 256
    epochs: int = 1000
    augment: bool = False
    objective: str = "self_supervised"
    optimizer: str = "lars_warmup_cosine"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "objective", self.objective == "self_supervised", "'self_supervised'")
        _check(self, "drop_rate", self.drop_rate == 0, "0 (the SSL backbones train without dropout)")

    def model_for(self, profile_model, upstream_models):
        # A profile that runs the papers' own model (the paper profile) runs solo-learn's; CPU profiles scale it.
        return self.model or (PAPER_MODEL if profile_model == REFERENCE_MODEL else profile_model)

    def skeleton(self, model_name, num_classes):
        return self.learner(models.create(model_name, num_classes))

    def learner(self, backbone):
        raise NotImplementedError

    def build(self, model_name, num_classes, inputs):
        learner = self.skeleton(model_name, num_classes)
        return learner, [learner.backbone.fc]  # the head is never trained: the views carry no labels


@register
@dataclass(frozen=True)
class Byol(_SelfSupervised):
    """BYOL (byol.yaml): LARS lr 1.0, weight decay 1e-5; projector 512-4096-256, predictor 256-4096-256; target
    momentum tau from 0.99 to 1 (cosine per step); solo-learn's asymmetric views."""

    name: ClassVar[str] = "byol"
    summary: ClassVar[str] = "BYOL pre-training on the upstream images without labels (solo-learn's CIFAR settings)"

    lr: float = 1.0
    weight_decay: float = 1e-5
    proj_hidden_dim: int = 4096
    proj_output_dim: int = 256
    pred_hidden_dim: int = 4096
    base_tau: float = 0.99

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_tau(self)

    def learner(self, backbone):
        from harness.ssl import learners, views

        return learners.BYOL(backbone, views.asymmetric, hidden_dim=self.proj_hidden_dim,
                             output_dim=self.proj_output_dim, pred_hidden_dim=self.pred_hidden_dim,
                             base_tau=self.base_tau)


@register
@dataclass(frozen=True)
class BarlowTwins(_SelfSupervised):
    """Barlow Twins (barlow.yaml): LARS lr 0.3, weight decay 1e-4; projector 512-2048-2048-2048; lambda 0.0051
    (solo/methods/barlow_twins.py's default), loss scaled by 0.1 (scale_loss); solo-learn's asymmetric views."""

    name: ClassVar[str] = "barlow_twins"
    summary: ClassVar[str] = "Barlow Twins pre-training on the upstream images without labels (solo-learn's CIFAR settings)"

    lr: float = 0.3
    weight_decay: float = 1e-4
    proj_hidden_dim: int = 2048
    proj_output_dim: int = 2048
    lambda_param: float = 0.0051
    scale_loss: float = 0.1

    def learner(self, backbone):
        from harness.ssl import learners, views

        return learners.BarlowTwins(backbone, views.asymmetric, hidden_dim=self.proj_hidden_dim,
                                    output_dim=self.proj_output_dim, lambda_param=self.lambda_param,
                                    scale_loss=self.scale_loss)


@register
@dataclass(frozen=True)
class Dino(_SelfSupervised):
    """DINO (dino.yaml): LARS lr 0.3, weight decay 1e-6; head 512-2048-2048-256 then 4096 prototypes (no BatchNorm,
    last layer normalised and frozen for the first epoch); student temperature 0.1, teacher 0.07 (warmup from 0.04
    over 0 epochs), teacher momentum tau from 0.9995 to 1 (solo/methods/dino.py's defaults); asymmetric views."""

    name: ClassVar[str] = "dino"
    summary: ClassVar[str] = "DINO pre-training on the upstream images without labels (solo-learn's CIFAR settings)"

    lr: float = 0.3
    weight_decay: float = 1e-6
    proj_hidden_dim: int = 2048
    proj_output_dim: int = 256
    num_prototypes: int = 4096
    base_tau: float = 0.9995
    student_temperature: float = 0.1
    teacher_temperature: float = 0.07
    warmup_teacher_temperature: float = 0.04
    warmup_teacher_temperature_epochs: int = 0
    freeze_last_layer: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_tau(self)
        for name in ("student_temperature", "teacher_temperature", "warmup_teacher_temperature"):
            _check(self, name, getattr(self, name) > 0, "> 0")
        for name in ("warmup_teacher_temperature_epochs", "freeze_last_layer"):
            _check(self, name, getattr(self, name) >= 0, ">= 0")

    def learner(self, backbone):
        from harness.ssl import learners, views

        return learners.DINO(backbone, views.asymmetric, hidden_dim=self.proj_hidden_dim,
                             bottleneck_dim=self.proj_output_dim, num_prototypes=self.num_prototypes,
                             base_tau=self.base_tau, student_temp=self.student_temperature,
                             teacher_temp=self.teacher_temperature, warmup_teacher_temp=self.warmup_teacher_temperature,
                             warmup_teacher_temp_epochs=self.warmup_teacher_temperature_epochs,
                             freeze_last_layer=self.freeze_last_layer)


@register
@dataclass(frozen=True)
class SimClr(_SelfSupervised):
    """SimCLR (simclr.yaml): LARS lr 0.4, weight decay 1e-4; projector 512-2048-256; NT-Xent temperature 0.2;
    solo-learn's symmetric views."""

    name: ClassVar[str] = "simclr"
    summary: ClassVar[str] = "SimCLR pre-training on the upstream images without labels (solo-learn's CIFAR settings)"

    lr: float = 0.4
    weight_decay: float = 1e-4
    proj_hidden_dim: int = 2048
    proj_output_dim: int = 256
    temperature: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "temperature", self.temperature > 0, "> 0")

    def learner(self, backbone):
        from harness.ssl import learners, views

        return learners.SimCLR(backbone, views.symmetric, hidden_dim=self.proj_hidden_dim,
                               output_dim=self.proj_output_dim, temperature=self.temperature)


METHODS = ("byol", "barlow_twins", "dino", "simclr")


def _check_tau(recipe) -> None:
    _check(recipe, "base_tau", 0 <= recipe.base_tau <= 1, "in [0, 1]")


def _finetune_from(method: str) -> type:
    """The recipe `finetune_<method>`: `finetune`'s settings on the backbone of the `method` model trained on the
    upstream dataset, in that model's architecture."""

    @dataclass(frozen=True)
    class FinetuneFrom(Finetune):
        name: ClassVar[str] = f"finetune_{method}"
        summary: ClassVar[str] = f"fine-tune the {method} backbone, new head (the finetune settings)"
        upstreams: ClassVar[tuple[Upstream, ...]] = (Upstream(method, "upstream"),)

        def model_for(self, profile_model, upstream_models):
            return upstream_models[0]

        def build(self, model_name, num_classes, inputs):
            return _transfer(model_name, num_classes, inputs[0].backbone, self.drop_rate), []

    FinetuneFrom.__name__ = FinetuneFrom.__qualname__ = f"Finetune_{method}"
    return register(FinetuneFrom)


FINETUNES = {method: _finetune_from(method).name for method in METHODS}
