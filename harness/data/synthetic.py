"""Synthetic OOD sets, made directly in normalized space ([-1, 1]) with the recipes of hendrycks/pre-training
and hendrycks/outlier-exposure (docs/data.md#registry)."""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from harness.errors import HarnessError

KINDS = ("gaussian", "rademacher", "blobs")

BLOBS_P = 0.7
BLOBS_SIGMA = 1.5
BLOBS_THRESHOLD = 0.75


def make(kind: str, n: int, image_size: int = 32, seed: int = 0) -> torch.Tensor:
    """float32 (n, 3, image_size, image_size) in [-1, 1]; the same (kind, n, size, seed) gives the same tensor."""
    if kind not in KINDS:
        raise HarnessError(f"unknown synthetic OOD set {kind!r}; known: {', '.join(KINDS)}")
    if n < 0 or image_size < 1:
        raise HarnessError(f"synthetic set {kind}: need n >= 0 and image_size >= 1, got n={n}, image_size={image_size}")
    rng = np.random.default_rng(seed)
    size = image_size
    if kind == "gaussian":
        x = np.clip(rng.normal(0.0, 0.5, size=(n, 3, size, size)), -1, 1).astype(np.float32)
    elif kind == "rademacher":
        x = (rng.binomial(1, 0.5, size=(n, 3, size, size)) * 2 - 1).astype(np.float32)
    else:
        x = _blobs(rng, n, size)
    return torch.from_numpy(np.ascontiguousarray(x))


def _blobs(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    # The reference blurs each HWC image as a 3-D volume (skimage gaussian, multichannel=False: mode 'nearest',
    # truncate 4), so the blur also mixes the three channels; sigma 0 on the batch axis keeps images independent.
    x = rng.binomial(1, BLOBS_P, size=(n, size, size, 3)).astype(np.float32)
    x = gaussian_filter(x, sigma=(0, BLOBS_SIGMA, BLOBS_SIGMA, BLOBS_SIGMA), mode="nearest", truncate=4.0)
    x[x < BLOBS_THRESHOLD] = 0.0
    return x.transpose(0, 3, 1, 2) * 2 - 1
