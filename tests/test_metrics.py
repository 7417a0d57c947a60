"""harness.metrics against hand-computed numbers, sklearn and naive loop re-implementations."""

import math

import numpy as np
import pytest
import sklearn.metrics as sk

import harness.metrics as m

# ------------------------------------------------------------ hand examples


def test_auroc_hand():
    assert m.auroc([3, 4, 5], [0, 1, 2]) == 1.0
    assert m.auroc([0, 1, 2], [3, 4, 5]) == 0.0
    # pairs id > ood: (1,0), (2,0); tie (2,2) counts half -> 2.5 / 4
    assert m.auroc([1, 2], [2, 0]) == 0.625
    assert m.auroc([1, 2], [2, 0], positive="id") == 0.625


def test_aupr_hand():
    # OOD positive with score -ood: ranking -1 (ood), -3 (id), -3.5 (ood), -4 (id)
    # AP = 1/2 * 1 + 1/2 * 2/3
    assert m.aupr([3, 4], [1, 3.5]) == pytest.approx(0.5 + 1 / 3, abs=1e-15)
    # ID positive: ranking 4 (id), 3.5 (ood), 3 (id), 1 (ood): AP = 1/2 * 1 + 1/2 * 2/3
    assert m.aupr([3, 4], [1, 3.5], positive="id") == pytest.approx(0.5 + 1 / 3, abs=1e-15)
    assert m.aupr([0, 0], [0, 0]) == 0.5  # all tied: precision = base rate


# positives 5, 4, 3, 2 interleaved with negatives 4.5, 3.5, 2.5, 0. Thresholds (tp, fp):
# 5 (1,0), 4.5 (1,1), 4 (2,1), 3.5 (2,2), 3 (3,2), 2.5 (3,3), 2 (4,3).
FPR_CASES = [
    (0.95, 0.75),   # recall 1 first reached at threshold 2
    (1.0, 0.75),
    (0.5, 0.5),     # recall 0.5 at 4 and 3.5: the lower threshold wins -> fp 2
    (0.25, 0.25),   # recall 0.25 at 5 and 4.5 -> fp 1
    (0.625, 0.75),  # 0.5 and 0.75 equally close: the lower threshold (recall 0.75, at 2.5) wins
    (0.6, 0.5),
]


@pytest.mark.parametrize("tpr, expected", FPR_CASES)
def test_fpr_at_tpr_hand_both_conventions(tpr, expected):
    pos, neg = [5, 4, 3, 2], [4.5, 3.5, 2.5, 0]
    assert m.fpr_at_tpr(pos, neg, tpr=tpr, positive="id") == expected
    # OOD positive uses -score: the same ranking with the roles swapped
    assert m.fpr_at_tpr([-s for s in neg], [-s for s in pos], tpr=tpr, positive="ood") == expected


def test_fpr_at_tpr_recall_zero_threshold():
    # A negative above every positive adds a threshold with recall 0 and fp 1:
    # thresholds 3 (0,1), 2 (1,1), 1 (2,1); recall 0 is closest to 0.1.
    assert m.fpr_at_tpr([1, 2], [3, 0], tpr=0.1, positive="id") == 0.5
    # Without that negative, recall 0 is not a candidate: recall 0.5 at threshold 2.
    assert m.fpr_at_tpr([1, 2], [0.5, 0], tpr=0.1, positive="id") == 0.0


def test_fpr_at_tpr_default_is_ood_positive_at_95():
    ids = np.arange(100, 120)
    oods = np.r_[np.arange(0, 19), 110]  # one OOD sample ranks among the ID ones
    # OOD recall 19/20 = 0.95 holds for every threshold from "flag <= 18" to
    # "flag < 110"; the reference takes the loosest, flagging ID 100..109.
    assert m.fpr_at_tpr(ids, oods) == 10 / 20
    assert m.fpr_at_tpr(ids, oods, tpr=1.0) == 11 / 20  # ID scores <= 110 are flagged
    assert m.fpr_at_tpr(ids, oods, tpr=0.9) == 0.0  # recall 18/20: flag <= 17 up to < 18


