"""Shifted test sets: `data corrupt` (generated CIFAR-10-C), importing the released CIFAR-10-C layout and CIFAR-10.1,
reading one (corruption, severity) cell, and one-line errors for bad input."""
import json

import numpy as np
import pytest
from test_data_cli import expect_error, run
from test_data_corruptions import write_frost
from test_data_readers import CIFAR10_NAMES, packed, write_cifar10  # noqa: F401 (packed: a fixture)

from harness.data import cache, corruptions, frost, shifted
from harness.data.importer import import_dataset


@pytest.fixture
def root(tmp_path):
    """A data root with a CIFAR-10 of 4 test images (labels 0..3) imported from pickles."""
    write_cifar10(tmp_path / "src", per_batch=4)
    import_dataset("cifar10", tmp_path / "src", data_root=tmp_path / "cache")
    return tmp_path / "cache"


def test_corrupt_writes_cells_that_data_list_shows(root, capsys):
    rc, _, err = run(capsys, "corrupt", "cifar10", "--corruptions", "gaussian_noise,fog", "--severities", "5,1",
                     "--data-root", root)
    assert rc == 0 and "2 x 2 x 4 images" in err and "gaussian_noise" in err and "/s" in err
    rc, out, _ = run(capsys, "list", "--data-root", root)
    row = next(line for line in out.splitlines() if line.startswith("cifar10-c "))
    assert "2 corruptions x 2 severities x 4 (gaussian_noise, fog; severities 1,5)" in row and "corrupt" in row
    assert shifted.cells("cifar10-c", root) == {"gaussian_noise": (1, 5), "fog": (1, 5)}
    clean = cache.load_split(root, "cifar10", "test")
    for name in ("gaussian_noise", "fog"):
        for severity in (1, 5):
            cell = shifted.load_cell("cifar10-c", name, severity, root)
            assert np.array_equal(cell.images, corruptions.corrupt(clean.images, name, severity))
            assert np.array_equal(cell.labels, clean.labels) and cell.classes == tuple(CIFAR10_NAMES)
    meta = json.loads((root / "cifar10-c" / "metadata.json").read_text())
    assert meta["corrupt"]["backends"] == {"gaussian_noise": "numpy", "fog": "numpy"}
    assert meta["corrupt"]["seed"] == 0 and meta["source"]["sha256"] == cache.read_metadata(root, "cifar10")[
        "source"]["sha256"]


def test_generation_is_reproducible_in_parts_and_merges(root, capsys):
    run(capsys, "corrupt", "cifar10", "--corruptions", "motion_blur,snow", "--data-root", root)
    whole = shifted.load_cell("cifar10-c", "snow", 4, root).images.copy()
    meta = cache.read_metadata(root, "cifar10-c")
    assert meta["corrupt"]["backends"]["snow"] == motion_blur_backend()
    # the first 2 images alone, under another name: the same pixels
    run(capsys, "corrupt", "cifar10", "--corruptions", "snow", "--severities", "4", "--images", "2", "--name",
        "part", "--data-root", root)
    assert np.array_equal(shifted.load_cell("part", "snow", 4, root).images, whole[:2])
    # a later generation into the same entry adds corruptions and keeps the others
    run(capsys, "corrupt", "cifar10", "--corruptions", "contrast", "--severities", "2", "--data-root", root)
    assert shifted.cells("cifar10-c", root) == {"motion_blur": (1, 2, 3, 4, 5), "snow": (1, 2, 3, 4, 5),
                                                "contrast": (2,)}
    rc, out, _ = run(capsys, "list", "--data-root", root)
    assert ("motion_blur 5 x 4 (severities 1,2,3,4,5)  snow 5 x 4 (severities 1,2,3,4,5)  contrast 1 x 4 "
            "(severities 2)") in out
    assert np.array_equal(shifted.load_cell("cifar10-c", "snow", 4, root).images, whole)
    # another seed is another dataset: refused, and with --replace the entry is replaced whole
    before = shifted.cells("cifar10-c", root)
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "contrast", "--seed", "3", "--data-root", root],
                 "dataset 'cifar10-c' already exists", "--replace")
    assert shifted.cells("cifar10-c", root) == before
    run(capsys, "corrupt", "cifar10", "--corruptions", "contrast", "--seed", "3", "--replace", "--data-root", root)
    assert shifted.cells("cifar10-c", root) == {"contrast": (1, 2, 3, 4, 5)}


def motion_blur_backend():
    from harness.data import motion_blur

    return motion_blur.backend()


def test_frost_needs_textures(root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(frost, "package_dir", lambda: None)
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "fog,frost", "--data-root", root],
                 "frost needs its texture images", "pip install imagecorruptions", "--frost-dir DIR")
    assert not (root / "cifar10-c").exists()
    textures = write_frost(tmp_path / "textures")
    rc, _, _ = run(capsys, "corrupt", "cifar10", "--corruptions", "frost", "--severities", "3", "--frost-dir",
                   textures, "--data-root", root)
    assert rc == 0 and shifted.cells("cifar10-c", root) == {"frost": (3,)}


