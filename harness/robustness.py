"""Effective robustness (Taori et al. 2020, "Measuring Robustness to Natural Distribution Shifts in Image
Classification"): how much a model's accuracy on a shifted set lies above what its in-distribution accuracy
predicts. The prediction is a line fitted by least squares to logit(shifted accuracy) against logit(ID accuracy)
over a set of models (the cases of one leaderboard row); effective robustness = shifted accuracy - sigmoid(line
at the model's logit(ID accuracy)), in percentage points. Accuracies are percentages; 0 and 100 are clipped to
EPS from the ends so that their logits stay finite.
"""
from __future__ import annotations

import numpy as np

from harness.errors import HarnessError

EPS = 1e-4  # fraction


def _logit(accuracy) -> np.ndarray:
    p = np.clip(np.asarray(accuracy, dtype=float) / 100, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def fit(id_accuracy, shift_accuracy) -> tuple[float, float]:
    """(slope, intercept) of logit(shifted) = slope * logit(ID) + intercept over the given models."""
    x, y = _logit(id_accuracy), _logit(shift_accuracy)
    if x.shape != y.shape or x.ndim != 1:
        raise HarnessError(f"effective robustness: expected as many ID as shifted accuracies, got {x.shape} and {y.shape}")
    if len(np.unique(x)) < 2:
        raise HarnessError(f"effective robustness needs models with at least 2 distinct ID accuracies, got {list(id_accuracy)}")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def effective_robustness(id_accuracy: float, shift_accuracy: float, line: tuple[float, float]) -> float:
    """Shifted accuracy minus the fitted line's prediction at this ID accuracy, in percentage points."""
    slope, intercept = line
    predicted = 100 / (1 + np.exp(-(slope * _logit(id_accuracy) + intercept)))
    return float(shift_accuracy - predicted)
