"""Checkpoint files in the layouts users bring: the harness's own (WRN) and solo-learn's Lightning file, and a tiny
evaluation profile, for the model-entry tests."""
from __future__ import annotations

from pathlib import Path

import torch

from harness import models

# Digits at 32x32 with 40 test images and small OOD pools: a ResNet-18 evaluates it in seconds on a CPU.
TINY_PROFILE = """\
[tiny-eval]
description = "digits 0-4, 40 test images, two OOD sets"
device = "cpu"
model = "wrn-10-1"
cpu_threads = 2
deterministic = true
loader = "fast"
train_limit = 40
test_limit = 40
ood_pool_limit = 40
num_to_avg = 2
eval_batch_size = 256
seeds = [0]
epochs = { scratch = 1, linear_probe = 1 }

[[tiny-eval.datasets]]
id = "digits-0-4"
upstream = "digits-5-9"
ood = ["gaussian", "digits-5-9"]
"""

# A model entry for the solo-learn file `byol.ckpt` beside it (line numbers matter to the error tests).
SOLO_ENTRY = """\
architecture = "resnet18-cifar"
num_classes = 5
dataset = "digits-0-4"

[checkpoint]
path = "byol.ckpt"

[state_dict]
strip_prefix = "backbone."
head_prefix = "classifier."

[normalize]
mean = [0.4914, 0.4822, 0.4465]
std = [0.247, 0.243, 0.261]

[provenance]
released_by = "a test"
trained_on = ["digits-5-9:train"]
"""


def write_profile(folder: Path) -> Path:
    path = folder / "tiny-eval.toml"
    path.write_text(TINY_PROFILE)
    return path


def write_wrn(path: Path, num_classes: int = 5, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.save(models.create("wrn-10-1", num_classes).state_dict(), path)
    return path


def solo_learn_state(num_classes: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    """A solo-learn BYOL state dict: backbone (torchvision ResNet-18 keys, fc = Identity so no backbone.fc),
    its momentum copy, projector, predictor and the online linear classifier."""
    torch.manual_seed(seed)
    net = models.create("resnet18-cifar", num_classes)
    state = {}
    for key, value in net.state_dict().items():
        if key.startswith("fc."):
            state[f"classifier.{key[3:]}"] = value
        else:
            state[f"backbone.{key}"] = value
            state[f"momentum_backbone.{key}"] = value + 1
    state.update({"projector.0.weight": torch.randn(64, 512), "projector.0.bias": torch.zeros(64),
                  "predictor.0.weight": torch.randn(64, 64), "momentum_projector.0.weight": torch.randn(64, 512)})
    return state


def write_solo_learn(path: Path, num_classes: int = 5, seed: int = 0) -> Path:
    """The Lightning file layout: the weights under "state_dict", beside the epoch and step counters."""
    torch.save({"state_dict": solo_learn_state(num_classes, seed), "epoch": 999, "global_step": 5}, path)
    return path
