"""Which images train, which select, which test: the holdout split and the guard that keeps the test split out.

A holdout is carved from the (profile-capped) training set: `random` draws a seeded random fraction (the
TST reference's random_split), `tail` takes the last images of each class in dataset order (the OE reference's
last 10 %, taken per class: the reference's CIFAR order is shuffled, so its tail holds every class in proportion,
while the train splits imported here are ordered by class, where the last 10 % would be one class alone).
The split does not depend on the training seed (like the train_limit subset), so a two-stage run and its
stage-1 base, asked for the same fraction and rule, hold out the same images.

The test split must never train or select anything (a published SSL study trained on the CIFAR-10 test split
by mistake). `check_not_test` hashes every image (bytes, blake2b) and fails when any image of a training or
holdout set is byte-identical to an image of the dataset's test split. The shipped datasets have no such
duplicates between their splits (digits 0-4 / 5-9, CIFAR-10 JPEG: 0), so the rule can be exact.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from harness.data import ImageSet
from harness.errors import HarnessError

RULES = ("random", "tail")
MAX_FRACTION = 0.5
SPLIT_SEED = 0


@dataclass(frozen=True)
class Holdout:
    fraction: float
    rule: str = "random"

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= MAX_FRACTION:
            raise HarnessError(f"holdout fraction must be in (0, {MAX_FRACTION}], got {self.fraction!r}")
        if self.rule not in RULES:
            raise HarnessError(f"unknown holdout rule {self.rule!r}; valid rules: {', '.join(RULES)}")

    def carve(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(training indices, holdout indices), both sorted, of a set with these labels; the holdout is never
        empty. `tail`: each class gives its last images, as many as its share of the holdout (largest
        remainders, ties to the lower class), so the classes keep their proportions."""
        n = len(labels)
        size = max(1, round(self.fraction * n))
        if size >= n:
            raise HarnessError(f"a {self.fraction:g} holdout of {n} images leaves nothing to train on")
        if self.rule == "tail":
            classes, counts = np.unique(labels, return_counts=True)
            exact = counts * size / n
            quota = np.floor(exact).astype(np.int64)
            quota[np.argsort(-(exact - quota), kind="stable")[:size - quota.sum()]] += 1
            of_class = [np.flatnonzero(labels == c) for c in classes]
            held = np.sort(np.concatenate([idx[len(idx) - k:] for idx, k in zip(of_class, quota)]))
        else:
            held = np.sort(np.random.default_rng(SPLIT_SEED).permutation(n)[:size])
        return np.setdiff1d(np.arange(n), held), held


# The largest fraction of a training subset that may be exact copies of test images: a dataset's own duplicates
# (Tiny ImageNet's train and val splits share a few images), left out of training; a larger share is a bug.
MAX_TEST_COPIES = 0.001


def digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()


def image_digests(images: np.ndarray) -> set[bytes]:
    return {digest(image) for image in images}


def test_copies(images: ImageSet, test_digests: set[bytes]) -> np.ndarray:
    """Boolean mask of the images of `images` that are exact copies of a test image."""
    return np.array([digest(image) in test_digests for image in images.images], dtype=bool)


def check_not_test(dataset: str, sets: dict[str, ImageSet | None], test_digests: set[bytes]) -> None:
    """Raise when any image of `sets` (name -> images that train or select) is one of the test split's."""
    for name, images in sets.items():
        if images is None:
            continue
        shared = len(image_digests(images.images) & test_digests)
        if shared:
            raise HarnessError(f"the {name} of {dataset} holds {shared} of {len(images)} images of {dataset}'s test "
                               f"split: the test split never trains or selects a model")
