"""OOD-detection and calibration metrics on plain arrays (numpy only; no torch, no sklearn needed).

Conventions
-----------
* Scores are "higher = more in-distribution". Detection metrics take
  ``positive="ood"`` (Hendrycks convention, the default: OOD is the positive
  class and its positive-class score is ``-score``) or ``positive="id"``
  (energy-paper convention: ID is positive, its score is ``score``).
* Every metric returns a fraction (callers multiply by 100); ``nll`` is in nats.
* ``correct`` arrays hold booleans or 0/1; ``confidence`` arrays lie in [0, 1].
* Bad input raises ``ValueError`` whose message starts with the argument name.

The detection metrics sort each class once and count with ``searchsorted``;
that is exact (integer counts) and fast for millions of scores.
"""

from __future__ import annotations

import numbers

import numpy as np

POSITIVES = ("ood", "id")
NORMS = ("l2", "l1")
VARIANTS = ("reference", "all_bins")

_ROW_SUM_TOL = 1e-4
# Only an exactly-zero probability is clipped (to the smallest normal float64,
# costing ~708 nats): the result stays finite, yet loudly large.
_NLL_EPS = np.finfo(np.float64).tiny


def _check(ok, name, expected, got):
    if not ok:
        raise ValueError(f"{name}: expected {expected}, got {got}")


