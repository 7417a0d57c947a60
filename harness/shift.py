"""Evaluation under covariate shift (docs/shift.md): a profile's shifted set, its metrics, feature distortion.

A profile's dataset plan names its shifted set (`shift = {...}` in harness/profiles.toml): a corrupted dataset in
the cache in the CIFAR-10-C layout (`set = "cifar10-c"`), or the in-distribution test split corrupted here, seeded,
in memory (`generate = true`: what lets the smoke profile run on a fresh machine); which corruptions, which
severities, and how many images per cell (class-balanced, seeded; default all); and natural-shift sets
(`sets = ["imagenetv2", ...]`, docs/clip.md), each evaluated whole (capped like a cell), an ImageNet-1k model's
logits projected onto a set's own classes where the set has a projection. Record keys (docs/metrics.md,
Conventions):
`shift/<corruption>/<severity>/<m>`, `shift/severity<k>/<m>`, `shift/mean/<m>`, `shift/<set>/<m>`,
`shift/natural/<m>` (the mean over the natural-shift sets), `distortion/{id,shift}`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from harness import data as hdata
from harness.bands import NATURAL_SHIFT_MEAN
from harness.data import corruptions, shifted
from harness.data.imageset import ImageSet
from harness.errors import HarnessError
from harness.evaluate import id_metrics
from harness.scores import log_softmax

METRICS = {"accuracy": "accuracy", "ece": "calib/ece", "rms": "calib/rms", "nll": "calib/nll"}  # key -> ID key
GENERATE_SEED = 0  # the corruption seed of a generated set (the same as `data corrupt`'s default)
_FIELDS = {"set", "generate", "corruptions", "severities", "images", "sets"}

Cell = tuple[str, int]  # (corruption, severity)


@dataclass(frozen=True)
class ShiftPlan:
    set: str | None  # a corrupted dataset in the cache; None: the ID test split corrupted in memory
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    images: int | None = None  # per cell; None: all
    natural: tuple[str, ...] = ()  # natural-shift test sets (datasets), each evaluated whole

    @property
    def cells(self) -> list[Cell]:
        return [(c, s) for c in self.corruptions for s in self.severities]

    def to_json(self) -> dict:
        generated = self.set is None and bool(self.corruptions)
        return {"set": self.set, "generated": generated, "corruptions": list(self.corruptions),
                "severities": list(self.severities), "images_per_cell": self.images,
                "seed": GENERATE_SEED if generated else None, "natural": list(self.natural)}


def parse_plan(raw: object, fail: Callable[[str], None]) -> ShiftPlan:
    """A profile's `shift` table -> ShiftPlan; `fail(message)` raises the profile file's `file:line` error."""
    if not isinstance(raw, dict):
        fail(f"shift must be a table {{set = NAME | generate = true, corruptions, severities, images}}, got {raw!r}")
    unknown = sorted(raw.keys() - _FIELDS)
    if unknown:
        fail(f"shift: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_FIELDS))})")
    natural = raw.get("sets", [])
    if (not isinstance(natural, list) or any(not isinstance(n, str) or not n for n in natural)
            or len(set(natural)) != len(natural)):
        fail(f"shift: sets must be a list of distinct natural-shift dataset names, got {natural!r}")
    corrupted = "set" in raw or raw.get("generate") is True
    if "set" in raw and raw.get("generate") is True or not corrupted and not natural:
        fail("shift: name a corrupted dataset (set = \"cifar10-c\") or generate = true, not both, and/or "
             "natural-shift sets (sets = [\"imagenetv2\"])")
    if not corrupted:
        extra = sorted(raw.keys() & {"corruptions", "severities", "generate"})
        if extra:
            fail(f"shift: {extra[0]} applies to corrupted sets; add set = NAME or generate = true")
    if "set" in raw and (not isinstance(raw["set"], str) or not raw["set"]):
        fail(f"shift: set must be a dataset name, got {raw['set']!r}")
    names = raw.get("corruptions", list(corruptions.NAMES))
    severities = raw.get("severities", list(corruptions.SEVERITIES))
    if (not isinstance(names, list) or not names or any(not isinstance(n, str) for n in names)
            or len(set(names)) != len(names)):
        fail(f"shift: corruptions must be a non-empty list of distinct names, got {names!r}")
    if (not isinstance(severities, list) or not severities or len(set(severities)) != len(severities)
            or any(not isinstance(s, int) or isinstance(s, bool) for s in severities)):
        fail(f"shift: severities must be a non-empty list of distinct integers, got {severities!r}")
    try:
        corruptions.check(names, severities)
    except HarnessError as exc:
        fail(f"shift: {exc}")
    images = raw.get("images")
    if images is not None and (not isinstance(images, int) or isinstance(images, bool) or images < 1):
        fail(f"shift: images must be an integer >= 1, got {images!r}")
    if not corrupted:
        return ShiftPlan(None, (), (), images, tuple(natural))
    return ShiftPlan(raw.get("set"), tuple(names), tuple(sorted(severities)), images, tuple(natural))


def load_cells(plan: ShiftPlan, dataset: str, subset_seed: int, data_root=None) -> dict[Cell, ImageSet]:
    """The images and labels of every cell of `plan` for in-distribution `dataset`: the same test images (a
    class-balanced sample of `plan.images`, seeded with `subset_seed`) in every cell. HarnessError (with the command
    that fixes it) when the corrupted dataset is not in the cache or lacks a cell."""
    from harness.train import balanced_indices

    if not plan.cells:
        return {}
    if plan.set is None:
        test = hdata.load(dataset, "test", data_root, image_size=hdata.spec(dataset, data_root).image_size)
        rows = balanced_indices(test.labels, plan.images, subset_seed)
        clean, labels = np.asarray(test.images)[rows], test.labels[rows]
        return {(c, s): ImageSet(corruptions.corrupt(clean, c, s, rows, GENERATE_SEED), labels, test.classes)
                for c, s in plan.cells}
    out, spec = {}, hdata.spec(dataset, data_root)
    for c, s in plan.cells:
        cell = shifted.load_cell(plan.set, c, s, data_root)
        if cell.image_size != (spec.image_size, spec.image_size) or len(cell.classes) != spec.num_classes:
            raise HarnessError(f"shifted set {plan.set} has {cell.image_size[0]}x{cell.image_size[1]} images of "
                               f"{len(cell.classes)} classes; {dataset} has {spec.image_size}x{spec.image_size} "
                               f"images of {spec.num_classes} classes")
        rows = balanced_indices(cell.labels, plan.images, subset_seed)
        out[(c, s)] = ImageSet(np.asarray(cell.images[rows]), np.asarray(cell.labels[rows]), cell.classes)
    return out


@dataclass(frozen=True)
class NaturalSet:
    """A natural-shift test set as evaluated: its images and labels, and per class of the set the in-distribution
    classes whose largest logit is its logit (None: the set has the in-distribution classes)."""

    images: ImageSet
    projection: tuple[tuple[int, ...], ...] | None


def load_natural(plan: ShiftPlan, dataset: str, subset_seed: int, data_root=None) -> dict[str, NaturalSet]:
    """The natural-shift sets of `plan` for in-distribution `dataset` (a class-balanced sample of `plan.images`,
    seeded), at its image size; HarnessError when one is not imported or its classes are not `dataset`'s."""
    from harness.data import cache
    from harness.train import balanced_indices

    spec, out = hdata.spec(dataset, data_root), {}
    for name in plan.natural:
        images = hdata.load(name, "test", data_root, image_size=spec.image_size)
        meta = cache.read_metadata(cache.data_root(data_root), name) or {}
        projection = meta.get("projection")
        if projection is not None and projection["onto"] != dataset:
            raise HarnessError(f"natural-shift set {name} is labelled in classes of {projection['onto']}, not of "
                               f"{dataset}; evaluate it on a {projection['onto']} row")
        if projection is None and len(images.classes) != spec.num_classes:
            raise HarnessError(f"natural-shift set {name} has {len(images.classes)} classes, {dataset} has "
                               f"{spec.num_classes}")
        rows = balanced_indices(images.labels, plan.images, subset_seed)
        out[name] = NaturalSet(ImageSet(np.asarray(images.images[rows]), np.asarray(images.labels[rows]),
                                        images.classes),
                               None if projection is None else tuple(map(tuple, projection["classes"])))
    return out


