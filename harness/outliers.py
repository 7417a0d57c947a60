"""Auxiliary outlier sets of the outlier-exposed recipes (oe, oe_scratch, energy_ft), and what they change about
evaluation.

- The pool: the train split of the named set (every split of a set that has no train split, e.g. an unlabeled
  folder), a seeded sample of `limit` images when the profile caps it, in a fixed seeded random order. The
  stream reads it in that order from a random offset per epoch, like the reference's file of random images.
- The validation split (energy_ft_selected: the energy paper names no validation OOD set): `size` images of the
  same source, the first of a seeded random order (VAL_SEED, not the training seed) that are no test OOD set's
  image (blake2b digests, harness.splits); a recipe that validates on it trains on a pool without those images.
- Exclusions: a test OOD set drawn from the same source as the outliers (the same dataset, or one cut from the
  same base, e.g. tinyimagenet32-val-nocifar10 when the outliers are tinyimagenet32-nocifar10) measures
  recall of training data, not detection; a model trained on those outliers is not evaluated on it.
- The papers' OOD set lists (hendrycks/outlier-exposure and wetliu/energy_ood: docs/sources.md#outlier-exposure):
  a record holds the mean over the sets it has, and a paper's own mean (`ood/mean-<paper>/<metric>`) only when it
  has every set of that paper's list.
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np
import torch
from torch import nn

from harness import data as hdata
from harness import splits
from harness.data import registry
from harness.errors import HarnessError
from harness.objectives import energy

POOL_SEED = 0  # the pool's sample and order do not depend on the training seed
VAL_SEED = 1  # the validation split's order: its own stream, so it is no prefix of the pool's order
ENERGY_SAMPLE = 2000  # outlier images the record's mean energies are measured on

# Each paper's OOD sets for a CIFAR in-distribution set, by harness names (Textures = dtd, LSUN = LSUN-Crop =
# lsun, LSUN-Resize = lsun-resize); OE's last set is the other CIFAR.
PAPER_SETS = {
    "hendrycks2019oe": {"cifar10": ("gaussian", "rademacher", "blobs", "dtd", "svhn", "places365", "lsun", "cifar100"),
                        "cifar100": ("gaussian", "rademacher", "blobs", "dtd", "svhn", "places365", "lsun", "cifar10")},
    "liu2020": {d: ("dtd", "svhn", "places365", "lsun", "lsun-resize", "isun") for d in ("cifar10", "cifar100")},
}


def source(name: str) -> str:
    """The dataset a registered set's images come from: an OOD set's dataset, a derived dataset's base."""
    dataset = registry.get_ood(name).dataset or name if name not in registry.DATASETS else name
    spec = registry.DATASETS.get(dataset)
    return spec.base if spec is not None and spec.base is not None else dataset


def check_aux(aux: str, dataset: str) -> None:
    """An outlier set must not be (cut from the same images as) the in-distribution set."""
    if aux == dataset or source(aux) == source(dataset):
        raise HarnessError(f"outlier set {aux!r}: it is (or shares its images with) the in-distribution set "
                           f"{dataset!r}; name another set with --aux NAME or the profile's aux field")


def excluded(aux: str | None, ood_sets) -> dict[str, str]:
    """{OOD set: why} for the test OOD sets a model trained on the outliers `aux` is not evaluated on."""
    if aux is None:
        return {}
    return {name: f"drawn from {source(aux)}, the source of the training outliers {aux!r}"
            for name in ood_sets if source(name) == source(aux)}


@functools.lru_cache(maxsize=1)
def source_images(aux: str, dataset: str, image_size: int, data_root=None) -> np.ndarray:
    """Every image the outliers `aux` are drawn from (see the module doc); a set that is not imported raises with
    its import command. The last source is kept: energy_ft_selected plans one run per grid point, each drawing its
    validation split and pool from it (Tiny-ImageNet-32: 3 s to read)."""
    check_aux(aux, dataset)
    if not hdata.is_known(aux, data_root):
        raise HarnessError(f"unknown outlier set {aux!r}: neither registered nor imported; import it with: "
                           f"{hdata.import_hint(aux)} --format FORMAT")
    names = hdata.spec(aux, data_root).splits
    parts = [hdata.load(aux, split, data_root=data_root, image_size=image_size)
             for split in (("train",) if "train" in names else names)]
    return np.concatenate([p.images for p in parts])


