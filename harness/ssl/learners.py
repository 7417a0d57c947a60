"""The self-supervised learners: a harness backbone with a method's heads, momentum copies and loss, all lightly's.

A learner is the model `train.fit` trains. In training mode its forward takes the loop's un-augmented batch, makes
the method's two views (harness.ssl.views), runs them, and reports the method's loss in `loss_terms["ssl_loss"]`
for the objective `self_supervised` (harness.objectives); labels are never read. In eval mode it is its backbone:
`forward`, `features` and `fc` are the backbone's, so the checkpoint cache, the test-accuracy pass and the
evaluation treat it like any classifier (the head `fc` is never trained: the recipe freezes it).

Momentum (BYOL, DINO): before each training forward the momentum copies move toward the online networks with
tau = lightly's cosine_schedule(step, total steps, base tau, 1) (solo-learn's per-step cosine from base_tau to
final_tau 1.0); updating at the start of step k + 1 is the same as solo-learn's update at the end of step k. The
step counter is a buffer, so a resumed run continues the schedule; `plan_steps` (called by `train.fit` on every
module that has it) gives the run's length.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from harness.errors import HarnessError
from harness.ssl import lightly, views


class Learner(nn.Module):
    """Base: the backbone, the step counter and the views; a method adds heads and `loss(view_0, view_1)`."""

    def __init__(self, backbone: nn.Module, views_of):
        super().__init__()
        lightly()
        self.backbone = backbone
        self.views_of = views_of  # image size -> the method's lightly two-view transform (harness.ssl.views)
        self._transforms: dict = {}
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.total_steps = 0
        self.steps_per_epoch = 0
        self.loss_terms: dict = {}

    @property
    def fc(self) -> nn.Module:
        return self.backbone.fc

    @property
    def feature_dim(self) -> int:
        return self.backbone.feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def plan_steps(self, total_steps: int, steps_per_epoch: int) -> None:
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch

    @property
    def epoch(self) -> int:
        return int(self.step) // self.steps_per_epoch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.backbone(x)
        if not self.total_steps:
            raise HarnessError(f"{type(self).__name__} trains only inside train.fit, which gives it the run's length")
        self.before_step()
        size = x.shape[-1]
        if size not in self._transforms:
            self._transforms[size] = self.views_of(size)
        view_0, view_1 = views.two_views(x, self._transforms[size])
        loss, output = self.loss(view_0, view_1)
        self.step += 1
        self.loss_terms = {"ssl_loss": loss}
        return output

    def before_step(self) -> None:
        """What a method does before each step's forward (the momentum update)."""

    def loss(self, view_0: torch.Tensor, view_1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the method's loss on the two views, the online output of view 0)."""
        raise NotImplementedError


class _Momentum(Learner):
    """A learner with momentum copies of its backbone and projector (BYOL's target network, DINO's teacher)."""

    def __init__(self, backbone, views_of, make_projector, base_tau: float):
        super().__init__(backbone, views_of)
        from lightly.models.utils import deactivate_requires_grad

        # A second projector with the first one's weights, not a deepcopy: lightly's DINO head holds a weight_norm
        # layer, which deepcopy refuses.
        self.projector, self.momentum_projector = make_projector(), make_projector()
        self.momentum_projector.load_state_dict(self.projector.state_dict())
        self.momentum_backbone = copy.deepcopy(backbone)
        deactivate_requires_grad(self.momentum_backbone)
        deactivate_requires_grad(self.momentum_projector)
        self.base_tau = base_tau

    def tau(self) -> float:
        from lightly.utils.scheduler import cosine_schedule

        return float(cosine_schedule(int(self.step), self.total_steps, self.base_tau, 1.0))

    def before_step(self) -> None:
        from lightly.models.utils import update_momentum

        tau = self.tau()
        update_momentum(self.backbone, self.momentum_backbone, tau)
        update_momentum(self.projector, self.momentum_projector, tau)

    @torch.no_grad()
    def target(self, view: torch.Tensor) -> torch.Tensor:
        return self.momentum_projector(self.momentum_backbone.features(view))


class BYOL(_Momentum):
    """Grill et al. 2020: online projector + predictor, target = momentum backbone + projector; lightly's symmetric
    negative cosine similarity 0.5 * (ncs(p0, z1) + ncs(p1, z0))."""

    def __init__(self, backbone, views_of, *, hidden_dim: int, output_dim: int, pred_hidden_dim: int,
                 base_tau: float):
        from lightly.loss import NegativeCosineSimilarity
        from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead

        super().__init__(backbone, views_of, lambda: BYOLProjectionHead(backbone.feature_dim, hidden_dim, output_dim),
                         base_tau)
        self.predictor = BYOLPredictionHead(output_dim, pred_hidden_dim, output_dim)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, view_0, view_1):
        p0, p1 = (self.predictor(self.projector(self.backbone.features(v))) for v in (view_0, view_1))
        z0, z1 = self.target(view_0), self.target(view_1)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0)), p0