def test_calibration_error_hand_beta_2():
    conf = [0.9, 0.6, 0.8, 0.2, 0.4]
    corr = [1, 0, 1, 0, 1]
    # sorted: 0.2(0) 0.4(1) | 0.6(0) 0.8(1) 0.9(1); bin gaps 0.2 (n=2) and |0.7667-0.6667| = 0.1 (n=3)
    assert m.calibration_error(conf, corr, "l2", 2, "reference") == pytest.approx(math.sqrt(0.4 * 0.04))
    assert m.calibration_error(conf, corr, "l1", 2, "reference") == pytest.approx(0.4 * 0.2)
    assert m.calibration_error(conf, corr, "l2", 2, "all_bins") == pytest.approx(math.sqrt(0.016 + 0.6 * 0.01))
    assert m.calibration_error(conf, corr, "l1", 2, "all_bins") == pytest.approx(0.08 + 0.06)


def test_calibration_error_ties_are_stable():
    # Four ties at 0.5; input order decides which correct values land in which bin.
    conf = [0.5, 0.5, 0.5, 0.5]
    assert m.calibration_error(conf, [1, 1, 0, 0], "l1", 2, "all_bins") == pytest.approx(0.5)
    assert m.calibration_error(conf, [1, 0, 1, 0], "l1", 2, "all_bins") == 0.0


def test_soft_f1_hand():
    # wrong = [0, 1]: 2 * (0.4 * 1) / ((0.2 + 0) + (0.4 + 1))
    assert m.soft_f1([0.8, 0.6], [1, 0]) == pytest.approx(0.5)
    assert m.soft_f1([0.8, 0.6], [True, False]) == pytest.approx(0.5)


def test_ece_hand():
    conf = [0.05, 0.15, 1.0, 0.95]
    corr = [0, 1, 1, 0]
    # bins (0,.1]: gap .05; (.1,.2]: gap .85; (.9,1]: conf .975 acc .5, weight 2/4
    assert m.ece(conf, corr, n_bins=10) == pytest.approx(0.05 / 4 + 0.85 / 4 + 0.5 * 0.475)
    assert m.ece([1.0, 1.0], [1, 1]) == 0.0
    assert m.ece([0.0, 0.0], [0, 0]) == 0.0


def test_adaptive_ece_hand():
    # sizes [3, 2]: gaps |0.2 - 1/3| and |0.9 - 0.5|
    conf = [0.9, 0.1, 0.3, 0.2, 0.9]
    corr = [1, 0, 1, 0, 0]
    assert m.adaptive_ece(conf, corr, n_bins=2) == pytest.approx((3 * (0.4 / 3) + 2 * 0.4) / 5)


def test_reliability_bins_hand():
    rows = m.reliability_bins([0.1, 0.15, 1.0, 0.95, 0.0], [0, 1, 1, 0, 1], n_bins=10)
    assert len(rows) == 10
    assert [r["count"] for r in rows] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]  # 0.1 and 0.0 in (0, .1]
    assert rows[0]["lo"] == 0.0 and rows[-1]["hi"] == 1.0
    assert rows[0]["confidence"] == pytest.approx(0.05) and rows[0]["accuracy"] == 0.5
    assert rows[9]["confidence"] == pytest.approx(0.975) and rows[9]["accuracy"] == 0.5
    assert rows[4]["confidence"] is None and rows[4]["accuracy"] is None
    assert rows[3]["hi"] == rows[4]["lo"]


def test_nll_brier_accuracy_hand():
    probs = [[0.5, 0.5], [0.9, 0.1]]
    labels = [0, 1]
    assert m.nll(probs, labels) == pytest.approx((math.log(2) + math.log(10)) / 2)
    assert m.brier(probs, labels) == pytest.approx((0.5 + 1.62) / 2)
    assert m.accuracy(probs, labels) == 0.5  # argmax of a tie picks the first class
    assert m.accuracy([0, 0], labels) == 0.5
    assert m.accuracy(np.array([[3.0, -1.0], [0.0, 2.0]]), labels) == 1.0  # logits work too


def test_nll_zero_probability_is_finite_and_large():
    value = m.nll([[1.0, 0.0]], [1])
    assert 700 < value < 720


def test_error_detection_auroc_hand():
    # wrong: 0.3, 0.8; right: 0.9, 0.8 -> 3 pairs ranked right, 1 tie -> 3.5 / 4
    assert m.error_detection_auroc([0.9, 0.8, 0.3, 0.8], [1, 1, 0, 0]) == 0.875


def test_roc_curve_points_hand():
    fpr, tpr = m.roc_curve_points([3, 4], [1, 3.5])  # ranking (OOD positive): ood, id, ood, id
    assert fpr == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr == [0.0, 0.5, 0.5, 1.0, 1.0]


# ------------------------------------------------------- sklearn agreement


