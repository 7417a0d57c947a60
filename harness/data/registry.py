"""What datasets exist, how they are stored, and which sets serve as OOD for which in-distribution set."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)

# Import-time resizing of sources whose images differ in size (the reference OOD transforms).
RESIZE_CENTER_CROP = "resize_center_crop"  # Resize(size) (short side) + CenterCrop(size)
RESIZE = "resize"  # Resize(size) (short side) only: SVHN, already 32x32
# ObjectNet: its images carry a border, which wise-ft's ObjectNet loader crops (2 pixels a side) before resizing
CROP_BORDER_RESIZE_CENTER_CROP = "crop_border_resize_center_crop"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    num_classes: int | None  # None: unlabeled (an OOD-only folder of images)
    image_size: int
    formats: tuple[str, ...]  # reader formats `data import` accepts, tried in this order; () = built-in or derived
    splits: tuple[str, ...]
    description: str
    transform: str | None = None  # RESIZE_CENTER_CROP / RESIZE for variable-size sources, None = stored as is
    base: str | None = None  # derived: the imported dataset it is cut from
    exclude: str | None = None  # derived: exclusion list (a TOML file in this package) of base class ids
    ood: tuple[str, ...] = ()  # OOD sets for this dataset as the in-distribution set
    builtin: bool = False
    classes_of: str | None = None  # formats that store label numbers only: class names are this dataset's
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    # (m_in, m_out) of energy fine-tuning (recipe energy_ft); None: the user sets them (docs/outlier-exposure.md)
    energy_margins: tuple[float, float] | None = None


@dataclass(frozen=True)
class OodSpec:
    name: str
    dataset: str | None  # None: synthetic (harness.data.synthetic.make(name, n, ...))
    splits: tuple[str, ...] = field(default=("test",))
    description: str = ""

    @property
    def synthetic(self) -> bool:
        return self.dataset is None


_SYNTH = ("gaussian", "rademacher", "blobs")
_NATURAL = ("dtd", "svhn", "places365", "lsun", "lsun-resize", "isun")

_DATASETS = [
    DatasetSpec("digits", 10, 32, (), ("train", "test"),
                "scikit-learn digits 8x8 -> 32x32 RGB, stratified 2/3 train split", builtin=True),
    # energy margins chosen from the smoke scratch model's mean energies (ID -5.7, digits-5-9 outliers -3.2):
    # m_in a little below the ID mean, m_out a little above the outliers' (docs/outlier-exposure.md)
    DatasetSpec("digits-0-4", 5, 32, (), ("train", "test"), "digits 0-4", builtin=True,
                ood=_SYNTH + ("digits-5-9",), energy_margins=(-7.0, -3.0)),
    DatasetSpec("digits-5-9", 5, 32, (), ("train", "test"), "digits 5-9 relabelled 0-4", builtin=True,
                ood=_SYNTH + ("digits-0-4",)),
    # energy margins: wetliu/energy_ood run.sh (docs/sources.md#energy-fine-tuning-and-the-energy-score)
    DatasetSpec("cifar10", 10, 32, ("cifar-pickle", "imagefolder"), ("train", "test"), "CIFAR-10",
                ood=_SYNTH + _NATURAL + ("cifar100", "tinyimagenet32-val-nocifar10"), energy_margins=(-23.0, -5.0)),
    DatasetSpec("cifar100", 100, 32, ("cifar-pickle", "imagefolder"), ("train", "test"),
                "CIFAR-100 (fine labels)",
                ood=_SYNTH + _NATURAL + ("cifar10", "tinyimagenet32-val-nocifar100"), energy_margins=(-27.0, -5.0)),
    DatasetSpec("tinyimagenet", 200, 64, ("tinyimagenet",), ("train", "test"), "Tiny ImageNet 64x64 (val = test)",
                ood=_SYNTH + ("dtd", "svhn", "places365", "lsun", "isun")),
    DatasetSpec("tinyimagenet32", 200, 32, ("tinyimagenet",), ("train", "test"),
                "Tiny ImageNet downsampled to 32x32 (val = test)"),
    DatasetSpec("tinyimagenet32-nocifar10", None, 32, (), ("train", "test"),
                "tinyimagenet32 without the classes overlapping CIFAR-10, relabelled 0..C-1",
                base="tinyimagenet32", exclude="tinyimagenet_cifar10_overlap.toml"),
    DatasetSpec("tinyimagenet-nocifar10", None, 64, (), ("train", "test"),
                "tinyimagenet (64x64) without the classes overlapping CIFAR-10, relabelled 0..C-1",
                base="tinyimagenet", exclude="tinyimagenet_cifar10_overlap.toml"),
    DatasetSpec("tinyimagenet32-nocifar100", None, 32, (), ("train", "test"),
                "tinyimagenet32 without the classes overlapping CIFAR-100, relabelled 0..C-1",
                base="tinyimagenet32", exclude="tinyimagenet_cifar100_overlap.toml"),
    DatasetSpec("tinyimagenet-nocifar100", None, 64, (), ("train", "test"),
                "tinyimagenet (64x64) without the classes overlapping CIFAR-100, relabelled 0..C-1",
                base="tinyimagenet", exclude="tinyimagenet_cifar100_overlap.toml"),
    DatasetSpec("svhn", 10, 32, ("svhn-mat",), ("train", "test"), "SVHN cropped digits (label 10 -> 0)",
                transform=RESIZE),
    DatasetSpec("dtd", 47, 32, ("dtd",), ("test",), "Describable Textures, all images as one split",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("places365", None, 32, ("folder",), ("test",), "Places365 images (unlabeled OOD set)",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("lsun", None, 32, ("folder",), ("test",), "LSUN crop (unlabeled OOD set)",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("lsun-resize", None, 32, ("folder",), ("test",), "LSUN resize (unlabeled OOD set)",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("isun", None, 32, ("folder",), ("test",), "iSUN (unlabeled OOD set)",
                transform=RESIZE_CENTER_CROP),
    # Shifted test sets of CIFAR (label numbers only; class names from the clean set when it is imported). The
    # corrupted sets have one split per corruption present (severity blocks in order); see harness.data.shifted.
    DatasetSpec("cifar10-c", 10, 32, ("cifar-c",), (), "CIFAR-10-C: released files, or `data corrupt cifar10`",
                classes_of="cifar10"),
    DatasetSpec("cifar100-c", 100, 32, ("cifar-c",), (), "CIFAR-100-C: released files, or `data corrupt cifar100`",
                classes_of="cifar100"),
    DatasetSpec("cifar10.1", 10, 32, ("cifar10.1",), ("test",), "CIFAR-10.1 v6: 2,000 new test images (natural shift)",
                classes_of="cifar10"),
    # The pre-training paper's upstream for Tiny ImageNet models: downsampled ImageNet 64x64 without the 200 Tiny
    # ImageNet classes (all of them are ImageNet classes), 800 classes; a user prepares it as an ImageFolder
    # (train = ImageNet train, test = ImageNet val) and imports it. Nothing here can download or build it.
    # ImageNet-1k val and its natural-shift sets, user-supplied in their released layouts (harness.data.imagenet_family,
    # docs/clip.md): stored at 224x224, the released CLIP models' input size. R, A and ObjectNet keep their own
    # classes; evaluation projects an ImageNet-1k model's 1,000 logits onto them (harness.shift).
    DatasetSpec("imagenet", 1000, 224, ("imagenet-val",), ("test",), "ImageNet-1k (ILSVRC 2012) val: 50,000 images",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("imagenetv2", 1000, 224, ("imagenetv2",), ("test",), "ImageNetV2 matched frequency: 10,000 images",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("imagenet-sketch", 1000, 224, ("imagenet-sketch",), ("test",), "ImageNet-Sketch: 50,889 sketches",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("imagenet-r", 200, 224, ("imagenet-r",), ("test",), "ImageNet-R: 30,000 renditions of 200 classes",
                transform=RESIZE_CENTER_CROP),
    DatasetSpec("imagenet-a", 200, 224, ("imagenet-a",), ("test",), "ImageNet-A: 7,500 adversarially filtered "
                "images of 200 classes", transform=RESIZE_CENTER_CROP),
    DatasetSpec("objectnet", 113, 224, ("objectnet",), ("test",), "ObjectNet 1.0: the images of its 113 classes "
                "that overlap ImageNet-1k", transform=CROP_BORDER_RESIZE_CENTER_CROP),
    DatasetSpec("imagenet64-notinyimagenet", 800, 64, ("imagefolder",), ("train", "test"),
                "downsampled ImageNet 64x64 without the 200 Tiny ImageNet classes (user-prepared ImageFolder)"),
]

_OOD = [
    OodSpec("gaussian", None, (), "clip(N(0, 0.5), -1, 1) per pixel and channel"),
    OodSpec("rademacher", None, (), "2 * Bernoulli(0.5) - 1"),
    OodSpec("blobs", None, (), "Bernoulli(0.7), blur sigma 1.5 over H, W, C, < 0.75 -> 0, * 2 - 1"),
    OodSpec("tinyimagenet32-val-nocifar10", "tinyimagenet32-nocifar10", ("test",),
            "Tiny ImageNet 32x32 val images of the classes not overlapping CIFAR-10"),
    OodSpec("tinyimagenet32-val-nocifar100", "tinyimagenet32-nocifar100", ("test",),
            "Tiny ImageNet 32x32 val images of the classes not overlapping CIFAR-100"),
    # Train and test together: the CIFAR-100 subset here has 916 test images, fewer than the 2,000 the protocol
    # draws; for a CIFAR-10 model the CIFAR-100 train images are just as unseen.
    OodSpec("cifar100", "cifar100", ("train", "test"), "CIFAR-100 images (all splits)"),
    OodSpec("cifar10", "cifar10", ("test",), "CIFAR-10 test images"),
    OodSpec("svhn", "svhn", ("test",), "SVHN test images"),
    OodSpec("digits-0-4", "digits-0-4", ("test",), "digits 0-4 test images"),
    OodSpec("digits-5-9", "digits-5-9", ("test",), "digits 5-9 test images"),
] + [OodSpec(n, n, ("test",), f"{n} images") for n in ("dtd", "places365", "lsun", "lsun-resize", "isun")]

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in _DATASETS}
OOD_SETS: dict[str, OodSpec] = {o.name: o for o in _OOD}


def names() -> tuple[str, ...]:
    return tuple(DATASETS)


def get(name: str) -> DatasetSpec:
    """The spec of a registered dataset, num_classes of derived datasets filled in from their exclusion list."""
    spec = DATASETS.get(name)
    if spec is None:
        raise HarnessError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if spec.base is not None and spec.num_classes is None:
        base = DATASETS[spec.base]
        return replace(spec, num_classes=base.num_classes - len(excluded_ids(spec.exclude)))
    return spec


def get_ood(name: str) -> OodSpec:
    """An OOD set by name; a dataset name that is not a registered OOD set means its test split."""
    if name in OOD_SETS:
        return OOD_SETS[name]
    return OodSpec(name, name, ("test",), f"{name} test images")


def ood_sets(id_dataset: str) -> tuple[str, ...]:
    """The OOD sets of the protocol for `id_dataset` as the in-distribution set."""
    return get(id_dataset).ood


@lru_cache(maxsize=None)
def exclusions(filename: str) -> dict[str, dict]:
    """{class id: {"name": ..., "overlaps": ..., "reason": ...}} from an exclusion TOML file in this package."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(__file__).with_name(filename)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return {e["wnid"]: e for e in data["exclude"]}


def excluded_ids(filename: str) -> frozenset[str]:
    return frozenset(exclusions(filename))
