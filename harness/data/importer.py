"""`data import`: read a source once, decode it, and write it atomically into the cache."""
from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness import __version__, names
from harness.data import cache, imagenet_family, readers, registry, transforms
from harness.data.imageset import ImageSet
from harness.data.progress import Progress
from harness.data.readers import Parsed, describe_suffixes, no_images_in
from harness.data.sources import Source, one_line
from harness.errors import HarnessError

# Every format `data import` reads: name -> (reader, the layout it expects).
READERS = {**readers.READERS, **imagenet_family.READERS}
# Formats whose images vary in size, and the reference transform that brings them to one size.
FORMAT_TRANSFORMS = {"folder": registry.RESIZE_CENTER_CROP, "dtd": registry.RESIZE_CENTER_CROP,
                     "svhn-mat": registry.RESIZE}
DOWNLOADABLE = ("cifar10", "cifar100", "svhn", "dtd")


def resolve(name: str, fmt: str | None) -> tuple[registry.DatasetSpec | None, tuple[str, ...]]:
    """The spec (None for a user-named set) and the formats to try, or a HarnessError saying what to do."""
    names.check(name, "dataset name")
    spec = registry.DATASETS.get(name)
    if spec is None:
        if fmt is None:
            raise HarnessError(f"unknown dataset {name!r}; registered: {', '.join(registry.names())}; to import "
                               f"another set give its --format ({', '.join(READERS)}), e.g. --format folder "
                               f"for an unlabeled folder of OOD images")
        return None, (fmt,)
    if spec.builtin:
        raise HarnessError(f"{name} is built in (scikit-learn's digits): nothing to import")
    if spec.base is not None:
        raise HarnessError(f"{name} is derived from {spec.base}: import that instead: "
                           f"python -m harness data import {spec.base} PATH")
    if fmt is not None and fmt not in spec.formats:
        raise HarnessError(f"{name} is read from {', '.join(spec.formats)}, not {fmt}")
    return spec, (fmt,) if fmt else spec.formats


def import_dataset(name: str, path=None, *, data_root=None, fmt: str | None = None, image_size: int | None = None,
                   sha256: str | None = None, download: bool = False, replace: bool = False,
                   stream=None) -> tuple[str, Path]:
    """Import `path` as dataset `name`; returns ("imported" | "unchanged", cache folder). Another version of
    `name` in the cache is refused unless `replace`."""
    if fmt is not None and fmt not in READERS:
        raise HarnessError(f"unknown format {fmt!r}; known: {', '.join(READERS)}")
    spec, formats = resolve(name, fmt)
    root = cache.data_root(data_root)
    transform_kind = spec.transform if spec else FORMAT_TRANSFORMS.get(formats[0])
    size = image_size or (spec.image_size if spec else 32)
    if transform_kind is None and image_size is not None and (spec is None or image_size != spec.image_size):
        raise HarnessError(f"{name} is stored as it is; --image-size only applies to sources of mixed image "
                           f"sizes (formats {', '.join(FORMAT_TRANSFORMS)})")
    progress = Progress(f"import {name}", stream)
    if download:
        path = _download(name, path, root)
    if path is None:
        raise HarnessError(f"import {name}: give the PATH of the data (or --download where torchvision can fetch it)")
    source = Source(path)
    digest = None
    if source.is_archive:
        digest = source.sha256()
        if sha256 and digest != sha256.lower():
            raise HarnessError(f"{source.path}: sha256 is {digest}, expected {sha256.lower()} (checksum mismatch)")
    elif sha256:
        raise HarnessError(f"{source.path}: --sha256 checks an archive file, this is a directory")
    wanted_transform = transforms.describe(transform_kind, size)
    with cache.writing(root, name):
        if digest and _unchanged(root, name, digest, wanted_transform, progress):
            return "unchanged", root / name
        progress.set_stage("reading")
        source.load(progress)
        fmt_used, parsed = _parse(name, source, formats)
        if not parsed.classes:
            parsed.classes = _label_names(spec, parsed, root, source)
        _check(name, spec, fmt_used, parsed, source)
        if digest is None:  # a directory: its digest covers the files of the layout found
            digest = source.sha256(under=parsed.root)
            if _unchanged(root, name, digest, wanted_transform, progress):
                return "unchanged", root / name
        cache.check_vacant(root, name, replace)
        progress.set_stage("decoding")
        transform = transforms.make(transform_kind, size)
        splits = _decode_splits(name, source, parsed, transform, progress)
        found = next(iter(splits.values())).image_size
        if spec is not None and transform is None and found != (spec.image_size, spec.image_size):
            raise HarnessError(f"{source.path}: images are {found[1]}x{found[0]}, {name} has "
                               f"{spec.image_size}x{spec.image_size} images")
        meta = {
            "format": fmt_used,
            "source": {"path": str(source.path.resolve()), "sha256": digest, "layout_root": parsed.root},
            "transform": wanted_transform,
            "harness_version": __version__,
            "imported_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **parsed.extra,
        }
        where = cache.write(root, name, splits, meta)
    counts = ", ".join(f"{s} {len(d):,}" for s, d in splits.items())
    progress.finish(f"{counts} images -> {where}")
    return "imported", where


