"""The evaluation protocol (docs/metrics.md): outputs of a classifier -> Report.

`evaluate_arrays` works on logits/features already computed (testable without a
model); `collect_outputs` and `evaluate_model` are the thin model layer.

Protocol (ref, hendrycks/pre-training and wetliu/energy_ood test scripts):
- ID = the whole test set. Each OOD set contributes min(len(id) // 5, its size)
  samples, drawn without replacement, afresh for each of `num_to_avg` repetitions.
  The reference re-runs the (deterministic, eval-mode) model on every sampled
  subset; running it once per set and subsampling the outputs gives the same numbers.
- Each set has its own random stream, seeded by (seed, crc32(set name)), so a
  set's draws do not depend on which other sets are evaluated or their order.
- Per set and metric: mean and population std (ddof = 0) over repetitions.
  The "mean" pseudo-set: mean of the per-set means, mean of the per-set stds.
- Metrics in [0, 1] are stored in percent; nll (nats) and brier raw; curves as fractions.
- A metric undefined on the data is left out of the Report rather than stored as
  NaN (which JSON cannot carry) or as a made-up number: error-detection AUROC
  when every prediction is right (or every one wrong); equal-mass RMS/MAD with
  fewer than 2 * 100 examples ("reference", which skips the top bin) or 100
  ("all_bins"); adaptive ECE below 15 examples; soft F1 when every prediction is
  right at confidence 1. The "mean" set has a key only where every set has it.
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from harness import metrics as M
from harness.scores import Score, as_labels, as_matrix, log_softmax

OOD_SAMPLE_DIVISOR = 5
MEAN_SET = "mean"
_OOD_DETECTION = ("auroc", "aupr@ood", "fpr95@ood", "aupr@id", "fpr95@id")
# The peers' definitions beside the reference ones (docs/metrics.md, Conventions): first-reach FPR95 and
# trapezoidal AUPR.
_PEER_DETECTION = ("fpr95_first@ood", "fpr95_first@id", "aupr_trapz@ood", "aupr_trapz@id")
_EQUAL_MASS = {  # key -> (norm, variant) of metrics.calibration_error
    "calib/rms": ("l2", "reference"),
    "calib/mad": ("l1", "reference"),
    "calib/rms_all_bins": ("l2", "all_bins"),
    "calib/mad_all_bins": ("l1", "all_bins"),
}
OOD_METRICS = _OOD_DETECTION + _PEER_DETECTION + tuple(_EQUAL_MASS) + ("calib/soft_f1",)
BETA = 100  # examples per equal-mass calibration bin (ref)
ADAPTIVE_BINS = 15
_NOT_PERCENT = {"calib/nll", "calib/brier"}
_REPORT_FIELDS = ("metrics", "ood_sets", "curves", "score", "num_to_avg", "seed", "n_id")


@dataclass
class Report:
    """Everything one evaluation measured. `metrics[key] = {"mean", "std", "n"}` (keys: docs/metrics.md)."""

    metrics: dict[str, dict[str, Any]]
    ood_sets: dict[str, dict[str, int]]
    curves: dict[str, Any]
    score: dict[str, Any]
    num_to_avg: int
    seed: int
    n_id: int

    def to_json(self) -> dict[str, Any]:
        """A plain, json.dumps-able dict (no NaN, no numpy types)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in _REPORT_FIELDS}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Report":
        if not isinstance(data, Mapping):
            raise ValueError(f"report: expected a JSON object, got {type(data).__name__}")
        missing = [name for name in _REPORT_FIELDS if name not in data]
        if missing:
            raise ValueError(f"report: missing field(s) {', '.join(missing)}")
        for name in ("metrics", "ood_sets", "curves", "score"):
            if not isinstance(data[name], Mapping):
                raise ValueError(f"report.{name}: expected an object, got {type(data[name]).__name__}")
        for name in ("num_to_avg", "seed", "n_id"):
            if isinstance(data[name], bool) or not isinstance(data[name], int):
                raise ValueError(f"report.{name}: expected an integer, got {data[name]!r}")
        for key, stat in data["metrics"].items():
            if (not isinstance(stat, Mapping) or set(stat) != {"mean", "std", "n"}
                    or not all(isinstance(stat[k], (int, float)) and not isinstance(stat[k], bool) for k in stat)):
                raise ValueError(f"report.metrics[{key!r}]: expected numbers {{mean, std, n}}, got {stat!r}")
        return cls(**{name: copy.deepcopy(dict(data[name]) if isinstance(data[name], Mapping) else data[name])
                      for name in _REPORT_FIELDS})


