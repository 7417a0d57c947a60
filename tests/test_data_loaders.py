"""The fast and the reference loader: same augmentation distribution, epoch semantics and determinism."""
import numpy as np
import pytest
import torch
from scipy import stats

from harness.data import ImageSet
from harness.data.loaders import DeviceLoader, reference_loader

SIZE = 16


def _probe_set(n: int) -> ImageSet:
    """n copies of an image whose pixels tell where they came from: R = row * 16, G = col * 16, B = 255.

    Labels carry the row index, so a batch tells which images came out."""
    r, c = np.meshgrid(np.arange(SIZE) * 16, np.arange(SIZE) * 16, indexing="ij")
    img = np.stack([r, c, np.full_like(r, 255)], axis=-1).astype(np.uint8)
    return ImageSet(np.repeat(img[None], n, axis=0), np.arange(n, dtype=np.int64), tuple(str(i) for i in range(n)))


def _decode(x: torch.Tensor):
    """(dy, dx, flip) of every augmented probe image, checking that every padded pixel is exactly -1."""
    x = x.numpy()
    real = x[:, 2] == 1.0  # (B, H, W)
    assert np.all(np.where(real[:, None], True, x == -1.0))
    pix = np.rint((x + 1) / 2 * 255).astype(int)
    b = np.arange(len(x))
    i = real.any(axis=2).argmax(axis=1)  # first visible row
    j = real.any(axis=1).argmax(axis=1)  # first visible column
    orig_r, orig_c = pix[b, 0, i, j] // 16, pix[b, 1, i, j] // 16
    flip = pix[b, 1, i, j + 1] < pix[b, 1, i, j]
    dy = orig_r - i + 4
    dx = np.where(flip, orig_c + j - (SIZE - 1), orig_c - j) + 4
    # The whole visible window must be the one these offsets predict.
    assert np.array_equal(real.sum(axis=(1, 2)), (SIZE - abs(dy - 4)) * (SIZE - abs(dx - 4)))
    return np.stack([dy, dx, flip.astype(int)], axis=1)


def _draw(kind: str, n: int, seed: int, batch_size: int = 500):
    data = _probe_set(n)
    if kind == "fast":
        loader = DeviceLoader(data.images, data.labels, batch_size, augment=True, shuffle=True, seed=seed)
    else:
        loader = reference_loader(data, batch_size, augment=True, shuffle=True, seed=seed)
    xs, ys = zip(*loader)
    return _decode(torch.cat(xs)), torch.cat(ys).numpy()


DRAWS = {"fast": 8100, "reference": 3240}  # the reference path costs ~1 ms per image


@pytest.fixture(scope="module")
def draws():
    return {kind: _draw(kind, n, seed=11) for kind, n in DRAWS.items()}


@pytest.mark.parametrize("kind", ["fast", "reference"])
def test_offsets_uniform_and_flip_half(draws, kind):
    params, labels = draws[kind]
    n = DRAWS[kind]
    assert sorted(labels.tolist()) == list(range(n))  # every image exactly once
    assert params[:, :2].min() == 0 and params[:, :2].max() == 8
    cells = np.bincount(params[:, 0] * 9 + params[:, 1], minlength=81)
    # 81 cells, >= 40 expected each; chi-square test at alpha = 0.001 (fixed seed, so the outcome is fixed too)
    assert stats.chisquare(cells).pvalue > 1e-3
    flips = params[:, 2].sum()
    assert stats.binomtest(int(flips), n, 0.5).pvalue > 1e-3
    # flip independent of the offset: 162-cell joint table
    joint = np.bincount(params[:, 2] * 81 + params[:, 0] * 9 + params[:, 1], minlength=162)
    assert stats.chisquare(joint).pvalue > 1e-3


def test_fast_and_reference_same_distribution(draws):
    tables = [np.bincount(draws[k][0][:, 0] * 9 + draws[k][0][:, 1], minlength=81) for k in ("fast", "reference")]
    assert stats.chi2_contingency(np.array(tables)).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["fast", "reference"])
