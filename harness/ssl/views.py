"""The two augmented views of every image a self-supervised step trains on, made by lightly's view transforms.

The training loop hands the learner the harness's un-augmented input x = (u/255 - 0.5) / 0.5. Each image goes
back to uint8 (exact: x came from uint8), through the method's lightly transform as a PIL image (normalize=None,
so each view is ToTensor's [0, 1]), and back to the harness's scale. lightly's transforms draw from torch's global
generator (torchvision) and from numpy's global one (its blur and solarization): numpy is seeded from torch for
each batch and restored after, so a run is reproducible from the seed `train.fit` gives torch, and a resumed run
continues the same draws (the torch generator's state is in the resume file).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from PIL import Image


def two_views(x: torch.Tensor, transform) -> tuple[torch.Tensor, torch.Tensor]:
    """(view 0, view 1) of the batch `x` (N, 3, H, W, harness scale), on x's device and dtype."""
    pixels = ((x.detach().float() * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).cpu().numpy()
    with _numpy_seeded(int(torch.randint(2**32, (1,), dtype=torch.int64))):
        pairs = [transform(Image.fromarray(image)) for image in pixels]
    return tuple(torch.stack([pair[v] for pair in pairs]).to(x.device, x.dtype).sub(0.5).div(0.5) for v in (0, 1))


@contextlib.contextmanager
def _numpy_seeded(seed: int):
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def asymmetric(size: int):
    """solo-learn's CIFAR `asymmetric.yaml` (BYOL, Barlow Twins, DINO): lightly's BYOL views with its defaults
    (crop scale 0.08-1, colour jitter 0.4/0.4/0.2/0.1 with p 0.8, grayscale p 0.2, flip p 0.5), no blur on either
    view (solo-learn's CIFAR setting; lightly's ImageNet default blurs), solarization p 0 and 0.2."""
    from lightly.transforms.byol_transform import BYOLTransform, BYOLView1Transform, BYOLView2Transform

    return BYOLTransform(BYOLView1Transform(input_size=size, gaussian_blur=0.0, normalize=None),
                         BYOLView2Transform(input_size=size, gaussian_blur=0.0, solarization_prob=0.2, normalize=None))


def symmetric(size: int):
    """solo-learn's CIFAR `symmetric.yaml` (SimCLR): lightly's SimCLR views with its defaults, which are that file's
    numbers (crop scale 0.08-1, colour jitter 0.8/0.8/0.8/0.2 with p 0.8, grayscale p 0.2, blur p 0.5, flip p 0.5)."""
    from lightly.transforms.simclr_transform import SimCLRTransform

    return SimCLRTransform(input_size=size, normalize=None)
