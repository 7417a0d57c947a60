"""Hypothesis properties of harness.metrics: invariances, symmetries, ranges, constructed calibration."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harness.metrics as m

SETTINGS = settings(max_examples=60, deadline=None)
DETECTION = [m.auroc, m.aupr, m.fpr_at_tpr]
POSITIVES = ["ood", "id"]

# Small integer grids give plenty of ties, the case where metric conventions differ.
scores = st.lists(st.integers(-15, 15), min_size=1, max_size=40).map(lambda v: np.array(v, dtype=float))
real_scores = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40).map(np.array)
any_scores = st.one_of(scores, real_scores)
tprs = st.one_of(st.sampled_from([0.95, 0.9, 0.5, 1.0]), st.floats(0.001, 1.0))


def _call(metric, ids, oods, positive, tpr):
    if metric is m.fpr_at_tpr:
        return metric(ids, oods, tpr=tpr, positive=positive)
    return metric(ids, oods, positive=positive)


@st.composite
def increasing_maps(draw):
    """A random strictly increasing map, given by positive gaps between consecutive distinct values."""
    gaps = draw(st.lists(st.floats(0.01, 50.0), min_size=80, max_size=80))
    offset = draw(st.floats(-100.0, 100.0))
    return offset + np.cumsum(gaps)


@SETTINGS
@given(ids=any_scores, oods=any_scores, new_values=increasing_maps(),
       metric=st.sampled_from(DETECTION), positive=st.sampled_from(POSITIVES), tpr=tprs)
def test_detection_invariant_under_increasing_transform(ids, oods, new_values, metric, positive, tpr):
    distinct = np.unique(np.r_[ids, oods])
    if len(distinct) > len(new_values):
        new_values = np.r_[new_values, new_values[-1] + np.arange(1, len(distinct) - len(new_values) + 1)]

    def transform(x):
        return new_values[np.searchsorted(distinct, x)]

    assert _call(metric, transform(ids), transform(oods), positive, tpr) == pytest.approx(
        _call(metric, ids, oods, positive, tpr), abs=1e-12)


@SETTINGS
@given(ids=any_scores, oods=any_scores, seed=st.integers(0, 2**32 - 1),
       metric=st.sampled_from(DETECTION), positive=st.sampled_from(POSITIVES), tpr=tprs)
def test_detection_invariant_under_permutation(ids, oods, seed, metric, positive, tpr):
    rng = np.random.default_rng(seed)
    assert _call(metric, rng.permutation(ids), rng.permutation(oods), positive, tpr) == pytest.approx(
        _call(metric, ids, oods, positive, tpr), abs=1e-12)


@SETTINGS
@given(ids=any_scores, oods=any_scores, positive=st.sampled_from(POSITIVES))
def test_auroc_swap_roles_and_convention(ids, oods, positive):
    value = m.auroc(ids, oods, positive)
    assert m.auroc(oods, ids, positive) == pytest.approx(1.0 - value, abs=1e-12)
    assert m.auroc(ids, oods, positive="id") == m.auroc(ids, oods, positive="ood")


@SETTINGS
@given(ids=any_scores, oods=any_scores, tpr=tprs)
def test_conventions_are_mirror_images(ids, oods, tpr):
    # ID positive on (ids, oods) ranks exactly like OOD positive on (-oods, -ids).
    assert m.aupr(ids, oods, positive="id") == m.aupr(-oods, -ids, positive="ood")
    assert m.fpr_at_tpr(ids, oods, tpr, positive="id") == m.fpr_at_tpr(-oods, -ids, tpr, positive="ood")


@SETTINGS
@given(ids=any_scores, oods=any_scores, metric=st.sampled_from(DETECTION),
       positive=st.sampled_from(POSITIVES), tpr=tprs)
def test_detection_outputs_in_unit_interval(ids, oods, metric, positive, tpr):
    assert 0.0 <= _call(metric, ids, oods, positive, tpr) <= 1.0


@SETTINGS
@given(ids=any_scores, oods=any_scores, positive=st.sampled_from(POSITIVES),
       tprs_pair=st.tuples(tprs, tprs))
def test_fpr_non_decreasing_in_tpr(ids, oods, positive, tprs_pair):
    low, high = sorted(tprs_pair)
    assert m.fpr_at_tpr(ids, oods, low, positive) <= m.fpr_at_tpr(ids, oods, high, positive)


@SETTINGS
@given(ids=any_scores, oods=any_scores, positive=st.sampled_from(POSITIVES), tpr=tprs)
def test_perfect_separation(ids, oods, positive, tpr):
    ids = ids - ids.min() + oods.max() + 1.0  # every ID score above every OOD score
    assert m.auroc(ids, oods, positive) == 1.0
    assert m.aupr(ids, oods, positive) == 1.0
    assert m.fpr_at_tpr(ids, oods, tpr, positive) == 0.0


confidences = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=300)


@st.composite
def confidence_correct(draw, min_size=1):
    conf = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.55, 1.0]) | st.floats(0.0, 1.0),
                                  min_size=min_size, max_size=300)))
    correct = np.array(draw(st.lists(st.booleans(), min_size=len(conf), max_size=len(conf))))
    return conf, correct


@SETTINGS
@given(data=confidence_correct(min_size=2), beta=st.integers(1, 20),
       norm=st.sampled_from(["l2", "l1"]), variant=st.sampled_from(["reference", "all_bins"]))
def test_calibration_outputs_in_range(data, beta, norm, variant):
    conf, correct = data
    if len(conf) // beta < 2:
        beta = 1
    assert 0.0 <= m.calibration_error(conf, correct, norm, beta, variant) <= 1.0
    assert 0.0 <= m.ece(conf, correct) <= 1.0
    assert 0.0 <= m.adaptive_ece(conf, correct, n_bins=2) <= 1.0
    if not (conf == 1).all() or not correct.all():
        assert 0.0 <= m.soft_f1(conf, correct) <= 1.0
    if 0 < correct.sum() < len(correct):
        assert 0.0 <= m.error_detection_auroc(conf, correct) <= 1.0


def _calibrated_bin(size, n_correct):
    """`size` examples at confidence n_correct/size, exactly n_correct of them correct."""
    return np.full(size, n_correct / size), np.arange(size) < n_correct


@SETTINGS
@given(beta=st.integers(1, 30), remainder=st.integers(0, 29), data=st.data(), seed=st.integers(0, 1000),
       norm=st.sampled_from(["l2", "l1"]), variant=st.sampled_from(["reference", "all_bins"]))
def test_calibration_error_zero_when_every_bin_is_calibrated(beta, remainder, data, seed, norm, variant):
    remainder %= beta
    # Distinct accuracies per bin keep bins apart after sorting; the top bin (with the remainder) is at 1.0.
    lower = sorted(data.draw(st.sets(st.integers(0, beta - 1), min_size=1, max_size=beta)))
    parts = [_calibrated_bin(beta, k) for k in lower] + [_calibrated_bin(beta + remainder, beta + remainder)]
    conf, correct = (np.concatenate(p) for p in zip(*parts))
    order = np.random.default_rng(seed).permutation(len(conf))
    assert m.calibration_error(conf[order], correct[order], norm, beta, variant) == pytest.approx(0.0, abs=1e-9)


@SETTINGS
@given(beta=st.integers(1, 20), n_lower_bins=st.integers(1, 6), remainder=st.integers(0, 19),
       top_correct=st.integers(0, 40), seed=st.integers(0, 1000), norm=st.sampled_from(["l2", "l1"]))
def test_reference_equals_all_bins_when_top_bin_is_calibrated(beta, n_lower_bins, remainder, top_correct,
                                                                seed, norm):
    rng = np.random.default_rng(seed)
    remainder %= beta
    top_size = beta + remainder
    top_correct = max(top_correct % (top_size + 1), (top_size + 1) // 2)  # top confidence >= 0.5
    lower_conf = rng.uniform(0.0, 0.49, n_lower_bins * beta)
    lower_correct = rng.uniform(size=len(lower_conf)) < 0.5
    top_conf, top_correct_arr = _calibrated_bin(top_size, top_correct)
    conf = np.r_[lower_conf, top_conf]
    correct = np.r_[lower_correct, top_correct_arr]
    assert m.calibration_error(conf, correct, norm, beta, "reference") == pytest.approx(
        m.calibration_error(conf, correct, norm, beta, "all_bins"), abs=1e-9)


@SETTINGS
@given(data=confidence_correct(), seed=st.integers(0, 1000), beta=st.integers(1, 10))
def test_calibration_permutation_invariant_without_ties(data, seed, beta):
    conf, correct = data
    conf = conf + np.arange(len(conf)) * 1e-9  # break ties: only then is the binning order-free
    conf = np.clip(conf, 0, 1)
    if len(np.unique(conf)) < len(conf) or len(conf) < 2 * beta:
        return
    order = np.random.default_rng(seed).permutation(len(conf))
    for variant in ["reference", "all_bins"]:
        assert m.calibration_error(conf[order], correct[order], "l2", beta, variant) == pytest.approx(
            m.calibration_error(conf, correct, "l2", beta, variant), abs=1e-12)
    assert m.adaptive_ece(conf[order], correct[order], 1) == pytest.approx(m.adaptive_ece(conf, correct, 1))


@SETTINGS
@given(data=confidence_correct(), n_bins=st.integers(1, 20))
def test_ece_single_bin_and_reliability_consistency(data, n_bins):
    conf, correct = data
    # One bin: ECE is |mean confidence - accuracy|, as is adaptive ECE with one bin.
    assert m.ece(conf, correct, n_bins=1) == pytest.approx(abs(conf.mean() - correct.mean()), abs=1e-12)
    assert m.adaptive_ece(conf, correct, n_bins=1) == pytest.approx(abs(conf.mean() - correct.mean()), abs=1e-12)
    rows = m.reliability_bins(conf, correct, n_bins)
    assert sum(r["count"] for r in rows) == len(conf)
    from_rows = sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows if r["count"])
    assert m.ece(conf, correct, n_bins) == pytest.approx(from_rows / len(conf), abs=1e-12)
    for r in rows:
        if r["count"]:
            # The bin's mean confidence is a float sum / count: three 0.1s average to 0.1 + 2e-17.
            assert r["lo"] - 1e-12 <= r["confidence"] <= r["hi"] + 1e-12
    assert rows[-1]["count"] >= int((conf == 1.0).sum())  # confidence 1.0 lands in the top bin


@SETTINGS
@given(n_per_bin=st.lists(st.integers(1, 12), min_size=15, max_size=15), data=st.data())
def test_ece_zero_when_equal_width_bins_are_calibrated(n_per_bin, data):
    # Bin b holds examples at its midpoint-ish confidence k/size inside (b/15, (b+1)/15].
    conf, correct = [], []
    for b, size in enumerate(n_per_bin):
        candidates = [k for k in range(size + 1) if b / 15 < k / size <= (b + 1) / 15]
        if candidates:
            k = data.draw(st.sampled_from(candidates))
            c, ok = _calibrated_bin(size, k)
            conf.append(c)
            correct.append(ok)
    if conf:
        assert m.ece(np.concatenate(conf), np.concatenate(correct)) == pytest.approx(0.0, abs=1e-12)


@SETTINGS
@given(logits=st.lists(st.lists(st.floats(-20, 20), min_size=3, max_size=3), min_size=1, max_size=50),
       data=st.data())
def test_probability_metrics_ranges(logits, data):
    z = np.array(logits)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(z), max_size=len(z))))
    assert m.nll(probs, labels) >= 0.0
    assert 0.0 <= m.brier(probs, labels) <= 2.0
    assert 0.0 <= m.accuracy(probs, labels) <= 1.0
    onehot = np.eye(3)[labels]
    assert m.nll(onehot, labels) == 0.0 and m.brier(onehot, labels) == 0.0 and m.accuracy(onehot, labels) == 1.0
