"""Import-time resizing for sources whose images differ in size (the reference OOD transforms, torchvision on PIL)."""
from __future__ import annotations

from harness.data.registry import CROP_BORDER_RESIZE_CENTER_CROP, RESIZE, RESIZE_CENTER_CROP

BORDER = 2  # pixels cropped from each side of an ObjectNet image (wise-ft src/datasets/objectnet.py, crop)


def describe(kind: str | None, size: int) -> str | None:
    return {RESIZE_CENTER_CROP: f"Resize({size}) + CenterCrop({size})", RESIZE: f"Resize({size})",
            CROP_BORDER_RESIZE_CENTER_CROP: f"crop {BORDER} px a side + Resize({size}) + CenterCrop({size})",
            None: None}[kind]


def _crop_border(image):
    width, height = image.size
    return image.crop((BORDER, BORDER, width - BORDER, height - BORDER))


def make(kind: str | None, size: int):
    """PIL -> PIL callable, or None to keep images as they are.

    Resize(size) scales the short side to `size` (bilinear, antialiased, torchvision's default); it leaves an
    image whose short side already is `size` untouched, so SVHN at 32 is stored bit-exact.
    """
    if kind is None:
        return None
    import torchvision.transforms as T

    steps = ([_crop_border] if kind == CROP_BORDER_RESIZE_CENTER_CROP else []) + [T.Resize(size)]
    steps += [T.CenterCrop(size)] if kind != RESIZE else []
    return T.Compose(steps)
