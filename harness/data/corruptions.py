"""The 15 CIFAR-10-C corruptions with the CIFAR parameters of make_cifar_c.py (hendrycks/robustness,
docs/sources.md#cifar-10-c), on batches.

`corrupt(images, name, severity, indices, seed)` maps uint8 (N, 32, 32, 3) images to their corrupted versions.
Image i draws its randomness from a generator seeded with (seed, corruption, severity, indices[i]), so any subset
of a dataset reproduces the same pixels as the whole. Each corruption runs on the whole batch at once; the
reference's per-image and per-pixel loops are replaced by array operations that compute the same function (see
docs/shift.md for what is exact and what is approximated).
"""
from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image
from scipy.ndimage import correlate, correlate1d, gaussian_filter, map_coordinates

from harness.data import frost as frost_textures
from harness.data import motion_blur
from harness.errors import HarnessError

SEVERITIES = (1, 2, 3, 4, 5)
SIZE = 32  # the CIFAR parameters are in pixels of 32x32 images


@dataclass(frozen=True)
class Corruption:
    name: str
    params: tuple  # one entry per severity 1..5
    apply: Callable  # (x, param, rngs, context) -> float in [0, 1] (to be clipped and truncated) or uint8
    backend: Callable[[], str] = lambda: "numpy"  # what computes it, recorded in the dataset metadata


def _draw(rngs, draw) -> np.ndarray:
    """One draw per image from that image's own generator, stacked."""
    return np.stack([draw(r) for r in rngs])


def _float(x: np.ndarray) -> np.ndarray:
    return x / 255.0


def to_uint8(x: np.ndarray) -> np.ndarray:
    # make_cifar_c saves np.uint8(np.clip(x, 0, 1) * 255): truncation, not rounding.
    return (np.clip(x, 0, 1) * 255).astype(np.uint8)


def _gaussian(x: np.ndarray, sigma: float, mode="nearest", truncate=4.0) -> np.ndarray:
    """skimage.filters.gaussian as make_cifar_c calls it (default mode 'nearest', truncate 4) on each image of a
    batch (N, H, W[, C]): over H and W only."""
    return gaussian_filter(x, sigma=[0.0, sigma, sigma] + [0.0] * (x.ndim - 3), mode=mode, truncate=truncate)


# --- noise ---------------------------------------------------------------------------------------------------------

def _gaussian_noise(x, c, rngs, _):
    x = _float(x)
    return x + c * _draw(rngs, lambda r: r.normal(size=x.shape[1:]))


def _shot_noise(x, c, rngs, _):
    x = _float(x)
    return np.stack([r.poisson(xi * c) for r, xi in zip(rngs, x)]) / c


def _impulse_noise(x, amount, rngs, _):
    # skimage random_noise(mode='s&p'): each value independently replaced with probability `amount`, by 1 (salt)
    # or 0 (pepper) with equal odds.
    x = _float(x)
    u = _draw(rngs, lambda r: r.random((2, *x.shape[1:])))
    flipped, salt = u[:, 0] < amount, u[:, 1] < 0.5
    x[flipped & salt] = 1.0
    x[flipped & ~salt] = 0.0
    return x


# --- blur ----------------------------------------------------------------------------------------------------------

def _cv2_gaussian_taps(ksize: int, sigma: float) -> np.ndarray:
    """cv2.getGaussianKernel(ksize, sigma) for sigma > 0."""
    t = np.arange(ksize) - (ksize - 1) / 2
    g = np.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """make_cifar_c's disk: a 17x17 aliased disk (radius <= 8, as for every CIFAR severity), normalised, then
    cv2.GaussianBlur with a 3x3 kernel of sigma alias_blur (border reflect-101), in float32; cut to its non-zero
    support (the zeros around it add exactly nothing to the filter)."""
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    d = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
    d /= d.sum()
    taps = _cv2_gaussian_taps(3, alias_blur).astype(np.float32)
    d = correlate1d(correlate1d(d, taps, axis=0, mode="mirror"), taps, axis=1, mode="mirror")
    rows, cols = np.nonzero(d)
    r = max(8 - rows.min(), cols.max() - 8)
    return d[8 - r:9 + r, 8 - r:9 + r]


def _defocus_blur(x, c, rngs, _):
    kernel = disk_kernel(*c)
    # cv2.filter2D per channel, border reflect-101 (scipy's 'mirror')
    return correlate(_float(x), kernel[None, :, :, None], mode="mirror")


