"""Every reader on small files written in the exact on-disk format of the real datasets, as folders and as tar.gz.

The writers here are also used by the other tests of the data layer (test_data_cli, test_data_cache).
"""
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

import harness.data as data
from harness.data import registry
from harness.data.importer import import_dataset

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def rand_images(n, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the original files are Python 2 cPickle output


def _rows(images):
    """CIFAR's row layout: 1024 R, then 1024 G, then 1024 B values, each plane row-major."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def write_cifar10(root, per_batch=4):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    images = rand_images(per_batch * 6, seed=1)
    labels = np.arange(len(images)) % 10
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        sl = slice(i * per_batch, (i + 1) * per_batch)
        _dump(d / name, {b"batch_label": f"batch {i}".encode(), b"labels": labels[sl].tolist(),
                         b"data": _rows(images[sl]), b"filenames": [b"x.png"] * per_batch})
    _dump(d / "batches.meta", {b"num_cases_per_batch": per_batch, b"num_vis": 3072,
                               b"label_names": [n.encode() for n in CIFAR10_NAMES]})
    return images, labels


def write_cifar100(root, n=6):
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    images = rand_images(2 * n, seed=2)
    fine = (np.arange(2 * n) * 7) % 100
    for i, name in enumerate(["train", "test"]):
        sl = slice(i * n, (i + 1) * n)
        _dump(d / name, {b"filenames": [b"x.png"] * n, b"batch_label": b"b", b"fine_labels": fine[sl].tolist(),
                         b"coarse_labels": (fine[sl] // 5).tolist(), b"data": _rows(images[sl])})
    _dump(d / "meta", {b"fine_label_names": [f"class{i:02d}".encode() for i in range(100)],
                       b"coarse_label_names": [f"super{i:02d}".encode() for i in range(20)]})
    return images, fine


def write_imagefolder(root, classes=("cat", "dog", "frog"), per_class=3, size=32, ext="png"):
    """<root>/{train,test}/<class>/NNNN.<ext>; returns {split: (images, labels)} in reading order."""
    out = {}
    for s, split in enumerate(("train", "test")):
        imgs, labels = [], []
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                img = rand_images(1, size, size, seed=100 * s + 10 * c + i)[0]
                Image.fromarray(img).save(root / split / cls / f"{i:04d}.{ext}")
                imgs.append(img)
                labels.append(c)
        out[split] = (np.stack(imgs), np.array(labels))
    return out


def tiny_wnids():
    """200 wnids like Tiny ImageNet's: the 25 that overlap CIFAR-10 (beach wagon first, tabby second) + 175 made up."""
    overlap = sorted(registry.excluded_ids("tinyimagenet_cifar10_overlap.toml"))
    overlap.remove("n02814533")
    overlap.remove("n02123045")
    return ("n02814533", "n01443537", "n02123045") + tuple(overlap) + tuple(f"n9{i:07d}" for i in range(174))


def write_tinyimagenet(root, wnids=None, per_class=1, n_val=4, size=32):
    """Train images of class w are all one grey level; val_i is annotated with wnids[i % 3]."""
    wnids = wnids or tiny_wnids()
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n02814533\tbeach wagon\nn01443537\tgoldfish\nn02123045\ttabby, tabby cat\n"
                                    "n00000001\tsomething else\n")
    for w in wnids:
        (root / "train" / w / "images").mkdir(parents=True)
        (root / "train" / w / f"{w}_boxes.txt").write_text("")
        for i in range(per_class):
            img = rand_images(1, size, size, seed=i)[0]
            img.flat[0] = len(w) % 256
            Image.fromarray(img).save(root / "train" / w / "images" / f"{w}_{i}.png")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for i in range(n_val):
        Image.fromarray(rand_images(1, size, size, seed=50 + i)[0]).save(root / "val" / "images" / f"val_{i}.png")
        lines.append(f"val_{i}.png\t{wnids[i % min(3, len(wnids))]}\t0\t0\t10\t10")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def write_dtd(root, classes=("banded", "zigzagged"), per_class=2):
    for c in classes:
        (root / "dtd" / "images" / c).mkdir(parents=True)
        for i in range(per_class):
            h, w = 40 + 8 * i, 64 + 4 * i  # mixed sizes, like the real textures
            Image.fromarray(rand_images(1, h, w, seed=i)[0]).save(root / "dtd" / "images" / c / f"{c}_{i:04d}.png")
    (root / "dtd" / "labels").mkdir()
    (root / "dtd" / "labels" / "train1.txt").write_text("banded/banded_0000.jpg\n")


