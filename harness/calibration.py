"""Post-hoc calibration fitted on a model's holdout split, and the calibration views a case records beside its
main metrics (the evaluation protocol: docs/metrics.md).

- Temperature scaling (Guo et al. 2017): the T > 0 minimising the NLL of softmax(logits / T) on the holdout
  split. The NLL is convex in 1/T, hence unimodal in log T, so a bounded scalar search (scipy's Brent) over
  log T in [0.05, 20] finds the minimum (up to 1e-6 in log T); an optimum beyond a bound ends at the bound.
- Keys: every calibration metric of the ID test set again at the fitted T, `calib@T/<metric>`, and T itself,
  `calib@T/temperature` (accuracy does not change: dividing by T keeps the argmax). For a model whose head
  samples (V-TST: averaged over M draws), the same head with one draw: `accuracy@M1`, `calib@M1/<metric>`.
- Calibration with OOD data at the fitted T, `ood/<set>/calib@T/<metric>` and its means (the Outlier Exposure
  paper's protocol, hendrycks/outlier-exposure test_calibration.py): ID and OOD confidences are both
  max softmax(logits / T), every OOD sample counts as wrong, and RMS / MAD / soft F1 come from the same draws
  (the same seed and set streams) as the case's detection metrics. The reference tunes T by bisection on
  dNLL/dT over [0.2, 5]; the search here finds the same minimum whenever it lies inside that interval.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from harness import data as hdata
from harness import scores
from harness.errors import HarnessError
from harness.evaluate import collect_outputs, evaluate_arrays, id_metrics
from harness.scores import as_labels, as_matrix, log_softmax

T_BOUNDS = (0.05, 20.0)


def nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    return float(-log_softmax(logits / temperature)[np.arange(len(labels)), labels].mean())


def fit_temperature(logits, labels) -> float:
    """The temperature in T_BOUNDS with the lowest NLL of `logits` (N, K) against `labels` (N,)."""
    if logits is None or len(logits) == 0:
        raise HarnessError("temperature scaling needs a non-empty holdout split; this model has none "
                           "(give its recipe a holdout, e.g. --set holdout=0.2)")
    logits = as_matrix(logits, "holdout logits")
    labels = as_labels(labels, "holdout labels", len(logits))
    lo, hi = (math.log(t) for t in T_BOUNDS)
    found = minimize_scalar(lambda log_t: nll_at(logits, labels, math.exp(log_t)), bounds=(lo, hi),
                            method="bounded", options={"xatol": 1e-6})
    return float(min(max(math.exp(found.x), T_BOUNDS[0]), T_BOUNDS[1]))


def _renamed(stats: dict, prefix: str, accuracy: str | None = None) -> dict:
    out = {f"{prefix}/{key.removeprefix('calib/')}": stat for key, stat in stats.items() if key.startswith("calib/")}
    if accuracy is not None:
        out[accuracy] = stats["accuracy"]
    return out


def temperature_metrics(test_logits, test_labels, holdout_logits, holdout_labels) -> dict:
    """`calib@T/*` of the test logits at the temperature fitted on the holdout logits, and that temperature."""
    temperature = fit_temperature(holdout_logits, holdout_labels)
    probs = np.exp(log_softmax(as_matrix(test_logits, "test logits") / temperature))
    out = _renamed(id_metrics(probs, as_labels(test_labels, "test labels", len(probs))), "calib@T")
    out["calib@T/temperature"] = {"mean": temperature, "std": 0.0, "n": 1}
    return out


def ood_temperature_metrics(test_logits, test_labels, ood_logits: dict, temperature: float, num_to_avg: int,
                            seed: int) -> dict:
    """`ood/<set>/calib@T/<metric>` (and `ood/mean/...`): calibration with each OOD set's samples counted as
    wrong, every confidence at `temperature`; the OOD draws are the detection metrics' (same seed, same sets)."""
    scaled = {name: as_matrix(logits, f"ood logits {name!r}") / temperature for name, logits in ood_logits.items()}
    report = evaluate_arrays(as_matrix(test_logits, "test logits") / temperature, test_labels, scaled,
                             scores.get("msp"), num_to_avg=num_to_avg, seed=seed)
    return {key.replace("/calib/", "/calib@T/"): stat for key, stat in report.metrics.items()
            if key.startswith("ood/") and "/calib/" in key}


def views(model: torch.nn.Module, test_x: torch.Tensor, test_labels: np.ndarray, test_logits: np.ndarray,
          holdout: hdata.ImageSet | None, batch_size: int, device: str, ood_logits: dict | None = None,
          num_to_avg: int = 5, seed: int = 0) -> dict:
    """The extra calibration metrics of one model: at the fitted T when it has a holdout split (with the OOD
    sets' `ood_logits` too, when given), at one sample when its head samples. Empty for a model with neither."""
    out = {}
    if holdout is not None:
        holdout_logits, _ = collect_outputs(model, hdata.normalize(holdout.images), batch_size, device)
        out.update(temperature_metrics(test_logits, test_labels, holdout_logits, holdout.labels))
        if ood_logits:
            out.update(ood_temperature_metrics(test_logits, test_labels, ood_logits,
                                               out["calib@T/temperature"]["mean"], num_to_avg, seed))
    head = getattr(model, "fc", None)
    samples = getattr(head, "samples", 1)
    if samples > 1:
        head.samples = 1
        try:
            logits, _ = collect_outputs(model, test_x, batch_size, device)
        finally:
            head.samples = samples
        out.update(_renamed(id_metrics(np.exp(log_softmax(logits)), test_labels), "calib@M1", "accuracy@M1"))
    return out