def _array(name, x, *, ndim=1, kind="real", unit=False, length=None):
    """Return ``x`` as a checked ndarray.

    kind "real" -> finite float64; "int" -> int64 from an integer dtype;
    "binary" -> float64 of zeros and ones (from bool or 0/1 numbers).
    ``unit`` requires values in [0, 1]; ``length=(other_name, n)`` requires len n.
    """
    try:
        a = np.asarray(x)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name}: expected a rectangular array ({exc})") from None
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    _check(a.ndim in ndims, name, " or ".join(f"a {d}-D array" for d in ndims), f"shape {a.shape}")
    _check(a.size > 0, name, "a non-empty array", f"shape {a.shape}")
    if length is not None:
        other, n = length
        _check(len(a) == n, name, f"the same length as {other} ({n})", f"length {len(a)}")
    if kind == "int":
        _check(a.dtype.kind in "iu", name, "integer class indices", f"dtype {a.dtype}")
        return a.astype(np.int64, copy=False)
    _check(a.dtype.kind in "biuf", name, "numbers", f"dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    _check(np.isfinite(a).all(), name, "finite values", "NaN or inf")
    if kind == "binary":
        _check(((a == 0) | (a == 1)).all(), name, "booleans or 0/1 values", "other values")
    if unit:
        lo, hi = a.min(), a.max()
        _check(lo >= 0 and hi <= 1, name, "values in [0, 1]", f"range [{lo}, {hi}]")
    return a


def _int_param(name, value, minimum=1):
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
    _check(ok, name, f"an integer >= {minimum}", repr(value))
    return int(value)


def _choice(name, value, allowed):
    _check(value in allowed, name, " or ".join(repr(a) for a in allowed), repr(value))


# ---------------------------------------------------------------- detection


def _sorted_classes(id_scores, ood_scores, positive):
    """Ascending positive-class and negative-class scores (higher = more positive)."""
    ids = _array("id_scores", id_scores)
    oods = _array("ood_scores", ood_scores)
    _choice("positive", positive, POSITIVES)
    if positive == "ood":
        return np.sort(-oods), np.sort(-ids)
    return np.sort(ids), np.sort(oods)


def _auroc_sorted(pos, neg):
    # Mann-Whitney U with ties counted half; summing left+right counts keeps it integer.
    below = np.searchsorted(neg, pos, side="left").sum()
    below_or_tied = np.searchsorted(neg, pos, side="right").sum()
    return float((below + below_or_tied) / (2 * len(pos) * len(neg)))


def auroc(id_scores, ood_scores, positive="ood"):
    """Area under the ROC curve; the same number for either ``positive``."""
    return _auroc_sorted(*_sorted_classes(id_scores, ood_scores, positive))


def _positive_levels(id_scores, ood_scores, positive):
    """Sorted classes, and per distinct positive score (ascending): its first index, value and true positives at
    a threshold equal to it. Recall only moves at these thresholds, so every curve metric walks them."""
    pos, neg = _sorted_classes(id_scores, ood_scores, positive)
    first = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    return pos, neg, first, pos[first], len(pos) - first


def aupr(id_scores, ood_scores, positive="ood"):
    """Average precision (as sklearn's ``average_precision_score``) with the given positive class.

    ``positive="ood"`` gives AUPR-out, ``positive="id"`` AUPR-in. The Hendrycks
    reference, sklearn and torchmetrics compute AUPR this way (step-wise).
    """
    pos, neg, first, values, tp = _positive_levels(id_scores, ood_scores, positive)
    # AP sums precision at each distinct positive score, weighted by how many positives share it.
    group_sizes = np.diff(np.r_[first, len(pos)])
    fp = len(neg) - np.searchsorted(neg, values, side="left")
    return float(np.sum(group_sizes * (tp / (tp + fp))) / len(pos))


def aupr_trapezoid(id_scores, ood_scores, positive="ood"):
    """Trapezoidal area under sklearn's ``precision_recall_curve``: ``auc(recall, precision)``.

    The definition of OpenOOD (aupr_in / aupr_out) and pytorch-ood. The curve
    has a point at every distinct score and starts at (recall 0, precision 1);
    unlike average precision it interpolates linearly between recall levels.
    """
    pos, neg, first, values, tp = _positive_levels(id_scores, ood_scores, positive)
    group_sizes = np.diff(np.r_[first, len(pos)])
    precision = tp / (tp + len(neg) - np.searchsorted(neg, values, side="left"))
    # The previous point of the curve is the next higher distinct score (positive or negative): everything
    # strictly above this value is flagged; above every score, the curve starts at precision 1.
    tp_above = tp - group_sizes
    flagged = tp_above + len(neg) - np.searchsorted(neg, values, side="right")
    precision_above = np.divide(tp_above, flagged, out=np.ones(len(values)), where=flagged > 0)
    return float(np.sum(group_sizes * (precision + precision_above)) / (2 * len(pos)))


def _check_tpr(tpr):
    _check(isinstance(tpr, numbers.Real) and 0 < tpr <= 1, "tpr", "a number in (0, 1]", repr(tpr))


def fpr_at_tpr(id_scores, ood_scores, tpr=0.95, positive="ood"):
    """Fraction of the negative class flagged positive where the positive class's recall is closest to ``tpr``.

    Reproduces ``fpr_and_fdr_at_recall`` of the Hendrycks reference code: the
    candidate thresholds are the distinct scores at or above the highest one
    reaching full recall (plus the threshold above every positive when a
    negative scores higher); recall is ``tp / n_pos`` in float64 and the
    threshold minimising ``|recall - tpr|`` wins, ties going to the lowest
    threshold (most recall, then most false positives).
    """
    pos, neg, first, values, tp = _positive_levels(id_scores, ood_scores, positive)
    _check_tpr(tpr)
    n_pos, n_neg = len(pos), len(neg)
    # For the recall reached at positive score values[j], the lowest threshold
    # giving exactly that recall sits just above values[j-1], so every negative
    # above values[j-1] is flagged (for j = 0: every negative >= min(pos)).
    fp = n_neg - np.r_[
        np.searchsorted(neg, values[:1], side="left"),
        np.searchsorted(neg, values[:-1], side="right"),
    ]
    if neg[-1] > pos[-1]:  # a threshold above every positive: recall 0
        tp = np.r_[tp, 0]
        fp = np.r_[fp, n_neg - np.searchsorted(neg, pos[-1], side="right")]
    gap = np.abs(tp.astype(np.float64) / float(n_pos) - tpr)
    return float(fp[np.argmin(gap)] / n_neg)  # candidates ascend in threshold


def fpr_at_tpr_first_reach(id_scores, ood_scores, tpr=0.95, positive="ood"):
    """Fraction of the negative class flagged at the tightest threshold whose recall is at least ``tpr``.

    ``fpr[argmax(tpr_curve >= tpr)]`` of sklearn's ``roc_curve``: the rule of
    OpenOOD v1.5, pytorch-ood and torch-uncertainty. It never undershoots
    ``tpr``; ``fpr_at_tpr`` (the reference) takes the closest recall, from
    either side, and the loosest threshold of that recall.
    """
    pos, neg, _, values, tp = _positive_levels(id_scores, ood_scores, positive)
    _check_tpr(tpr)
    # Recall falls as the threshold values[j] rises; the last j still reaching tpr is the tightest.
    reach = np.count_nonzero(tp.astype(np.float64) / float(len(pos)) >= tpr) - 1
    return float((len(neg) - np.searchsorted(neg, values[reach], side="left")) / len(neg))


def roc_curve_points(id_scores, ood_scores, positive="ood", max_points=101):
    """ROC curve for plotting: ``(fpr, tpr)`` lists from (0, 0) to (1, 1), at most ``max_points`` long.

    Thresholds are the distinct scores, downsampled evenly by index.
    """
    pos, neg = _sorted_classes(id_scores, ood_scores, positive)
    max_points = _int_param("max_points", max_points, minimum=2)
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    # Counting down from the last index keeps the (1, 1) end even for max_points=2.
    keep = np.unique(np.linspace(len(thresholds) - 1, 0, max_points - 1).round().astype(np.int64))
    t = thresholds[keep]
    tpr = (len(pos) - np.searchsorted(pos, t, side="left")) / len(pos)
    fpr = (len(neg) - np.searchsorted(neg, t, side="left")) / len(neg)
    return [0.0, *fpr.tolist()], [0.0, *tpr.tolist()]


# -------------------------------------------------------------- calibration


def _confidence_correct(confidence, correct):
    conf = _array("confidence", confidence, unit=True)
    return conf, _array("correct", correct, kind="binary", length=("confidence", len(conf)))


def _binned_gaps(conf, corr, starts):
    """Per-bin (size, |mean confidence - accuracy|) for contiguous bins of sorted data."""
    sizes = np.diff(np.r_[starts, len(conf)])
    gaps = np.abs(np.add.reduceat(conf, starts) - np.add.reduceat(corr, starts)) / sizes
    return sizes, gaps


def _stable_sorted(conf, corr):
    # Stable, so ties keep input order and the result is reproducible across platforms.
    order = np.argsort(conf, kind="stable")
    return conf[order], corr[order]


def calibration_error(confidence, correct, norm="l2", beta=100, variant="reference"):
    """RMS (``norm="l2"``) or MAD (``"l1"``) calibration error with equal-mass bins, as a fraction.

    Examples are sorted by confidence (stable sort: tied confidences keep their
    input order) and cut into bins of ``beta`` consecutive examples; the last
    bin absorbs the remainder. RMS = sqrt(sum_b (n_b/n) gap_b^2), MAD =
    sum_b (n_b/n) gap_b, with gap_b = |mean confidence - accuracy| in bin b and
    n the total count. ``variant="reference"`` reproduces the Hendrycks
    reference loop, which skips the top (last) bin while still dividing by the
    full n; ``"all_bins"`` includes it.
    """
    conf, corr = _confidence_correct(confidence, correct)
    _choice("norm", norm, NORMS)
    _choice("variant", variant, VARIANTS)
    beta = _int_param("beta", beta)
    n = len(conf)
    n_bins = n // beta
    _check(n_bins >= 1, "confidence", f"at least beta={beta} examples", f"{n}")
    if variant == "reference":
        _check(n_bins >= 2, "confidence",
               f"at least 2*beta={2 * beta} examples for variant 'reference' "
               "(it skips the only bin and would silently return 0)", f"{n}")
    sizes, gaps = _binned_gaps(*_stable_sorted(conf, corr), np.arange(n_bins) * beta)
    if variant == "reference":
        sizes, gaps = sizes[:-1], gaps[:-1]
    if norm == "l2":
        return float(np.sqrt(np.sum(sizes * gaps**2) / n))
    return float(np.sum(sizes * gaps) / n)


def soft_f1(confidence, correct):
    """Soft F1 of detecting wrong predictions with 1 - confidence (reference formula).

    2 * sum((1 - c) * wrong) / sum(1 - c + wrong).
    """
    conf, corr = _confidence_correct(confidence, correct)
    wrong = 1.0 - corr
    denominator = np.sum(1.0 - conf + wrong)
    _check(denominator > 0, "confidence", "not every prediction correct with confidence 1 "
           "(soft F1 is 0/0 then)", "all correct at confidence 1")
    return float(2.0 * np.sum((1.0 - conf) * wrong) / denominator)


def _equal_width_bins(conf, corr, n_bins):
    """Counts, confidence sums and correct sums per equal-width bin.

    Bin b covers (b/n_bins, (b+1)/n_bins]; the first bin also holds 0, so a
    confidence of exactly 1.0 lands in the top bin (Guo et al.'s convention).
    """
    n_bins = _int_param("n_bins", n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sums = np.bincount(idx, weights=conf, minlength=n_bins)
    corr_sums = np.bincount(idx, weights=corr, minlength=n_bins)
    return edges, counts, conf_sums, corr_sums


def ece(confidence, correct, n_bins=15):
    """Expected calibration error, equal-width bins: sum_b (n_b/n) |accuracy_b - mean confidence_b|."""
    conf, corr = _confidence_correct(confidence, correct)
    _, counts, conf_sums, corr_sums = _equal_width_bins(conf, corr, n_bins)
    return float(np.sum(np.abs(conf_sums - corr_sums)) / len(conf))


def adaptive_ece(confidence, correct, n_bins=15):
    """ECE with equal-mass bins.

    Examples sorted by confidence (stable) are split into ``n_bins`` contiguous
    bins whose sizes differ by at most one, larger bins first (as
    ``np.array_split``); needs at least ``n_bins`` examples.
    """
    conf, corr = _confidence_correct(confidence, correct)
    n_bins = _int_param("n_bins", n_bins)
    n = len(conf)
    _check(n >= n_bins, "confidence", f"at least n_bins={n_bins} examples", f"{n}")
    sizes = np.full(n_bins, n // n_bins)
    sizes[: n % n_bins] += 1
    sizes, gaps = _binned_gaps(*_stable_sorted(conf, corr), np.r_[0, np.cumsum(sizes)[:-1]])
    return float(np.sum(sizes * gaps) / n)


def reliability_bins(confidence, correct, n_bins=15):
    """Reliability-diagram rows, one per equal-width bin (binned as ``ece``).

    Each row: {"lo", "hi", "confidence", "accuracy", "count"}; mean confidence
    and accuracy are None for an empty bin.
    """
    conf, corr = _confidence_correct(confidence, correct)
    edges, counts, conf_sums, corr_sums = _equal_width_bins(conf, corr, n_bins)
    rows = []
    for b, count in enumerate(counts.tolist()):
        rows.append({
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "confidence": float(conf_sums[b] / count) if count else None,
            "accuracy": float(corr_sums[b] / count) if count else None,
            "count": count,
        })
    return rows


def _probs_labels(probs, labels):
    p = _array("probs", probs, ndim=2, unit=True)
    sums = p.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    _check(abs(sums[worst] - 1.0) <= _ROW_SUM_TOL, "probs",
           f"rows summing to 1 (within {_ROW_SUM_TOL})", f"row {worst} sums to {sums[worst]}")
    return p, _class_labels(labels, "probs", len(p), p.shape[1])


def _class_labels(labels, other, n, n_classes):
    y = _array("labels", labels, kind="int", length=(other, n))
    lo, hi = y.min(), y.max()
    _check(lo >= 0 and hi < n_classes, "labels", f"class indices in [0, {n_classes - 1}]",
           f"range [{lo}, {hi}]")
    return y


def nll(probs, labels):
    """Mean negative log-likelihood (nats) of ``labels`` under ``probs`` (N, K).

    Rows must sum to 1 within 1e-4. A probability of exactly 0 is clipped to
    the smallest normal float64 (costing ~708 nats) so the mean stays finite.
    """
    p, y = _probs_labels(probs, labels)
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], _NLL_EPS))))


