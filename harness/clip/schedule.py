"""WiSE-FT's optimizer for end-to-end CLIP fine-tuning (mlfoundations/wise-ft src/models/finetune.py and
src/models/utils.py: AdamW on every parameter, weight decay 0.1, a linear warmup of 500 steps, then cosine to 0),
registered in the training loop's optimizer table as `adamw_warmup_cosine`.

A CPU profile that scales the run down to fewer steps keeps the warmup's share sane: warmup = min(500,
total_steps // 10), so at least 90 % of the steps follow the cosine (the paper's ImageNet run: 500 of ~25,000).
"""
from __future__ import annotations

import math

import torch

from harness import train

NAME = "adamw_warmup_cosine"
WARMUP_STEPS = 500  # wise-ft src/args.py --warmup_length


def warmup_steps(total_steps: int) -> int:
    return min(WARMUP_STEPS, total_steps // 10)


def lr_factor(step: int, total_steps: int) -> float:
    """wise-ft's cosine_lr as a multiplier of the base lr at optimizer step `step` (0-based)."""
    warmup = warmup_steps(total_steps)
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))


def adamw_warmup_cosine(params, hyper: train.Hyper, steps_per_epoch: int):
    optimizer = torch.optim.AdamW(params, lr=hyper.lr, weight_decay=hyper.weight_decay)
    total = max(1, hyper.epochs * steps_per_epoch)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total))


train.OPTIMIZERS.setdefault(NAME, adamw_warmup_cosine)