def project(logits: np.ndarray, projection: tuple[tuple[int, ...], ...] | None) -> np.ndarray:
    """Logits over a set's own classes: per class, the largest of its in-distribution classes' logits (one class
    each for ImageNet-R and -A: their 200 logits; ObjectNet's max over its ImageNet classes)."""
    if projection is None:
        return logits
    return np.stack([logits[:, list(ids)].max(axis=1) for ids in projection], axis=1)


def natural_metrics(outputs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Record stats from {set: (projected logits, labels)}: `shift/<set>/<m>` and `shift/natural/<m>` (the mean
    over the sets, std across them)."""
    sets = {name: cell_metrics(*out) for name, out in outputs.items()}
    out = {f"shift/{name}/{m}": _stat([v]) for name, values in sets.items() for m, v in values.items()}
    for m in METRICS:
        values = [v[m] for v in sets.values() if m in v]
        if values:
            out[f"shift/{NATURAL_SHIFT_MEAN}/{m}"] = _stat(values)
    return out


def cell_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, ECE (15 bins), RMS (equal-mass, reference variant) in percent and NLL in nats of one cell; RMS
    only where the cell has the two bins of 100 it needs."""
    stats = id_metrics(np.exp(log_softmax(logits)), labels)
    return {m: stats[k]["mean"] for m, k in METRICS.items() if k in stats}


def _stat(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)}


