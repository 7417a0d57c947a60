"""The real archives of ../shared/data (found through $HARNESS_SHARED_DATA): counts, classes, checksums."""
import os
from pathlib import Path

import numpy as np
import pytest

import harness.data as data
from harness.cli import main
from harness.data import registry

SHARED = os.environ.get("HARNESS_SHARED_DATA")
pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED, reason="HARNESS_SHARED_DATA is not set (the folder of the shared archives)"),
]
ARCHIVES = {"cifar10": "cifar10-jpeg.tar.gz", "cifar100": "cifar100-subset.tar.gz", "dtd": "dtd-subset.tar.gz",
            "tinyimagenet32": "tiny-imagenet-32.tar.gz"}


def _sums():
    lines = (Path(SHARED) / "SHA256SUMS").read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """All four archives imported once, through the CLI, each checked against SHA256SUMS."""
    root = tmp_path_factory.mktemp("shared-cache")
    sums = _sums()
    for name, archive in ARCHIVES.items():
        rc = main(["data", "import", name, str(Path(SHARED) / archive), "--data-root", str(root),
                   "--sha256", sums[archive]])
        assert rc == 0, name
    return root


def test_cifar10(root, capsys):
    train, test = data.load("cifar10", "train", root), data.load("cifar10", "test", root)
    assert (len(train), len(test)) == (50_000, 10_000)
    assert train.class_counts().tolist() == [5_000] * 10 and test.class_counts().tolist() == [1_000] * 10
    assert train.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                             "truck")
    assert train.images.shape[1:] == (32, 32, 3)
    assert 100 < train.images.mean() < 140  # real photos, not blank decodes
    capsys.readouterr()
    assert main(["data", "list", "--data-root", str(root)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("cifar10 "))
    assert "train 50,000" in row and "test 10,000" in row


def test_tinyimagenet32_and_overlap_exclusion(root):
    train, val = data.load("tinyimagenet32", "train", root), data.load("tinyimagenet32", "val", root)
    assert (len(train), len(val)) == (100_000, 10_000) and len(train.classes) == 200
    assert train.class_counts().tolist() == [500] * 200 and val.class_counts().tolist() == [50] * 200
    excluded = registry.excluded_ids("tinyimagenet_cifar10_overlap.toml")
    assert excluded <= set(train.classes)  # every listed wnid is a real Tiny ImageNet class
    sub = data.load("tinyimagenet32-nocifar10", "train", root)
    assert len(sub.classes) == 175 == registry.get("tinyimagenet32-nocifar10").num_classes
    assert len(sub) == 87_500 and sub.class_counts().tolist() == [500] * 175
    assert len(data.load_ood("tinyimagenet32-val-nocifar10", root)) == 8_750


def test_cifar100_subset(root):
    train, test = data.load("cifar100", "train", root), data.load("cifar100", "test", root)
    assert (len(train), len(test)) == (1_117, 916) and len(train.classes) == 100
    assert np.all(train.class_counts() + test.class_counts() > 0)  # all 100 fine classes present
    assert len(data.load_ood("cifar100", root)) == 2_033


def test_dtd_subset(root):
    d = data.load("dtd", "test", root)
    assert len(d) == 1_200 and len(d.classes) == 10 and d.class_counts().tolist() == [120] * 10
    assert d.images.shape[1:] == (32, 32, 3)
    assert data.cache.read_metadata(root, "dtd")["transform"] == "Resize(32) + CenterCrop(32)"
