"""Temperature scaling and the calibration views (at the fitted T, a sampled head at one sample)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import calibration, data, models
from harness.errors import HarnessError


def _grid_best(logits, labels):
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 4001))
    return grid[np.argmin([calibration.nll_at(logits, labels, t) for t in grid])]


@settings(max_examples=30)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 30))
def test_fitted_temperature_is_the_nll_minimum(seed, scale):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4)) + 2.0 * np.eye(4)[labels]
    logits *= scale
    t = calibration.fit_temperature(logits, labels)
    assert 0.05 <= t <= 20
    # no point of a fine grid over the bounds is better than the fit (up to the grid's own resolution)
    best = _grid_best(logits, labels)
    assert calibration.nll_at(logits, labels, t) <= calibration.nll_at(logits, labels, best) + 1e-6


def test_known_temperature_is_recovered():
    # labels drawn from softmax(z) and logits reported as 3 z: the NLL-optimal temperature is 3
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, size=(20_000, 5))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    assert calibration.fit_temperature(3 * z, labels) == pytest.approx(3.0, rel=0.05)


def test_bounds_hold_for_separable_and_constant_logits():
    labels = np.array([0, 1, 0, 1])
    sharp = np.array([[5.0, -5.0], [-5.0, 5.0]] * 2)
    t = calibration.fit_temperature(sharp, labels)
    # every T this low gives an NLL of 0 in float64: any of them is a minimum
    assert t < 1 and calibration.nll_at(sharp, labels, t) <= calibration.nll_at(sharp, labels, 0.05) + 1e-12
    assert calibration.fit_temperature(-sharp, labels) == pytest.approx(20.0, rel=1e-4)


def test_empty_holdout_is_a_clear_error():
    with pytest.raises(HarnessError, match="needs a non-empty holdout split"):
        calibration.fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_temperature_metrics_are_named_apart_and_lower_the_holdout_nll():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=600)
    logits = 6 * (rng.normal(size=(600, 3)) + np.eye(3)[labels])  # overconfident
    out = calibration.temperature_metrics(logits[:300], labels[:300], logits[300:], labels[300:])
    assert {"calib@T/ece", "calib@T/ece10", "calib@T/nll", "calib@T/brier", "calib@T/temperature"} <= set(out)
    assert not any(k.startswith("calib/") or k == "accuracy" for k in out)
    assert out["calib@T/temperature"]["mean"] > 1
    assert out["calib@T/nll"]["mean"] < calibration.nll_at(logits[:300], labels[:300], 1.0)


def test_views_of_a_variational_model_hold_one_sample_and_are_deterministic():
    torch.manual_seed(0)
    model = models.create("wrn-10-1", 3)
    model.fc = models.VariationalHead(model.feature_dim, 3, latent=4, samples=10)
    model.eval()
    x = torch.randn(12, 3, 16, 16)
    y = np.arange(12) % 3
    holdout = data.ImageSet(images=np.zeros((6, 16, 16, 3), dtype=np.uint8), labels=np.arange(6) % 3,
                            classes=("a", "b", "c"))
    with torch.no_grad():
        logits = model(x).double().numpy()
    first = calibration.views(model, x, y, logits, holdout, batch_size=5, device="cpu")
    again = calibration.views(model, x, y, logits, holdout, batch_size=5, device="cpu")
    assert first == again and model.fc.samples == 10
    assert {"accuracy@M1", "calib@M1/nll", "calib@T/nll"} <= set(first)
    # one draw is another prediction than the average of ten
    with torch.no_grad():
        model.fc.samples = 1
        one = model(x)
        model.fc.samples = 10
    assert not torch.allclose(one.double(), torch.from_numpy(logits))


def test_views_of_a_plain_model_without_holdout_are_empty():
    model = models.create("wrn-10-1", 3).eval()
    x = torch.randn(4, 3, 16, 16)
    assert calibration.views(model, x, np.zeros(4, dtype=int), np.zeros((4, 3)), None, 4, "cpu") == {}


def test_a_head_on_shared_features_gives_the_full_models_numbers():
    """What the runner does for a model whose body it has seen (TST, V-TST, temperature scaling): only the head
    runs, in the same batches, and the logits are bit-identical to a full pass (the sampling head included)."""
    from harness import eval_inputs
    from harness.evaluate import collect_outputs, head_outputs

    torch.manual_seed(1)
    base = models.create("wrn-10-1", 3).eval()
    two_stage = models.create("wrn-10-1", 3)
    two_stage.load_state_dict({k: v for k, v in base.state_dict().items() if not k.startswith("fc.")}, strict=False)
    two_stage.fc = models.VariationalHead(two_stage.feature_dim, 3, latent=4, samples=10)
    x = torch.randn(11, 3, 16, 16)
    _, features = collect_outputs(base, x, batch_size=4)
    logits, _ = collect_outputs(two_stage, x, batch_size=4)
    assert np.array_equal(head_outputs(two_stage, features, batch_size=4), logits)
    assert eval_inputs._body_digest(base) == eval_inputs._body_digest(two_stage)
    two_stage.bn1.running_mean += 1
    assert eval_inputs._body_digest(base) != eval_inputs._body_digest(two_stage)


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_ood_calibration_at_t_counts_ood_as_wrong_at_the_temperature():
    # Recomputed by hand from the protocol (hendrycks/outlier-exposure test_calibration.py): both confidences are
    # max softmax(logits / T), an OOD sample is wrong, RMS/MAD with 100-sample bins (top bin skipped), soft F1.
    from harness import evaluate, metrics
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=1000)
    test = 4 * (rng.normal(size=(1000, 4)) + np.eye(4)[labels])
    ood = {"noise": 3 * rng.normal(size=(700, 4)), "far": rng.normal(size=(300, 4))}
    t = 2.5
    out = calibration.ood_temperature_metrics(test, labels, ood, t, num_to_avg=3, seed=7)
    id_conf = _softmax(test / t).max(1)
    id_correct = test.argmax(1) == labels
    for name, logits in ood.items():
        reps = {"rms": [], "mad": [], "soft_f1": []}
        for idx in evaluate.ood_draws(len(logits), len(test), 3, 7, name):
            conf = np.concatenate([id_conf, _softmax(logits[idx] / t).max(1)])
            correct = np.concatenate([id_correct, np.zeros(len(idx), dtype=bool)])
            reps["rms"].append(metrics.calibration_error(conf, correct, norm="l2", beta=100))
            reps["mad"].append(metrics.calibration_error(conf, correct, norm="l1", beta=100))
            reps["soft_f1"].append(metrics.soft_f1(conf, correct))
        for key, values in reps.items():
            assert out[f"ood/{name}/calib@T/{key}"]["mean"] == pytest.approx(100 * np.mean(values), abs=1e-9)
    assert out["ood/mean/calib@T/rms"]["mean"] == pytest.approx(
        (out["ood/noise/calib@T/rms"]["mean"] + out["ood/far/calib@T/rms"]["mean"]) / 2)
    assert all(k.startswith("ood/") and "/calib@T/" in k for k in out)


def test_ood_calibration_at_t_1_equals_the_plain_ood_calibration():
    from harness import evaluate, scores
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=500)
    test = 3 * rng.normal(size=(500, 3)) + 2 * np.eye(3)[labels]
    ood = {"a": rng.normal(size=(400, 3))}
    plain = evaluate.evaluate_arrays(test, labels, ood, scores.get("msp"), num_to_avg=2, seed=1).metrics
    at_one = calibration.ood_temperature_metrics(test, labels, ood, 1.0, num_to_avg=2, seed=1)
    assert at_one and all(stat == plain[key.replace("/calib@T/", "/calib/")] for key, stat in at_one.items())