def _glass_blur(x, c, rngs, _):
    sigma, delta, iterations = c
    x = (_gaussian(_float(x), sigma) * 255).astype(np.uint8)
    # The reference visits pixels h, w = 31..2 (descending) and "swaps" x[h, w] with x[h + dy, w + dx], dy and dx
    # from randint(-delta, delta), i.e. in {-1, 0}. Its tuple swap of numpy row views copies one way only:
    # x[h, w] = x[h + dy, w + dx]. The source pixel lies up or left of the current one, and is visited later, so it
    # still holds its value from before the pass: one pass is one gather from the previous state.
    pos = np.arange(SIZE - delta, delta, -1)
    n = len(x)
    for _ in range(iterations):
        off = _draw(rngs, lambda r: r.integers(-delta, delta, size=(len(pos), len(pos), 2)))
        rows = pos[None, :, None] + off[..., 0]
        cols = pos[None, None, :] + off[..., 1]
        x[:, pos[:, None], pos[None, :]] = x[np.arange(n)[:, None, None], rows, cols]
    return _gaussian(x / 255.0, sigma)


def _motion_blur(x, c, rngs, _):
    radius, sigma = c
    angles = np.array([r.uniform(-45, 45) for r in rngs])
    return motion_blur.blur(x, radius, sigma, angles)


def zoom_matrix(size: int, factor: float) -> np.ndarray:
    """make_cifar_c's clipped_zoom as a (size, size) matrix on one axis: crop the central ceil(size / factor)
    pixels, scipy.ndimage.zoom them by `factor` with linear interpolation (output length round(crop * factor),
    corner-aligned), keep the central `size`. Applied to rows and columns, it is that bilinear zoom exactly."""
    crop = int(np.ceil(size / factor))
    top = (size - crop) // 2
    out = int(round(crop * factor))
    step = (crop - 1) / (out - 1)
    trim = (out - size) // 2
    coords = np.arange(out)[trim:trim + size] * step
    i0 = np.minimum(np.floor(coords).astype(int), crop - 2)
    frac = coords - i0
    m = np.zeros((size, size))
    m[np.arange(size), top + i0] += 1 - frac
    m[np.arange(size), top + i0 + 1] += frac
    return m


def clipped_zoom(x: np.ndarray, factor: float) -> np.ndarray:
    """clipped_zoom of a batch (N, H, W, C), in the dtype of x."""
    m = zoom_matrix(x.shape[1], factor).astype(x.dtype)
    planes = np.moveaxis(x, 3, 1)  # (N, C, H, W): two batched matrix products
    return np.moveaxis(m @ planes @ m.T, 1, 3)


def _zoom_blur(x, factors, rngs, _):
    x = _float(x).astype(np.float32)
    out = np.zeros_like(x)
    for z in factors:
        out += clipped_zoom(x, z)
    return (x + out) / (len(factors) + 1)


# --- weather -------------------------------------------------------------------------------------------------------

def _snow(x, c, rngs, _):
    loc, scale, zoom, threshold, radius, sigma, keep = c
    x = _float(x).astype(np.float32)
    layer = _draw(rngs, lambda r: r.normal(size=x.shape[1:3], loc=loc, scale=scale))[..., None]
    layer = clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0
    layer = to_uint8(layer)  # the reference blurs it as an 8-bit grey PNG
    angles = np.array([r.uniform(-135, -45) for r in rngs])
    layer = motion_blur.blur(layer, radius, sigma, angles) / 255.0
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)  # cv2 COLOR_RGB2GRAY
    x = keep * x + (1 - keep) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
    return x + layer + np.rot90(layer, k=2, axes=(1, 2))


def _frost(x, c, rngs, context):
    image_weight, frost_weight = c
    textures = context["frost"]()
    crops = []
    for r in rngs:
        t = textures[r.integers(len(textures))]
        top, left = r.integers(0, t.shape[0] - SIZE), r.integers(0, t.shape[1] - SIZE)
        crops.append(t[top:top + SIZE, left:left + SIZE])
    # computed on 0..255 values and truncated, as the reference does
    return np.clip(image_weight * x.astype(np.float64) + frost_weight * np.stack(crops), 0, 255).astype(np.uint8)


def plasma_fractal(rngs, size: int = SIZE, wibble_decay: float = 3.0) -> np.ndarray:
    """make_cifar_c's diamond-square height map (size a power of two), one per generator, each scaled to [0, 1].

    Each step adds wibble * U(-wibble, wibble) (wibble starts at 100, divided by wibble_decay per step)."""
    n = len(rngs)
    a = np.zeros((n, size, size))
    step, wibble = size, 100.0

    def wibbled_mean(s):
        return s / 4 + wibble * wibble * _draw(rngs, lambda r: r.uniform(-1, 1, s.shape[1:]))

    while step >= 2:
        half = step // 2
        corners = a[:, 0:size:step, 0:size:step]
        squares = corners + np.roll(corners, -1, axis=1)
        squares = squares + np.roll(squares, -1, axis=2)
        a[:, half:size:step, half:size:step] = wibbled_mean(squares)
        centres = a[:, half:size:step, half:size:step]
        corners = a[:, 0:size:step, 0:size:step]
        a[:, 0:size:step, half:size:step] = wibbled_mean(centres + np.roll(centres, 1, axis=1)
                                                         + corners + np.roll(corners, -1, axis=2))
        a[:, half:size:step, 0:size:step] = wibbled_mean(centres + np.roll(centres, 1, axis=2)
                                                         + corners + np.roll(corners, -1, axis=1))
        step //= 2
        wibble /= wibble_decay
    a -= a.min(axis=(1, 2), keepdims=True)
    return a / a.max(axis=(1, 2), keepdims=True)