def brier(probs, labels):
    """Mean over examples of sum_k (p_k - onehot_k)^2 (range [0, 2])."""
    p, y = _probs_labels(probs, labels)
    p_true = p[np.arange(len(y)), y]
    return float(np.mean(np.einsum("ij,ij->i", p, p) - 2.0 * p_true + 1.0))


def accuracy(predictions, labels):
    """Fraction of correct predictions.

    ``predictions`` is either 1-D predicted class indices or 2-D (N, K) scores
    (probabilities or logits) whose row-wise argmax is the prediction.
    """
    pred = _array("predictions", predictions, ndim=(1, 2))
    if pred.ndim == 2:
        y = _class_labels(labels, "predictions", len(pred), pred.shape[1])
        pred = pred.argmax(axis=1)
    else:
        _check(np.all(pred == np.round(pred)), "predictions", "integer class indices", "fractions")
        y = _array("labels", labels, kind="int", length=("predictions", len(pred)))
    return float(np.mean(pred == y))


def error_detection_auroc(confidence, correct):
    """AUROC of detecting wrong predictions (positive class) by low confidence."""
    conf, corr = _confidence_correct(confidence, correct)
    wrong = corr == 0
    n_wrong = int(wrong.sum())
    _check(0 < n_wrong < len(corr), "correct", "both correct and wrong predictions",
           f"{n_wrong} wrong of {len(corr)}")
    return _auroc_sorted(np.sort(-conf[wrong]), np.sort(-conf[~wrong]))
