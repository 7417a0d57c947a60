"""Datasets as uint8 arrays: readers of on-disk formats, the import cache, the registry, synthetic OOD sets, loaders.

Public API: ImageSet, normalize, load, load_ood, data_root, and the modules registry, synthetic, loaders;
`python -m harness data import|list` (harness.data.importer) fills and shows the cache; `data corrupt`
(harness.data.shifted, harness.data.corruptions) adds corrupted test sets, read with shifted.load_cell.
"""
from __future__ import annotations

import numpy as np

from harness.data import cache, digits, loaders, registry, synthetic
from harness.data.cache import data_root
from harness.data.imageset import ImageSet, normalize
from harness.errors import HarnessError

__all__ = ["ImageSet", "normalize", "load", "load_ood", "data_root", "registry", "synthetic", "loaders", "import_hint",
           "spec", "is_known"]

SPLIT_ALIASES = {"val": "test"}


def import_hint(name: str) -> str:
    return f"python -m harness data import {name} PATH"


def spec(name: str, data_root=None) -> registry.DatasetSpec:
    """A registered dataset's spec, else one read from the cache for a dataset imported under its own name
    (`data import my-data PATH --format imagefolder`): its classes, image size and splits as imported."""
    if name in registry.DATASETS:
        return registry.get(name)
    root = cache.data_root(data_root)
    meta = cache.read_metadata(root, name)
    if meta is None:
        raise HarnessError(f"unknown dataset {name!r}: neither registered ({', '.join(registry.names())}) nor "
                           f"imported into {root}; import it with: {import_hint(name)} --format FORMAT")
    classes = meta.get("classes") or ()
    return registry.DatasetSpec(name, len(classes) or None, meta["shape"][0], (meta["format"],),
                                tuple(meta["splits"]), f"imported from {meta['source']['path']}")


def is_known(name: str, data_root=None) -> bool:
    """A registered dataset, a registered or synthetic OOD set, or a dataset imported into the cache."""
    if name in registry.DATASETS or name in registry.OOD_SETS or name in synthetic.KINDS:
        return True
    return cache.read_metadata(cache.data_root(data_root), name) is not None


def load(name: str, split: str, data_root=None, image_size: int = 32, mmap: bool = False) -> ImageSet:
    """One split of a dataset: built-in (digits*), derived (cut from its base's cache) or imported into the cache.

    split is "train" or "test" ("val" means "test"). `image_size` must match the size the data was imported at
    (built-in datasets are made at any size). mmap=True maps the cached arrays read-only instead of reading them.
    """
    split = SPLIT_ALIASES.get(split, split)
    spec = registry.DATASETS.get(name)
    if spec is not None and split not in spec.splits:
        has = ", ".join(spec.splits) or "one per corruption, read with harness.data.shifted.load_cell"
        raise HarnessError(f"dataset {name!r} has no split {split!r}; it has: {has}")
    if spec is not None and spec.builtin:
        return digits.load(name, split, image_size)
    if spec is not None and spec.base is not None:
        return _derived(registry.get(name), split, data_root, image_size, mmap)
    root = cache.data_root(data_root)
    meta = cache.read_metadata(root, name)
    if meta is None:
        if spec is None:
            raise HarnessError(f"unknown dataset {name!r} (not registered and not in the cache {root}); "
                               f"registered: {', '.join(registry.names())}; import your own with: "
                               f"{import_hint(name)} --format FORMAT")
        raise HarnessError(f"dataset {name!r} is not in the cache {root}; import it with: {import_hint(name)}")
    if meta["shape"][0] != image_size:
        raise HarnessError(
            f"dataset {name!r} is cached at {meta['shape'][0]}x{meta['shape'][1]}, {image_size}x{image_size} was "
            f"asked for; re-import it with: {import_hint(name)} --image-size {image_size}"
        )
    return cache.load_split(root, name, split, mmap=mmap)


def _derived(spec: registry.DatasetSpec, split: str, data_root, image_size: int, mmap: bool) -> ImageSet:
    """The base dataset without the excluded class ids, the kept classes relabelled 0..C-1 in base order."""
    base = load(spec.base, split, data_root, image_size, mmap)
    drop = registry.excluded_ids(spec.exclude)
    keep = [i for i, c in enumerate(base.classes) if c not in drop]
    if len(keep) != spec.num_classes:
        raise HarnessError(f"dataset {spec.base!r} in the cache has {len(base.classes) - len(keep)} of the "
                           f"{len(drop)} classes listed in {spec.exclude}; re-import it with: {import_hint(spec.base)}")
    relabel = np.full(len(base.classes), -2, dtype=np.int64)
    relabel[keep] = np.arange(len(keep))
    rows = np.flatnonzero(np.isin(base.labels, keep))
    return ImageSet(np.ascontiguousarray(base.images[rows]), relabel[base.labels[rows]],
                    tuple(base.classes[i] for i in keep))


def load_ood(name: str, data_root=None, image_size: int = 32) -> ImageSet:
    """The images of a dataset-backed OOD set (all of its splits, in order); synthetic sets: synthetic.make."""
    spec = registry.get_ood(name)
    if spec.synthetic:
        raise HarnessError(f"OOD set {name!r} is synthetic: use harness.data.synthetic.make({name!r}, n, ...)")
    parts = [load(spec.dataset, split, data_root, image_size) for split in spec.splits]
    if len(parts) == 1:
        return parts[0]
    return ImageSet(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                    parts[0].classes)
