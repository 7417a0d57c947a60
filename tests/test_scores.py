import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import harness.scores as S

ALL = ("msp", "max_logit", "energy", "entropy", "odin", "mahalanobis", "knn")
LOGIT_SCORES = ("msp", "max_logit", "energy", "entropy")

logit_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 6), st.integers(2, 8)),
    elements=st.floats(-30, 30, allow_nan=False, allow_infinity=False),
)
shifts = st.floats(-50, 50, allow_nan=False, allow_infinity=False)


def score(name, logits, **params):
    return S.get(name, **params).score(logits=logits)


# ------------------------------------------------------------------ registry


def test_names_are_the_registered_scores():
    assert S.names() == ALL
    assert {n for n in ALL if S.get(n).needs_fit} == {"knn", "mahalanobis"}


@pytest.mark.parametrize("name", S.names())
def test_every_score_declares_what_it_reads(name):
    sc = S.get(name)
    assert sc.name == name
    assert sc.needs and sc.needs <= {"logits", "features", "model"}
    assert sc.fitted == (not sc.needs_fit)


@pytest.mark.parametrize("name, params, fragment", [
    ("msp", {"temperature": 2}, "unknown parameter"),
    ("energy", {"T": 2}, "accepted: temperature"),
    ("energy", {"temperature": 0}, "temperature"),
    ("energy", {"temperature": float("nan")}, "temperature"),
    ("energy", {"temperature": "1"}, "temperature"),
    ("odin", {"epsilon": -0.1}, "epsilon"),
    ("odin", {"temperature": True}, "temperature"),
    ("odin", {"input_std": 0}, "input_std"),
    ("knn", {"k": 0}, "k:"),
    ("knn", {"k": 2.5}, "k:"),
])
def test_invalid_params_raise(name, params, fragment):
    with pytest.raises(ValueError, match=fragment):
        S.get(name, **params)


def test_params_record_defaults():
    assert S.get("odin").params == {"temperature": 1000.0, "epsilon": 0.0014, "input_std": 0.5}
    assert S.get("knn").params == {"k": 50}
    assert S.get("energy", temperature=2).params == {"temperature": 2.0}
    assert S.get("msp").params == {}


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError, match="already registered"):
        S.register(S.MSP)


@pytest.mark.parametrize("name", LOGIT_SCORES)
@pytest.mark.parametrize("bad, fragment", [
    (np.array([[1.0, np.nan]]), "logits: contains NaN"),
    (np.array([[1.0, np.inf]]), "logits: contains NaN"),
    (np.array([1.0, 2.0]), "logits: expected a non-empty 2-D"),
    (np.zeros((0, 3)), "logits: expected a non-empty 2-D"),
    (None, "logits: required"),
])
def test_bad_logits_name_the_argument(name, bad, fragment):
    with pytest.raises(ValueError, match=fragment):
        score(name, bad)


def test_accepts_torch_tensors():
    logits = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(score("msp", logits), [1 / (1 + math.exp(-1)), 0.5])


# ------------------------------------------------------------ logit scores


@given(logit_rows, st.floats(0.01, 20))
def test_msp_monotone_in_max_logit(logits, delta):
    top = logits.argmax(axis=1)
    raised = logits.copy()
    raised[np.arange(len(logits)), top] += delta
    assert np.all(score("msp", raised) >= score("msp", logits))
    assert np.all(score("max_logit", raised) == score("max_logit", logits) + delta)