def ood_draws(n_available: int, n_id: int, num_to_avg: int, seed: int, set_name: str) -> list[np.ndarray]:
    """Indices into one OOD set for each repetition: min(n_id // 5, n_available) each, no replacement within a draw."""
    n_draw = min(n_id // OOD_SAMPLE_DIVISOR, n_available)
    rng = np.random.default_rng([seed, zlib.crc32(set_name.encode("utf-8"))])
    return [rng.choice(n_available, size=n_draw, replace=False) for _ in range(num_to_avg)]


def _stat(values: list[float], percent: bool) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64) * (100.0 if percent else 1.0)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=0)), "n": len(values)}


def _check_int(value: Any, arg: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{arg}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def _check_set_names(sets: Mapping[str, Any], arg: str) -> None:
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError(f"{arg}: expected a non-empty mapping of OOD set name -> data")
    for name in sets:
        if not isinstance(name, str) or not name or "/" in name or name == MEAN_SET:
            raise ValueError(f"{arg}: set name {name!r} is not allowed (non-empty string, no '/', not {MEAN_SET!r})")


def _scores_1d(value: Any, arg: str, n: int) -> np.ndarray:
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{arg}: expected shape ({n},) to match the logits, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{arg}: contains NaN or inf")
    return arr


def _optional_matrix(value: Any, arg: str, n: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = as_matrix(value, arg)
    if len(arr) != n:
        raise ValueError(f"{arg}: expected {n} rows to match the logits, got {len(arr)}")
    return arr


def _compute_scores(score: Score, logits: np.ndarray, features: np.ndarray | None, arg: str) -> np.ndarray:
    if "features" in score.needs and features is None:
        raise ValueError(f"{arg}: score {score.name!r} needs features, none given")
    return score.score(logits=logits, features=features)


def _calibration(conf: np.ndarray, correct: np.ndarray) -> dict[str, float]:
    """Equal-mass RMS/MAD and soft F1, each only where defined for this many examples."""
    out = {}
    for key, (norm, variant) in _EQUAL_MASS.items():
        # The reference variant skips the top bin, so it needs two bins to say anything.
        if len(conf) >= (2 if variant == "reference" else 1) * BETA:
            out[key] = M.calibration_error(conf, correct, norm=norm, beta=BETA, variant=variant)
    if np.sum(1.0 - conf) + np.sum(~correct) > 0:  # else soft F1 is 0/0
        out["calib/soft_f1"] = M.soft_f1(conf, correct)
    return out


def id_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, Any]]:
    """Accuracy, calibration and error detection of class probabilities against labels, as Report stats."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    values = {"accuracy": M.accuracy(probs, labels)}
    values.update(_calibration(conf, correct))
    values["calib/ece"] = M.ece(conf, correct, n_bins=15)
    values["calib/ece10"] = M.ece(conf, correct, n_bins=10)
    if len(conf) >= ADAPTIVE_BINS:
        values["calib/adaptive_ece"] = M.adaptive_ece(conf, correct, n_bins=ADAPTIVE_BINS)
    values["calib/nll"] = M.nll(probs, labels)
    values["calib/brier"] = M.brier(probs, labels)
    if 0 < correct.sum() < len(correct):
        values["error_detection/auroc"] = M.error_detection_auroc(conf, correct)
    return {key: _stat([value], key not in _NOT_PERCENT) for key, value in values.items()}


def _ood_repetition(id_scores, id_conf, id_correct, ood_scores, ood_conf) -> dict[str, float]:
    conf = np.concatenate([id_conf, ood_conf])
    correct = np.concatenate([id_correct, np.zeros(len(ood_conf), dtype=bool)])
    values = {
        "auroc": M.auroc(id_scores, ood_scores),
        "aupr@ood": M.aupr(id_scores, ood_scores, positive="ood"),
        "fpr95@ood": M.fpr_at_tpr(id_scores, ood_scores, tpr=0.95, positive="ood"),
        "aupr@id": M.aupr(id_scores, ood_scores, positive="id"),
        "fpr95@id": M.fpr_at_tpr(id_scores, ood_scores, tpr=0.95, positive="id"),
        "fpr95_first@ood": M.fpr_at_tpr_first_reach(id_scores, ood_scores, tpr=0.95, positive="ood"),
        "fpr95_first@id": M.fpr_at_tpr_first_reach(id_scores, ood_scores, tpr=0.95, positive="id"),
        "aupr_trapz@ood": M.aupr_trapezoid(id_scores, ood_scores, positive="ood"),
        "aupr_trapz@id": M.aupr_trapezoid(id_scores, ood_scores, positive="id"),
    }
    values.update(_calibration(conf, correct))
    return values


def evaluate_arrays(
    id_logits: Any,
    id_labels: Any,
    ood_logits: Mapping[str, Any],
    score: Score,
    *,
    id_features: Any = None,
    ood_features: Mapping[str, Any] | None = None,
    id_scores: Any = None,
    ood_scores: Mapping[str, Any] | None = None,
    num_to_avg: int = 5,
    seed: int = 0,
) -> Report:
    """The protocol on precomputed outputs; `score` must be fitted if it needs fitting.

    `id_scores`/`ood_scores` (both or neither) replace computing the score from the
    arrays; they are required for scores that need the model (odin).
    """
    if not isinstance(score, Score):
        raise ValueError(f"score: expected a harness.scores.Score (from harness.scores.get), got {type(score).__name__}")
    num_to_avg = _check_int(num_to_avg, "num_to_avg", 1)
    seed = _check_int(seed, "seed", 0)
    id_logits = as_matrix(id_logits, "id_logits")
    n_id, n_classes = id_logits.shape
    id_labels = as_labels(id_labels, "id_labels", n_id)
    if id_labels.max() >= n_classes:
        raise ValueError(f"id_labels: class index {id_labels.max()} out of range for {n_classes} logit columns")
    if n_id < OOD_SAMPLE_DIVISOR:
        raise ValueError(f"id_logits: need at least {OOD_SAMPLE_DIVISOR} ID test samples (each OOD draw is len // 5), got {n_id}")
    _check_set_names(ood_logits, "ood_logits")
    ood_logits = {name: as_matrix(value, f"ood_logits[{name!r}]") for name, value in ood_logits.items()}
    for name, value in ood_logits.items():
        if value.shape[1] != n_classes:
            raise ValueError(f"ood_logits[{name!r}]: expected {n_classes} columns like id_logits, got {value.shape[1]}")
    id_features = _optional_matrix(id_features, "id_features", n_id)
    if ood_features is not None:
        if not isinstance(ood_features, Mapping) or set(ood_features) != set(ood_logits):
            raise ValueError(f"ood_features: expected the same set names as ood_logits ({', '.join(ood_logits)})")
        ood_features = {name: _optional_matrix(ood_features[name], f"ood_features[{name!r}]", len(ood_logits[name]))
                        for name in ood_logits}
    if (id_scores is None) != (ood_scores is None):
        raise ValueError("id_scores, ood_scores: give both or neither")
    if id_scores is None:
        if "model" in score.needs:
            raise ValueError(f"score: {score.name!r} needs the model; use evaluate_model, or pass id_scores and "
                             f"ood_scores computed with score.score_model")
        id_scores = _compute_scores(score, id_logits, id_features, "id_features")
        ood_scores = {name: _compute_scores(score, logits, None if ood_features is None else ood_features[name],
                                            f"ood_features[{name!r}]")
                      for name, logits in ood_logits.items()}
    else:
        id_scores = _scores_1d(id_scores, "id_scores", n_id)
        if not isinstance(ood_scores, Mapping) or set(ood_scores) != set(ood_logits):
            raise ValueError(f"ood_scores: expected the same set names as ood_logits ({', '.join(ood_logits)})")
        ood_scores = {name: _scores_1d(ood_scores[name], f"ood_scores[{name!r}]", len(ood_logits[name]))
                      for name in ood_logits}

    probs = np.exp(log_softmax(id_logits))
    id_conf = probs.max(axis=1)
    id_correct = probs.argmax(axis=1) == id_labels
    report_metrics = id_metrics(probs, id_labels)
    ood_sets: dict[str, dict[str, int]] = {}
    roc: dict[str, dict[str, list[float]]] = {}
    per_set: dict[str, dict[str, dict[str, Any]]] = {}
    for name, logits in ood_logits.items():
        ood_conf = np.exp(log_softmax(logits).max(axis=1))
        draws = ood_draws(len(logits), n_id, num_to_avg, seed, name)
        reps = [_ood_repetition(id_scores, id_conf, id_correct, ood_scores[name][idx], ood_conf[idx]) for idx in draws]
        per_set[name] = {key: _stat([rep[key] for rep in reps], percent=True) for key in OOD_METRICS if key in reps[0]}
        ood_sets[name] = {"n_samples": len(draws[0]), "n_available": len(logits)}
        fpr, tpr = M.roc_curve_points(id_scores, ood_scores[name][draws[0]], positive="ood", max_points=101)
        roc[name] = {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr]}
    per_set[MEAN_SET] = {
        key: {"mean": float(np.mean([per_set[s][key]["mean"] for s in ood_logits])),
              "std": float(np.mean([per_set[s][key]["std"] for s in ood_logits])),
              "n": num_to_avg}
        for key in OOD_METRICS
        if all(key in per_set[s] for s in ood_logits)
    }
    for name, stats in per_set.items():
        for key, stat in stats.items():
            report_metrics[f"ood/{name}/{key}"] = stat
    return Report(
        metrics=report_metrics,
        ood_sets=ood_sets,
        curves={"roc": roc, "reliability": M.reliability_bins(id_conf, id_correct, n_bins=15)},
        score={"name": score.name, "params": dict(score.params)},
        num_to_avg=num_to_avg,
        seed=seed,
        n_id=n_id,
    )


# ---------------------------------------------------------------- model layer


def _check_inputs(x: Any, arg: str):
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4 or len(x) == 0:
        shape = tuple(x.shape) if hasattr(x, "shape") else None
        raise ValueError(f"{arg}: expected a non-empty float tensor (N, C, H, W), got "
                         f"{type(x).__name__} shape={shape} dtype={getattr(x, 'dtype', None)}")
    return x


def collect_outputs(model: Any, x: Any, batch_size: int = 1024, device: str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """(logits float64 (N, C), penultimate features float32 (N, D) or None) of `model` on `x`.

    Eval mode, no autograd, batches of `batch_size` moved to `device`. With
    `model.features` and `model.fc` one pass gives both (logits = fc(features));
    with `features` only, forward runs too; with neither, features are None.
    `model` must already be on `device`; its train/eval mode is restored afterwards.
    """
    import torch

    _check_inputs(x, "x")
    batch_size = _check_int(batch_size, "batch_size", 1)
    has_features = callable(getattr(model, "features", None))
    has_head = has_features and callable(getattr(model, "fc", None))
    was_training = model.training
    model.eval()
    logits_out, feats_out = [], []
    try:
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                xb = x[start:start + batch_size].to(device)
                feats = model.features(xb) if has_features else None
                logits = model.fc(feats) if has_head else model(xb)
                logits_out.append(logits.double().cpu().numpy())
                if feats is not None:
                    feats_out.append(feats.flatten(1).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(logits_out), (np.concatenate(feats_out) if feats_out else None)


def head_outputs(model: Any, features: np.ndarray, batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
    """Logits float64 (N, C) of `model.fc` on features `collect_outputs` returned for another model with the
    same body: the same batches, so the numbers are those `collect_outputs(model, x)` gives (a sampling head
    draws per batch)."""
    import torch

    batch_size = _check_int(batch_size, "batch_size", 1)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return np.concatenate([model.fc(torch.from_numpy(features[start:start + batch_size]).to(device))
                                   .double().cpu().numpy() for start in range(0, len(features), batch_size)])
    finally:
        model.train(was_training)


def evaluate_model(
    model: Any,
    id_test_x: Any,
    id_test_y: Any,
    ood_sets: Mapping[str, Any],
    score: Score,
    fit_x: Any = None,
    fit_y: Any = None,
    num_to_avg: int = 5,
    seed: int = 0,
    batch_size: int = 1024,
    device: str = "cpu",
) -> Report:
    """Run `model` over the ID test set and every OOD set (float NCHW tensors), then `evaluate_arrays`.

    A score that needs fitting and is not yet fitted is fitted on the features of
    `fit_x`/`fit_y` (ID training data). ODIN runs its own gradient pass per set.
    """
    if not isinstance(score, Score):
        raise ValueError(f"score: expected a harness.scores.Score (from harness.scores.get), got {type(score).__name__}")
    _check_inputs(id_test_x, "id_test_x")
    id_test_y = as_labels(id_test_y, "id_test_y", len(id_test_x))
    _check_set_names(ood_sets, "ood_sets")
    for name, x in ood_sets.items():
        _check_inputs(x, f"ood_sets[{name!r}]")
    needs_features = "features" in score.needs
    if needs_features and not callable(getattr(model, "features", None)):
        raise ValueError(f"model: score {score.name!r} needs model.features(x), the model has none")
    if score.needs_fit and not score.fitted:
        if fit_x is None or fit_y is None:
            raise ValueError(f"fit_x, fit_y: score {score.name!r} needs fitting on ID training data; none given")
        _check_inputs(fit_x, "fit_x")
        score.fit(collect_outputs(model, fit_x, batch_size, device)[1], fit_y)
    id_logits, id_features = collect_outputs(model, id_test_x, batch_size, device)
    outputs = {name: collect_outputs(model, x, batch_size, device) for name, x in ood_sets.items()}
    extra: dict[str, Any] = {}
    if needs_features:
        extra["id_features"] = id_features
        extra["ood_features"] = {name: out[1] for name, out in outputs.items()}
    if "model" in score.needs:
        extra["id_scores"] = score.score_model(model, id_test_x, batch_size=batch_size, device=device)
        extra["ood_scores"] = {name: score.score_model(model, x, batch_size=batch_size, device=device)
                               for name, x in ood_sets.items()}
    return evaluate_arrays(id_logits, id_test_y, {name: out[0] for name, out in outputs.items()}, score,
                           num_to_avg=num_to_avg, seed=seed, **extra)