def test_epochs_reshuffle_and_keep_last_batch(kind):
    data = _probe_set(10)
    if kind == "fast":
        loader = DeviceLoader(data.images, data.labels, 4, augment=False, shuffle=True, seed=0)
    else:
        loader = reference_loader(data, 4, augment=False, shuffle=True, seed=0)
    assert len(loader) == 3
    epochs = [[y.tolist() for _, y in loader] for _ in range(3)]
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2]
        assert sorted(sum(batches, [])) == list(range(10))
    assert epochs[0] != epochs[1]
    x, _ = next(iter(loader))
    assert x.dtype == torch.float32 and x.shape == (4, 3, SIZE, SIZE)


@pytest.mark.parametrize("kind", ["fast", "reference"])
def test_unshuffled_unaugmented_is_plain_normalization(kind):
    rng = np.random.default_rng(0)
    data = ImageSet(rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8), np.arange(7, dtype=np.int64) % 3,
                    ("a", "b", "c"))
    if kind == "fast":
        loader = DeviceLoader(data.images, data.labels, 3, augment=False, shuffle=False, seed=0)
    else:
        loader = reference_loader(data, 3, augment=False, shuffle=False, seed=0)
    x = torch.cat([b for b, _ in loader])
    from harness.data import normalize

    assert torch.equal(x, normalize(data.images))


@pytest.mark.parametrize("kind", ["fast", "reference"])
def test_same_seed_same_batches(kind):
    data = _probe_set(50)

    def run(seed):
        if kind == "fast":
            loader = DeviceLoader(data.images, data.labels, 16, augment=True, shuffle=True, seed=seed)
        else:
            loader = reference_loader(data, 16, augment=True, shuffle=True, seed=seed)
        return [torch.cat([x.flatten() for x, _ in loader]) for _ in range(2)]

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[0], a[1])


def test_batches_do_not_depend_on_the_default_dtype():
    # the reference goldens train in float64 (torch.set_default_dtype): the augmentation draws must not change
    data = _probe_set(50)

    def batches():
        return torch.cat([x.flatten() for x, _ in DeviceLoader(data.images, data.labels, 16, augment=True,
                                                                 shuffle=True, seed=3)])
    expected = batches()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert torch.equal(batches(), expected)
    finally:
        torch.set_default_dtype(previous)


def test_resume_mid_epoch_is_bit_identical():
    data = _probe_set(40)
    make = lambda: DeviceLoader(data.images, data.labels, 8, augment=True, shuffle=True, seed=5)  # noqa: E731
    full = make()
    reference = [x for _ in range(2) for x, _ in full]  # two epochs, 10 batches
    first = make()
    it = iter(first)
    seen = [next(it)[0] for _ in range(3)]
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    rest = [x for x, _ in resumed] + [x for x, _ in resumed]
    got = seen + rest
    assert len(got) == 10 and all(torch.equal(u, v) for u, v in zip(got, reference))
    with pytest.raises(ValueError, match="seed"):
        DeviceLoader(data.images, data.labels, 8, seed=6).load_state_dict(state)


def test_device_loader_input_checks():
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2), 1)
    with pytest.raises(ValueError, match="labels"):
        DeviceLoader(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3), 1)
    ro = np.zeros((2, 4, 4, 3), np.uint8)
    ro.flags.writeable = False
    x, y = next(iter(DeviceLoader(ro, [0, 1], 2)))
    assert y.dtype == torch.int64 and x.shape == (2, 3, 4, 4)


def test_reference_loader_independent_of_workers():
    data = _probe_set(24)
    runs = [torch.cat([x for x, _ in reference_loader(data, 8, True, True, seed=3, num_workers=w)]) for w in (0, 2)]
    assert torch.equal(runs[0], runs[1])
