"""The one in-memory image container every part of the harness passes around."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True, eq=False)
class ImageSet:
    """uint8 images (N, H, W, 3), int64 labels (N,) with -1 = unlabeled, and the class names."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise ValueError(f"ImageSet images must be a uint8 array (N, H, W, 3), got {_describe(images)}")
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise ValueError(f"ImageSet labels must be an int64 array ({images.shape[0]},), got {_describe(labels)}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if labels.size and (labels.min() < -1 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"ImageSet labels must lie in [-1, {len(self.classes) - 1}] for {len(self.classes)} classes, "
                f"got [{labels.min()}, {labels.max()}]"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[1]), int(self.images.shape[2])

    def subset(self, indices) -> "ImageSet":
        """Rows `indices` (int array, slice or boolean mask), same classes."""
        return ImageSet(np.ascontiguousarray(self.images[indices]), self.labels[indices], self.classes)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))


def _describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array {a.shape}"
    return type(a).__name__


def normalize(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1] with mean = std = 0.5, the same arithmetic as ToTensor + Normalize."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[3] != 3:
        raise ValueError(f"normalize expects a uint8 tensor (N, H, W, 3), got {x.dtype} {tuple(x.shape)}")
    return normalize_nchw(x.permute(0, 3, 1, 2))


def normalize_nchw(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float32 NCHW in [-1, 1]."""
    return x.to(torch.float32).div_(255).sub_(0.5).div_(0.5).contiguous()