def test_corrupt_bad_input(root, capsys):
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "fog,smoke", "--data-root", root],
                 "unknown corruption 'smoke'; known: gaussian_noise, shot_noise")
    for bad in ("0", "1,6", "-1"):
        expect_error(capsys, ["corrupt", "cifar10", "--severities", bad, "--data-root", root], "is outside 1..5")
    expect_error(capsys, ["corrupt", "cifar10", "--severities", "1,x", "--data-root", root],
                 "--severities: expected comma-separated integers 1..5, got '1,x'")
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "fog,,snow", "--data-root", root],
                 "--corruptions: expected comma-separated corruption names")
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "fog,fog", "--data-root", root], "listed twice")
    expect_error(capsys, ["corrupt", "cifar100", "--corruptions", "fog", "--data-root", root],
                 "'cifar100' is not in the cache")
    expect_error(capsys, ["corrupt", "cifar10", "--corruptions", "fog", "--name", "../x", "--data-root", root],
                 "--name '../x': expected a name of lower-case letters")
    assert not (root / "cifar10-c").exists()


def write_released(folder, images_per_severity=4, corruptions_=("fog", "speckle_noise"), seed=0):
    """The released CIFAR-10-C layout: <corruption>.npy uint8 (5 N, 32, 32, 3), labels.npy uint8 (5 N,)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(images_per_severity) % 10, 5).astype(np.uint8)
    np.save(folder / "labels.npy", labels)
    out = {}
    for c in corruptions_:
        out[c] = rng.integers(0, 256, (5 * images_per_severity, 32, 32, 3), dtype=np.uint8)
        np.save(folder / f"{c}.npy", out[c])
    return out, labels


def test_import_released_layout_gives_the_generated_structure(root, tmp_path, capsys, packed):
    arrays, labels = write_released(tmp_path / "released" / "CIFAR-10-C")
    rc, _, err = run(capsys, "import", "cifar10-c", packed(tmp_path / "released"), "--data-root", root)
    assert rc == 0, err
    assert shifted.cells("cifar10-c", root) == {"fog": (1, 2, 3, 4, 5), "speckle_noise": (1, 2, 3, 4, 5)}
    for severity in (1, 3, 5):
        cell = shifted.load_cell("cifar10-c", "fog", severity, root)
        assert np.array_equal(cell.images, arrays["fog"][(severity - 1) * 4:severity * 4])
        assert np.array_equal(cell.labels, labels[:4]) and cell.labels.dtype == np.int64
        assert cell.classes == tuple(CIFAR10_NAMES)  # from the imported clean set
    imported = cache.read_metadata(root, "cifar10-c")
    run(capsys, "corrupt", "cifar10", "--corruptions", "fog", "--name", "made", "--data-root", root)
    made = cache.read_metadata(root, "made")
    for key in ("shape", "classes", "schema_version"):
        assert imported[key] == made[key]
    assert imported["splits"]["fog"]["count"] == made["splits"]["fog"]["count"] == 20
    assert imported["severities"]["fog"] == made["severities"]["fog"] == [1, 2, 3, 4, 5]
    rc, out, _ = run(capsys, "list", "--data-root", root)
    assert "1 corruption x 5 severities x 4 (fog; severities 1,2,3,4,5)" in next(
        line for line in out.splitlines() if line.startswith("made "))


def test_import_without_the_clean_set_numbers_the_classes(tmp_path):
    write_released(tmp_path / "src")
    import_dataset("cifar10-c", tmp_path / "src", data_root=tmp_path / "cache")
    assert shifted.load_cell("cifar10-c", "fog", 2, tmp_path / "cache").classes == tuple(map(str, range(10)))


@pytest.mark.parametrize("damage, fragments", [
    (lambda d: np.save(d / "smog.npy", np.zeros((20, 32, 32, 3), np.uint8)), ["smog.npy", "unknown corruption 'smog'"]),
    (lambda d: np.save(d / "fog.npy", np.zeros((20, 32, 32), np.uint8)),
     ["fog.npy", "expected uint8 images (N, H, W, 3)"]),
    (lambda d: np.save(d / "fog.npy", np.zeros((20, 32, 32, 3), np.float32)), ["fog.npy", "got float32"]),
    (lambda d: np.save(d / "fog.npy", np.zeros((15, 32, 32, 3), np.uint8)), ["fog.npy", "holds 15 images",
                                                                             "labels.npy has 20 labels"]),
    (lambda d: np.save(d / "labels.npy", np.arange(18) % 10), ["labels.npy", "holds 18 labels",
                                                               "5 severities x N test images"]),
    (lambda d: np.save(d / "labels.npy", np.arange(20) % 10),
     ["labels.npy", "the 5 severity blocks of 4 labels differ"]),
    (lambda d: np.save(d / "labels.npy", np.tile([0, 1, 12, 3], 5)), ["holds label 12", "cifar10-c has 10 classes"]),
    (lambda d: np.save(d / "labels.npy", np.zeros((20, 2), np.int64)), ["labels.npy", "expected integer labels (N,)"]),
    # D6: a uint64 label above 2**63 is reported as itself, not wrapped to a negative number
    (lambda d: np.save(d / "labels.npy", np.full(20, 2**63 + 5, np.uint64)),
     ["labels.npy", "holds label 9223372036854775813, expected labels 0..99,999"]),
    # D6: a shape whose element count overflows int64 is refused by name, before any reshape
    (lambda d: write_npy_header(d / "fog.npy", (2**40, 2**40, 32, 3)),
     ["fog.npy", "not a readable .npy", "its header declares uint8 (1099511627776, 1099511627776, 32, 3)"]),
    (lambda d: (d / "fog.npy").write_bytes((d / "fog.npy").read_bytes()[:5000]), ["fog.npy", "not a readable .npy"]),
])
def test_import_released_layout_bad_input(tmp_path, capsys, damage, fragments):
    write_released(tmp_path / "src")
    damage(tmp_path / "src")
    expect_error(capsys, ["import", "cifar10-c", tmp_path / "src", "--data-root", tmp_path / "cache"], *fragments)
    assert not (tmp_path / "cache" / "cifar10-c").exists()


def write_npy_header(path, shape):
    """A .npy file whose header declares `shape` (uint8) over a few bytes of data."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
        f.write(bytes(64))