def write_svhn(root, n=5):
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for s, split in enumerate(("train", "test")):
        images = rand_images(n, seed=s + 7)
        digits = np.arange(n) % 10
        y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images.transpose(1, 2, 3, 0), "y": y})
        out[split] = (images, digits)
    return out


def tar_gz(src_dir, dest):
    with tarfile.open(dest, "w:gz") as tar:
        for p in sorted(src_dir.iterdir()):
            tar.add(p, arcname=p.name)
    return dest


@pytest.fixture(params=["dir", "tar.gz"])
def packed(request, tmp_path):
    """Turns a written folder into the source to import: the folder itself, or a .tar.gz of it."""
    def pack(folder):
        return folder if request.param == "dir" else tar_gz(folder, tmp_path / "src.tar.gz")
    return pack


def _import(name, src, root, **kw):
    status, where = import_dataset(name, src, data_root=root, **kw)
    assert status == "imported" and where == root / name
    return where


def test_cifar10_pickles(tmp_path, packed):
    images, labels = write_cifar10(tmp_path / "src")
    _import("cifar10", packed(tmp_path / "src"), tmp_path / "cache")
    train, test = data.load("cifar10", "train", tmp_path / "cache"), data.load("cifar10", "test", tmp_path / "cache")
    assert train.classes == tuple(CIFAR10_NAMES)
    assert np.array_equal(train.images, images[:20]) and np.array_equal(test.images, images[20:])
    assert train.labels.tolist() == labels[:20].tolist() and test.labels.dtype == np.int64


def test_cifar100_pickles_fine_labels(tmp_path, packed):
    images, fine = write_cifar100(tmp_path / "src")
    _import("cifar100", packed(tmp_path / "src"), tmp_path / "cache")
    test = data.load("cifar100", "test", tmp_path / "cache")
    assert len(test.classes) == 100 and test.classes[3] == "class03"
    assert np.array_equal(test.images, images[6:]) and test.labels.tolist() == fine[6:].tolist()


def test_imagefolder(tmp_path, packed):
    names = tuple(CIFAR10_NAMES)
    written = write_imagefolder(tmp_path / "src" / "cifar10-jpeg", classes=names, per_class=2)
    _import("cifar10", packed(tmp_path / "src"), tmp_path / "cache")
    for split in ("train", "test"):
        got = data.load("cifar10", split, tmp_path / "cache")
        assert got.classes == names
        assert np.array_equal(got.images, written[split][0]) and got.labels.tolist() == written[split][1].tolist()


