"""Corrupted test sets in the CIFAR-10-C layout: generating one into the cache, and reading one cell of it.

A corrupted dataset (e.g. `cifar10-c`) is a cache entry whose splits are corruptions: split `fog` holds the test
images at each of its severities, severity blocks in order (the released `fog.npy` = severities 1..5 x the 10,000
test images), labels repeated per block; `metadata["severities"]` = {corruption: [severities]}. `data import
cifar10-c PATH` (the released files) and `data corrupt cifar10` (generated here) both write this structure.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from harness import __version__
from harness.names import check as check_name
from harness.data import cache, corruptions, frost, registry
from harness.data.imageset import ImageSet
from harness.data.progress import Progress
from harness.errors import HarnessError

FORMAT = "corrupt"


def default_name(dataset: str) -> str:
    return f"{dataset}-c"


def generate(dataset: str, names=corruptions.NAMES, severities=corruptions.SEVERITIES, name: str | None = None,
             data_root=None, seed: int = 0, images: int | None = None, frost_dir=None, batch_size: int = 1000,
             replace: bool = False, stream=None) -> tuple[Path, dict[str, float]]:
    """Corrupt the test split of `dataset` (its first `images` images, default all) into the cache entry `name`
    (default `<dataset>-c`); returns (its folder, images/s per corruption).

    Corruptions added to an entry generated from the same clean images with the same seed join the ones there.
    Anything else in an existing entry (a corruption asked for again, another source, the released files) is
    refused unless `replace`: then the corruptions asked for are (re)made, and an entry of another source is
    replaced whole."""
    from harness import data

    name = check_name(default_name(dataset) if name is None else name, "--name")
    spec = registry.DATASETS.get(name)
    if spec is not None and "cifar-c" not in spec.formats:
        raise HarnessError(f"--name {name!r} is a registered dataset, not a corrupted set; choose another name")
    names, severities = tuple(names), tuple(sorted(set(severities)))
    corruptions.check(names, severities)
    if len(set(names)) != len(names):
        raise HarnessError(f"corruption {next(n for n in names if names.count(n) > 1)!r} is listed twice")
    clean = data.load(dataset, "test", data_root, mmap=True)
    if "frost" in names:
        frost.find(frost_dir)  # fail before the work, not after it
    if images is not None:
        if images < 1:
            raise HarnessError(f"--images must be >= 1, got {images}")
        clean = ImageSet(clean.images[:images], clean.labels[:images], clean.classes)
    if clean.image_size != (corruptions.SIZE, corruptions.SIZE):
        h, w = clean.image_size
        raise HarnessError(f"{dataset} has {h}x{w} images; the CIFAR corruption parameters are for 32x32 images")
    root = cache.data_root(data_root)
    source = _source(root, dataset, len(clean), seed)
    progress = Progress(f"corrupt {dataset}", stream)
    rates = {}
    with cache.writing(root, name):
        kept, old_meta = _kept(root, name, source, names)
        if not old_meta or set(names) & set(old_meta["splits"]):  # anything but adding corruptions
            cache.check_vacant(root, name, replace)
        scratch = cache.temporary(root, name)
        try:
            made = {}
            for corruption in names:
                progress.set_stage(corruption)
                start = time.monotonic()
                made[corruption] = _make(clean, corruption, severities, seed, frost_dir, batch_size,
                                         scratch / f"{corruption}.npy", progress)
                rates[corruption] = len(severities) * len(clean) / (time.monotonic() - start)
            splits = {**kept, **made}
            severity_lists = {c: old_meta["severities"][c] for c in kept}
            severity_lists.update({c: list(severities) for c in made})
            backends = {c: old_meta["corrupt"]["backends"][c] for c in kept}
            backends.update({c: corruptions.backend(c) for c in made})
            meta = {
                "format": FORMAT,
                "source": {"path": source["path"], "sha256": source["sha256"], "layout_root": ""},
                "transform": None,
                "severities": severity_lists,
                "corrupt": {**source["corrupt"], "backends": backends},
                "harness_version": __version__,
                "imported_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            where = cache.write(root, name, splits, meta)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    summary = ", ".join(f"{c} {rates[c]:,.0f}/s" for c in names)
    progress.finish(f"{len(names)} x {len(severities)} x {len(clean):,} images -> {where} (images/s: {summary})")
    return where, rates


def _source(root: Path, dataset: str, count: int, seed: int) -> dict:
    """What the generated set is made from: the clean entry (its checksum), how many images, which seed."""
    meta = cache.read_metadata(root, dataset)
    path = str((root / dataset).resolve()) if meta else f"{dataset} (built in or derived)"
    sha = meta["source"]["sha256"] if meta else None
    return {"path": path, "sha256": sha,
            "corrupt": {"dataset": dataset, "split": "test", "images": count, "seed": seed}}


def _kept(root: Path, name: str, source: dict, names) -> tuple[dict[str, ImageSet], dict]:
    """The corruptions of an existing entry that a new generation keeps: same format, source, image count, seed."""
    try:
        meta = cache.read_metadata(root, name)
    except HarnessError:
        return {}, {}  # damaged: replaced whole
    if (meta is None or meta.get("format") != FORMAT or meta["source"]["sha256"] != source["sha256"]
            or {k: meta["corrupt"].get(k) for k in source["corrupt"]} != source["corrupt"]):
        return {}, {}
    kept = {c: cache.load_split(root, name, c, mmap=True) for c in meta["splits"] if c not in names}
    return kept, meta


def _make(clean: ImageSet, corruption: str, severities, seed: int, frost_dir, batch_size: int, path: Path,
          progress: Progress) -> ImageSet:
    n = len(clean)
    shape = (len(severities) * n, *clean.images.shape[1:])
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    total, done = len(severities) * n, 0
    for k, severity in enumerate(severities):
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            out[k * n + start:k * n + stop] = corruptions.corrupt(
                np.asarray(clean.images[start:stop]), corruption, severity, np.arange(start, stop), seed, frost_dir)
            done += stop - start
            progress.update(done, total)
    out.flush()
    return ImageSet(out, np.tile(np.asarray(clean.labels, np.int64), len(severities)), clean.classes)


def cells(name: str, data_root=None) -> dict[str, tuple[int, ...]]:
    """{corruption: severities} of a corrupted dataset in the cache."""
    return {c: tuple(s) for c, s in _meta(name, data_root)["severities"].items()}


def load_cell(name: str, corruption: str, severity: int, data_root=None, mmap: bool = True) -> ImageSet:
    """The test images of corrupted dataset `name` (e.g. "cifar10-c") under `corruption` at `severity`, with labels.

    mmap=True maps the cached arrays read-only (a slice of one split, no copy)."""
    corruptions.check([], [severity])
    meta = _meta(name, data_root)
    severities = meta["severities"]
    if corruption not in severities:
        raise HarnessError(f"{name} has no corruption {corruption!r}; it has: {', '.join(severities)}")
    if severity not in severities[corruption]:
        have = ", ".join(map(str, severities[corruption]))
        raise HarnessError(f"{name} has {corruption} at severities {have}, not {severity}; generate it with: "
                           f"python -m harness data corrupt DATASET --corruptions {corruption} --severities {severity}")
    full = cache.load_split(cache.data_root(data_root), name, corruption, mmap=mmap)
    n = len(full) // len(severities[corruption])
    block = severities[corruption].index(severity)
    return ImageSet(full.images[block * n:(block + 1) * n], full.labels[block * n:(block + 1) * n], full.classes)


def _meta(name: str, data_root) -> dict:
    root = cache.data_root(data_root)
    meta = cache.read_metadata(root, name)
    if meta is None:
        base = name[:-2] if name.endswith("-c") else "DATASET"
        raise HarnessError(f"corrupted dataset {name!r} is not in the cache {root}; generate it with: python -m "
                           f"harness data corrupt {base}, or import the released files with: python -m harness "
                           f"data import {name} PATH")
    if "severities" not in meta:
        raise HarnessError(f"dataset {name!r} in {root} is not a corrupted dataset (no severities in its metadata)")
    return meta