def _fog(x, c, rngs, _):
    strength, decay = c
    x = _float(x)
    top = x.max(axis=(1, 2, 3), keepdims=True)
    x = x + strength * plasma_fractal(rngs, wibble_decay=decay)[..., None]
    return x * top / (top + strength)


# --- digital -------------------------------------------------------------------------------------------------------

def rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """skimage.color.rgb2hsv on the last axis: V = max, S = (max - min) / max, H in [0, 1)."""
    v = x.max(-1)
    delta = v - x.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(delta == 0, 0.0, delta / v)
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        h = np.where(b == v, 4 + (r - g) / delta, np.where(g == v, 2 + (b - r) / delta, (g - b) / delta))
    h = np.where(delta == 0, 0.0, (h / 6) % 1)
    return np.stack([h, s, v], -1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """skimage.color.hsv2rgb: sector i = floor(6 h) picks (v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v),
    (v, p, q)."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    i = i.astype(int) % 6
    table = np.stack([np.stack(c, -1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return np.take_along_axis(table, i[None, ..., None], 0)[0]


def _brightness(x, c, rngs, _):
    hsv = rgb_to_hsv(_float(x))
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return hsv_to_rgb(hsv)


def _contrast(x, c, rngs, _):
    x = _float(x)
    means = x.mean(axis=(1, 2), keepdims=True)
    return (x - means) * c + means


def _reflect101(i: np.ndarray, n: int) -> np.ndarray:
    period = 2 * n - 2
    i = np.abs(i) % period
    return np.where(i >= n, period - i, i)


def affine_warp(x: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """cv2.warpAffine(INTER_LINEAR, BORDER_REFLECT_101) of each image (N, H, W, C) by the inverse maps (N, 2, 3)
    (destination -> source): source coordinates fixed-point rounded to 1/32 pixel as OpenCV does, then bilinear."""
    n, h, w, _ = x.shape
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")

    def fixed(row):  # OpenCV: X = (round((m1 y + m2) * 1024) + round(m0 x * 1024) + 16) >> 5, in 1/32 pixels
        return (np.rint((row[:, 1, None, None] * ys + row[:, 2, None, None]) * 1024)
                + np.rint(row[:, 0, None, None] * xs * 1024) + 16).astype(np.int64) >> 5

    sx, sy = fixed(inverse[:, 0]), fixed(inverse[:, 1])
    x0, y0 = sx >> 5, sy >> 5
    fx, fy = ((sx & 31) / 32.0)[..., None], ((sy & 31) / 32.0)[..., None]
    idx = np.arange(n)[:, None, None]

    def at(yy, xx):
        return x[idx, _reflect101(yy, h), _reflect101(xx, w)]

    top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    return ((1 - fy) * top + fy * bottom).astype(x.dtype)


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """cv2.getAffineTransform for a batch: (N, 3, 2) point triples -> (N, 2, 3) maps with dst = M [src; 1]."""
    a = np.concatenate([src, np.ones((*src.shape[:2], 1))], axis=2)  # (N, 3, 3)
    return np.linalg.solve(a, dst).transpose(0, 2, 1)


def _invert_affine(m: np.ndarray) -> np.ndarray:
    lin = np.linalg.inv(m[:, :, :2])
    return np.concatenate([lin, -(lin @ m[:, :, 2:])], axis=2)


def _elastic_transform(x, c, rngs, _):
    alpha, sigma, affine = c
    x = _float(x).astype(np.float32)
    n, h, w, ch = x.shape
    centre, half = np.float32(h // 2), h // 3
    points = np.array([[centre + half, centre + half], [centre + half, centre - half],
                       [centre - half, centre - half]], np.float32)
    moved = points + _draw(rngs, lambda r: r.uniform(-affine, affine, size=(3, 2))).astype(np.float32)
    forward = _affine_from_points(np.broadcast_to(points, moved.shape).astype(np.float64), moved.astype(np.float64))
    x = affine_warp(x, _invert_affine(forward))

    def field():  # skimage gaussian(mode='reflect', truncate=3) of U(-1, 1), times alpha, in float32
        u = _draw(rngs, lambda r: r.uniform(-1, 1, size=(h, w)))
        return (_gaussian(u, sigma, mode="reflect", truncate=3) * alpha).astype(np.float32)

    dx, dy = field(), field()
    nn, yy, xx, cc = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), np.arange(ch), indexing="ij")
    coords = [nn, yy + dy[..., None], xx + dx[..., None], cc]
    return map_coordinates(x, coords, order=1, mode="reflect")


def _pil_each(x: np.ndarray, fn) -> np.ndarray:
    return np.stack([np.asarray(fn(Image.fromarray(im)), dtype=np.uint8) for im in x])


def _pixelate(x, c, rngs, _):
    small = int(SIZE * c)
    return _pil_each(x, lambda im: im.resize((small, small), Image.BOX).resize((SIZE, SIZE), Image.BOX))


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def _jpeg_compression(x, c, rngs, _):
    return _pil_each(x, lambda im: _jpeg(im, c))


def _pillow() -> str:
    import PIL

    return f"pillow {PIL.__version__}"


_ZOOMS = tuple(tuple(np.arange(1, top, 0.01)) for top in (1.06, 1.11, 1.16, 1.21, 1.26))

CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in [
    Corruption("gaussian_noise", (0.04, 0.06, 0.08, 0.09, 0.10), _gaussian_noise),
    Corruption("shot_noise", (500, 250, 100, 75, 50), _shot_noise),
    Corruption("impulse_noise", (0.01, 0.02, 0.03, 0.05, 0.07), _impulse_noise),
    Corruption("defocus_blur", ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)), _defocus_blur),
    Corruption("glass_blur", ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)), _glass_blur),
    Corruption("motion_blur", ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)), _motion_blur, motion_blur.backend),
    Corruption("zoom_blur", _ZOOMS, _zoom_blur),
    Corruption("snow", ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)), _snow, motion_blur.backend),
    Corruption("frost", ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)), _frost),
    Corruption("fog", ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)), _fog),
    Corruption("brightness", (0.05, 0.1, 0.15, 0.2, 0.3), _brightness),
    Corruption("contrast", (0.75, 0.5, 0.4, 0.3, 0.15), _contrast),
    Corruption("elastic_transform", tuple((SIZE * a, SIZE * s, SIZE * f) for a, s, f in (
        (0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))),
        _elastic_transform),
    Corruption("pixelate", (0.95, 0.9, 0.85, 0.75, 0.65), _pixelate, _pillow),
    Corruption("jpeg_compression", (80, 65, 58, 50, 40), _jpeg_compression, _pillow),
]}
NAMES = tuple(CORRUPTIONS)
# The released CIFAR-10-C / CIFAR-100-C files also hold these four extras; they import, they are not generated here.
RELEASED = NAMES + ("speckle_noise", "gaussian_blur", "spatter", "saturate")


def check(names, severities) -> None:
    """Refuse unknown corruption names and severities outside 1..5 with a one-line error."""
    unknown = [n for n in names if n not in CORRUPTIONS]
    if unknown:
        raise HarnessError(f"unknown corruption {unknown[0]!r}; known: {', '.join(NAMES)}")
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise HarnessError(f"severity {bad[0]} is outside 1..5")


def generators(seed: int, name: str, severity: int, indices) -> list[np.random.Generator]:
    """Image i's generator: seeded with (seed, corruption, severity, index), independent of the batch it is in."""
    key = zlib.crc32(name.encode())
    return [np.random.default_rng([int(seed), key, int(severity), int(i)]) for i in indices]


def corrupt(images: np.ndarray, name: str, severity: int, indices=None, seed: int = 0,
            frost_dir=None) -> np.ndarray:
    """uint8 (N, 32, 32, 3) -> the same images under corruption `name` at `severity` (1..5), uint8.

    indices: each image's index in its dataset (default 0..N-1), which seeds its randomness with `seed`.
    frost_dir: a folder with the frost textures (default: the installed imagecorruptions package)."""
    check([name], [severity])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (SIZE, SIZE, 3):
        raise HarnessError(f"corruptions take uint8 images (N, {SIZE}, {SIZE}, 3) (CIFAR parameters), got "
                           f"{images.dtype} {images.shape}")
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    if len(images) == 0:
        return images.copy()
    corruption = CORRUPTIONS[name]
    context = {"frost": lambda: frost_textures.load(frost_dir)}
    out = corruption.apply(np.array(images), corruption.params[severity - 1],
                           generators(seed, name, severity, indices), context)
    return out if out.dtype == np.uint8 else to_uint8(out)


def backend(name: str) -> str:
    return CORRUPTIONS[name].backend()

