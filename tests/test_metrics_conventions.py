"""The peers' metric definitions (docs/sources.md#metric-conventions-in-the-wild): first-reach FPR95 and
trapezoidal AUPR.

Each is checked against sklearn (the way OpenOOD v1.5 and pytorch-ood compute it) and a naive loop, on
tie-heavy random scores, and against the reference rule where the two must or must not differ.
"""
from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics as sk

import harness.metrics as m


def _labelled(ids, oods, positive):
    """(y_true, y_score) in the sklearn sense for the given positive class."""
    if positive == "ood":
        return np.r_[np.zeros(len(ids)), np.ones(len(oods))], -np.r_[ids, oods]
    return np.r_[np.ones(len(ids)), np.zeros(len(oods))], np.r_[ids, oods]


def _scores(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 30))  # few distinct values on even seeds -> many ties
    n_id, n_ood = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    if seed % 2:
        return rng.normal(1.0, 1.0, n_id), rng.normal(0.0, 1.5, n_ood)
    return rng.integers(0, k, n_id).astype(float), rng.integers(0, k, n_ood) - float(rng.integers(0, 3))


def naive_first_reach(pos, neg, level):
    """Scan thresholds from the highest down; the first whose recall reaches `level` decides."""
    for t in sorted(set(pos) | set(neg), reverse=True):
        if sum(p >= t for p in pos) / len(pos) >= level:
            return sum(q >= t for q in neg) / len(neg)
    raise AssertionError("full recall always reaches the level")


def naive_trapezoid_aupr(pos, neg):
    """Points (recall, precision) at every distinct threshold, from (0, 1); trapezoids between neighbours."""
    points = [(0.0, 1.0)]
    for t in sorted(set(pos) | set(neg), reverse=True):
        tp, fp = sum(p >= t for p in pos), sum(q >= t for q in neg)
        points.append((tp / len(pos), tp / (tp + fp)))
    return sum((r1 - r0) * (p0 + p1) / 2 for (r0, p0), (r1, p1) in zip(points, points[1:]))


def _sides(ids, oods, positive):
    ids, oods = list(map(float, ids)), list(map(float, oods))
    return ([-x for x in oods], [-x for x in ids]) if positive == "ood" else (ids, oods)


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("positive", ["ood", "id"])
def test_first_reach_fpr_matches_sklearn_roc_curve_and_a_naive_loop(seed, positive):
    ids, oods = _scores(seed)
    y, s = _labelled(ids, oods, positive)
    fpr, tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    for level in (0.95, 0.9, 0.5, 1.0, 0.05):
        ours = m.fpr_at_tpr_first_reach(ids, oods, level, positive)
        assert ours == fpr[np.argmax(tpr >= level)]  # OpenOOD v1.5's line
        assert ours == naive_first_reach(*_sides(ids, oods, positive), level)


@pytest.mark.parametrize("seed", range(16))
@pytest.mark.parametrize("positive", ["ood", "id"])
def test_trapezoid_aupr_matches_sklearn_auc_of_the_pr_curve_and_a_naive_loop(seed, positive):
    ids, oods = _scores(seed)
    y, s = _labelled(ids, oods, positive)
    precision, recall, _ = sk.precision_recall_curve(y, s)
    ours = m.aupr_trapezoid(ids, oods, positive)
    assert ours == pytest.approx(sk.auc(recall, precision), abs=1e-12)  # OpenOOD's and pytorch-ood's line
    assert ours == pytest.approx(naive_trapezoid_aupr(*_sides(ids, oods, positive)), abs=1e-12)


def test_the_rules_differ_on_which_threshold_of_a_recall_level_they_take():
    # OOD scores 0, -1, ..., -19 (recall steps of 0.05), one ID score between each pair of neighbours. Recall
    # 0.95 is reached at the 19th OOD score: first-reach thresholds right there (18 ID scores flagged), the
    # reference takes the loosest threshold of that recall, just above the 20th, flagging one more.
    oods = -np.arange(20.0)
    ids = -np.arange(20.0) + 0.5
    assert m.fpr_at_tpr_first_reach(ids, oods, 0.95) == pytest.approx(18 / 20)
    assert m.fpr_at_tpr(ids, oods, 0.95) == pytest.approx(19 / 20)
    # At 0.92 the reference takes the closer recall 0.90, below the level; first-reach never undershoots.
    assert m.fpr_at_tpr(ids, oods, 0.92) == pytest.approx(18 / 20)
    assert m.fpr_at_tpr_first_reach(ids, oods, 0.92) == pytest.approx(18 / 20)


def test_trapezoid_aupr_hand():
    # OOD positive scores -ood: OOD 3, 1; ID 2. Points (0, 1), (0.5, 1), (0.5, 0.5), (1, 2/3).
    assert m.aupr_trapezoid([-2.0], [-3.0, -1.0]) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert m.aupr([-2.0], [-3.0, -1.0]) == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.parametrize("call, match", [
    (lambda: m.fpr_at_tpr_first_reach([1.0], [0.0], tpr=0.0), "tpr: expected a number in"),
    (lambda: m.fpr_at_tpr_first_reach([1.0], [0.0], positive="both"), "positive: expected 'ood' or 'id'"),
    (lambda: m.aupr_trapezoid([], [0.0]), "id_scores: expected a non-empty array"),
    (lambda: m.aupr_trapezoid([1.0], [float("nan")]), "ood_scores: expected finite values"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_reports_carry_every_definition_per_set_and_in_the_mean():
    import harness.evaluate as E
    import harness.scores as S
    from harness.bands import is_metric_key

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    logits = rng.normal(size=(200, 3))
    logits[np.arange(200), labels] += 2.0
    ood = {"a": rng.normal(size=(40, 3)), "b": rng.normal(size=(30, 3)) * 2}
    report = E.evaluate_arrays(logits, labels, ood, S.get("msp"), num_to_avg=1, seed=3)
    id_scores = S.get("msp").score(logits=logits)
    for name, out in ood.items():
        draw = out[E.ood_draws(len(out), 200, 1, 3, name)[0]]
        ood_scores = S.get("msp").score(logits=draw)
        for positive in ("ood", "id"):
            got = report.metrics[f"ood/{name}/fpr95_first@{positive}"]["mean"]
            assert got == 100 * m.fpr_at_tpr_first_reach(id_scores, ood_scores, 0.95, positive)
            got = report.metrics[f"ood/{name}/aupr_trapz@{positive}"]["mean"]
            assert got == 100 * m.aupr_trapezoid(id_scores, ood_scores, positive)
    for key in ("fpr95_first@ood", "fpr95_first@id", "aupr_trapz@ood", "aupr_trapz@id"):
        assert report.metrics[f"ood/mean/{key}"]["mean"] == pytest.approx(
            (report.metrics[f"ood/a/{key}"]["mean"] + report.metrics[f"ood/b/{key}"]["mean"]) / 2)
        assert is_metric_key(f"ood/mean/{key}")  # a band may name them
