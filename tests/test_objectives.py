"""The objective registry against naive per-example references written here, values and gradients."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness import objectives
from harness.errors import HarnessError


def _naive_p_target(logits: list[list[float]], targets: list[int]) -> list[float]:
    out = []
    for row, t in zip(logits, targets):
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        out.append(exps[t] / sum(exps))
    return out


def naive(name: str, logits, targets, kl=None, latent=None) -> float:
    """The definitions of the module docstring of harness.objectives, one example at a time, in float64 Python."""
    total = 0.0
    for p in _naive_p_target(logits, targets):
        gamma = {"cross_entropy": 0.0, "variational": 0.0, "focal": 3.0,
                 "adaptive_focal": 5.0 if p < 0.2 else 3.0}[name]
        total += -((1 - p) ** gamma) * math.log(p)
    loss = total / len(targets)
    if name == "variational":
        loss += sum(kl) / len(kl) / latent
    return loss


@st.composite
def batches(draw):
    n, k = draw(st.integers(1, 6)), draw(st.integers(2, 5))
    values = st.floats(-6, 6, allow_nan=False, width=32)
    logits = draw(st.lists(st.lists(values, min_size=k, max_size=k), min_size=n, max_size=n))
    targets = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    kl = draw(st.lists(st.floats(0, 50, allow_nan=False), min_size=n, max_size=n))
    return logits, targets, kl, draw(st.integers(1, 256))


# The outlier objectives (rows past the targets are outliers) have their own tests in test_outliers.py, the
# self-supervised one (no targets) in test_ssl.py.
@pytest.mark.parametrize("name", [n for n in objectives.names()
                                  if n not in objectives.outlier_names() and objectives.OBJECTIVES.get(n).labels])
@given(batch=batches())
def test_value_matches_the_naive_definition(name, batch):
    logits, targets, kl, latent = batch
    terms = {"kl": torch.tensor(kl, dtype=torch.float64), "latent_dim": latent}
    got = objectives.get(name)(torch.tensor(logits, dtype=torch.float64), torch.tensor(targets), terms)
    assert float(got) == pytest.approx(naive(name, logits, targets, kl, latent), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", ["cross_entropy", "focal", "adaptive_focal"])
@pytest.mark.parametrize("point", [0, 1, 2])
def test_gradient_matches_finite_differences_of_the_naive_definition(name, point):
    rng = np.random.default_rng(point)
    logits = rng.normal(0, 2, size=(4, 3))
    targets = [int(t) for t in rng.integers(0, 3, size=4)]
    x = torch.tensor(logits, requires_grad=True)
    objectives.get(name)(x, torch.tensor(targets)).backward()
    h = 1e-6
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(*logits.shape):
        up, down = logits.copy(), logits.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (naive(name, up.tolist(), targets) - naive(name, down.tolist(), targets)) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-4, atol=1e-7)


def test_variational_gradient_reaches_the_kl():
    kl = torch.tensor([1.0, 3.0], requires_grad=True)
    objectives.get("variational")(torch.zeros(2, 3), torch.tensor([0, 1]), {"kl": kl, "latent_dim": 4}).backward()
    assert kl.grad.tolist() == [pytest.approx(1 / 8), pytest.approx(1 / 8)]  # d/dkl_i of mean(kl) / Z


def test_focal_is_below_cross_entropy_and_gamma_switches_at_0_2():
    logits = torch.tensor([[2.0, 0.0], [-1.6, 0.0]])  # p_t 0.88 (gamma 3) and 0.17 (gamma 5)
    y = torch.tensor([0, 0])
    ce, fl = objectives.get("cross_entropy")(logits, y), objectives.get("focal")(logits, y)
    assert fl < ce
    adaptive = objectives.get("adaptive_focal")(logits, y)
    assert float(adaptive) == pytest.approx(naive("adaptive_focal", logits.tolist(), [0, 0]), rel=1e-6)
    assert adaptive < fl  # the low-p_t example is down-weighted harder


def test_adaptive_gamma_at_exactly_0_2_is_3():
    uniform = torch.zeros(1, 5)  # p_t = 1/5: not below the threshold
    got = objectives.get("adaptive_focal")(uniform, torch.tensor([0]))
    assert float(got) == pytest.approx(0.8 ** 3 * math.log(5), rel=1e-6)


def test_unknown_objective_and_missing_term_are_one_line_errors():
    with pytest.raises(HarnessError, match="unknown objective 'focall'; known objectives: cross_entropy, focal"):
        objectives.get("focall")
    with pytest.raises(HarnessError, match="'variational' needs the model to report kl, latent_dim") as info:
        objectives.get("variational")(torch.zeros(1, 2), torch.tensor([0]), {})
    assert "\n" not in str(info.value)
