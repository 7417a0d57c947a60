"""The on-disk cache of imported datasets.

Layout: <root>/<name>/metadata.json plus <split>.images.npy (uint8 N,H,W,3) and <split>.labels.npy (int64 N,).
A dataset is written, under the lock <root>/.<name>.lock, into <root>/.tmp+<name>+<random>/ (metadata.json last)
and renamed into place (the previous version parked in .old+<name>+<random>/ meanwhile), so a crash leaves the
previous version, nothing, or temporaries that are never read. The next writer of any name removes the
temporaries of every name whose lock is free (their writer is dead). Reads validate the metadata against the
array headers, so a damaged entry is reported, not silently used.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from harness import names
from harness.data.imageset import ImageSet
from harness.errors import HarnessError

SCHEMA_VERSION = 1
METADATA = "metadata.json"
ENV_ROOT = "HARNESS_DATA_ROOT"
# '+' is outside the name rule (harness.names), so a temporary's owner is the text between the two '+'.
TEMPORARY, PARKED = ".tmp+", ".old+"


def data_root(data_root: str | os.PathLike | None = None) -> Path:
    """--data-root, else $HARNESS_DATA_ROOT, else $XDG_CACHE_HOME/uncertainty-harness (~/.cache by default)."""
    if data_root:
        return Path(data_root).expanduser()
    if os.environ.get(ENV_ROOT):
        return Path(os.environ[ENV_ROOT]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "uncertainty-harness"


def _arrays(entry: Path, split: str) -> tuple[Path, Path]:
    return entry / f"{split}.images.npy", entry / f"{split}.labels.npy"


def read_metadata(root: Path, name: str) -> dict | None:
    """The validated metadata of a cached dataset; None if it is not there; HarnessError if it is damaged."""
    entry = root / name
    meta_path = entry / METADATA
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict) or not isinstance(meta.get("splits"), dict):
            raise ValueError("metadata.json is not an object with a 'splits' object")
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {meta.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        for split, info in meta["splits"].items():
            images, labels = _arrays(entry, split)
            shape = _npy_shape(images)
            if shape != (info["count"], *meta["shape"]) or _npy_shape(labels) != (info["count"],):
                raise ValueError(f"split {split}: arrays do not match the metadata")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"cached dataset {entry} is damaged ({exc}); import it again") from None
    return meta


def _npy_shape(path: Path) -> tuple[int, ...]:
    # A memory map reads only the header, and fails on a file shorter than the header promises.
    return tuple(np.load(path, mmap_mode="r").shape)


def load_split(root: Path, name: str, split: str, mmap: bool = False) -> ImageSet:
    meta = read_metadata(root, name)
    if meta is None:
        raise HarnessError(f"dataset {name!r} is not in the cache {root}")
    if split not in meta["splits"]:
        raise HarnessError(f"dataset {name!r} has no split {split!r}; it has: {', '.join(meta['splits'])}")
    images, labels = _arrays(root / name, split)
    mode = "r" if mmap else None
    return ImageSet(np.load(images, mmap_mode=mode), np.load(labels), tuple(meta["classes"]))


def write(root: Path, name: str, splits: dict[str, ImageSet], metadata: dict) -> Path:
    """Atomically (re)place <root>/<name> with these splits; `metadata` gets counts, shape and classes added."""
    root.mkdir(parents=True, exist_ok=True)
    first = next(iter(splits.values()))
    meta = dict(metadata)
    meta.update(
        schema_version=SCHEMA_VERSION,
        name=name,
        shape=list(first.images.shape[1:]),
        classes=list(first.classes),
        splits={s: {"count": len(d), "per_class": d.class_counts().tolist()} for s, d in splits.items()},
    )
    tmp = temporary(root, name)
    try:
        for split, data in splits.items():
            if data.images.shape[1:] != first.images.shape[1:] or data.classes != first.classes:
                raise ValueError(f"split {split} differs in image shape or classes from the others")
            images, labels = _arrays(tmp, split)
            _save(images, data.images)
            _save(labels, data.labels)
        _save_text(tmp / METADATA, json.dumps(meta, indent=1))
        _replace_dir(tmp, root / name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root / name


def temporary(root: Path, name: str) -> Path:
    """A new scratch folder of the writer of `name`, removed by a later writer if this one dies."""
    tmp = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY}{name}+", dir=root))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the cache may be shared
    return tmp


def _lock(root: Path, name: str) -> FileLock:
    return FileLock(str(root / f".{name}.lock"))


@contextmanager
def writing(root: Path, name: str) -> Iterator[None]:
    """Hold the lock of `name` and remove dead writers' temporaries: what every writer of an entry does first."""
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root, name):
        remove_stale(root, name)
        yield


def check_vacant(root: Path, name: str, replace: bool) -> None:
    """Refuse to write over `name` unless `replace`, and over a folder that is not a dataset at all."""
    entry = root / name
    if not entry.exists():
        return
    if not _is_dataset(entry):
        raise HarnessError(f"{entry} exists and is not a dataset; choose another name or move it away")
    if not replace:
        raise HarnessError(f"dataset {name!r} already exists in {root}; give --replace to overwrite it "
                           f"(nothing else is touched)")


def remove_stale(root: Path, holding: str) -> None:
    """Remove the temporaries of `holding` (whose lock the caller holds) and of every name whose lock is free.

    A parked previous version whose entry is missing (its writer died between the two renames) is put back."""
    for path in root.iterdir():
        prefix = next((p for p in (TEMPORARY, PARKED) if path.name.startswith(p)), None)
        owner = path.name[len(prefix):].partition("+")[0] if prefix else None
        if owner is None or names.problem(owner) or not path.is_dir():
            continue
        if owner == holding:
            _clear(path, root / owner)
            continue
        try:
            with _lock(root, owner).acquire(timeout=0):
                _clear(path, root / owner)
        except Timeout:
            continue  # its writer is alive


def _clear(path: Path, entry: Path) -> None:
    parked = path / entry.name
    if path.name.startswith(PARKED) and parked.is_dir() and not entry.exists():
        os.rename(parked, entry)
    shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array))
        f.flush()
        os.fsync(f.fileno())


def _save_text(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _replace_dir(new: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{PARKED}{target.name}+", dir=target.parent))
        os.rename(target, old / target.name)
    os.rename(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def entries(root: Path) -> list[tuple[str, dict | None, str | None]]:
    """(name, metadata or None, problem or None) for every dataset folder in the cache, sorted by name."""
    found = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        # Other parts keep their own folders in the data root (e.g. checkpoints/): only dataset folders count.
        if entry.name.startswith(".") or not _is_dataset(entry):
            continue
        try:
            meta = read_metadata(root, entry.name)
            found.append((entry.name, meta, None if meta else "incomplete (no metadata.json)"))
        except HarnessError as exc:
            found.append((entry.name, None, str(exc)))
    return found


def _is_dataset(entry: Path) -> bool:
    return entry.is_dir() and ((entry / METADATA).exists() or any(entry.glob("*.images.npy")))
