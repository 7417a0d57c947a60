"""The cache never reads a half-written or damaged dataset as valid, and replaces a dataset atomically."""
import json

import numpy as np
import pytest

import harness.data as data
from harness.data import cache
from harness.errors import HarnessError


def _set(n, value=0):
    return data.ImageSet(np.full((n, 32, 32, 3), value, np.uint8), np.zeros(n, np.int64), ("a",))


def _write(root, name="cifar10", n=3, value=0):
    return cache.write(root, name, {"train": _set(n, value), "test": _set(1, value)},
                       {"format": "imagefolder", "source": {"path": "/x", "sha256": "ab"}, "transform": None})


def test_roundtrip_and_mmap(tmp_path):
    _write(tmp_path)
    meta = cache.read_metadata(tmp_path, "cifar10")
    assert meta["splits"]["train"] == {"count": 3, "per_class": [3]} and meta["shape"] == [32, 32, 3]
    got = data.load("cifar10", "train", tmp_path, mmap=True)
    assert isinstance(got.images, np.memmap) and len(got) == 3
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_replace_keeps_old_version_when_write_fails(tmp_path, monkeypatch):
    _write(tmp_path, value=1)

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(cache, "_save_text", crash)  # the metadata is written last: crash just before it
    with pytest.raises(OSError):
        _write(tmp_path, n=5, value=2)
    assert data.load("cifar10", "train", tmp_path).images[0, 0, 0, 0] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["cifar10"]  # the temporary folder is gone


def test_leftover_temporary_folder_is_never_read(tmp_path, capsys):
    _write(tmp_path, name="scratch")
    (tmp_path / "scratch").rename(tmp_path / ".tmp-cifar10-abc")  # what a killed import leaves behind
    with pytest.raises(HarnessError, match="not in the cache"):
        data.load("cifar10", "train", tmp_path)
    assert cache.entries(tmp_path) == []


def test_missing_metadata_reads_as_absent(tmp_path):
    _write(tmp_path)
    (tmp_path / "cifar10" / "metadata.json").unlink()
    with pytest.raises(HarnessError, match="python -m harness data import cifar10"):
        data.load("cifar10", "train", tmp_path)
    assert cache.entries(tmp_path) == [("cifar10", None, "incomplete (no metadata.json)")]


@pytest.mark.parametrize("damage", ["truncate", "labels", "json", "schema"])
def test_damaged_entry_is_reported(tmp_path, damage, capsys):
    entry = _write(tmp_path)
    if damage == "truncate":
        path = entry / "train.images.npy"
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "labels":
        np.save(entry / "train.labels.npy", np.zeros(2, np.int64))
    elif damage == "json":
        (entry / "metadata.json").write_text("{")
    else:
        meta = json.loads((entry / "metadata.json").read_text())
        meta["schema_version"] = 99
        (entry / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(HarnessError, match="is damaged.*import it again"):
        data.load("cifar10", "train", tmp_path)
    from harness.cli import main

    assert main(["data", "list", "--data-root", str(tmp_path)]) == 0
    assert "damaged: cifar10" in capsys.readouterr().out


def test_other_folders_in_the_root_are_ignored(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "model.pt").write_bytes(b"")
    assert cache.entries(tmp_path) == []


def test_unknown_split_and_size(tmp_path):
    _write(tmp_path)
    with pytest.raises(HarnessError, match="no split 'extra'"):
        cache.load_split(tmp_path, "cifar10", "extra")
    with pytest.raises(HarnessError, match="cached at 32x32"):
        data.load("cifar10", "train", tmp_path, image_size=64)
