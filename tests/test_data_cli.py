"""`python -m harness data import|list` through harness.cli.main: results, and one-line errors for bad input."""
import io
import pickle

import numpy as np
import pytest
import scipy.io
from PIL import Image
from test_data_readers import (CIFAR10_NAMES, rand_images, tar_gz, write_cifar10, write_imagefolder,
                               write_svhn, write_tinyimagenet)

from harness.cli import main


def run(capsys, *argv):
    rc = main(["data", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def expect_error(capsys, argv, *fragments):
    rc, _, err = run(capsys, *argv)
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def cifar_tree(tmp_path):
    write_imagefolder(tmp_path / "src" / "cifar10-jpeg", classes=tuple(CIFAR10_NAMES), per_class=3, ext="jpg")
    return tmp_path / "src"


def test_import_list_and_reimport(tmp_path, capsys, cifar_tree):
    archive = tar_gz(cifar_tree, tmp_path / "cifar10-jpeg.tar.gz")
    root = tmp_path / "cache"
    rc, _, err = run(capsys, "import", "cifar10", archive, "--data-root", root)
    assert rc == 0 and "train 30, test 30 images" in err
    rc, out, _ = run(capsys, "list", "--data-root", root)
    assert rc == 0
    row = next(line for line in out.splitlines() if line.startswith("cifar10 "))
    assert "train 30" in row and "test 30" in row and "32x32" in row and str(archive) in row
    rc, _, err = run(capsys, "import", "cifar10", archive, "--data-root", root)
    assert rc == 0 and "already imported" in err and "nothing to do" in err
    import hashlib

    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    rc, _, _ = run(capsys, "import", "cifar10", archive, "--data-root", tmp_path / "c2", "--sha256", digest.upper())
    assert rc == 0


def test_list_empty_and_env_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_ROOT", str(tmp_path / "env-root"))
    rc, out, _ = run(capsys, "list")
    assert rc == 0 and str(tmp_path / "env-root") in out and "no datasets imported yet" in out
    assert "digits-0-4" in out and "tinyimagenet32-nocifar10" in out


def test_truncated_archive(tmp_path, capsys, cifar_tree):
    archive = tar_gz(cifar_tree, tmp_path / "c.tar.gz")
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    expect_error(capsys, ["import", "cifar10", cut, "--data-root", tmp_path / "cache"],
                 str(cut), "truncated or corrupt archive")
    assert not (tmp_path / "cache" / "cifar10").exists()


def test_plain_tar_cut_at_a_member_boundary(tmp_path, capsys, cifar_tree):
    import tarfile

    archive = tmp_path / "c.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(cifar_tree / "cifar10-jpeg", arcname="cifar10-jpeg")
    run(capsys, "import", "cifar10", archive, "--data-root", tmp_path / "ok")  # the whole archive imports
    assert (tmp_path / "ok" / "cifar10" / "metadata.json").exists()
    with tarfile.open(archive) as tar:
        cut_at = tar.getmembers()[-1].offset  # the start of the last member's header
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[:cut_at])
    expect_error(capsys, ["import", "cifar10", cut, "--data-root", tmp_path / "c"], str(cut), "truncated")


def test_corrupt_archive(tmp_path, capsys):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    expect_error(capsys, ["import", "cifar10", bad, "--data-root", tmp_path], str(bad), "truncated or corrupt archive")
    plain = tmp_path / "notes.txt"
    plain.write_text("hello")
    expect_error(capsys, ["import", "cifar10", plain, "--data-root", tmp_path], str(plain), "expected a directory")


def test_checksum_mismatch(tmp_path, capsys, cifar_tree):
    archive = tar_gz(cifar_tree, tmp_path / "c.tar.gz")
    expect_error(capsys, ["import", "cifar10", archive, "--sha256", "0" * 64, "--data-root", tmp_path / "cache"],
                 str(archive), "checksum mismatch", "0" * 64)


def test_missing_path_and_names(tmp_path, capsys):
    expect_error(capsys, ["import", "cifar10", tmp_path / "nope", "--data-root", tmp_path], "no such file")
    expect_error(capsys, ["import", "digits", tmp_path, "--data-root", tmp_path], "built in")
    expect_error(capsys, ["import", "tinyimagenet32-nocifar10", tmp_path, "--data-root", tmp_path],
                 "python -m harness data import tinyimagenet32 PATH")
    expect_error(capsys, ["import", "whatever", tmp_path, "--data-root", tmp_path], "unknown dataset", "--format")
    expect_error(capsys, ["import", "cifar10", tmp_path, "--format", "dtd", "--data-root", tmp_path],
                 "cifar10 is read from cifar-pickle, imagefolder")
    expect_error(capsys, ["import", "cifar10", tmp_path, "--image-size", "64", "--data-root", tmp_path],
                 "--image-size only applies")
    expect_error(capsys, ["import", "cifar10", "--data-root", tmp_path], "give the PATH")
    expect_error(capsys, ["import", "tinyimagenet32", "--download", "--data-root", tmp_path],
                 "--download works for cifar10, cifar100, svhn, dtd")


def test_folder_without_images(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "readme.txt").write_text("no images here")
    expect_error(capsys, ["import", "places365", src, "--data-root", tmp_path / "c"], str(src), "no images found")
    expect_error(capsys, ["import", "cifar10", src, "--data-root", tmp_path / "c"], str(src), "no cifar10 data found")
    for split in ("train", "test"):
        (src / split / "cat").mkdir(parents=True)
        (src / split / "cat" / "Thumbs.db").write_bytes(b"")
    expect_error(capsys, ["import", "cifar10", src, "--data-root", tmp_path / "c"],
                 "no images found in test/ and train/", "accepted image extension (.jpg .jpeg .png")


def test_image_that_fails_to_decode(tmp_path, capsys, cifar_tree):
    broken = cifar_tree / "cifar10-jpeg" / "train" / "dog" / "0001.jpg"
    broken.write_bytes(b"this is not a jpeg")
    expect_error(capsys, ["import", "cifar10", cifar_tree, "--data-root", tmp_path / "c"],
                 str(broken), "cannot decode image")
    # a JPEG cut in half, inside an archive: named as archive:member
    buf = io.BytesIO()
    Image.fromarray(rand_images(1)[0]).save(buf, "JPEG")
    broken.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    archive = tar_gz(cifar_tree, tmp_path / "c.tar.gz")
    expect_error(capsys, ["import", "cifar10", archive, "--data-root", tmp_path / "c"],
                 f"{archive}:cifar10-jpeg/train/dog/0001.jpg", "cannot decode image", "truncated")


def test_undecodable_image_is_named_not_its_in_memory_buffer(tmp_path, capsys, cifar_tree):
    broken = cifar_tree / "cifar10-jpeg" / "train" / "dog" / "0001.jpg"
    for content in (b"this is not a jpeg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 2):  # junk; a JPEG's start
        broken.write_bytes(content)
        archive = tar_gz(cifar_tree, tmp_path / "c.tar.gz")
        for src, name in ((cifar_tree, str(broken)), (archive, f"{archive}:cifar10-jpeg/train/dog/0001.jpg")):
            line = expect_error(capsys, ["import", "cifar10", src, "--data-root", tmp_path / "c"],
                                f"error: {name}: cannot decode image")
            assert "BytesIO" not in line and "object at 0x" not in line, line


def test_one_line_drops_object_reprs():
    from harness.data.sources import one_line

    exc = OSError("cannot identify image file <_io.BytesIO object at 0x7f3a2c1e5f80>\n(truncated)")
    assert one_line(exc) == "cannot identify image file (truncated)"


def test_split_folder_without_images_is_named(tmp_path, capsys):
    write_imagefolder(tmp_path / "src", classes=tuple(CIFAR10_NAMES), per_class=1)
    import shutil

    shutil.rmtree(tmp_path / "src" / "train")
    (tmp_path / "src" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "src" / "train" / "cat" / "0001.heic").write_bytes(b"not accepted")
    line = expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"],
                        f"{tmp_path / 'src'}: train/ exists but holds no images", "1 other file",
                        str(tmp_path / "src" / "train" / "cat" / "0001.heic"), ".jpg .jpeg .png", ".webp")
    assert "no train split" not in line
    archive = tar_gz(tmp_path / "src", tmp_path / "s.tar.gz")
    expect_error(capsys, ["import", "cifar10", archive, "--data-root", tmp_path / "c"],
                 f"{archive}: train/ exists but holds no images", f"{archive}:train/cat/0001.heic")
    (tmp_path / "src" / "train" / "cat" / "0001.heic").unlink()  # no files at all: as if train/ were not there
    expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"], "no train split found")


def test_wrong_class_folder_layout(tmp_path, capsys, cifar_tree):
    root = cifar_tree / "cifar10-jpeg"
    stray = root / "train" / "0000.jpg"
    Image.fromarray(rand_images(1)[0]).save(stray)
    expect_error(capsys, ["import", "cifar10", cifar_tree, "--data-root", tmp_path / "c"],
                 str(stray), "not in a class folder", "<split>/<class>/<image>")
    stray.unlink()
    (root / "test" / "zebra").mkdir()
    Image.fromarray(rand_images(1)[0]).save(root / "test" / "zebra" / "0.jpg")
    expect_error(capsys, ["import", "cifar10", cifar_tree, "--data-root", tmp_path / "c"],
                 "class folders that train/ lacks: zebra")


def test_wrong_number_of_classes_and_missing_split(tmp_path, capsys):
    write_imagefolder(tmp_path / "src", classes=("a", "b", "c"), per_class=1)
    expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"],
                 "found 3 classes, cifar10 has 10")
    write_imagefolder(tmp_path / "s2", classes=tuple(CIFAR10_NAMES), per_class=1)
    import shutil

    shutil.rmtree(tmp_path / "s2" / "test")
    expect_error(capsys, ["import", "cifar10", tmp_path / "s2", "--data-root", tmp_path / "c"], "no test split")