@pytest.mark.parametrize("label", [10**7, 2**40])
def test_import_of_a_huge_label_is_refused_before_allocating(tmp_path, capsys, label):
    """D5: a user-named CIFAR-10-C style set with one huge label: one line, no class list of that length."""
    write_released(tmp_path / "src")
    labels = np.tile(np.arange(4), 5)
    labels[2::4] = label
    np.save(tmp_path / "src" / "labels.npy", labels)
    expect_error(capsys, ["import", "mine", tmp_path / "src", "--format", "cifar-c", "--data-root", tmp_path / "c"],
                 "labels.npy: holds label", f"{label}, expected labels 0..99,999")
    assert not (tmp_path / "c" / "mine").exists()


def write_cifar101(folder, n=20, labels=None):
    folder.mkdir(parents=True)
    images = np.random.default_rng(1).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % 10 if labels is None else labels
    np.save(folder / "cifar10.1_v6_data.npy", images)
    np.save(folder / "cifar10.1_v6_labels.npy", labels)
    return images, labels


def test_cifar101_is_a_shifted_test_set(root, tmp_path, capsys, packed):
    images, labels = write_cifar101(tmp_path / "c101" / "cifar10.1")
    rc, _, err = run(capsys, "import", "cifar10.1", packed(tmp_path / "c101"), "--data-root", root)
    assert rc == 0 and "test 20 images" in err
    from harness import data

    test = data.load("cifar10.1", "test", root)
    assert np.array_equal(test.images, images) and np.array_equal(test.labels, labels)
    assert test.classes == tuple(CIFAR10_NAMES)
    assert cache.read_metadata(root, "cifar10.1")["version"] == "v6"


def test_cifar101_bad_input(tmp_path, capsys):
    write_cifar101(tmp_path / "a", labels=np.arange(19) % 10)
    expect_error(capsys, ["import", "cifar10.1", tmp_path / "a", "--data-root", tmp_path / "c"],
                 "cifar10.1_v6_data.npy", "holds 20 images", "has 19 labels")
    write_cifar101(tmp_path / "b", labels=np.arange(20) + 5)
    expect_error(capsys, ["import", "cifar10.1", tmp_path / "b", "--data-root", tmp_path / "c"],
                 "holds label 24", "cifar10.1 has 10 classes")
    (tmp_path / "d").mkdir()
    expect_error(capsys, ["import", "cifar10.1", tmp_path / "d", "--data-root", tmp_path / "c"],
                 "no cifar10.1 data found", "cifar10.1_v6_data.npy and cifar10.1_v6_labels.npy")


def test_load_cell_errors(root, capsys):
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="python -m harness data corrupt cifar10, or import the released files"):
        shifted.load_cell("cifar10-c", "fog", 1, root)
    run(capsys, "corrupt", "cifar10", "--corruptions", "fog", "--severities", "2", "--data-root", root)
    with pytest.raises(HarnessError, match="has fog at severities 2, not 3"):
        shifted.load_cell("cifar10-c", "fog", 3, root)
    with pytest.raises(HarnessError, match="has no corruption 'snow'; it has: fog"):
        shifted.load_cell("cifar10-c", "snow", 2, root)
    with pytest.raises(HarnessError, match="severity 7 is outside 1..5"):
        shifted.load_cell("cifar10-c", "fog", 7, root)
    with pytest.raises(HarnessError, match="not a corrupted dataset"):
        shifted.load_cell("cifar10", "fog", 1, root)
