"""Training objectives as a registry: `get(name)(logits, targets, terms) -> scalar loss`.

A recipe names its objective (`objective = "focal"`); `train.fit` looks it up here. `terms` are the extra
quantities the model reported in its last forward pass (a module publishes them in its `loss_terms` dict: the
V-TST head reports the per-example KL divergence `kl` and its latent size `latent_dim`). An objective that needs
a term the model did not report fails with a message naming the term.

Definitions (Jordahn & Olmos 2024 and its replication, docs/sources.md#two-stage-training-tst-v-tst; Mukhoti
et al. 2020 for the adaptive focal loss):
- cross_entropy:  mean(-log p_t)
- focal:          mean(-(1 - p_t)^gamma * log p_t), gamma = 3
- adaptive_focal: the focal loss with gamma = 5 where p_t < 0.2, else 3 (gamma is piecewise constant in p_t,
                  so it carries no gradient of its own)
- variational:    cross-entropy + mean over the batch of (KL(q(z|x) || N(0, I)) summed over z's dimensions) / Z

Outlier objectives (hendrycks/outlier-exposure and wetliu/energy_ood: docs/sources.md#outlier-exposure and
#energy-fine-tuning-and-the-energy-score) see one forward pass over the in-distribution batch followed by the
auxiliary outliers: the rows past len(targets) are outliers. They need the training loop's outlier stream.
- outlier_exposure: cross-entropy + 0.5 * mean over outliers of (logsumexp(x) - mean_k x_k), the cross-entropy
                    from the softmax to the uniform distribution up to the constant log K (Hendrycks et al. 2019)
- energy_margin:    cross-entropy + 0.1 * (mean relu(E_in - m_in)^2 + mean relu(m_out - E_out)^2), E = -logsumexp
                    (Liu et al. 2020); the margins m_in, m_out are settings of the objective

Self-supervised (harness.ssl): the learner makes its two views and computes its method's loss in the forward pass.
- self_supervised:  the loss the model reported as `ssl_loss`; the targets are not read (labels = False: the loop
                    reports no training accuracy)
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from harness.errors import HarnessError
from harness.registry import Registry

FOCAL_GAMMA = 3.0
ADAPTIVE_GAMMA_LOW_P = 5.0   # gamma where p_t < ADAPTIVE_THRESHOLD
ADAPTIVE_THRESHOLD = 0.2
OE_WEIGHT = 0.5
ENERGY_WEIGHT = 0.1


@dataclass(frozen=True)
class Objective:
    name: str
    summary: str
    loss: Callable[[torch.Tensor, torch.Tensor, Mapping], torch.Tensor]
    needs: tuple[str, ...] = ()
    outliers: bool = False            # the logits end with rows of auxiliary outliers (no targets)
    settings: tuple[str, ...] = ()    # what `get` must be given (e.g. the energy margins)
    values: Mapping = field(default_factory=dict)
    labels: bool = True               # the loss reads the targets (False: self-supervised)
    reported_by: str = "a variational head, recipe 'vtst'"  # the model that reports the `needs` terms

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, terms: Mapping | None = None) -> torch.Tensor:
        terms = terms or {}
        missing = [t for t in self.needs if t not in terms]
        if missing:
            raise HarnessError(f"objective {self.name!r} needs the model to report {', '.join(missing)} in its "
                               f"forward pass ({self.reported_by}); this model reports "
                               f"{', '.join(sorted(terms)) or 'nothing'}")
        return self.loss(logits, targets, terms, **self.values)


OBJECTIVES: Registry[Objective] = Registry("objective")
names = OBJECTIVES.names


def objective(name: str, summary: str, **kwargs) -> Callable:
    """Decorator: register the loss function `loss(logits, targets, terms, **values)` as the objective `name`
    (kwargs: the other fields of Objective)."""
    def add(loss):
        OBJECTIVES.register(Objective(name, summary, loss, **kwargs))
        return loss
    return add


def outlier_names() -> tuple[str, ...]:
    return tuple(n for n in names() if OBJECTIVES.get(n).outliers)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """bf16 (autocast) logits up to float32 for the log-sum-exps; float64 ones (the reference goldens) stay."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _log_p_target(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(_at_least_float32(logits), dim=1).gather(1, targets[:, None]).squeeze(1)