def _unchanged(root: Path, name: str, digest: str, transform: str | None, progress: Progress) -> bool:
    try:
        old = cache.read_metadata(root, name)
    except HarnessError:
        return False  # damaged: import over it
    if old and old["source"]["sha256"] == digest and old.get("transform") == transform:
        progress.finish(f"{name} is already imported from this source (sha256 {digest[:12]}...): nothing to do")
        return True
    return False


def _parse(name: str, source: Source, formats: tuple[str, ...]) -> tuple[str, Parsed]:
    for fmt in formats:
        parsed = READERS[fmt][0](source)
        if parsed is not None:
            return fmt, parsed
    expected = " or ".join(READERS[f][1] for f in formats)
    raise HarnessError(f"{source.path}: no {name} data found; expected {expected}")


def _check(name: str, spec, fmt: str, parsed: Parsed, source: Source) -> None:
    if not any(len(labels) for _, labels in parsed.splits.values()):
        where = f" under {parsed.root}" if parsed.root else ""
        if parsed.folders:
            folders = " and ".join(sorted(set(parsed.folders.values())))
            raise HarnessError(f"{source.path}: no images found in {folders}: no file there has an accepted image "
                               f"extension ({describe_suffixes()})")
        raise HarnessError(f"{source.path}: no images found{where}; expected {READERS[fmt][1]}")
    _check_labels(parsed, source)
    if spec is None:
        return
    missing = [s for s in spec.splits if s not in parsed.splits]
    empty = [parsed.folders[s] for s in missing if s in parsed.folders]
    if empty:  # the split's folder is there: say what is wrong with it, not that the split is missing
        raise HarnessError(f"{source.path}: {no_images_in(source, empty[0])}")
    if missing:
        raise HarnessError(f"{source.path}: no {' or '.join(missing)} split found for {name}; "
                           f"expected {READERS[fmt][1]}")
    if spec.num_classes is not None and fmt != "dtd" and len(parsed.classes) != spec.num_classes:
        raise HarnessError(f"{source.path}: found {len(parsed.classes)} classes, {name} has {spec.num_classes}")


def _check_labels(parsed: Parsed, source: Source) -> None:
    """Every label names one of the classes (-1: an unlabeled image, only where there are no classes)."""
    low, high = (0, len(parsed.classes) - 1) if parsed.classes else (-1, -1)
    for split, (_, labels) in parsed.splits.items():
        bad = labels[(labels < low) | (labels > high)]
        if len(bad):
            raise HarnessError(f"{source.path}: the {split} split holds label {int(bad[0])}, expected "
                               f"{low}..{high} ({len(parsed.classes)} classes)")


