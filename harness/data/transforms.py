"""Import-time resizing for sources whose images differ in size (the reference OOD transforms, torchvision on PIL)."""
from __future__ import annotations

from harness.data.registry import RESIZE, RESIZE_CENTER_CROP


def describe(kind: str | None, size: int) -> str | None:
    return {RESIZE_CENTER_CROP: f"Resize({size}) + CenterCrop({size})", RESIZE: f"Resize({size})",
            None: None}[kind]


def make(kind: str | None, size: int):
    """PIL -> PIL callable, or None to keep images as they are.

    Resize(size) scales the short side to `size` (bilinear, antialiased, torchvision's default); it leaves an
    image whose short side already is `size` untouched, so SVHN at 32 is stored bit-exact.
    """
    if kind is None:
        return None
    import torchvision.transforms as T

    steps = [T.Resize(size)] + ([T.CenterCrop(size)] if kind == RESIZE_CENTER_CROP else [])
    return T.Compose(steps)
