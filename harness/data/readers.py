"""Readers of the on-disk formats people have: each finds its layout in a Source and returns labelled splits.

A reader returns a Parsed: per split either the member paths of encoded images (decoded later, in one place) or
already decoded uint8 arrays (pickles, .mat), plus int64 labels and the class names.
"""
from __future__ import annotations

import io
import math
import pickle
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from harness.data.sources import Source, one_line
from harness.errors import HarnessError

# Far above any benchmark's class count: a larger label is damage, and a dataset of that many classes would cost
# memory per class (names, per-class counts) out of all proportion to the file.
MAX_CLASSES = 100_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Parsed:
    splits: dict[str, tuple[list[str] | np.ndarray, np.ndarray]]
    classes: tuple[str, ...]
    root: str  # where inside the source the layout was found
    extra: dict = field(default_factory=dict)
    # split -> the folder it is read from ('a/train/'), for every split folder that exists, images in it or not
    folders: dict[str, str] = field(default_factory=dict, compare=False)


def describe_suffixes() -> str:
    return " ".join(IMAGE_SUFFIXES) + " (any case)"


def no_images_in(source: Source, folder: str) -> str:
    """Why a split folder that exists gave no images: what it holds instead, and which extensions are accepted."""
    others = [f for f in source.files() if f.startswith(folder)]  # folders are only known from their files
    return (f"{folder} exists but holds no images ({len(others)} other file{'s' * (len(others) != 1)}, e.g. "
            f"{source.where(others[0])}); accepted image extensions: {describe_suffixes()}")


def is_image(rel: str) -> bool:
    return rel.lower().endswith(IMAGE_SUFFIXES)


def labels_of(source: Source, rel: str, values) -> np.ndarray:
    """Integer labels (N,) in 0..MAX_CLASSES-1 as int64, checked in their own dtype (a uint64 above 2**63 is not a
    negative number) before anything is allocated per class."""
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise HarnessError(f"{source.where(rel)}: expected integer labels (N,) in 0..{MAX_CLASSES - 1:,}, got "
                           f"{labels.dtype} {labels.shape}")
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= MAX_CLASSES:
            raise HarnessError(f"{source.where(rel)}: holds label {low if low < 0 else high}, expected labels "
                               f"0..{MAX_CLASSES - 1:,}")
    return labels.astype(np.int64)


def _natural(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _dirs(files: list[str]) -> set[str]:
    """Every directory prefix of the files, as 'a/b/' ('' = top)."""
    out = {""}
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]) + "/")
    return out


def _find_root(source: Source, test) -> str | None:
    """The shallowest directory d (a prefix like 'a/b/') for which test(d, fileset, dirset) holds."""
    files = source.files()
    fileset, dirset = set(files), _dirs(files)
    for d in sorted(dirset, key=lambda d: (d.count("/"), d)):
        if test(d, fileset, dirset):
            return d
    return None


# --- torchvision's CIFAR python pickles -------------------------------------------------------------------------

CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR100_FILES = ("train", "test", "meta")
_PICKLE_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    """CIFAR pickles hold dicts, lists, bytes and numpy arrays; anything else is refused rather than executed."""

    def find_class(self, module, name):
        if (module, name) in _PICKLE_ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(source: Source, rel: str) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(source.read(rel)), encoding="bytes").load()
    except Exception as exc:  # any damage in a pickle surfaces as one of many exception types
        raise HarnessError(f"{source.where(rel)}: not a readable CIFAR pickle ({one_line(exc)})") from None
    if not isinstance(obj, dict):
        raise HarnessError(f"{source.where(rel)}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _key(source: Source, rel: str, batch: dict, key: bytes):
    if key not in batch:
        found = ", ".join(repr(k) for k in batch)
        raise HarnessError(f"{source.where(rel)}: missing key {key!r} (found {found})")
    return batch[key]


def _cifar_batch(source: Source, rel: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(source, rel)
    data = np.asarray(_key(source, rel, batch, b"data"))
    labels = labels_of(source, rel, _key(source, rel, batch, label_key))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise HarnessError(f"{source.where(rel)}: expected uint8 data (N, 3072) and N labels, "
                           f"got {data.dtype} {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar_pickle(source: Source) -> Parsed | None:
    root = _find_root(source, lambda d, f, _: all(d + n in f for n in CIFAR10_FILES))
    if root is not None:
        meta = _unpickle(source, root + "batches.meta")
        classes = tuple(n.decode() for n in _key(source, root + "batches.meta", meta, b"label_names"))
        train = [_cifar_batch(source, root + f"data_batch_{i}", b"labels") for i in range(1, 6)]
        splits = {"train": (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])),
                  "test": _cifar_batch(source, root + "test_batch", b"labels")}
        return Parsed(splits, classes, root)
    root = _find_root(source, lambda d, f, _: all(d + n in f for n in CIFAR100_FILES))
    if root is None:
        return None
    meta = _unpickle(source, root + "meta")
    classes = tuple(n.decode() for n in _key(source, root + "meta", meta, b"fine_label_names"))
    splits = {s: _cifar_batch(source, root + s, b"fine_labels") for s in ("train", "test")}
    return Parsed(splits, classes, root)


# --- ImageFolder: <split>/<class>/<image> ------------------------------------------------------------------------

SPLIT_DIRS = {"train": "train", "test": "test", "val": "test"}


def read_imagefolder(source: Source) -> Parsed | None:
    root = _find_root(source, lambda d, _, dirs: any(d + s + "/" in dirs for s in SPLIT_DIRS))
    if root is None:
        return None
    dirs = _dirs(source.files())
    if root + "test/" in dirs and root + "val/" in dirs:
        raise HarnessError(f"{source.path}: both {root}test/ and {root}val/ exist; keep one of them as the test split")
    per_split: dict[str, dict[str, list[str]]] = {}
    for rel in source.files():
        if not rel.startswith(root) or not is_image(rel):
            continue
        parts = rel[len(root):].split("/")
        if parts[0] not in SPLIT_DIRS:
            continue
        if len(parts) != 3:
            raise HarnessError(f"{source.where(rel)}: not in a class folder; expected the layout "
                               f"{root}<split>/<class>/<image>")
        per_split.setdefault(SPLIT_DIRS[parts[0]], {}).setdefault(parts[1], []).append(rel)
    folders = {SPLIT_DIRS[s]: root + s + "/" for s in SPLIT_DIRS if root + s + "/" in dirs}
    if not per_split:
        return Parsed({}, (), root, folders=folders)
    classes = tuple(sorted(per_split.get("train") or per_split["test"]))
    for split, per_class in per_split.items():
        unknown = sorted(set(per_class) - set(classes))
        if unknown:
            raise HarnessError(f"{source.path}: {root}{split}/ has class folders that train/ lacks: "
                               f"{', '.join(unknown[:5])}")
    splits = {}
    for split in ("train", "test"):
        if split not in per_split:
            continue
        paths, labels = [], []
        for label, cls in enumerate(classes):
            files = sorted(per_split[split].get(cls, []), key=_natural)
            paths += files
            labels += [label] * len(files)
        splits[split] = (paths, np.asarray(labels, dtype=np.int64))
    return Parsed(splits, classes, root, folders=folders)


# --- Tiny ImageNet: wnids.txt, train/<wnid>/images/*, val/images/* + val/val_annotations.txt ----------------------

def read_tinyimagenet(source: Source) -> Parsed | None:
    root = _find_root(source, lambda d, f, _: d + "wnids.txt" in f)
    if root is None:
        return None
    wnids = sorted(source.read(root + "wnids.txt").decode().split())
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels, val_files = [], [], []
    for rel in source.files():
        if not rel.startswith(root) or not is_image(rel):
            continue
        parts = rel[len(root):].split("/")
        if parts[0] == "train":
            if len(parts) != 4 or parts[2] != "images":
                raise HarnessError(f"{source.where(rel)}: expected {root}train/<wnid>/images/<image>")
            if parts[1] not in index:
                raise HarnessError(f"{source.where(rel)}: class folder {parts[1]} is not listed in wnids.txt")
            train_paths.append(rel)
            train_labels.append(index[parts[1]])
        elif parts[0] == "val":
            if len(parts) != 3 or parts[1] != "images":
                raise HarnessError(f"{source.where(rel)}: expected {root}val/images/<image>")
            val_files.append(rel)
    missing = sorted(set(wnids) - {wnids[i] for i in set(train_labels)})
    if train_paths and missing:
        raise HarnessError(f"{source.path}: wnids.txt lists classes without a {root}train/<wnid>/images/ folder: "
                           f"{', '.join(missing[:5])}")
    splits = {}
    if train_paths:
        order = sorted(range(len(train_paths)), key=lambda i: (train_labels[i], _natural(train_paths[i])))
        splits["train"] = ([train_paths[i] for i in order], np.asarray([train_labels[i] for i in order], np.int64))
    if val_files:
        splits["test"] = _tiny_val(source, root, sorted(val_files, key=_natural), index)
    extra = {}
    if root + "words.txt" in set(source.files()):
        words = dict(line.split("\t", 1) for line in source.read(root + "words.txt").decode().splitlines()
                     if "\t" in line)
        extra["class_descriptions"] = [words.get(w, "").strip() for w in wnids]
    dirs = _dirs(source.files())
    folders = {split: root + d for split, d in (("train", "train/"), ("test", "val/")) if root + d in dirs}
    return Parsed(splits, tuple(wnids), root, extra, folders=folders)


def _tiny_val(source: Source, root: str, files: list[str], index: dict[str, int]):
    ann_path = root + "val/val_annotations.txt"
    if ann_path not in set(source.files()):
        raise HarnessError(f"{source.path}: {ann_path} is missing (it holds the val labels)")
    labels = {}
    for n, line in enumerate(source.read(ann_path).decode().splitlines(), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2 or cols[1] not in index:
            raise HarnessError(f"{source.where(ann_path)}:{n}: expected '<file>\\t<wnid listed in wnids.txt>...'")
        labels[cols[0]] = index[cols[1]]
    out = []
    for rel in files:
        name = PurePosixPath(rel).name
        if name not in labels:
            raise HarnessError(f"{source.where(rel)}: has no line in {ann_path}")
        out.append(labels[name])
    return files, np.asarray(out, dtype=np.int64)


# --- DTD: images/<class>/<image>, all images as one split --------------------------------------------------------

def read_dtd(source: Source) -> Parsed | None:
    root = _find_root(source, lambda d, _, dirs: d + "images/" in dirs and any(
        x.startswith(d + "images/") and x.count("/") == d.count("/") + 2 for x in dirs))
    if root is None:
        return None
    per_class: dict[str, list[str]] = {}
    for rel in source.files():
        if rel.startswith(root + "images/") and is_image(rel):
            parts = rel[len(root) + len("images/"):].split("/")
            if len(parts) != 2:
                raise HarnessError(f"{source.where(rel)}: expected {root}images/<class>/<image>")
            per_class.setdefault(parts[0], []).append(rel)
    classes = tuple(sorted(per_class))
    paths, labels = [], []
    for i, cls in enumerate(classes):
        files = sorted(per_class[cls], key=_natural)
        paths += files
        labels += [i] * len(files)
    return Parsed({"test": (paths, np.asarray(labels, dtype=np.int64))} if paths else {}, classes, root,
                  folders={"test": root + "images/"})


# --- SVHN: train_32x32.mat / test_32x32.mat ----------------------------------------------------------------------

def read_svhn_mat(source: Source) -> Parsed | None:
    root = _find_root(source, lambda d, f, _: d + "train_32x32.mat" in f or d + "test_32x32.mat" in f)
    if root is None:
        return None
    import scipy.io

    splits = {}
    for split in ("train", "test"):
        rel = f"{root}{split}_32x32.mat"
        if rel not in set(source.files()):
            continue
        try:
            mat = scipy.io.loadmat(io.BytesIO(source.read(rel)))
            x, y = mat["X"], mat["y"]
        except Exception as exc:  # scipy raises many types for a damaged file
            raise HarnessError(f"{source.where(rel)}: not a readable SVHN .mat file ({one_line(exc)})") from None
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[2] != 3 or y.size != x.shape[3]:
            raise HarnessError(f"{source.where(rel)}: expected X uint8 (H, W, 3, N) and y (N, 1), "
                               f"got X {x.dtype} {x.shape}, y {y.shape}")
        labels = y.reshape(-1).astype(np.int64) % 10  # SVHN stores digit 0 as label 10
        splits[split] = (np.ascontiguousarray(x.transpose(3, 0, 1, 2)), labels)
    return Parsed(splits, tuple(str(d) for d in range(10)), root)


# --- arrays in .npy files: CIFAR-10-C / CIFAR-100-C, CIFAR-10.1 ------------------------------------------------

def _npy(source: Source, rel: str) -> np.ndarray:
    """A .npy member as an array over its bytes (no copy); a damaged or object-dtype file is a one-line error."""
    raw = source.read(rel)
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("it holds Python objects")
        count, held = math.prod(shape), len(raw) - f.tell()  # Python integers: a huge shape cannot wrap around
        if count * dtype.itemsize > held:
            raise ValueError(f"its header declares {dtype} {shape} ({count * dtype.itemsize:,} bytes), the file "
                             f"holds {held:,} bytes")
        array = np.frombuffer(raw, dtype, count=count, offset=f.tell())
    except ValueError as exc:
        raise HarnessError(f"{source.where(rel)}: not a readable .npy file ({one_line(exc)})") from None
    return array.reshape(shape, order="F" if fortran else "C")


def _npy_images(source: Source, rel: str, count: int, what: str) -> np.ndarray:
    images = _npy(source, rel)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise HarnessError(f"{source.where(rel)}: expected uint8 images (N, H, W, 3), got {images.dtype} "
                           f"{images.shape}")
    if len(images) != count:
        raise HarnessError(f"{source.where(rel)}: holds {len(images):,} images, {what} has {count:,} labels")
    return images


def _npy_labels(source: Source, rel: str) -> np.ndarray:
    return labels_of(source, rel, _npy(source, rel))


def read_cifar_c(source: Source) -> Parsed | None:
    """The released CIFAR-10-C layout: <corruption>.npy = severities 1..5 x the N test images, labels.npy (5 N)."""
    from harness.data.corruptions import RELEASED, SEVERITIES

    root = _find_root(source, lambda d, f, _: d + "labels.npy" in f and any(d + n + ".npy" in f for n in RELEASED))
    if root is None:
        return None
    labels = _npy_labels(source, root + "labels.npy")
    blocks = len(SEVERITIES)
    if len(labels) % blocks:
        raise HarnessError(f"{source.where(root + 'labels.npy')}: holds {len(labels):,} labels, expected "
                           f"{blocks} severities x N test images")
    per_block = labels.reshape(blocks, -1)
    if (per_block != per_block[0]).any():
        raise HarnessError(f"{source.where(root + 'labels.npy')}: the {blocks} severity blocks of "
                           f"{per_block.shape[1]:,} labels differ (expected the test labels {blocks} times)")
    splits = {}
    for rel in source.files():
        if not rel.startswith(root) or "/" in rel[len(root):] or not rel.endswith(".npy") or rel == root + "labels.npy":
            continue
        corruption = rel[len(root):-len(".npy")]
        if corruption not in RELEASED:
            raise HarnessError(f"{source.where(rel)}: unknown corruption {corruption!r}; known: {', '.join(RELEASED)}")
        splits[corruption] = (_npy_images(source, rel, len(labels), root + "labels.npy"), labels)
    return Parsed(splits, (), root, {"severities": {c: list(SEVERITIES) for c in splits}})


CIFAR101_FILES = ("cifar10.1_v6_data.npy", "cifar10.1_v6_labels.npy")


def read_cifar101(source: Source) -> Parsed | None:
    """CIFAR-10.1 v6: cifar10.1_v6_data.npy (uint8 (2000, 32, 32, 3)) and cifar10.1_v6_labels.npy, one test split."""
    root = _find_root(source, lambda d, f, _: all(d + n in f for n in CIFAR101_FILES))
    if root is None:
        return None
    labels = _npy_labels(source, root + CIFAR101_FILES[1])
    images = _npy_images(source, root + CIFAR101_FILES[0], len(labels), root + CIFAR101_FILES[1])
    return Parsed({"test": (images, labels)}, (), root, {"version": "v6"})


# --- any folder of images: one unlabeled split -------------------------------------------------------------------

def read_folder(source: Source) -> Parsed | None:
    paths = sorted((f for f in source.files() if is_image(f)), key=_natural)
    return Parsed({"test": (paths, np.full(len(paths), -1, dtype=np.int64))} if paths else {}, (), "")


READERS = {
    "cifar-pickle": (read_cifar_pickle, "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta) or "
                                        "cifar-100-python/ (train, test, meta)"),
    "imagefolder": (read_imagefolder, "<split>/<class>/<image> with split train and/or test (or val)"),
    "tinyimagenet": (read_tinyimagenet, "wnids.txt, train/<wnid>/images/<image>, val/images/<image> + "
                                        "val/val_annotations.txt"),
    "dtd": (read_dtd, "images/<class>/<image>"),
    "svhn-mat": (read_svhn_mat, "train_32x32.mat and/or test_32x32.mat"),
    "cifar-c": (read_cifar_c, "<corruption>.npy (uint8, severities 1..5 x N images) and labels.npy (5 N labels)"),
    "cifar10.1": (read_cifar101, "cifar10.1_v6_data.npy and cifar10.1_v6_labels.npy"),
    "folder": (read_folder, "image files at any depth (unlabeled)"),
}
