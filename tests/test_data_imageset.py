import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from harness.data import ImageSet, normalize


def _set(n=4, size=5):
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n, dtype=np.int64) % 2,
                    ("a", "b"))


def test_imageset_basics():
    s = _set()
    assert len(s) == 4 and s.image_size == (5, 5)
    sub = s.subset([3, 1])
    assert np.array_equal(sub.images, s.images[[3, 1]]) and sub.labels.tolist() == [1, 1]
    assert s.class_counts().tolist() == [2, 2]
    unlabeled = ImageSet(s.images, np.full(4, -1, dtype=np.int64), ())
    assert unlabeled.class_counts().tolist() == []


@pytest.mark.parametrize(
    "images, labels, classes, message",
    [
        (np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64), ("a",), "uint8"),
        (np.zeros((2, 4, 4), np.uint8), np.zeros(2, np.int64), ("a",), "uint8"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int32), ("a",), "int64"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64), ("a",), "int64"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1], np.int64), ("a",), "labels must lie"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.array([0, -2], np.int64), ("a",), "labels must lie"),
    ],
)
def test_imageset_rejects_bad_arrays(images, labels, classes, message):
    with pytest.raises(ValueError, match=message):
        ImageSet(images, labels, classes)


def test_normalize_matches_totensor_normalize():
    s = _set(3, 7)
    ref = T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    expected = torch.stack([ref(Image.fromarray(im)) for im in s.images])
    got = normalize(torch.from_numpy(s.images))
    assert got.dtype == torch.float32 and got.shape == (3, 3, 7, 7)
    assert torch.equal(got, expected)
    assert torch.equal(normalize(s.images), got)
    assert normalize(torch.tensor([[[[0, 255, 128]]]], dtype=torch.uint8)).flatten()[:2].tolist() == [-1.0, 1.0]


def test_normalize_rejects_float():
    with pytest.raises(ValueError, match="uint8"):
        normalize(torch.zeros(1, 2, 2, 3))
