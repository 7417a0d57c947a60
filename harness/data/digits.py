"""scikit-learn's bundled 8x8 digits as 32x32 RGB: the dataset that lets the smoke profile run offline.

Grey levels 0..16 map to round(v * 255 / 16); 8x8 -> image_size x image_size with nearest-neighbour resampling
(PIL NEAREST: at 32 every pixel becomes an exact 4x4 block); the grey channel is copied to R, G and B.
Split: stratified, 2/3 train (1,198 images) and 1/3 test (599), sklearn train_test_split(random_state=0).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from harness.data.imageset import ImageSet

SPLIT_SEED = 0
TEST_FRACTION = 1 / 3


@lru_cache(maxsize=4)
def _all_splits(image_size: int) -> dict[str, ImageSet]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    grey = np.rint(bunch.images * (255 / 16)).astype(np.uint8)
    if image_size == grey.shape[1]:
        big = grey
    else:
        big = np.stack([np.asarray(Image.fromarray(g).resize((image_size, image_size), Image.NEAREST)) for g in grey])
    rgb = np.repeat(big[..., None], 3, axis=3)
    labels = bunch.target.astype(np.int64)
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED)
    classes = tuple(str(d) for d in range(10))
    return {split: ImageSet(rgb[np.sort(rows)], labels[np.sort(rows)], classes)
            for split, rows in (("train", train), ("test", test))}


def load(name: str, split: str, image_size: int = 32) -> ImageSet:
    """`digits` (10 classes), `digits-0-4` (classes 0-4) or `digits-5-9` (classes 5-9 relabelled 0-4)."""
    full = _all_splits(image_size)[split]
    if name == "digits":
        return full.subset(slice(None))
    low = {"digits-0-4": 0, "digits-5-9": 5}[name]
    keep = (full.labels >= low) & (full.labels < low + 5)
    part = full.subset(keep)
    return ImageSet(part.images, part.labels - low, full.classes[low:low + 5])
