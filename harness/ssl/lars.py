"""solo-learn's optimizer for its CIFAR self-supervised runs, registered in the training loop's optimizer table as
`lars_warmup_cosine`: LARS (lightly's) with momentum, trust coefficient eta = 0.02, biases and normalisation weights
(every 1-d parameter) left out of both the weight decay and the LARS scaling (solo-learn's exclude_bias_n_norm), and a
per-step schedule: a linear warmup from 3e-5 to the base lr over 10 epochs, then cosine to 0 (solo-learn's
warmup_cosine defaults: scheduler.warmup_start_lr, warmup_epochs, min_lr; solo/methods/base.py).

solo-learn's LARS also clips the adaptive lr at the base lr (`clip_lr: True`); lightly's LARS has no such switch, so
this one does not clip (docs/ssl.md lists the difference). A CPU profile that scales a run down to a few epochs
keeps the warmup at most a tenth of the steps, so the run still reaches its base lr.
"""
from __future__ import annotations

import math

import torch

from harness import train
from harness.ssl import lightly

NAME = "lars_warmup_cosine"
TRUST_COEFFICIENT = 0.02  # solo-learn scripts/pretrain/cifar/*.yaml: optimizer.kwargs.eta
WARMUP_EPOCHS = 10
WARMUP_START_LR = 3e-5


def warmup_steps(epochs: int, steps_per_epoch: int) -> int:
    return min(WARMUP_EPOCHS * steps_per_epoch, epochs * steps_per_epoch // 10)


def lr_factor(step: int, total: int, warmup: int, lr: float) -> float:
    """The multiplier of the base lr at optimizer step `step` (0-based)."""
    if step < warmup:
        start = min(WARMUP_START_LR / lr, 1.0)
        return start + (1 - start) * step / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def lars_warmup_cosine(params, hyper: train.Hyper, steps_per_epoch: int):
    lightly()
    from lightly.utils.lars import LARS

    params = list(params)
    groups = [{"params": [p for p in params if p.ndim > 1]},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    optimizer = LARS(groups, lr=hyper.lr, momentum=hyper.momentum, weight_decay=hyper.weight_decay,
                     nesterov=hyper.nesterov, trust_coefficient=TRUST_COEFFICIENT)
    total = max(1, hyper.epochs * steps_per_epoch)
    warmup = warmup_steps(hyper.epochs, steps_per_epoch)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, hyper.lr))


train.OPTIMIZERS.setdefault(NAME, lars_warmup_cosine)
