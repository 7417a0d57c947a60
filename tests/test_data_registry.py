import numpy as np
import pytest

import harness.data as data
from harness.data import registry
from harness.errors import HarnessError


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