def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: torch.Tensor | float) -> torch.Tensor:
    log_pt = _log_p_target(logits, targets)
    return (-(1 - log_pt.exp()) ** gamma * log_pt).mean()


def energy(logits: torch.Tensor) -> torch.Tensor:
    """E(x) = -logsumexp(logits) (T = 1): lower for inputs the model treats as in-distribution."""
    return -torch.logsumexp(_at_least_float32(logits), dim=1)


@objective("cross_entropy", "cross-entropy (the reference)")
def _cross_entropy(logits, targets, terms):
    return F.cross_entropy(logits, targets)


@objective("focal", f"focal loss, gamma {FOCAL_GAMMA:g}")
def _focal(logits, targets, terms):
    return focal(logits, targets, FOCAL_GAMMA)


@objective("adaptive_focal", f"focal loss, gamma {ADAPTIVE_GAMMA_LOW_P:g} where p_t < {ADAPTIVE_THRESHOLD:g}, "
                             f"else {FOCAL_GAMMA:g}")
def _adaptive_focal(logits, targets, terms):
    with torch.no_grad():
        # softmax, not exp(log_softmax): p_t of exactly 0.2 (uniform over 5 classes) must read as 0.2
        p_target = F.softmax(_at_least_float32(logits), dim=1).gather(1, targets[:, None]).squeeze(1)
        low = p_target < ADAPTIVE_THRESHOLD
        gamma = torch.where(low, ADAPTIVE_GAMMA_LOW_P, FOCAL_GAMMA)
    return focal(logits, targets, gamma)


@objective("variational", "cross-entropy + KL(q(z|x) || N(0, I)) / Z (V-TST)", needs=("kl", "latent_dim"))
def _variational(logits, targets, terms):
    return F.cross_entropy(logits, targets) + terms["kl"].mean() / terms["latent_dim"]


@objective("outlier_exposure", f"cross-entropy + {OE_WEIGHT:g} x cross-entropy to uniform on the outliers (OE)",
           outliers=True)
def _outlier_exposure(logits, targets, terms):
    n = len(targets)
    out = _at_least_float32(logits[n:])
    return F.cross_entropy(logits[:n], targets) + OE_WEIGHT * (out.logsumexp(1) - out.mean(1)).mean()


@objective("energy_margin", f"cross-entropy + {ENERGY_WEIGHT:g} x squared energy hinges at m_in, m_out",
           outliers=True, settings=("m_in", "m_out"))
def _energy_margin(logits, targets, terms, m_in: float, m_out: float):
    n = len(targets)
    e = energy(logits)
    hinge = F.relu(e[:n] - m_in).pow(2).mean() + F.relu(m_out - e[n:]).pow(2).mean()
    return F.cross_entropy(logits[:n], targets) + ENERGY_WEIGHT * hinge


@objective("self_supervised", "the self-supervised loss the model reported (BYOL, Barlow Twins, DINO, SimCLR)",
           needs=("ssl_loss",), labels=False,
           reported_by="a self-supervised learner, recipes 'byol', 'barlow_twins', 'dino', 'simclr'")
def _self_supervised(logits, targets, terms):
    return terms["ssl_loss"]


def get(name: str, **values) -> Objective:
    """The objective `name`, with the values of its settings (exactly those it names)."""
    entry = OBJECTIVES.get(name)
    if set(values) != set(entry.settings):
        raise HarnessError(f"objective {name!r} takes the settings {', '.join(entry.settings) or 'none'}; "
                           f"got {', '.join(sorted(values)) or 'none'}")
    return replace(entry, values=dict(values))