def test_mixed_sizes_without_resize(tmp_path, capsys, cifar_tree):
    odd = cifar_tree / "cifar10-jpeg" / "test" / "cat" / "0002.jpg"
    Image.fromarray(rand_images(1, 40, 32)[0]).save(odd)
    expect_error(capsys, ["import", "cifar10", cifar_tree, "--data-root", tmp_path / "c"],
                 str(odd), "must share a size")


def test_bad_cifar_pickles(tmp_path, capsys):
    write_cifar10(tmp_path / "src")
    batch = tmp_path / "src" / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"fine_labels": [0, 1]}, f, protocol=2)
    expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"],
                 str(batch), "missing key b'labels'")
    with open(batch, "wb") as f:
        pickle.dump(print, f)  # a pickle that would call a function: refused, never run
    expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"],
                 str(batch), "refusing to load builtins.print")
    batch.write_bytes(b"\x80\x02}q\x00(X")
    expect_error(capsys, ["import", "cifar10", tmp_path / "src", "--data-root", tmp_path / "c"],
                 str(batch), "not a readable CIFAR pickle")


def test_bad_svhn_mat(tmp_path, capsys):
    write_svhn(tmp_path / "src")
    mat = tmp_path / "src" / "test_32x32.mat"
    scipy.io.savemat(mat, {"X": np.zeros((32, 32, 3, 2), np.uint8)})
    expect_error(capsys, ["import", "svhn", tmp_path / "src", "--data-root", tmp_path / "c"],
                 str(mat), "not a readable SVHN .mat file")