def pool(aux: str, dataset: str, image_size: int, limit: int | None, data_root=None,
         exclude: frozenset[bytes] = frozenset()) -> hdata.ImageSet:
    """The outlier pool (see the module doc), without the images whose digest is in `exclude` (a validation split):
    they leave the seeded order before the `limit` is taken, so the pool keeps its size."""
    images = source_images(aux, dataset, image_size, data_root)
    order = np.random.default_rng(POOL_SEED).permutation(len(images))
    if exclude:
        order = order[[splits.digest(images[i]) not in exclude for i in order]]
        if not len(order):
            raise HarnessError(f"outlier set {aux!r}: no image is left to train on once the {len(exclude)} "
                               f"validation images are set aside; lower the recipe's val_ood_size")
    if limit is not None:
        order = order[:limit]
    return hdata.ImageSet(np.ascontiguousarray(images[order]), np.full(len(order), -1, np.int64), ())


def validation_split(aux: str, images: np.ndarray, size: int, test_sets: dict[str, np.ndarray]) -> tuple[
        hdata.ImageSet, dict]:
    """(`size` validation outliers of the source `images` of `aux`, what to record of them): the first images of a
    seeded order that no test OOD set in `test_sets` (name -> its images) holds, checked by digest; raises in one
    line when fewer than `size` are left."""
    if size < 1:
        raise HarnessError(f"the validation OOD split needs at least 1 image, got {size}")
    test = splits.image_digests(np.concatenate(list(test_sets.values()))) if test_sets else set()
    chosen, skipped = [], 0
    for i in np.random.default_rng(VAL_SEED).permutation(len(images)):
        if len(chosen) == size:
            break
        if splits.digest(images[i]) in test:
            skipped += 1
        else:
            chosen.append(i)
    if len(chosen) < size:
        raise HarnessError(f"outlier set {aux!r}: a validation OOD split of {size} images cannot be disjoint from "
                           f"the test OOD sets ({', '.join(test_sets)}): only {len(chosen)} of its {len(images)} "
                           f"images are in none of them; lower the recipe's val_ood_size or name another --aux")
    picked = np.ascontiguousarray(images[np.sort(chosen)])
    info = {"aux": aux, "n": size, "seed": VAL_SEED, "sha256": hashlib.sha256(picked.data).hexdigest(),
            "disjoint_from": sorted(test_sets), "test_ood_images_skipped": skipped}
    return hdata.ImageSet(picked, np.full(size, -1, np.int64), ()), info


def paper_means(metrics: dict, dataset: str) -> dict:
    """`ood/mean-<paper>/<metric>` for each paper whose every OOD set the metrics hold, mean of the set means."""
    out = {}
    for paper, by_dataset in PAPER_SETS.items():
        sets = by_dataset.get(dataset)
        if sets is None:
            continue
        keys = {k.split("/", 2)[2] for k in metrics if k.startswith(f"ood/{sets[0]}/")}
        for key in sorted(keys):
            stats = [metrics.get(f"ood/{s}/{key}") for s in sets]
            if all(stats):
                out[f"ood/mean-{paper}/{key}"] = {"mean": float(np.mean([s["mean"] for s in stats])),
                                                  "std": float(np.mean([s["std"] for s in stats])),
                                                  "n": stats[0]["n"]}
    return out


@torch.no_grad()
def mean_energy(model: nn.Module, x: torch.Tensor, batch_size: int, device: str) -> float:
    """Mean E(x) = -logsumexp(logits) of `model` in eval mode over normalized images `x`."""
    model.eval()
    total = sum(float(energy(model(x[i:i + batch_size].to(device))).double().sum())
                for i in range(0, len(x), batch_size))
    return total / len(x)


def margins(dataset: str, data_root=None) -> tuple[float, float]:
    """The dataset's (m_in, m_out) for energy fine-tuning; a dataset without them raises saying how to set them."""
    found = hdata.spec(dataset, data_root).energy_margins
    if found is None:
        raise HarnessError(f"dataset {dataset!r} has no energy margins; set them on the recipe: --set m_in=M_IN "
                           f"--set m_out=M_OUT (m_in < m_out; see README 'Energy margins' for how to choose them)")
    return found
