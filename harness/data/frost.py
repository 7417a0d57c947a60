"""The frost textures of the frost corruption: frost1.png .. frost3.png, frost4.jpg, frost5.jpg.

make_cifar_c draws one of these five (its sixth, frost6.jpg, is never drawn), shrinks it with cv2.resize(fx=fy=0.2,
INTER_LINEAR) and crops 32x32 at random. The images ship inside the `imagecorruptions` package (its frost/
folder); a user may point at a copy with --frost-dir. Nothing here can download them.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from harness.errors import HarnessError

FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")
SCALE = 5  # cv2.resize by 0.2


def package_dir() -> Path | None:
    """The frost/ folder of an installed imagecorruptions package (found without importing it), if any."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "frost"


def find(frost_dir=None) -> Path:
    folder = Path(frost_dir).expanduser() if frost_dir else package_dir()
    hint = "pip install imagecorruptions (they ship inside it) or pass --frost-dir DIR"
    if folder is None:
        raise HarnessError(f"frost needs its texture images ({', '.join(FILES)}): {hint}; or leave frost out of "
                           f"--corruptions")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise HarnessError(f"{folder}: frost texture {missing[0]} is missing (frost needs {', '.join(FILES)}); {hint}")
    return folder


@lru_cache(maxsize=4)
def _load(folder: Path) -> tuple[np.ndarray, ...]:
    return tuple(shrink(_read(folder / f)) for f in FILES)


def load(frost_dir=None) -> tuple[np.ndarray, ...]:
    """The five textures as uint8 RGB arrays, shrunk as the reference shrinks them."""
    return _load(find(frost_dir).resolve())


def _read(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for a broken file
        raise HarnessError(f"{path}: cannot read frost texture ({' '.join(str(exc).split())})") from None


def shrink(image: np.ndarray) -> np.ndarray:
    """cv2.resize(fx=fy=0.2, INTER_LINEAR): output pixel i samples source coordinate (i + 0.5) * 5 - 0.5 = 5 i + 2,
    a whole pixel, so the bilinear weights are 1 and 0: every fifth pixel from the third, round(0.2 size) of them."""
    h, w = (int(round(s / SCALE)) for s in image.shape[:2])
    rows = np.minimum(np.arange(h) * SCALE + 2, image.shape[0] - 1)
    cols = np.minimum(np.arange(w) * SCALE + 2, image.shape[1] - 1)
    small = image[rows[:, None], cols[None, :]]
    if min(small.shape[:2]) <= 32:
        raise HarnessError(f"frost textures must be larger than 160x160 pixels (they are shrunk 5x, then cropped "
                           f"32x32); one is {image.shape[1]}x{image.shape[0]}")
    return small
