import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from harness.data import synthetic
from harness.errors import HarnessError


@pytest.mark.parametrize("kind", synthetic.KINDS)
def test_shape_range_determinism(kind):
    x = synthetic.make(kind, 50, image_size=24, seed=3)
    assert x.dtype == torch.float32 and x.shape == (50, 3, 24, 24)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, synthetic.make(kind, 50, image_size=24, seed=3))
    assert not torch.equal(x, synthetic.make(kind, 50, image_size=24, seed=4))
    assert synthetic.make(kind, 0).shape == (0, 3, 32, 32)


def test_gaussian_statistics():
    x = synthetic.make("gaussian", 200, seed=0)
    # clip(N(0, 0.5)) hits +-1 with probability 2 * P(Z > 2) = 4.55 %
    assert abs(x.mean().item()) < 0.01
    assert 0.043 < (x.abs() == 1).float().mean().item() < 0.048
    assert abs(x.std().item() - 0.4801) < 0.003  # sd of 0.5 * clip(Z, -2, 2)


def test_rademacher_values():
    x = synthetic.make("rademacher", 100, seed=0)
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert abs((x == 1).float().mean().item() - 0.5) < 0.01


def test_blobs_recipe_and_nonzero_fraction():
    x = synthetic.make("blobs", 300, seed=1)
    # Values: -1 where the blurred field fell below 0.75, else 2v - 1 with v in [0.75, 1].
    on = x > -1
    assert x[on].min() >= 0.5 and x[on].max() <= 1
    frac = on.float().mean().item()
    assert 0.20 < frac < 0.22, frac  # 0.210 +- 0.001 over 3 x 3,000 images
    # Per-image 3-D blur, as skimage.filters.gaussian(img, 1.5, multichannel=False) does it.
    rng = np.random.default_rng(1)
    raw = rng.binomial(1, 0.7, size=(300, 32, 32, 3)).astype(np.float32)
    img = gaussian_filter(raw[5], 1.5, mode="nearest", truncate=4.0)
    img[img < 0.75] = 0
    assert np.allclose(img.transpose(2, 0, 1) * 2 - 1, x[5].numpy(), atol=1e-6)


def test_unknown_kind():
    with pytest.raises(HarnessError, match="gaussian, rademacher, blobs"):
        synthetic.make("uniform", 3)