@given(logit_rows, shifts)
def test_shift_invariance_and_equivariance(logits, c):
    shifted = logits + c
    np.testing.assert_allclose(score("msp", shifted), score("msp", logits), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(score("entropy", shifted), score("entropy", logits), rtol=1e-9, atol=1e-9)
    for t in (0.5, 1.0, 7.0):
        np.testing.assert_allclose(score("energy", shifted, temperature=t),
                                   score("energy", logits, temperature=t) + c, rtol=1e-12, atol=1e-9)


@given(logit_rows, st.randoms(use_true_random=False))
def test_scores_ignore_class_order(logits, rnd):
    perm = list(range(logits.shape[1]))
    rnd.shuffle(perm)
    for name in LOGIT_SCORES:
        np.testing.assert_allclose(score(name, logits[:, perm]), score(name, logits), rtol=1e-12, atol=1e-12)


@given(logit_rows)
def test_ranges(logits):
    c = logits.shape[1]
    msp = score("msp", logits)
    assert np.all((msp >= 1 / c - 1e-12) & (msp <= 1))
    ent = score("entropy", logits)
    assert np.all((ent <= 0) & (ent >= -math.log(c) - 1e-9))
    for t in (0.1, 1.0, 10.0):
        energy = score("energy", logits, temperature=t)
        assert np.all(energy >= score("max_logit", logits))
        assert np.all(energy <= logits.max(axis=1) + t * math.log(c) + 1e-9)


@given(logit_rows)
def test_energy_limits_in_temperature(logits):
    c = logits.shape[1]
    hot = score("energy", logits, temperature=1e6) - 1e6 * math.log(c)
    np.testing.assert_allclose(hot, logits.mean(axis=1), atol=1e-3)
    np.testing.assert_allclose(score("energy", logits, temperature=1e-3), logits.max(axis=1), atol=1e-2)


def test_energy_matches_logsumexp_by_hand():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    expected = [2 * math.log(math.exp(0.5) + math.exp(1.0) + math.exp(1.5)), 2 * math.log(3)]
    np.testing.assert_allclose(score("energy", logits, temperature=2), expected, rtol=1e-12)


def test_entropy_zero_on_one_hot_and_minimal_on_uniform():
    one_hot = np.array([[1000.0, 0.0, 0.0], [0.0, -900.0, 5.0e3]])
    assert np.all(score("entropy", one_hot) == 0.0)
    np.testing.assert_allclose(score("entropy", np.zeros((2, 4))), -math.log(4), rtol=1e-12)


def test_logit_scores_refuse_to_score_without_needed_inputs():
    with pytest.raises(ValueError, match="logits: required"):
        S.get("msp").score(features=np.ones((2, 3)))


# ------------------------------------------------------------- mahalanobis


def gaussian_clusters(rng, n_per_class=200, dim=4, spread=0.5):
    means = np.array([[0, 0, 0, 0], [5, 0, 0, 0], [0, 5, 0, 0]], dtype=float)[:, :dim]
    labels = np.repeat(np.arange(len(means)), n_per_class)
    feats = means[labels] + spread * rng.normal(size=(len(labels), dim))
    return feats, labels


def test_mahalanobis_separates_far_points():
    rng = np.random.default_rng(0)
    feats, labels = gaussian_clusters(rng)
    maha = S.get("mahalanobis").fit(feats, labels)
    test, _ = gaussian_clusters(rng, n_per_class=50)
    far = rng.normal(size=(50, 4)) * 0.5 + np.array([20.0, -20.0, 20.0, 0.0])
    assert maha.score(features=far).max() < maha.score(features=test).min()
    assert np.all(maha.score(features=test) <= 0)


def test_mahalanobis_matches_direct_formula():
    rng = np.random.default_rng(1)
    feats, labels = gaussian_clusters(rng, n_per_class=30)
    test = rng.normal(size=(7, 4)) * 3
    means = np.stack([feats[labels == c].mean(axis=0) for c in range(3)])
    centred = feats - means[labels]
    precision = np.linalg.inv(np.cov(centred.T, bias=True))
    expected = [-min((x - m) @ precision @ (x - m) for m in means) for x in test]
    got = S.get("mahalanobis").fit(feats, labels).score(features=test)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_mahalanobis_invariant_to_invertible_linear_maps_of_features():
    rng = np.random.default_rng(2)
    feats, labels = gaussian_clusters(rng, n_per_class=40)
    test = rng.normal(size=(20, 4)) * 4
    a = rng.normal(size=(4, 4)) + 3 * np.eye(4)
    b = rng.normal(size=4)
    plain = S.get("mahalanobis").fit(feats, labels).score(features=test)
    mapped = S.get("mahalanobis").fit(feats @ a + b, labels).score(features=test @ a + b)
    np.testing.assert_allclose(mapped, plain, rtol=1e-6, atol=1e-8)


def test_mahalanobis_survives_singular_covariance():
    rng = np.random.default_rng(3)
    feats, labels = gaussian_clusters(rng, n_per_class=20)
    feats = np.hstack([feats, np.zeros((len(feats), 2))])  # dead units, as after a ReLU
    got = S.get("mahalanobis").fit(feats, labels).score(features=feats[:5])
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("scale, problem", [(1e200, "is not finite"), (1e155, "is not finite"),
                                            (1e-200, "underflows to zero"), (1e-158, "is not finite")])
def test_mahalanobis_fit_refuses_features_whose_covariance_overflows(scale, problem):
    feats, labels = gaussian_clusters(np.random.default_rng(4), n_per_class=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning either: a clear ValueError, not numpy's LinAlgError
        with pytest.raises(ValueError, match=f"train_features: the .*covariance of the class-centred features "
                                             f".*{problem}.*rescale the features") as info:
            S.get("mahalanobis").fit(feats * scale, labels)
    assert "\n" not in str(info.value)


def test_mahalanobis_never_returns_a_non_finite_score():
    rng = np.random.default_rng(5)
    feats, labels = gaussian_clusters(rng, n_per_class=20)
    maha = S.get("mahalanobis").fit(feats * 1e150, labels)  # large, but within float64: fits and scores
    assert np.all(np.isfinite(maha.score(features=feats[:5] * 1e150)))
    maha = S.get("mahalanobis").fit(feats, labels)
    test = rng.normal(size=(6, 4))
    test[[1, 4]] *= 1e200  # their squared distance overflows float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="features: the squared Mahalanobis distance overflows float64 for 2 "
                                             "of 6 rows"):
            maha.score(features=test)


# ----------------------------------------------------------------------- knn


def brute_knn(train, test, k):
    tr = train / (np.linalg.norm(train, axis=1, keepdims=True) + 1e-10)
    te = test / (np.linalg.norm(test, axis=1, keepdims=True) + 1e-10)
    d2 = ((te[:, None, :] - tr[None, :, :]) ** 2).sum(axis=2)
    return -np.sort(d2, axis=1)[:, k - 1]


def test_knn_k1_on_training_points_is_zero():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 5))
    knn = S.get("knn", k=1).fit(train, np.zeros(60, dtype=int))
    np.testing.assert_allclose(knn.score(features=train), 0.0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 17])
