"""The corruptions against the library calls that make_cifar_c.py makes: scikit-image, OpenCV, ImageMagick (Wand).

The harness does not depend on these libraries; each test is skipped unless its library is installed:
    pip install scikit-image opencv-python-headless wand && apt-get install libmagickwand-6.q16-6
Run with -s to print the agreement the README quotes ("CIFAR-10-C"). With CIFAR-10 imported in the data root the
first 1,000 test images are used, else 200 smooth test images.
"""
import numpy as np
import pytest
from test_data_corruptions import smooth_images

from harness.data import corruptions as C
from harness.data import frost, motion_blur
from harness.errors import HarnessError


@pytest.fixture(scope="module")
def images():
    from harness import data

    try:
        return np.array(data.load("cifar10", "test", mmap=True).images[:1000])
    except HarnessError:
        return smooth_images(200)


def agreement(what, mine, ref):
    diff = np.abs(mine.astype(np.int64) - ref.astype(np.int64))
    print(f"\n{what}: {100 * (diff == 0).mean():.3f} % of values identical, max difference {diff.max()}", end="")
    return diff


def test_defocus_blur_is_opencvs(images):
    cv2 = pytest.importorskip("cv2")
    grid = np.arange(-8, 9)
    xx, yy = np.meshgrid(grid, grid)
    for severity, (radius, alias) in enumerate(C.CORRUPTIONS["defocus_blur"].params, 1):
        disk = (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.float32)
        kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
        ref = np.stack([np.stack([cv2.filter2D(im[..., c] / 255.0, -1, kernel) for c in range(3)], -1)
                        for im in images])
        assert agreement(f"defocus_blur {severity}", C.corrupt(images, "defocus_blur", severity),
                         C.to_uint8(ref)).max() == 0


def test_hsv_brightness_and_glass_blur_gaussian_are_scikit_images(images):
    sk = pytest.importorskip("skimage")
    from skimage.filters import gaussian

    for severity, c in enumerate(C.CORRUPTIONS["brightness"].params, 1):
        hsv = sk.color.rgb2hsv(images / 255.0)
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
        assert agreement(f"brightness {severity}", C.corrupt(images, "brightness", severity),
                         C.to_uint8(sk.color.hsv2rgb(hsv))).max() == 0
    for sigma, _, _ in C.CORRUPTIONS["glass_blur"].params:
        ref = np.stack([gaussian(im / 255.0, sigma=sigma, channel_axis=-1) for im in images])
        assert np.abs(C._gaussian(images / 255.0, sigma) - ref).max() < 1e-12


def test_motion_blur_numpy_backend_is_imagemagicks(images):
    pytest.importorskip("wand.image")
    rng = np.random.default_rng(0)
    grey = (rng.random((len(images), 32, 32, 1)) < 0.1).astype(np.uint8) * 255  # snow-like layers
    for what, batch, params, span in (("motion_blur", images, C.CORRUPTIONS["motion_blur"].params, (-45, 45)),
                                      ("snow layer", grey, [p[4:6] for p in C.CORRUPTIONS["snow"].params],
                                       (-135, -45))):
        for severity, (radius, sigma) in enumerate(params, 1):
            angles = rng.uniform(*span, len(batch))
            ref = np.stack([motion_blur._wand_blur(motion_blur._wand(), im, radius, sigma, a)
                            for im, a in zip(batch, angles)])
            diff = agreement(f"{what} {severity}, numpy vs ImageMagick", motion_blur.numpy_blur(
                batch, radius, sigma, angles), ref)
            assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_affine_warp_is_opencvs_fixed_point_warp(images):
    cv2 = pytest.importorskip("cv2")
    if tuple(int(v) for v in cv2.__version__.split(".")[:2]) >= (4, 11):
        pytest.skip("OpenCV >= 4.11 computes warpAffine's coordinates in floating point; the reference ran with "
                    "the 1/32-pixel fixed-point warp (compare with opencv-python-headless==4.8.1.78)")
    x = images[:200].astype(np.float32) / 255
    points = np.float32([[26, 26], [26, 6], [6, 6]])
    moved = points + np.random.default_rng(0).uniform(-2.56, 2.56, size=(len(x), 3, 2)).astype(np.float32)
    ref = np.stack([cv2.warpAffine(im, cv2.getAffineTransform(points, m), (32, 32),
                                   borderMode=cv2.BORDER_REFLECT_101) for im, m in zip(x, moved)])
    forward = C._affine_from_points(np.broadcast_to(points, moved.shape).astype(np.float64), moved.astype(np.float64))
    mine = C.affine_warp(x, C._invert_affine(forward))
    print(f"\nelastic affine warp: max difference {np.abs(mine - ref).max():.2e} (float, [0, 1] scale)", end="")
    assert np.abs(mine - ref).max() < 1e-6


def test_frost_shrink_is_opencv_resize():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    textures = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((600, 900), (315, 560), (353, 527))]
    folder = frost.package_dir()
    if folder is not None and folder.is_dir():
        textures += [np.asarray(cv2.imread(str(folder / f))[..., ::-1]) for f in frost.FILES]
    for t in textures:
        assert np.array_equal(frost.shrink(t), cv2.resize(t, (0, 0), fx=0.2, fy=0.2))
