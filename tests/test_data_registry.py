import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

import harness.data as data
from harness.data import registry
from harness.errors import HarnessError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_FINE = tuple("""
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle
    caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant
    flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man
    maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
    plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
    snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor
    train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split())
# Each Tiny ImageNet overlap list: (file, the class names its `overlaps` may take, derived datasets built from it).
OVERLAP_LISTS = {
    "tinyimagenet_cifar10_overlap.toml": (CIFAR10_CLASSES, ("tinyimagenet32-nocifar10", "tinyimagenet-nocifar10")),
    "tinyimagenet_cifar100_overlap.toml": (CIFAR100_FINE, ("tinyimagenet32-nocifar100", "tinyimagenet-nocifar100")),
}


def test_digits_splits():
    train, test = data.load("digits", "train"), data.load("digits", "test")
    assert (len(train), len(test)) == (1198, 599)
    assert train.images.shape[1:] == (32, 32, 3) and train.images.dtype == np.uint8
    assert train.classes == tuple("0123456789")
    assert train.images.max() == 255 and train.images.min() == 0
    # grey: the three channels are equal; nearest upsampling: 4x4 blocks
    assert np.array_equal(train.images[..., 0], train.images[..., 2])
    assert np.array_equal(train.images[:, ::4, ::4], train.images[:, 3::4, 3::4])
    # stratified: every class ~ 2/3 train
    share = train.class_counts() / (train.class_counts() + test.class_counts())
    assert np.all(np.abs(share - 2 / 3) < 0.02)
    assert np.array_equal(data.load("digits", "train").images, train.images)  # fixed split


def test_digit_subsets_relabelled():
    full = data.load("digits", "test")
    low, high = data.load("digits-0-4", "test"), data.load("digits-5-9", "test")
    assert low.classes == ("0", "1", "2", "3", "4") and high.classes == ("5", "6", "7", "8", "9")
    assert set(low.labels) == set(range(5)) and set(high.labels) == set(range(5))
    assert len(low) + len(high) == len(full)
    assert np.array_equal(high.images, full.images[full.labels >= 5])
    assert np.array_equal(high.labels, full.labels[full.labels >= 5] - 5)
    assert data.load("digits-0-4", "val").images.shape == low.images.shape
    assert data.load("digits", "train", image_size=20).images.shape[1:] == (20, 20, 3)


def test_registry_specs():
    assert registry.get("cifar10").num_classes == 10
    assert registry.get("digits-0-4").num_classes == 5
    assert registry.get("tinyimagenet32-nocifar10").num_classes == 200 - len(
        registry.excluded_ids("tinyimagenet_cifar10_overlap.toml"))
    assert {"gaussian", "rademacher", "blobs", "dtd", "cifar100", "tinyimagenet32-val-nocifar10"} <= set(
        registry.ood_sets("cifar10"))
    for dataset in registry.names():
        for ood in registry.ood_sets(dataset):
            spec = registry.get_ood(ood)
            assert spec.synthetic or spec.dataset in registry.DATASETS, ood
    assert registry.get_ood("blobs").synthetic
    assert registry.get_ood("tinyimagenet32-val-nocifar10").dataset == "tinyimagenet32-nocifar10"
    assert registry.get_ood("tinyimagenet32-val-nocifar100").dataset == "tinyimagenet32-nocifar100"
    assert "tinyimagenet32-val-nocifar100" in registry.ood_sets("cifar100")
    assert "tinyimagenet32-val-nocifar100" not in registry.ood_sets("cifar10")


def _raw_list(filename):
    """The TOML file as written (registry.exclusions() is a dict, so it would hide a duplicated wnid)."""
    import tomllib

    path = Path(registry.__file__).with_name(filename)
    return path.read_text(), tomllib.loads(path.read_text())


@pytest.mark.parametrize("filename", sorted(OVERLAP_LISTS))
def test_overlap_list_integrity(filename):
    classes, derived = OVERLAP_LISTS[filename]
    text, raw = _raw_list(filename)
    excluded = [e["wnid"] for e in raw["exclude"]]
    kept = [k["wnid"] for k in raw.get("keep", [])]
    assert len(excluded) == len(set(excluded)), "a wnid is excluded twice"
    assert len(kept) == len(set(kept)), "a wnid is kept twice"
    assert not set(excluded) & set(kept), "a wnid is both excluded and kept"
    for e in raw["exclude"]:
        assert re.fullmatch(r"n\d{8}", e["wnid"]), e
        assert all(isinstance(e.get(k), str) and e[k].strip() for k in ("name", "overlaps", "reason")), e
        assert e["overlaps"] in classes, e
    for k in raw.get("keep", []):
        assert re.fullmatch(r"n\d{8}", k["wnid"]) and k.get("name", "").strip() and k.get("reason", "").strip(), k
    assert set(registry.exclusions(filename)) == set(excluded)
    # the header's count line agrees with the list
    n_excluded, n_remain = map(int, re.search(r"(\d+) are excluded, (\d+) remain", text).groups())
    assert (n_excluded, n_remain) == (len(excluded), 200 - len(excluded))
    for name in derived:
        spec = registry.get(name)
        assert spec.exclude == filename and spec.num_classes == 200 - len(excluded)
        assert registry.DATASETS[spec.base].num_classes == 200


SHARED = os.environ.get("HARNESS_SHARED_DATA")


@pytest.mark.shared_data
@pytest.mark.slow  # streams the whole 43 MB archive: wnids.txt is stored at its end
@pytest.mark.skipif(not SHARED, reason="HARNESS_SHARED_DATA is not set (the folder of the shared archives)")
def test_overlap_lists_against_shared_archives():
    """Every listed wnid (excluded or kept) is one of the 200 of Tiny ImageNet's wnids.txt; CIFAR100_FINE is the
    set of class folders of the CIFAR-100 subset."""
    with tarfile.open(Path(SHARED) / "tiny-imagenet-32.tar.gz", "r|gz") as tar:
        wnids = next(tar.extractfile(m).read().decode().split() for m in tar if m.name.endswith("/wnids.txt"))
    assert len(wnids) == len(set(wnids)) == 200
    for filename in OVERLAP_LISTS:
        _, raw = _raw_list(filename)
        listed = {e["wnid"] for e in raw["exclude"]} | {k["wnid"] for k in raw.get("keep", [])}
        assert listed <= set(wnids), (filename, sorted(listed - set(wnids)))
    with tarfile.open(Path(SHARED) / "cifar100-subset.tar.gz", "r|gz") as tar:
        folders = {Path(m.name).parts[2] for m in tar if m.isfile() and len(Path(m.name).parts) == 4}
    assert folders == set(CIFAR100_FINE) and len(CIFAR100_FINE) == 100


def test_unknown_and_missing(tmp_path):
    with pytest.raises(HarnessError, match="unknown dataset 'nope'.*cifar10"):
        registry.get("nope")
    with pytest.raises(HarnessError, match="python -m harness data import cifar10 PATH"):
        data.load("cifar10", "train", data_root=tmp_path)
    with pytest.raises(HarnessError, match="python -m harness data import tinyimagenet32 PATH"):
        data.load("tinyimagenet32-nocifar10", "train", data_root=tmp_path)
    with pytest.raises(HarnessError, match="no split 'train'"):
        data.load("dtd", "train", data_root=tmp_path)
    with pytest.raises(HarnessError, match="synthetic"):
        data.load_ood("gaussian")


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DATA_ROOT", str(tmp_path / "env"))
    assert data.data_root() == tmp_path / "env"
    assert data.data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("HARNESS_DATA_ROOT")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_root() == tmp_path / "xdg" / "uncertainty-harness"