def test_imagefolder_val_is_test_and_natural_order(tmp_path):
    src = tmp_path / "src"
    for split in ("train", "val"):
        for i in (10, 9, 2):  # natural order 2, 9, 10
            (src / split / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(src / split / "a" / f"img{i}.png")
    _import("mine", src, tmp_path / "cache", fmt="imagefolder")
    test = data.load("mine", "val", tmp_path / "cache", image_size=4)
    assert test.images[:, 0, 0, 0].tolist() == [2, 9, 10]


def test_tinyimagenet_layout_and_derived_subset(tmp_path, packed):
    wnids = tiny_wnids()
    write_tinyimagenet(tmp_path / "src" / "tiny-imagenet-32", n_val=6)
    _import("tinyimagenet32", packed(tmp_path / "src"), tmp_path / "cache")
    train = data.load("tinyimagenet32", "train", tmp_path / "cache")
    val = data.load("tinyimagenet32", "val", tmp_path / "cache")
    assert train.classes == tuple(sorted(wnids)) and train.class_counts().tolist() == [1] * 200
    # val_i is annotated with wnids[i % 3] = beach wagon, goldfish, tabby
    assert [val.classes[k] for k in val.labels] == [wnids[i % 3] for i in range(6)]
    assert np.array_equal(val.images[1], rand_images(1, seed=51)[0])
    meta = data.cache.read_metadata(tmp_path / "cache", "tinyimagenet32")
    assert meta["class_descriptions"][train.classes.index("n02123045")] == "tabby, tabby cat"
    # derived: the 25 CIFAR-10 overlap classes removed, the rest relabelled 0..174 in wnid order
    sub = data.load("tinyimagenet32-nocifar10", "train", tmp_path / "cache")
    assert len(sub.classes) == 175 and sub.labels.tolist() == list(range(175))
    assert not set(sub.classes) & registry.excluded_ids("tinyimagenet_cifar10_overlap.toml")
    ood = data.load_ood("tinyimagenet32-val-nocifar10", tmp_path / "cache")
    assert len(ood) == 2 and np.array_equal(ood.images[0], val.images[1])  # only the goldfish images stay


def test_tinyimagenet_upper_case_jpeg_any_name(tmp_path):
    root = tmp_path / "src"
    write_tinyimagenet(root, wnids=("n01443537", "n01443538"), n_val=2)
    for p in list(root.rglob("*.png")):
        Image.open(p).save(p.with_suffix(".JPEG"), quality=95)
        p.unlink()
    ann = root / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().replace(".png", ".JPEG"))
    _import("tiny-mine", root, tmp_path / "cache", fmt="tinyimagenet")
    assert data.load("tiny-mine", "train", tmp_path / "cache").class_counts().tolist() == [1, 1]


def test_dtd_resize_center_crop(tmp_path, packed):
    write_dtd(tmp_path / "src")
    _import("dtd", packed(tmp_path / "src"), tmp_path / "cache")
    d = data.load("dtd", "test", tmp_path / "cache")
    assert d.images.shape == (4, 32, 32, 3) and d.classes == ("banded", "zigzagged")
    import torchvision.transforms as T

    original = Image.fromarray(rand_images(1, 48, 68, seed=1)[0])
    expected = np.asarray(T.CenterCrop(32)(T.Resize(32)(original)))
    assert np.array_equal(d.images[1], expected)
    meta = data.cache.read_metadata(tmp_path / "cache", "dtd")
    assert meta["transform"] == "Resize(32) + CenterCrop(32)"
    assert data.load_ood("dtd", tmp_path / "cache").images.shape == (4, 32, 32, 3)


def test_dtd_image_size_option(tmp_path):
    write_dtd(tmp_path / "src")
    _import("dtd", tmp_path / "src", tmp_path / "cache", image_size=24)
    assert data.load("dtd", "test", tmp_path / "cache", image_size=24).images.shape == (4, 24, 24, 3)
    with pytest.raises(data.HarnessError, match="--image-size 32"):
        data.load("dtd", "test", tmp_path / "cache")


def test_svhn_mat(tmp_path, packed):
    written = write_svhn(tmp_path / "src")
    _import("svhn", packed(tmp_path / "src"), tmp_path / "cache")
    for split in ("train", "test"):
        got = data.load("svhn", split, tmp_path / "cache")
        assert np.array_equal(got.images, written[split][0])  # Resize(32) of 32x32 is the identity
        assert got.labels.tolist() == written[split][1].tolist()  # label 10 -> digit 0


def test_unlabeled_folder(tmp_path, packed):
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    Image.fromarray(rand_images(1, 50, 40)[0]).save(src / "a.jpg")
    Image.fromarray(rand_images(1, 20, 30)[0]).convert("L").save(src / "deep" / "er" / "b.png")
    (src / "notes.txt").write_text("not an image")
    _import("places365", packed(src), tmp_path / "cache")
    got = data.load_ood("places365", tmp_path / "cache")
    assert got.images.shape == (2, 32, 32, 3) and got.labels.tolist() == [-1, -1] and got.classes == ()
    _import("my-ood", packed(src), tmp_path / "cache", fmt="folder")
    assert len(data.load_ood("my-ood", tmp_path / "cache")) == 2