def test_knn_matches_brute_force_in_small_blocks(monkeypatch, k):
    monkeypatch.setattr(S, "_BLOCK_ELEMENTS", 50)  # forces many row blocks
    rng = np.random.default_rng(k)
    train, test = rng.normal(size=(40, 6)), rng.normal(size=(23, 6))
    got = S.get("knn", k=k).fit(train, np.zeros(40, dtype=int)).score(features=test)
    np.testing.assert_allclose(got, brute_knn(train, test, k), atol=1e-12)


def test_knn_ignores_feature_scale_and_orders_by_distance():
    rng = np.random.default_rng(5)
    train = rng.normal(size=(50, 3)) + [10.0, 0.0, 0.0]
    knn = S.get("knn", k=5).fit(train, np.zeros(50, dtype=int))
    test = rng.normal(size=(10, 3)) + [10.0, 0.0, 0.0]
    np.testing.assert_allclose(knn.score(features=test * 7.5), knn.score(features=test), atol=1e-12)
    opposite = -test
    assert knn.score(features=opposite).max() < knn.score(features=test).min()


def test_knn_default_k_is_50_and_needs_that_many_points():
    assert S.get("knn").k == 50
    with pytest.raises(ValueError, match="train_features: k=50"):
        S.get("knn").fit(np.ones((49, 2)), np.zeros(49, dtype=int))


