"""A CLIP model entry (`architecture = "open_clip:ARCH"` and a `[clip]` table, docs/clip.md) loaded as a
classifier of its dataset: the verified weights file, the model's own preprocessing, the zero-shot head."""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness import checkpoints, clip
from harness import data as hdata
from harness.clip import zero_shot
from harness.clip.backbone import ClipClassifier, ClipSpec, tensor_transforms


def spec(entry) -> ClipSpec:
    return ClipSpec(clip.arch_of(entry.architecture), entry.clip.get("pretrained"), entry.clip.get("model_config"))


def classnames(entry, dataset: str, data_root=None) -> tuple[str, ...]:
    """The entry's `clip.classnames`, else the list its `clip.classnames_from` names (clip.CLASSNAME_SOURCES), else
    the dataset's class names (its metadata); one per class of the head."""
    names = tuple(entry.clip.get("classnames") or ())
    if "classnames_from" in entry.clip:
        names = tuple(getattr(clip.open_clip(), clip.CLASSNAME_SOURCES[entry.clip["classnames_from"]]))
    if not names:
        size = hdata.spec(dataset, data_root).image_size
        names = hdata.load(dataset, "test", data_root=data_root, image_size=size).classes
    if len(names) != entry.num_classes:
        entry.fail("clip.classnames", f"{len(names)} class names for num_classes = {entry.num_classes}")
    return names


def zero_shot_classifier(entry, dataset: str, data_root=None) -> tuple[ClipClassifier, dict]:
    """The zero-shot classifier of `dataset` and its provenance (file, sha256, template set, head key)."""
    path = entry.file(data_root)
    sha256 = entry.verified_sha256(path)
    model_spec = spec(entry)
    model, preprocess = model_spec.build(path)
    names = classnames(entry, dataset, data_root)
    template_set, prompts = zero_shot.templates(entry.clip.get("templates"), dataset)
    head = zero_shot.cached_head(model, model_spec.arch, sha256, names, prompts,
                                 checkpoints.default_cache_dir(data_root))
    key = hashlib.sha256(f"{sha256}:{zero_shot.head_key(sha256, model_spec.arch, names, prompts)}".encode()).hexdigest()
    info = {"key": key, "path": str(path), "sha256": sha256, "ignored_keys": [], "templates": template_set,
            "classnames": list(names), "preprocess": [str(t) for t in preprocess.transforms]}
    return ClipClassifier(model.visual, tensor_transforms(preprocess), head), info
