"""ImageNet and its natural-shift test sets in their released folder layouts (docs/clip.md, Natural shift).

Every set is labelled in its own classes and, where those are not ImageNet-1k's 1,000, carries in its metadata
the `projection` onto ImageNet-1k: per class of the set, the ImageNet-1k class indices whose largest logit is its
logit (harness.shift.project). The 200-class subsets of ImageNet-R and ImageNet-A map one index each (the papers
evaluate those 200 logits of a 1,000-way model); ObjectNet's 113 overlapping classes map one or more each, and
its images of the other classes are left out. Class lists: imagenet_wnids.txt, imagenet_r_wnids.txt,
imagenet_a_wnids.txt and objectnet_imagenet.toml in this package (their headers cite their sources).
"""
from __future__ import annotations

import csv
import io
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from harness import tomlfile
from harness.data.readers import Parsed, _find_root, _natural, is_image
from harness.data.sources import Source
from harness.errors import HarnessError

_HERE = Path(__file__).parent
KAGGLE_VAL_LABELS = "LOC_val_solution.csv"  # the Kaggle ImageNet release: ImageId,PredictionString (wnid first)


def _wnid_file(name: str) -> tuple[str, ...]:
    lines = (_HERE / name).read_text().splitlines()
    return tuple(line for line in lines if line and not line.startswith("#"))


@lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
    """ImageNet-1k's class wnids in class-index order."""
    return _wnid_file("imagenet_wnids.txt")


@lru_cache(maxsize=None)
def subset_wnids(name: str) -> tuple[str, ...]:
    """The 200 wnids of imagenet-r or imagenet-a, in ImageNet-1k order."""
    return _wnid_file({"imagenet-r": "imagenet_r_wnids.txt", "imagenet-a": "imagenet_a_wnids.txt"}[name])


@lru_cache(maxsize=None)
def objectnet_classes() -> dict[str, tuple[str, tuple[int, ...]]]:
    """{class folder: (ObjectNet class name, ImageNet-1k indices)}, folders sorted (the label order)."""
    data, _ = tomlfile.read(_HERE / "objectnet_imagenet.toml", "ObjectNet class map")
    return {folder: (row["name"], tuple(row["imagenet"])) for folder, row in sorted(data.items())}


def _class_folder_root(source: Source, known) -> str | None:
    """The shallowest folder holding a known class folder (`known(folder name)`) with an image in it; two at that
    depth (train/ and val/ of one tree) is an error: which one is the test set is the user's to say."""
    roots = set()
    for rel in source.files():
        parts = rel.split("/")
        if is_image(rel) and len(parts) >= 2 and known(parts[-2]):
            roots.add("/".join(parts[:-2]) + "/" if len(parts) > 2 else "")
    if not roots:
        return None
    depth = min(r.count("/") for r in roots)
    top = sorted(r for r in roots if r.count("/") == depth)
    if len(top) > 1:
        raise HarnessError(f"{source.path}: class folders under both {top[0] or './'} and {top[1] or './'}; give the "
                           f"folder of the one test set")
    return top[0]


def _class_folders(source: Source, what: str, label_of: dict[str, int], classes, layout: str,
                   skip_unknown: bool = False, extra: dict | None = None) -> Parsed | None:
    """<root>/<class folder>/<image> -> one `test` split; label_of maps a folder name to its label. A folder that
    is not a class of the set is an error naming it, or (skip_unknown) left out and counted."""
    root = _class_folder_root(source, lambda name: name in label_of)
    if root is None:
        return None
    paths, labels, skipped = [], [], {}
    for rel in sorted((f for f in source.files() if f.startswith(root) and is_image(f)), key=_natural):
        parts = rel[len(root):].split("/")
        if len(parts) != 2:
            raise HarnessError(f"{source.where(rel)}: not in a class folder; expected the layout {root}{layout}")
        if parts[0] not in label_of:
            if skip_unknown:
                skipped[parts[0]] = skipped.get(parts[0], 0) + 1
                continue
            raise HarnessError(f"{source.where(rel)}: class folder {parts[0]!r} is not one of the {len(classes)} "
                               f"classes of {what}")
        paths.append(rel)
        labels.append(label_of[parts[0]])
    order = sorted(range(len(paths)), key=lambda i: labels[i])  # by class, then file name (stable)
    split = ([paths[i] for i in order], np.asarray([labels[i] for i in order], np.int64))
    info = dict(extra or {})
    if skip_unknown:
        info["left_out"] = {"classes": len(skipped), "images": sum(skipped.values())}
    return Parsed({"test": split}, tuple(classes), root, info, folders={"test": root})


