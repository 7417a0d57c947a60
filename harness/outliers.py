"""Auxiliary outlier sets of the outlier-exposed recipes (oe, oe_scratch, energy_ft), and what they change about
evaluation.

- The pool: the train split of the named set (every split of a set that has no train split, e.g. an unlabeled
  folder), a seeded sample of `limit` images when the profile caps it, in a fixed seeded random order. The
  stream reads it in that order from a random offset per epoch, like the reference's file of random images.
- Exclusions: a test OOD set drawn from the same source as the outliers (the same dataset, or one cut from the
  same base, e.g. tinyimagenet32-val-nocifar10 when the outliers are tinyimagenet32-nocifar10) measures
  recall of training data, not detection; a model trained on those outliers is not evaluated on it.
- The papers' OOD set lists (hendrycks/outlier-exposure and wetliu/energy_ood: docs/sources.md#outlier-exposure):
  a record holds the mean over the sets it has, and a paper's own mean (`ood/mean-<paper>/<metric>`) only when it
  has every set of that paper's list.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness import data as hdata
from harness.data import registry
from harness.errors import HarnessError
from harness.objectives import energy

POOL_SEED = 0  # the pool's sample and order do not depend on the training seed
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


def pool(aux: str, dataset: str, image_size: int, limit: int | None, data_root=None) -> hdata.ImageSet:
    """The outlier pool (see the module doc); a set that is not imported raises with its import command."""
    check_aux(aux, dataset)
    if not hdata.is_known(aux, data_root):
        raise HarnessError(f"unknown outlier set {aux!r}: neither registered nor imported; import it with: "
                           f"{hdata.import_hint(aux)} --format FORMAT")
    splits = hdata.spec(aux, data_root).splits
    parts = [hdata.load(aux, split, data_root=data_root, image_size=image_size)
             for split in (("train",) if "train" in splits else splits)]
    images = np.concatenate([p.images for p in parts])
    rng = np.random.default_rng(POOL_SEED)
    order = rng.permutation(len(images))
    if limit is not None:
        order = order[:limit]
    return hdata.ImageSet(np.ascontiguousarray(images[order]), np.full(len(order), -1, np.int64), ())


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
