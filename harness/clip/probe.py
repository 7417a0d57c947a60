"""The CLIP paper's linear probe (Radford et al. 2021, appendix A.3): scikit-learn's L-BFGS logistic regression
(at most 1,000 iterations) on frozen image features, its L2 strength lambda chosen on a held-out split by a
parametric binary search over [1e-6, 1e6]: start at 1e-6, 1e-4, ..., 1e6, then repeatedly halve the step around
the best value until it reaches 8 steps per decade (the resolution of the paper's 96-step sweep). C = 1 / lambda.

Harness choices the paper leaves open: the held-out split is a seeded random `val_fraction` of the training
images, and the final probe is refitted on the whole training split at the chosen lambda.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression

COARSE = tuple(10.0 ** e for e in range(-6, 7, 2))
FINEST_STEP = 1 / 8  # decades


def _fit(features, labels, lam: float) -> LogisticRegression:
    return LogisticRegression(C=1 / lam, max_iter=1000).fit(features, labels)


def sweep(train_x, train_y, val_x, val_y) -> tuple[float, dict[float, float]]:
    """(the best lambda, {lambda: held-out accuracy} of every lambda tried); ties go to the stronger penalty."""
    scores: dict[float, float] = {}

    def score(lam: float) -> float:
        if lam not in scores:
            scores[lam] = float((_fit(train_x, train_y, lam).predict(val_x) == val_y).mean())
        return scores[lam]

    for lam in COARSE:
        score(lam)
    step = 2.0
    while step > FINEST_STEP:
        step /= 2
        best = max(scores, key=lambda lam: (scores[lam], lam))
        for neighbour in (best * 10 ** -step, best * 10 ** step):
            if 1e-6 <= neighbour <= 1e6:
                score(neighbour)
    best = max(scores, key=lambda lam: (scores[lam], lam))
    return best, scores


def probe(features: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int):
    """(coef (C, D), intercept (C,), lambda, {lambda: val accuracy}) of the probe on `features`."""
    order = np.random.default_rng(seed).permutation(len(labels))
    n_val = max(1, math.floor(len(labels) * val_fraction))
    val, fit = order[:n_val], order[n_val:]
    lam, scores = sweep(features[fit], labels[fit], features[val], labels[val])
    final = _fit(features, labels, lam)
    coef, intercept = final.coef_, final.intercept_
    if coef.shape[0] == 1:  # scikit-learn keeps one row for two classes: logits (-z/2, z/2) give the same softmax
        coef, intercept = np.concatenate([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    return coef, intercept, lam, scores