class BarlowTwins(Learner):
    """Zbontar et al. 2021: one projector, lightly's BarlowTwinsLoss (lambda) times solo-learn's scale_loss (a
    factor lightly's loss lacks)."""

    def __init__(self, backbone, views_of, *, hidden_dim: int, output_dim: int, lambda_param: float,
                 scale_loss: float):
        from lightly.loss import BarlowTwinsLoss
        from lightly.models.modules import BarlowTwinsProjectionHead

        super().__init__(backbone, views_of)
        self.projector = BarlowTwinsProjectionHead(backbone.feature_dim, hidden_dim, output_dim)
        self.criterion = BarlowTwinsLoss(lambda_param=lambda_param)
        self.scale_loss = scale_loss

    def loss(self, view_0, view_1):
        z0, z1 = (self.projector(self.backbone.features(v)) for v in (view_0, view_1))
        return self.scale_loss * self.criterion(z0, z1), z0


class SimCLR(Learner):
    """Chen et al. 2020: one projector, lightly's NT-Xent loss at `temperature`."""

    def __init__(self, backbone, views_of, *, hidden_dim: int, output_dim: int, temperature: float):
        from lightly.loss import NTXentLoss
        from lightly.models.modules import SimCLRProjectionHead

        super().__init__(backbone, views_of)
        self.projector = SimCLRProjectionHead(backbone.feature_dim, hidden_dim, output_dim)
        self.criterion = NTXentLoss(temperature=temperature)

    def loss(self, view_0, view_1):
        z0, z1 = (self.projector(self.backbone.features(v)) for v in (view_0, view_1))
        return self.criterion(z0, z1), z0


class DINO(_Momentum):
    """Caron et al. 2021 with two global views (solo-learn's CIFAR run has no local crops): student = backbone +
    lightly's DINO head, teacher = their momentum copies, lightly's DINOLoss (its centre is a buffer of this
    module, so it is saved and resumed). The prototypes layer gets no update during the first `freeze_last_layer`
    epochs (DINO's and solo-learn's rule): its gradients are zeroed by a hook, which leaves LARS's step at 0."""

    def __init__(self, backbone, views_of, *, hidden_dim: int, bottleneck_dim: int, num_prototypes: int,
                 base_tau: float, student_temp: float, teacher_temp: float, warmup_teacher_temp: float,
                 warmup_teacher_temp_epochs: int, freeze_last_layer: int):
        from lightly.loss import DINOLoss
        from lightly.models.modules import DINOProjectionHead

        def head():
            return DINOProjectionHead(backbone.feature_dim, hidden_dim, bottleneck_dim, num_prototypes,
                                      batch_norm=False, freeze_last_layer=freeze_last_layer, norm_last_layer=True)

        super().__init__(backbone, views_of, head, base_tau)
        self.criterion = DINOLoss(output_dim=num_prototypes, warmup_teacher_temp=warmup_teacher_temp,
                                  teacher_temp=teacher_temp, warmup_teacher_temp_epochs=warmup_teacher_temp_epochs,
                                  student_temp=student_temp)
        self.freeze_last_layer = freeze_last_layer
        for p in self.projector.last_layer.parameters():
            if p.requires_grad:
                p.register_hook(self._frozen_early)

    def _frozen_early(self, grad: torch.Tensor) -> torch.Tensor:
        # self.step was advanced by the forward that made this gradient
        return torch.zeros_like(grad) if (int(self.step) - 1) // self.steps_per_epoch < self.freeze_last_layer else grad

    def loss(self, view_0, view_1):
        student = [self.projector(self.backbone.features(v)) for v in (view_0, view_1)]
        teacher = [self.target(v) for v in (view_0, view_1)]
        return self.criterion(teacher, student, epoch=self.epoch), student[0]
