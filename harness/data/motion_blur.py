"""ImageMagick's motion blur (MotionBlurImage), which make_cifar_c uses for motion_blur and snow.

With Wand (the `wand` package and Debian's ImageMagick) installed, ImageMagick itself blurs each image, as in the
reference. Without it, `numpy_blur` applies ImageMagick's documented algorithm: a one-sided Gaussian of width
2 * ceil(radius) + 1 taps, kernel[i] ~ exp(-i^2 / (2 sigma^2)) normalised, tap i sampling the pixel
(x + ceil(i cos(a) - 0.5), y + ceil(i sin(a) - 0.5)), edge pixels repeated beyond the border; the sum is rounded
to ImageMagick's 16-bit quanta (Q16: 8-bit value x 257) and truncated back to 8 bits, as ImageMagick 6 Q16 and its
PNG writer do (docs/findings/cifar10-c.md gives the measured agreement).
"""
from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image


@lru_cache(maxsize=None)
def _wand():
    try:
        from wand.image import Image as WandImage
    except ImportError:  # no `wand` package, or no ImageMagick library for it to load
        return None
    return WandImage


def backend() -> str:
    if _wand() is None:
        return "numpy (ImageMagick's MotionBlurImage algorithm; Wand not installed)"
    from wand.version import MAGICK_VERSION, VERSION

    return f"wand {VERSION} ({MAGICK_VERSION})"


def blur(images: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, C), C = 1 (grey) or 3, each image blurred at its own angle (degrees) -> uint8, same shape."""
    wand = _wand()
    if wand is None:
        return numpy_blur(images, radius, sigma, angles)
    return np.stack([_wand_blur(wand, im, radius, sigma, a) for im, a in zip(images, angles)])


def _wand_blur(wand, image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    # Through PNG, as the reference passes images to ImageMagick and back.
    grey = image.shape[2] == 1
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if grey else image).save(buf, format="PNG")
    with wand(blob=buf.getvalue()) as im:
        im.motion_blur(radius=radius, sigma=sigma, angle=angle)
        blob = im.make_blob("png")
    out = np.asarray(Image.open(io.BytesIO(blob)).convert("L" if grey else "RGB"), dtype=np.uint8)
    return out[..., None] if grey else out


def kernel(radius: float, sigma: float) -> np.ndarray:
    width = int(2 * math.ceil(radius) + 1)
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma * sigma))
    return k / k.sum()


def numpy_blur(images: np.ndarray, radius: float, sigma: float, angles: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    k = kernel(radius, sigma)
    steps = np.arange(len(k))[None, :]
    theta = np.deg2rad(np.asarray(angles, dtype=np.float64))[:, None]
    dx = np.ceil(steps * np.cos(theta) - 0.5).astype(int)  # (N, taps)
    dy = np.ceil(steps * np.sin(theta) - 0.5).astype(int)
    idx = np.arange(n)[:, None, None]
    out = np.zeros(images.shape, np.float64)
    for i, weight in enumerate(k):
        rows = np.clip(np.arange(h)[None, :] + dy[:, i, None], 0, h - 1)[:, :, None]
        cols = np.clip(np.arange(w)[None, :] + dx[:, i, None], 0, w - 1)[:, None, :]
        out += weight * images[idx, rows, cols]
    return np.clip(np.floor(np.rint(out * 257) / 257), 0, 255).astype(np.uint8)
