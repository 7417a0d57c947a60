"""ImageNet val and its natural-shift sets (harness.data.imagenet_family): each release's folder layout imported
from a tiny fake tree, labels in the set's classes, the projection onto ImageNet-1k, one-line errors."""
import numpy as np
import pytest
from PIL import Image
from test_data_cli import expect_error

from harness.data import cache, imagenet_family
from harness.data.importer import import_dataset

WNIDS = imagenet_family.imagenet_wnids()


def write_images(folder, count, ext="png", size=(40, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"img{i}.{ext}")


def imported(root, name):
    meta = cache.read_metadata(root, name)
    return cache.load_split(root, name, "test"), meta


def test_class_lists_have_their_sizes_and_are_imagenet_classes():
    assert len(WNIDS) == 1000 == len(set(WNIDS)) and list(WNIDS) == sorted(WNIDS)
    for name in ("imagenet-r", "imagenet-a"):
        subset = imagenet_family.subset_wnids(name)
        assert len(subset) == 200 and set(subset) <= set(WNIDS) and list(subset) == sorted(subset)
    objectnet = imagenet_family.objectnet_classes()
    assert len(objectnet) == 113 and all(0 <= i < 1000 for _, ids in objectnet.values() for i in ids)
    assert objectnet["alarm_clock"] == ("Alarm clock", (409, 530))  # analog clock, digital clock


def test_lists_equal_timms_when_installed():
    timm_data = pytest.importorskip("timm.data")
    from pathlib import Path
    info = Path(timm_data.__file__).parent / "_info"
    assert WNIDS == tuple((info / "imagenet_synsets.txt").read_text().split())
    for name, indices in (("imagenet-r", "imagenet_r_indices.txt"), ("imagenet-a", "imagenet_a_indices.txt")):
        assert [WNIDS.index(w) for w in imagenet_family.subset_wnids(name)] == \
            list(map(int, (info / indices).read_text().split()))


def test_imagenet_val_class_folders(tmp_path):
    src = tmp_path / "val"
    write_images(src / WNIDS[7], 2, "JPEG")
    write_images(src / WNIDS[3], 1)
    import_dataset("imagenet", src, data_root=tmp_path / "c", image_size=32)
    test, meta = imported(tmp_path / "c", "imagenet")
    assert test.images.shape == (3, 32, 32, 3) and list(test.labels) == [3, 7, 7]
    assert test.classes == WNIDS and meta["transform"] == "Resize(32) + CenterCrop(32)"


def test_imagenet_val_kaggle_csv(tmp_path, capsys):
    src = tmp_path / "kaggle"
    flat = src / "ILSVRC" / "Data" / "CLS-LOC" / "val"
    write_images(flat, 2, "JPEG")
    (src / "LOC_val_solution.csv").write_text(f"ImageId,PredictionString\nimg1,{WNIDS[5]} 1 2 3 4\n"
                                              f"img0,{WNIDS[9]} 5 6 7 8 {WNIDS[9]} 1 1 2 2\n")
    import_dataset("imagenet", src, data_root=tmp_path / "c", image_size=32)
    test, _ = imported(tmp_path / "c", "imagenet")
    assert list(test.labels) == [5, 9]
    capsys.readouterr()
    (src / "LOC_val_solution.csv").write_text(f"ImageId,PredictionString\nimg2,{WNIDS[5]} 1 2 3 4\n")
    argv = ["import", "imagenet", src, "--data-root", tmp_path / "c2", "--image-size", 32]
    expect_error(capsys, argv, "LOC_val_solution.csv lists 1 image(s) not found", "img2.JPEG")
    (src / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nimg0,n99999999 1 2 3 4\n")
    expect_error(capsys, argv, "LOC_val_solution.csv:2", "ImageNet-1k wnid")


def test_imagenetv2_index_folders(tmp_path):
    src = tmp_path / "imagenetv2-matched-frequency-format-val"
    write_images(src / "0", 1)
    write_images(src / "999", 2, "jpeg")
    import_dataset("imagenetv2", tmp_path, data_root=tmp_path / "c", image_size=32)
    test, meta = imported(tmp_path / "c", "imagenetv2")
    assert list(test.labels) == [0, 999, 999] and meta["source"]["layout_root"] == \
        "imagenetv2-matched-frequency-format-val/"


def test_sketch_and_subsets_project_onto_imagenet(tmp_path):
    write_images(tmp_path / "s" / "sketch" / WNIDS[1], 1, "JPEG")
    import_dataset("imagenet-sketch", tmp_path / "s", data_root=tmp_path / "c", image_size=32)
    assert list(imported(tmp_path / "c", "imagenet-sketch")[0].labels) == [1]
    for name in ("imagenet-r", "imagenet-a"):
        subset = imagenet_family.subset_wnids(name)
        write_images(tmp_path / name / name / subset[199], 2)
        write_images(tmp_path / name / name / subset[0], 1)
        import_dataset(name, tmp_path / name, data_root=tmp_path / "c", image_size=32)
        test, meta = imported(tmp_path / "c", name)
        assert list(test.labels) == [0, 199, 199] and test.classes == subset
        projection = meta["projection"]
        assert projection["onto"] == "imagenet" and len(projection["classes"]) == 200
        assert [WNIDS[i] for (i,) in projection["classes"]] == list(subset)


def test_objectnet_keeps_the_overlapping_classes_and_crops_the_border(tmp_path):
    images = tmp_path / "on" / "objectnet-1.0" / "images"
    write_images(images / "alarm_clock", 2, size=(36, 36))
    write_images(images / "banana", 1, size=(36, 36))
    write_images(images / "not_in_imagenet", 3, size=(36, 36))  # ObjectNet's other classes: left out, counted
    import_dataset("objectnet", tmp_path / "on", data_root=tmp_path / "c", image_size=32)
    test, meta = imported(tmp_path / "c", "objectnet")
    folders = list(imagenet_family.objectnet_classes())
    assert list(test.labels) == [folders.index("alarm_clock")] * 2 + [folders.index("banana")]
    assert test.classes[folders.index("banana")] == "Banana" and len(test.classes) == 113
    assert meta["left_out"] == {"classes": 1, "images": 3}
    assert meta["projection"]["classes"][folders.index("alarm_clock")] == [409, 530]
    first = np.asarray(Image.open(sorted((images / "alarm_clock").iterdir())[0]).convert("RGB"))
    assert np.array_equal(test.images[0], first[2:34, 2:34])  # 36 - 2 x 2 = 32: the crop alone, no resize


def test_bad_layouts_are_one_line_errors(tmp_path, capsys):
    root = tmp_path / "c"
    loose = tmp_path / "loose"
    write_images(loose, 1)
    expect_error(capsys, ["import", "imagenet-r", loose, "--data-root", root], "no imagenet-r data found",
                 "imagenet-r/<wnid>/<image> of its 200 classes")
    other = tmp_path / "other" / "imagenet-r"
    write_images(other / imagenet_family.subset_wnids("imagenet-r")[0], 1)
    write_images(other / "n99999999", 1)
    expect_error(capsys, ["import", "imagenet-r", other.parent, "--data-root", root], "class folder 'n99999999'",
                 "not one of the 200 classes of imagenet-r")
    deep = tmp_path / "deep" / "val"
    write_images(deep / WNIDS[0], 1)
    write_images(deep / WNIDS[0] / "more", 1)
    expect_error(capsys, ["import", "imagenet", deep, "--data-root", root], "not in a class folder",
                 "<wnid>/<image>")
    both = tmp_path / "both"
    write_images(both / "train" / WNIDS[0], 1)
    write_images(both / "val" / WNIDS[0], 1)
    expect_error(capsys, ["import", "imagenet", both, "--data-root", root], "class folders under both train/ and val/")
