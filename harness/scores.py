"""OOD scores: a registry of detectors, every score "higher = more in-distribution".

A score is built with `get(name, **params)`. It declares what it reads (`needs`:
"logits", "features", "model") and whether it must first be fitted on
in-distribution training features (`needs_fit`, then `fit(train_features,
train_labels)`). Array scores are computed with `score(logits=..., features=...)`;
ODIN perturbs the input, so it has `score_model(model, x)` instead.

Reference facts reproduced here:
- energy: T * logsumexp(logits / T), T = 1 (Liu et al. 2020, wetliu/energy_ood).
- odin (Liang et al. 2018, facebookresearch/odin; same procedure in wetliu/energy_ood):
  predicted class = argmax of the plain logits; loss = cross-entropy of logits / T
  against it; the gradient's sign (a zero gradient counts as +1, from `grad >= 0`)
  is divided by the per-channel normalization std so that epsilon is measured in
  [0, 1] pixel units; the input moves by -epsilon * that (towards a lower loss);
  the score is the max softmax of the perturbed input's logits / T. Defaults
  T = 1000, epsilon = 0.0014 (facebookresearch/odin main.py). Here the std is 0.5
  for every channel (the harness normalization).
- mahalanobis (Lee et al. 2018): class means and one tied covariance (maximum
  likelihood, divided by N) of the class-centred training features, pseudo-inverse
  as precision; score = -min_c squared Mahalanobis distance (the paper's M(x)). Only
  the penultimate layer, no input preprocessing and no feature ensemble.
- knn (Sun et al. 2022, deeplearning-wisc/knn-ood): features scaled by
  1 / (L2 norm + 1e-10), k = 50 (their CIFAR setting); score = -(squared L2 distance
  to the k-th nearest normalized training feature), as faiss IndexFlatL2 returns
  squared distances. Monotone in the plain distance, so ranking metrics are equal.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from harness.registry import Registry

SCORES: Registry[type["Score"]] = Registry("score")
register = SCORES.register  # class decorator: a Score subclass, under its `name`
names = SCORES.names

# Elements of one similarity / distance block; bounds peak memory of knn and mahalanobis.
_BLOCK_ELEMENTS = 1 << 22


def get(name: str, **params: Any) -> "Score":
    """A new, unfitted score. An unknown name raises HarnessError, unknown parameters ValueError."""
    cls = SCORES.get(name)
    accepted = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) if accepted else "none"
        raise ValueError(f"score {name!r} got unknown parameter(s) {', '.join(unknown)}; accepted: {allowed}")
    return cls(**params)


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; keeps torch out of the array path
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def as_matrix(value: Any, arg: str) -> np.ndarray:
    """`value` as a finite, non-empty float64 (N, D) array, else ValueError naming `arg`."""
    if value is None:
        raise ValueError(f"{arg}: required, got None")
    arr = _to_numpy(value)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{arg}: expected a non-empty 2-D array (N, D), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{arg}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{arg}: contains NaN or inf")
    return arr


def as_labels(value: Any, arg: str, n: int | None = None) -> np.ndarray:
    """`value` as a 1-D int64 array of labels >= 0 (of length `n` if given)."""
    if value is None:
        raise ValueError(f"{arg}: required, got None")
    arr = _to_numpy(value)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{arg}: expected a non-empty 1-D array of class indices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{arg}: expected integer class indices, got dtype {arr.dtype}")
    if arr.min() < 0:
        raise ValueError(f"{arg}: class indices must be >= 0, got {arr.min()}")
    if n is not None and arr.size != n:
        raise ValueError(f"{arg}: expected {n} labels to match the other input, got {arr.size}")
    return arr.astype(np.int64, copy=False)


def _positive(value: Any, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{arg}: expected a finite number > 0, got {value!r}")
    return float(value)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64, stable for any finite logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))


@dataclass(eq=False)
class Score:
    """Base class. Subclasses set `name`, `needs`, `needs_fit` and implement `_score`."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]
    needs_fit: ClassVar[bool] = False

    @property
    def params(self) -> dict[str, Any]:
        """The constructor parameters (defaults included), as recorded in a Report."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @property
    def fitted(self) -> bool:
        return not self.needs_fit

    def fit(self, train_features: Any, train_labels: Any) -> "Score":
        """Fit on in-distribution training features; a no-op for scores that need none."""
        return self

    def score(self, logits: Any = None, features: Any = None) -> np.ndarray:
        """One float64 score per row; higher = more in-distribution."""
        if "model" in self.needs:
            raise ValueError(f"score {self.name!r} needs the model and its inputs: use score_model(model, x)")
        if self.needs_fit and not self.fitted:
            raise ValueError(f"score {self.name!r} is not fitted: call fit(train_features, train_labels) first")
        lg = as_matrix(logits, "logits") if "logits" in self.needs else None
        ft = as_matrix(features, "features") if "features" in self.needs else None
        return self._score(lg, ft)

    def _score(self, logits: np.ndarray | None, features: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError


@register
@dataclass(eq=False)
class MSP(Score):
    """Maximum softmax probability (Hendrycks & Gimpel 2017)."""

    name: ClassVar[str] = "msp"
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})

    def _score(self, logits, features):
        return np.exp(log_softmax(logits).max(axis=1))


@register
@dataclass(eq=False)
class MaxLogit(Score):
    name: ClassVar[str] = "max_logit"
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})

    def _score(self, logits, features):
        return logits.max(axis=1)


@register
@dataclass(eq=False)
class Energy(Score):
    """Negative free energy T * logsumexp(logits / T)."""

    name: ClassVar[str] = "energy"
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})
    temperature: float = 1.0

    def __post_init__(self):
        self.temperature = _positive(self.temperature, "temperature")

    def _score(self, logits, features):
        t = self.temperature
        top = logits.max(axis=1)
        # Factoring out the max keeps exp() in range and makes score >= max logit exactly.
        return top + t * np.log(np.exp((logits - top[:, None]) / t).sum(axis=1))


@register
@dataclass(eq=False)
class Entropy(Score):
    """Negative Shannon entropy (nats) of the softmax: 0 for a one-hot prediction."""

    name: ClassVar[str] = "entropy"
    needs: ClassVar[frozenset[str]] = frozenset({"logits"})

    def _score(self, logits, features):
        logp = log_softmax(logits)
        p = np.exp(logp)
        return np.where(p > 0, p * logp, 0.0).sum(axis=1)


@register
@dataclass(eq=False)
class ODIN(Score):
    """Temperature-scaled MSP of an input nudged towards its predicted class (Liang et al. 2018)."""

    name: ClassVar[str] = "odin"
    needs: ClassVar[frozenset[str]] = frozenset({"model"})
    temperature: float = 1000.0
    epsilon: float = 0.0014
    input_std: float = 0.5

    def __post_init__(self):
        self.temperature = _positive(self.temperature, "temperature")
        self.input_std = _positive(self.input_std, "input_std")
        eps = self.epsilon
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
            raise ValueError(f"epsilon: expected a finite number >= 0, got {eps!r}")
        self.epsilon = float(eps)

    def score_model(self, model: Callable, x: Any, batch_size: int = 1024, device: str = "cpu") -> np.ndarray:
        """ODIN scores of the float NCHW batch `x` under `model` (run in eval mode)."""
        import torch
        import torch.nn.functional as F

        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4 or len(x) == 0:
            raise ValueError(f"x: expected a non-empty float tensor (N, C, H, W), got {_describe(x)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        out = []
        try:
            for start in range(0, len(x), batch_size):
                xb = x[start:start + batch_size].to(device).detach().requires_grad_(True)
                with torch.enable_grad():
                    logits = model(xb)
                    pred = logits.argmax(dim=1)
                    # Summed, not averaged, loss: only the sign is used, and a mean
                    # would make tiny per-example gradients underflow at large batch.
                    loss = F.cross_entropy(logits / self.temperature, pred, reduction="sum")
                    (grad,) = torch.autograd.grad(loss, xb)
                step = ((grad >= 0).to(xb.dtype) * 2 - 1) / self.input_std
                with torch.no_grad():
                    logits = model(xb.detach() - self.epsilon * step)
                    probs = torch.softmax(logits.double() / self.temperature, dim=1)
                out.append(probs.max(dim=1).values.cpu().numpy())
        finally:
            if hasattr(model, "train"):
                model.train(was_training)
        scores = np.concatenate(out)
        if not np.isfinite(scores).all():
            raise ValueError("model: produced NaN or inf logits on x")
        return scores


def _describe(x: Any) -> str:
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    return f"{type(x).__name__} shape={tuple(shape) if shape is not None else None} dtype={dtype}"


def _fit_inputs(train_features: Any, train_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    feats = as_matrix(train_features, "train_features")
    labels = as_labels(train_labels, "train_labels", len(feats))
    return feats, labels


def _check_dim(features: np.ndarray, expected: int) -> None:
    if features.shape[1] != expected:
        raise ValueError(f"features: expected {expected} columns as in the fitted training features, got {features.shape[1]}")


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, start + step)


@register
@dataclass(eq=False)
class Mahalanobis(Score):
    """Negative min-over-classes squared Mahalanobis distance, tied covariance (Lee et al. 2018)."""

    name: ClassVar[str] = "mahalanobis"
    needs: ClassVar[frozenset[str]] = frozenset({"features"})
    needs_fit: ClassVar[bool] = True
    means: np.ndarray | None = field(default=None, init=False, repr=False)
    precision: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def fitted(self) -> bool:
        return self.means is not None

    def fit(self, train_features, train_labels):
        feats, labels = _fit_inputs(train_features, train_labels)
        classes = np.unique(labels)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # checked below, with a clear message
            means = np.stack([feats[labels == c].mean(axis=0) for c in classes])
            centred = feats - means[np.searchsorted(classes, labels)]
            cov = centred.T @ centred / len(feats)
        largest = f"largest |value| {np.abs(feats).max():.3g}; rescale the features"
        if not (np.isfinite(means).all() and np.isfinite(cov).all()):
            raise ValueError(f"train_features: the covariance of the class-centred features is not finite "
                             f"(float64 overflow, {largest})")
        if not cov.any() and centred.any():
            raise ValueError(f"train_features: the covariance of the class-centred features underflows to zero "
                             f"(float64, {largest})")
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                precision = np.linalg.pinv(cov, hermitian=True)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"train_features: cannot invert the covariance of the class-centred features "
                             f"({exc}; {largest})") from None
        if not np.isfinite(precision).all():
            raise ValueError(f"train_features: the inverse of the (singular) covariance of the class-centred "
                             f"features is not finite ({largest})")
        self.precision = precision
        self.means = means
        return self

    def _score(self, logits, features):
        _check_dim(features, self.means.shape[1])
        mp = self.means @ self.precision
        mu_term = np.einsum("cd,cd->c", mp, self.means)
        out = np.empty(len(features))
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused below, never returned
            for rows in _row_blocks(len(features), len(self.means)):
                f = features[rows]
                f_term = np.einsum("nd,nd->n", f @ self.precision, f)
                sq = f_term[:, None] - 2.0 * f @ mp.T + mu_term[None, :]
                out[rows] = -np.maximum(sq, 0.0).min(axis=1)
        bad = ~np.isfinite(out)
        if bad.any():
            raise ValueError(f"features: the squared Mahalanobis distance overflows float64 for {bad.sum()} of "
                             f"{len(out)} rows (largest |value| {np.abs(features[bad]).max():.3g}); rescale the "
                             f"features, and fit on the same scale")
        return out


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-10)


@register
@dataclass(eq=False)
class KNN(Score):
    """Negative squared distance to the k-th nearest normalized training feature (Sun et al. 2022)."""

    name: ClassVar[str] = "knn"
    needs: ClassVar[frozenset[str]] = frozenset({"features"})
    needs_fit: ClassVar[bool] = True
    k: int = 50
    train: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k: expected an int >= 1, got {self.k!r}")
        self.k = int(self.k)

    @property
    def fitted(self) -> bool:
        return self.train is not None

    def fit(self, train_features, train_labels):
        feats, _ = _fit_inputs(train_features, train_labels)
        if len(feats) < self.k:
            raise ValueError(f"train_features: k={self.k} needs at least {self.k} rows, got {len(feats)}")
        self.train = _l2_normalize(feats)
        return self

    def _score(self, logits, features):
        _check_dim(features, self.train.shape[1])
        test = _l2_normalize(features)
        train_sq = np.einsum("nd,nd->n", self.train, self.train)
        out = np.empty(len(test))
        for rows in _row_blocks(len(test), len(self.train)):
            t = test[rows]
            # ||a - b||^2 expanded; the norms are kept (not assumed 1) so a zero row stays exact.
            sq = np.einsum("nd,nd->n", t, t)[:, None] - 2.0 * t @ self.train.T + train_sq[None, :]
            kth = np.partition(sq, self.k - 1, axis=1)[:, self.k - 1]
            out[rows] = -np.maximum(kth, 0.0)
        return out