def _label_names(spec, parsed: Parsed, root: Path, source: Source) -> tuple[str, ...]:
    """Class names for a format that stores label numbers only: those of the clean dataset (spec.classes_of) when
    it is in the cache with as many classes, else "0", "1", ...; () for unlabeled images (label -1)."""
    top = max((int(labels.max()) for _, labels in parsed.splits.values() if len(labels)), default=-1)
    if top < 0:
        return ()
    count = spec.num_classes if spec is not None and spec.num_classes else top + 1
    try:
        clean = cache.read_metadata(root, spec.classes_of) if spec is not None and spec.classes_of else None
    except HarnessError:
        clean = None
    names = tuple(clean["classes"]) if clean and len(clean["classes"]) == count else tuple(map(str, range(count)))
    if top >= count:
        raise HarnessError(f"{source.path}: holds label {top}, {spec.name} has {count} classes (0..{count - 1})")
    return names


def _decode_splits(name, source, parsed, transform, progress) -> dict[str, ImageSet]:
    total = sum(len(labels) for _, labels in parsed.splits.values())
    done = 0
    out = {}
    for split, (items, labels) in parsed.splits.items():
        if isinstance(items, np.ndarray):
            images = items if transform is None else _transform_array(items, transform)
        elif not items:
            continue
        else:
            first = _decode_one(source, items[0], transform)
            images = np.empty((len(items), *first.shape), np.uint8)  # filled in place: no list of arrays to stack
            images[0] = first
            for i in range(1, len(items)):
                image = _decode_one(source, items[i], transform)
                if image.shape != first.shape:
                    (h, w, _), (h0, w0, _) = image.shape, first.shape
                    raise HarnessError(f"{source.where(items[i])}: image is {w}x{h}, {source.where(items[0])} is "
                                       f"{w0}x{h0}; {name} images must share a size")
                images[i] = image
                if i % 256 == 0:
                    progress.update(done + i, total)
        done += len(labels)
        out[split] = ImageSet(np.ascontiguousarray(images), labels, parsed.classes)
    sizes = {split: d.image_size for split, d in out.items()}
    if len(set(sizes.values())) > 1:
        raise HarnessError(f"{source.path}: the splits hold images of different sizes {sizes}")
    return out


def _decode_one(source: Source, rel: str, transform) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(source.read(rel))) as image:
            if image.mode != "RGB":
                image = image.convert("RGB")
            if transform is not None:
                image = transform(image)
            return np.asarray(image, dtype=np.uint8)
    except HarnessError:
        raise
    except UnidentifiedImageError:  # its message holds the repr of the in-memory file, not the file's name
        raise HarnessError(f"{source.where(rel)}: cannot decode image (not in an image format that PIL "
                           f"recognizes)") from None
    except Exception as exc:  # PIL raises many types for a broken file
        raise HarnessError(f"{source.where(rel)}: cannot decode image ({one_line(exc)})") from None


def _transform_array(images: np.ndarray, transform) -> np.ndarray:
    probe = np.asarray(transform(Image.fromarray(images[0])))
    if probe.shape == images.shape[1:] and np.array_equal(probe, images[0]):
        return images  # already the target size: Resize is the identity
    return np.stack([np.asarray(transform(Image.fromarray(im))) for im in images])


def _download(name: str, path, root: Path) -> Path:
    if name not in DOWNLOADABLE:
        raise HarnessError(f"--download works for {', '.join(DOWNLOADABLE)} (through torchvision), not {name}")
    import torchvision.datasets as tvd

    dest = Path(path) if path else root / ".downloads" / name
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if name in ("cifar10", "cifar100"):
            cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
            cls(str(dest), train=True, download=True)
        elif name == "svhn":
            for split in ("train", "test"):
                tvd.SVHN(str(dest), split=split, download=True)
        else:
            tvd.DTD(str(dest), download=True)
    except Exception as exc:  # network and archive errors of many kinds
        raise HarnessError(f"download of {name} into {dest} failed ({one_line(exc)}); without internet, import a "
                           f"local copy: python -m harness data import {name} PATH") from None
    return dest