def _projection(indices) -> dict:
    return {"projection": {"onto": "imagenet", "classes": [list(i) for i in indices]}}


def read_imagenet_val(source: Source) -> Parsed | None:
    """ImageNet-1k val: <wnid>/<image> folders (valprep.sh, torchvision's ImageFolder), or the Kaggle release's
    LOC_val_solution.csv beside its flat folder of ILSVRC2012_val_*.JPEG."""
    wnids = imagenet_wnids()
    index = {w: i for i, w in enumerate(wnids)}
    kaggle = _find_root(source, lambda d, f, _: d + KAGGLE_VAL_LABELS in f)
    if kaggle is None:
        return _class_folders(source, "ImageNet-1k", index, wnids, "<wnid>/<image>")
    table = kaggle + KAGGLE_VAL_LABELS
    labels = {}
    for n, row in enumerate(csv.reader(io.StringIO(source.read(table).decode())), 1):
        if n == 1 or not row:
            continue  # the header ImageId,PredictionString
        wnid = row[1].split()[0] if len(row) == 2 and row[1].split() else None
        if wnid not in index:
            raise HarnessError(f"{source.where(table)}:{n}: expected 'ImageId,<ImageNet-1k wnid> ...', got {row!r}")
        labels[row[0]] = index[wnid]
    found = {PurePosixPath(f).stem: f for f in source.files() if f.startswith(kaggle) and is_image(f)
             and PurePosixPath(f).stem in labels}
    missing = sorted(set(labels) - set(found))
    if missing:
        raise HarnessError(f"{source.path}: {table} lists {len(missing)} image(s) not found under {kaggle or './'}, "
                           f"e.g. {missing[0]}.JPEG")
    order = sorted(found, key=lambda s: (labels[s], _natural(found[s])))
    split = ([found[s] for s in order], np.asarray([labels[s] for s in order], np.int64))
    return Parsed({"test": split}, wnids, kaggle, folders={"test": kaggle})


def read_imagenetv2(source: Source) -> Parsed | None:
    """ImageNetV2 (matched frequency): <class index 0..999>/<image> (imagenetv2-matched-frequency-format-val/)."""
    wnids = imagenet_wnids()
    return _class_folders(source, "ImageNetV2 (folders 0..999)", {str(i): i for i in range(len(wnids))}, wnids,
                          "<class index 0..999>/<image>")


def read_imagenet_sketch(source: Source) -> Parsed | None:
    """ImageNet-Sketch: sketch/<wnid>/<image>, the 1,000 classes of ImageNet-1k."""
    wnids = imagenet_wnids()
    return _class_folders(source, "ImageNet-1k", {w: i for i, w in enumerate(wnids)}, wnids, "<wnid>/<image>")


def _subset_reader(name: str):
    def read(source: Source) -> Parsed | None:
        """ImageNet-R / ImageNet-A: <wnid>/<image> of their 200 classes, projected onto ImageNet-1k's indices."""
        subset, index = subset_wnids(name), {w: i for i, w in enumerate(imagenet_wnids())}
        return _class_folders(source, name, {w: i for i, w in enumerate(subset)}, subset, "<wnid>/<image>",
                              extra=_projection([index[w]] for w in subset))
    return read


read_imagenet_r = _subset_reader("imagenet-r")
read_imagenet_a = _subset_reader("imagenet-a")


def read_objectnet(source: Source) -> Parsed | None:
    """ObjectNet 1.0: objectnet-1.0/images/<class folder>/<image>; the 113 classes that overlap ImageNet-1k are
    kept (labels in sorted folder order), the other folders left out and counted."""
    classes = objectnet_classes()
    folders = list(classes)
    return _class_folders(source, "ObjectNet", {f: i for i, f in enumerate(folders)},
                          tuple(classes[f][0] for f in folders), "<class folder>/<image>", skip_unknown=True,
                          extra=_projection(classes[f][1] for f in folders))


READERS = {
    "imagenet-val": (read_imagenet_val, "<wnid>/<image> folders of ImageNet-1k classes, or LOC_val_solution.csv "
                                        "beside the val images (Kaggle)"),
    "imagenetv2": (read_imagenetv2, "<class index 0..999>/<image> (imagenetv2-matched-frequency-format-val/)"),
    "imagenet-sketch": (read_imagenet_sketch, "sketch/<wnid>/<image> of ImageNet-1k classes"),
    "imagenet-r": (read_imagenet_r, "imagenet-r/<wnid>/<image> of its 200 classes"),
    "imagenet-a": (read_imagenet_a, "imagenet-a/<wnid>/<image> of its 200 classes"),
    "objectnet": (read_objectnet, "objectnet-1.0/images/<class folder>/<image>"),
}