@pytest.mark.parametrize("name", ["knn", "mahalanobis"])
def test_fitted_scores_check_state_and_shapes(name):
    sc = S.get(name, k=2) if name == "knn" else S.get(name)
    with pytest.raises(ValueError, match="not fitted"):
        sc.score(features=np.ones((3, 2)))
    with pytest.raises(ValueError, match="train_labels: expected 4 labels"):
        sc.fit(np.ones((4, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="train_features: contains NaN"):
        sc.fit(np.full((4, 2), np.nan), np.zeros(4, dtype=int))
    sc.fit(np.random.default_rng(0).normal(size=(8, 2)), np.array([0, 1] * 4))
    with pytest.raises(ValueError, match="features: expected 2 columns"):
        sc.score(features=np.ones((3, 5)))
    with pytest.raises(ValueError, match="features: required"):
        sc.score(logits=np.ones((3, 2)))


# ---------------------------------------------------------------------- odin


class Linear(torch.nn.Module):
    """logits = W flatten(x) + b, so the input gradient is known in closed form."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.as_tensor(weight))
        self.bias = torch.nn.Parameter(torch.as_tensor(bias))
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(x.flatten(1)) @ self.weight.T + self.bias


def linear_model(seed=0, classes=3, pixels=12):
    rng = np.random.default_rng(seed)
    return Linear(rng.normal(size=(classes, pixels)), rng.normal(size=classes)).double()


def test_odin_with_zero_epsilon_is_tempered_msp():
    model = linear_model()
    x = torch.randn(9, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for t in (1.0, 1000.0):
        got = S.get("odin", temperature=t, epsilon=0).score_model(model, x)
        logits = model.eval()(x).detach().numpy()
        np.testing.assert_allclose(got, S.get("msp").score(logits=logits / t), rtol=1e-12)


def test_odin_matches_closed_form_step():
    model = linear_model(1)
    w, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t, eps, std = 10.0, 0.01, 0.5
    flat = x.flatten(1).numpy()
    logits = flat @ w.T + b
    probs = S.softmax(logits / t)
    onehot = np.eye(3)[logits.argmax(axis=1)]
    grad = (probs - onehot) @ w / t  # d cross-entropy(logits / T, prediction) / d x
    moved = flat - eps * np.where(grad >= 0, 1.0, -1.0) / std
    expected = S.softmax((moved @ w.T + b) / t).max(axis=1)
    got = S.get("odin", temperature=t, epsilon=eps).score_model(model, x)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert np.all(got >= S.softmax(logits / t).max(axis=1))  # the step raises confidence


def test_odin_batches_and_restores_mode():
    model = linear_model(2).train()
    x = torch.randn(10, 3, 2, 2, dtype=torch.float64)
    odin = S.get("odin", temperature=100.0, epsilon=0.002)
    whole = odin.score_model(model, x, batch_size=64)
    np.testing.assert_allclose(odin.score_model(model, x, batch_size=3), whole, rtol=1e-12)
    assert model.training
    assert model.weight.grad is None


def test_odin_needs_the_model():
    with pytest.raises(ValueError, match="score_model"):
        S.get("odin").score(logits=np.ones((2, 3)))
    with pytest.raises(ValueError, match="x: expected a non-empty float tensor"):
        S.get("odin").score_model(linear_model(), torch.ones(2, 12))
    with pytest.raises(ValueError, match="batch_size"):
        S.get("odin").score_model(linear_model(), torch.ones(2, 3, 2, 2, dtype=torch.float64), batch_size=0)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.just(12)),
                  elements=st.floats(-3, 3, allow_nan=False)))
def test_odin_zero_epsilon_property(x):
    model = linear_model(3)
    xt = torch.as_tensor(x).reshape(-1, 3, 2, 2)
    got = S.get("odin", temperature=5.0, epsilon=0.0).score_model(model, xt)
    logits = x @ model.weight.detach().numpy().T + model.bias.detach().numpy()
    np.testing.assert_allclose(got, S.get("msp").score(logits=logits / 5.0), rtol=1e-9)