def _random_scores(rng, n_id, n_ood, ties):
    ids = rng.normal(1.0, 1.0, n_id)
    oods = rng.normal(0.0, 1.5, n_ood)
    if ties:
        ids, oods = np.round(ids, 1), np.round(oods, 1)
    return ids, oods


def _labelled(ids, oods, positive):
    """(y_true, y_score) in the sklearn sense for the given positive class."""
    if positive == "ood":
        return np.r_[np.zeros(len(ids)), np.ones(len(oods))], -np.r_[ids, oods]
    return np.r_[np.ones(len(ids)), np.zeros(len(oods))], np.r_[ids, oods]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("positive", ["ood", "id"])
def test_auroc_aupr_match_sklearn(seed, positive):
    rng = np.random.default_rng(seed)
    ids, oods = _random_scores(rng, int(rng.integers(1, 400)), int(rng.integers(1, 400)), ties=seed % 2 == 0)
    y, s = _labelled(ids, oods, positive)
    assert m.auroc(ids, oods, positive) == pytest.approx(sk.roc_auc_score(y, s), abs=1e-12)
    assert m.aupr(ids, oods, positive) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)


@pytest.mark.parametrize("positive", ["ood", "id"])
def test_roc_curve_points_match_sklearn_when_not_downsampled(positive):
    ids, oods = _random_scores(np.random.default_rng(3), 40, 30, ties=True)
    y, s = _labelled(ids, oods, positive)
    ref_fpr, ref_tpr, _ = sk.roc_curve(y, s, drop_intermediate=False)
    fpr, tpr = m.roc_curve_points(ids, oods, positive=positive, max_points=10_000)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-15)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-15)


def test_roc_curve_points_downsampled():
    ids, oods = _random_scores(np.random.default_rng(4), 5000, 3000, ties=False)
    fpr, tpr = m.roc_curve_points(ids, oods, max_points=101)
    assert len(fpr) == len(tpr) <= 101
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert m.roc_curve_points(ids, oods, max_points=2) == ([0.0, 1.0], [0.0, 1.0])


@pytest.mark.parametrize("seed", range(4))
def test_error_detection_auroc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    conf = np.round(rng.uniform(0, 1, 300), 2)
    correct = rng.uniform(size=300) < conf
    assert m.error_detection_auroc(conf, correct) == pytest.approx(
        sk.roc_auc_score(~correct, -conf), abs=1e-12)


def test_nll_brier_accuracy_match_independent_computations():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 7)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 7, 200)
    assert m.nll(probs, labels) == pytest.approx(sk.log_loss(labels, probs, labels=range(7)), rel=1e-12)
    onehot = np.eye(7)[labels]
    assert m.brier(probs, labels) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)), rel=1e-12)
    assert m.accuracy(probs, labels) == sk.accuracy_score(labels, probs.argmax(axis=1))
    assert m.accuracy(probs.argmax(axis=1), labels) == sk.accuracy_score(labels, probs.argmax(axis=1))


# -------------------------------------------------- naive loop references