def test_bad_tinyimagenet(tmp_path, capsys):
    src = tmp_path / "src"
    write_tinyimagenet(src, n_val=2)
    ann = src / "val" / "val_annotations.txt"
    ann.write_text(ann.read_text().splitlines()[0] + "\n")
    expect_error(capsys, ["import", "tinyimagenet32", src, "--data-root", tmp_path / "c"],
                 "val_1.png: has no line in val/val_annotations.txt")
    (src / "train" / "n00000000" / "images").mkdir(parents=True)
    Image.fromarray(rand_images(1)[0]).save(src / "train" / "n00000000" / "images" / "x.png")
    expect_error(capsys, ["import", "tinyimagenet32", src, "--data-root", tmp_path / "c"],
                 "class folder n00000000 is not listed in wnids.txt")


def test_hidden_files_and_macos_forks_are_ignored(tmp_path, capsys, cifar_tree):
    for junk in ("._0000.jpg", ".DS_Store"):
        (cifar_tree / "cifar10-jpeg" / "train" / "cat" / junk).write_bytes(b"\x00\x05\x16\x07 resource fork")
    (cifar_tree / "__MACOSX" / "cifar10-jpeg").mkdir(parents=True)
    (cifar_tree / "__MACOSX" / "cifar10-jpeg" / "._train").write_bytes(b"junk")
    archive = tar_gz(cifar_tree, tmp_path / "mac.tar.gz")
    rc, _, err = run(capsys, "import", "cifar10", archive, "--data-root", tmp_path / "c")
    assert rc == 0 and "train 30, test 30" in err


def test_progress_bar_on_a_terminal(tmp_path, cifar_tree):
    from harness.data.importer import import_dataset

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    import_dataset("cifar10", tar_gz(cifar_tree, tmp_path / "c.tar.gz"), data_root=tmp_path / "c", stream=term)
    text = term.getvalue()
    assert "\rimport cifar10 reading" in text and "100.0%" in text
    last = text.split("\r")[-1]  # the bar is cleared, then the final line is written
    assert f"images -> {tmp_path / 'c' / 'cifar10'} (" in last and last.endswith(" s)\n")