def metrics(outputs: Mapping[Cell, tuple[np.ndarray, np.ndarray]]) -> dict[str, dict]:
    """Record stats from {(corruption, severity): (logits, labels)}: each cell (n = 1), each severity (the mean over
    its corruptions, std across them) and `shift/mean` (the mean over every cell: RobustBench's all corruptions,
    all severities; with equal cells its accuracy is that of all images pooled)."""
    cells = {cell: cell_metrics(*out) for cell, out in outputs.items()}
    out = {f"shift/{c}/{s}/{m}": _stat([v]) for (c, s), values in cells.items() for m, v in values.items()}
    for m in METRICS:
        for severity in sorted({s for _, s in cells}):
            values = [v[m] for (_, s), v in cells.items() if s == severity and m in v]
            if values:
                out[f"shift/severity{severity}/{m}"] = _stat(values)
        values = [v[m] for v in cells.values() if m in v]
        if values:
            out[f"shift/mean/{m}"] = _stat(values)
    return out


def distortion(features: np.ndarray, start: np.ndarray) -> float:
    """Feature distortion (a harness definition, docs/shift.md): mean ||f(x) - f_pre(x)||^2 / mean ||f_pre(x)||^2
    over the same inputs, f the adapted model's penultimate features and f_pre its upstream's. 0: unchanged."""
    features, start = np.asarray(features, np.float64), np.asarray(start, np.float64)
    if features.shape != start.shape or features.ndim != 2 or len(features) == 0:
        raise ValueError(f"distortion needs two feature matrices of one shape (N, D), N > 0; got {features.shape} "
                         f"and {start.shape}")
    reference = np.mean(np.sum(start ** 2, axis=1))
    if reference == 0:
        raise ValueError("distortion: the upstream's features are all zero on these inputs")
    return float(np.mean(np.sum((features - start) ** 2, axis=1)) / reference)