def naive_calibration_error(confidence, correct, norm, beta, variant):
    """The reference loop, written out plainly: equal-mass bins of beta sorted examples."""
    pairs = sorted(zip(confidence, correct), key=lambda p: p[0])  # sorted() is stable
    n = len(pairs)
    bins = [[i * beta, (i + 1) * beta] for i in range(n // beta)]
    bins[-1][1] = n
    if variant == "reference":
        bins = bins[:-1]
    total = 0.0
    for start, stop in bins:
        chunk = pairs[start:stop]
        gap = abs(sum(c for c, _ in chunk) / len(chunk) - sum(k for _, k in chunk) / len(chunk))
        total += len(chunk) / n * (gap**2 if norm == "l2" else gap)
    return math.sqrt(total) if norm == "l2" else total


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("variant", ["reference", "all_bins"])
@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_calibration_error_matches_naive_loop(seed, variant, norm):
    rng = np.random.default_rng(seed)
    beta = int(rng.integers(1, 30))
    n = int(rng.integers(2 * beta, 600))
    conf = rng.uniform(0, 1, n)
    if seed % 2:
        conf = np.round(conf, 1)  # many ties: bin membership follows input order
    correct = (rng.uniform(size=n) < conf ** 0.5).astype(int)
    expected = naive_calibration_error(conf.tolist(), correct.tolist(), norm, beta, variant)
    assert m.calibration_error(conf, correct, norm, beta, variant) == pytest.approx(expected, abs=1e-12)


def naive_fpr_at_recall(pos, neg, level):
    """The reference rule with loops: scan distinct thresholds from the highest one
    reaching full recall upwards; the first closest recall wins."""
    thresholds = sorted(set(pos) | set(neg), reverse=True)
    rows = [(sum(p >= t for p in pos), sum(q >= t for q in neg)) for t in thresholds]
    last = next(i for i, (tp, _) in enumerate(rows) if tp == len(pos))
    best_gap, best_fp = None, None
    for tp, fp in reversed(rows[: last + 1]):
        gap = abs(tp / len(pos) - level)
        if best_gap is None or gap < best_gap:
            best_gap, best_fp = gap, fp
    return best_fp / len(neg)


@pytest.mark.parametrize("seed", range(30))
def test_fpr_at_tpr_matches_naive_loop(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 12))  # few distinct values -> many ties
    ids = rng.integers(0, k, int(rng.integers(1, 40))).astype(float)
    oods = rng.integers(0, k, int(rng.integers(1, 40))) - float(rng.integers(0, 3))
    level = float(rng.choice([0.95, 0.9, 0.5, 1.0, 0.05, rng.uniform(0.01, 1)]))
    assert m.fpr_at_tpr(ids, oods, level, "ood") == naive_fpr_at_recall((-oods).tolist(), (-ids).tolist(), level)
    assert m.fpr_at_tpr(ids, oods, level, "id") == naive_fpr_at_recall(ids.tolist(), oods.tolist(), level)


def naive_ece(confidence, correct, n_bins):
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        members = [(c, k) for c, k in zip(confidence, correct)
                   if edges[b] < c <= edges[b + 1] or (b == 0 and c == 0)]
        if members:
            gap = abs(sum(c for c, _ in members) - sum(k for _, k in members))
            total += gap / len(confidence)
    return total


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_naive_loop_including_edges(n_bins):
    rng = np.random.default_rng(n_bins)
    conf = np.r_[rng.uniform(0, 1, 300), np.linspace(0, 1, 31)]  # includes bin edges, 0 and 1
    correct = (rng.uniform(size=len(conf)) < conf).astype(int)
    assert m.ece(conf, correct, n_bins) == pytest.approx(naive_ece(conf.tolist(), correct.tolist(), n_bins), abs=1e-12)
    rows = m.reliability_bins(conf, correct, n_bins)
    assert sum(r["count"] for r in rows) == len(conf)


# --------------------------------------------------------------- bad input

OK_SCORES = [0.1, 0.5, 0.9]
OK_CONF = [0.2, 0.6, 0.9, 0.4]
OK_CORR = [1, 0, 1, 0]
OK_PROBS = [[0.7, 0.3], [0.4, 0.6]]

BAD_INPUTS = [
    # detection: arrays
    (m.auroc, ([0.1, float("nan")], OK_SCORES), {}, "id_scores: expected finite"),
    (m.aupr, (OK_SCORES, [0.1, float("inf")]), {}, "ood_scores: expected finite"),
    (m.fpr_at_tpr, ([], OK_SCORES), {}, "id_scores: expected a non-empty"),
    (m.auroc, (OK_SCORES, []), {}, "ood_scores: expected a non-empty"),
    (m.auroc, ([[0.1, 0.2]], OK_SCORES), {}, "id_scores: expected a 1-D"),
    (m.aupr, (OK_SCORES, 0.5), {}, "ood_scores: expected a 1-D"),
    (m.auroc, (["a", "b"], OK_SCORES), {}, "id_scores: expected numbers"),
    (m.auroc, ([[1, 2], [3]], OK_SCORES), {}, "id_scores: expected a rectangular"),
    # detection: options
    (m.auroc, (OK_SCORES, OK_SCORES), {"positive": "in"}, "positive: expected 'ood' or 'id'"),
    (m.aupr, (OK_SCORES, OK_SCORES), {"positive": None}, "positive"),
    (m.fpr_at_tpr, (OK_SCORES, OK_SCORES), {"positive": "OOD"}, "positive"),
    (m.fpr_at_tpr, (OK_SCORES, OK_SCORES), {"tpr": 0.0}, r"tpr: expected a number in \(0, 1\]"),
    (m.fpr_at_tpr, (OK_SCORES, OK_SCORES), {"tpr": 95}, "tpr"),
    (m.fpr_at_tpr, (OK_SCORES, OK_SCORES), {"tpr": float("nan")}, "tpr"),
    (m.roc_curve_points, (OK_SCORES, OK_SCORES), {"max_points": 1}, "max_points"),
    (m.roc_curve_points, (OK_SCORES, OK_SCORES), {"positive": "x"}, "positive"),
    # calibration: arrays
    (m.calibration_error, ([1.2, 0.5], [1, 0]), {"beta": 1}, r"confidence: expected values in \[0, 1\]"),
    (m.ece, ([-0.1, 0.5], [1, 0]), {}, "confidence: expected values in"),
    (m.soft_f1, ([float("nan"), 0.5], [1, 0]), {}, "confidence: expected finite"),
    (m.adaptive_ece, ([0.5, 0.5], [1, 2]), {"n_bins": 1}, "correct: expected booleans or 0/1"),
    (m.ece, (OK_CONF, [1, 0]), {}, r"correct: expected the same length as confidence \(4\)"),
    (m.soft_f1, ([], []), {}, "confidence: expected a non-empty"),
    (m.reliability_bins, ([[0.5]], [1]), {}, "confidence: expected a 1-D"),
    (m.error_detection_auroc, (OK_CONF, [1, 1, 1, 1]), {}, "correct: expected both correct and wrong"),
    (m.error_detection_auroc, (OK_CONF, [0, 0, 0, 0]), {}, "correct: expected both"),
    (m.error_detection_auroc, (OK_CONF, [1, 0]), {}, "correct: expected the same length"),
    (m.soft_f1, ([1.0, 1.0], [1, 1]), {}, "confidence: expected not every prediction correct"),
    # calibration: options and sizes
    (m.calibration_error, (OK_CONF, OK_CORR), {"norm": "l3", "beta": 1}, "norm: expected 'l2' or 'l1'"),
    (m.calibration_error, (OK_CONF, OK_CORR), {"variant": "all", "beta": 1},
     "variant: expected 'reference' or 'all_bins'"),
    (m.calibration_error, (OK_CONF, OK_CORR), {"beta": 0}, "beta: expected an integer >= 1"),
    (m.calibration_error, (OK_CONF, OK_CORR), {"beta": 2.0}, "beta: expected an integer"),
    (m.calibration_error, (OK_CONF, OK_CORR), {}, "confidence: expected at least beta=100 examples, got 4"),
    (m.calibration_error, (OK_CONF, OK_CORR), {"beta": 3},
     "confidence: expected at least 2.beta=6 .*silently return 0"),
    (m.ece, (OK_CONF, OK_CORR), {"n_bins": 0}, "n_bins: expected an integer >= 1"),
    (m.reliability_bins, (OK_CONF, OK_CORR), {"n_bins": True}, "n_bins"),
    (m.adaptive_ece, (OK_CONF, OK_CORR), {"n_bins": 5}, "confidence: expected at least n_bins=5"),
    # probabilities and labels
    (m.nll, ([0.7, 0.3], [0]), {}, "probs: expected a 2-D"),
    (m.nll, ([[0.7, 0.2], [0.5, 0.5]], [0, 1]), {}, "probs: expected rows summing to 1.*row 0"),
    (m.brier, ([[1.5, -0.5]], [0]), {}, r"probs: expected values in \[0, 1\]"),
    (m.brier, ([[0.5, float("nan")]], [0]), {}, "probs: expected finite"),
    (m.nll, (OK_PROBS, [0, 2]), {}, r"labels: expected class indices in \[0, 1\]"),
    (m.brier, (OK_PROBS, [-1, 0]), {}, "labels: expected class indices"),
    (m.nll, (OK_PROBS, [0.0, 1.0]), {}, "labels: expected integer class indices"),
    (m.brier, (OK_PROBS, [0]), {}, r"labels: expected the same length as probs \(2\)"),
    (m.accuracy, (OK_PROBS, [0, 5]), {}, "labels: expected class indices"),
    (m.accuracy, ([0.5, 1.0], [0, 1]), {}, "predictions: expected integer class indices"),
    (m.accuracy, ([0, 1], [0, 1, 1]), {}, "labels: expected the same length as predictions"),
    (m.accuracy, ([[[0]]], [0]), {}, "predictions: expected a 1-D array or a 2-D array"),
    (m.accuracy, ([], []), {}, "predictions: expected a non-empty"),
]


@pytest.mark.parametrize("func, args, kwargs, match", BAD_INPUTS,
                         ids=[f"{i}-{case[0].__name__}" for i, case in enumerate(BAD_INPUTS)])
def test_bad_input_raises_value_error_naming_the_argument(func, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        func(*args, **kwargs)


def test_module_imports_no_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(m))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported <= {"numpy", "sklearn", "numbers", "__future__"}
