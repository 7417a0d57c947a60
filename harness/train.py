"""The one training loop every recipe uses. The recipe names its pieces as data: the optimizer (OPTIMIZERS:
SGD Nesterov + weight decay + per-batch cosine lr, or constant-lr Adam), the objective (harness.objectives)
and which epoch to keep (SELECTIONS: the last, or the lowest score of a rule measured after every epoch: the NLL
on a holdout split, the energy score's FPR95 between the holdout and validation outliers). An outlier objective
(harness.objectives) trains on an auxiliary outlier stream: each step concatenates the in-distribution batch and
`aux_batch_size` outliers (cropped and flipped alike) into one forward pass, so BatchNorm sees the mixed batch.

Reproducibility: `fit` seeds its own RNG streams (the global torch RNG is forked, so callers are unaffected),
and after every epoch writes a resume checkpoint atomically (model, optimizer, scheduler, loader position,
RNG states, per-epoch history; the outlier stream's position too). A run interrupted at any point and started again with the same arguments
continues from the last finished epoch and, on CPU in deterministic mode, ends bit-identical to an
uninterrupted run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness import metrics, objectives, scores
from harness.data import ImageSet, normalize
from harness.data.loaders import DeviceLoader, OutlierLoader, outlier_reference_loader, reference_loader
from harness.errors import HarnessError

MIN_LR = 1e-6
LOADERS = ("fast", "reference")
# "train": batch statistics, running statistics updated (frozen modules' BatchNorms too, as the TST reference
# does); "eval": the running statistics are used and stay fixed (Kumar et al.'s LP-FT runs the whole network in
# eval mode while fine-tuning; a linear probe keeps its features fixed)
BATCHNORM_MODES = ("train", "eval")
_RESUME_FORMAT = "harness-train-state/1"


@dataclass(frozen=True)
class Hyper:
    """What to learn: the optimisation settings a recipe fixes."""

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int = 128
    momentum: float = 0.9
    nesterov: bool = True
    augment: bool = True
    optimizer: str = "sgd_nesterov_cosine"  # a key of OPTIMIZERS
    objective: str = "cross_entropy"        # a harness.objectives name
    select: str = "last"                    # a key of SELECTIONS: which epoch's weights the run returns
    aux_batch_size: int = 0                 # outliers per step (an outlier objective's stream); 0: none
    objective_settings: tuple[tuple[str, float], ...] = ()  # the objective's settings (energy margins)
    batchnorm: str = "train"                # a key of BATCHNORM_MODES: the mode of every BatchNorm while training


@dataclass(frozen=True)
class Options:
    """How to run it: none of these changes what is learned (except `amp`, which changes the arithmetic)."""

    device: str = "cpu"
    loader: str = "fast"              # "fast" (split resident on the device) | "reference" (torch DataLoader)
    deterministic: bool = True
    quiet: bool = False
    amp: bool = False                 # bf16 autocast
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0              # reference loader only


@dataclass
class Result:
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, loss, accuracy, images_per_s, seconds
    train_s: float = 0.0                                # wall time of the epochs run in this call
    resumed_from_epoch: int = 0
    selected_epoch: int = 0                             # the epoch whose weights the model holds at the end


def cosine_factor(step: int, total_steps: int, final_factor: float) -> float:
    """Multiplier of the base lr: 1 at step 0, `final_factor` at `total_steps` (the reference's cosine_annealing)."""
    return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(step / total_steps * math.pi))


def _sgd_nesterov_cosine(params, hyper: Hyper, steps_per_epoch: int):
    """SGD with (Nesterov) momentum and weight decay on every given parameter, and a per-batch cosine LambdaLR."""
    optimizer = torch.optim.SGD(params, lr=hyper.lr, momentum=hyper.momentum, weight_decay=hyper.weight_decay,
                                nesterov=hyper.nesterov)
    total = max(1, hyper.epochs * steps_per_epoch)
    # The reference calls scheduler.step() before each optimizer step, so batch k trains at factor(k + 1)
    # and the last batch at exactly MIN_LR; the shifted lambda reproduces that in the modern call order.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_factor(step + 1, total, MIN_LR / hyper.lr))
    return optimizer, scheduler


def _adam_constant(params, hyper: Hyper, steps_per_epoch: int):
    """Adam (default betas), no weight decay, constant lr: the TST reference's two stages."""
    if hyper.weight_decay:
        raise HarnessError(f"optimizer 'adam_constant' takes no weight decay (the reference has none); "
                           f"got weight_decay {hyper.weight_decay}")
    optimizer = torch.optim.Adam(params, lr=hyper.lr)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


# name -> (params, hyper, steps_per_epoch) -> (optimizer, per-batch scheduler); momentum and nesterov are
# settings of the SGD entry only.
OPTIMIZERS = {"sgd_nesterov_cosine": _sgd_nesterov_cosine, "adam_constant": _adam_constant}


@dataclass(frozen=True)
class Selection:
    """Which epoch's weights a run keeps: the one with the lowest `score(model, sets, device)` measured after every
    epoch (recorded in the history under `stat`; ties to the earlier epoch), or the last epoch when `score` is None.
    `needs`: the sets `fit` must be given for it (of "holdout", "val_ood"), read from `sets` by those names."""

    stat: str | None = None
    needs: tuple[str, ...] = ()
    score: Callable[[nn.Module, dict, str], float] | None = None


# "last": the weights after the last epoch (the reference); "best_holdout_nll": the lowest NLL on the holdout
# split (TST); "best_val_fpr95": the lowest FPR95 of the energy score, the holdout against the validation outliers
# (energy_ft_selected: the energy paper names no validation OOD set, docs/outlier-exposure.md).
SELECTIONS = {
    "last": Selection(),
    "best_holdout_nll": Selection("holdout_nll", ("holdout",),
                                  lambda model, sets, device: holdout_nll(model, sets["holdout"], device=device)),
    "best_val_fpr95": Selection("val_fpr95", ("holdout", "val_ood"),
                                lambda model, sets, device: val_fpr95(model, sets["holdout"], sets["val_ood"],
                                                                      device=device)),
}


def build_optimizer(params, hyper: Hyper, steps_per_epoch: int):
    return OPTIMIZERS[hyper.optimizer](params, hyper, steps_per_epoch)


def fit(model: nn.Module, train_set: ImageSet, hyper: Hyper, *, seed: int = 0, options: Options = Options(),
        frozen: Sequence[nn.Module] = (), checkpoint_path: str | os.PathLike | None = None,
        on_step: Callable[[int, int], None] | None = None, holdout: ImageSet | None = None,
        aux: ImageSet | None = None, val_ood: ImageSet | None = None) -> Result:
    """Train `model` in place on `train_set`; returns the per-epoch history.

    `frozen` modules keep their parameters (excluded from the optimizer) and stay in eval mode (no dropout);
    every BatchNorm, frozen or not, runs in `hyper.batchnorm`'s mode. `on_step(epoch, step)` runs before every
    batch (tests use it to
    interrupt a run). `checkpoint_path`, when given, is where the per-epoch resume state lives. `holdout`
    (images that never train) and `val_ood` (validation outliers, never trained on) score each epoch under the
    selection `hyper.select` that reads them (SELECTIONS); the model ends with the weights of the selected epoch.
    `aux` is the outlier pool an outlier objective draws from.
    """
    selection_sets = {"holdout": holdout, "val_ood": val_ood}
    _validate(train_set, hyper, options, selection_sets)
    selection = SELECTIONS[hyper.select]
    objective = objectives.get(hyper.objective, **dict(hyper.objective_settings))
    _validate_aux(objective, hyper, aux)
    device = torch.device(options.device)
    frozen_ids = {id(p) for m in frozen for p in m.parameters()}
    params = [p for p in model.parameters() if id(p) not in frozen_ids]
    if not params:
        raise HarnessError("nothing to train: every parameter of the model is frozen")
    model.to(device)
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    loader = _make_loader(train_set, hyper, seed, options)
    steps_per_epoch = len(loader)
    for module in model.modules():  # a module whose training follows a schedule of its own (a momentum encoder)
        if hasattr(module, "plan_steps"):
            module.plan_steps(hyper.epochs * steps_per_epoch, steps_per_epoch)
    outliers = None if aux is None else _make_outlier_loader(aux, hyper, seed, options, steps_per_epoch)
    optimizer, scheduler = build_optimizer(params, hyper, steps_per_epoch)
    fingerprint = _fingerprint(model, train_set, hyper, seed, options, len(params), aux)
    result = Result()
    best: dict | None = None  # {"epoch", "model"} of the selected epoch so far (its score: in the history)
    forward = torch.compile(model) if options.compile else model
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), _determinism(options.deterministic, device), \
            _frozen(frozen):
        torch.manual_seed(seed)
        if checkpoint_path is not None and Path(checkpoint_path).exists():
            result.history, best = _resume(checkpoint_path, fingerprint, model, optimizer, scheduler,
                                           (loader, outliers), device)
            result.resumed_from_epoch = len(result.history)
            if not options.quiet:
                print(f"resumed from epoch {result.resumed_from_epoch}/{hyper.epochs} ({checkpoint_path})",
                      file=sys.stderr, flush=True)
        progress = _Progress(hyper.epochs, steps_per_epoch, quiet=options.quiet)
        started = time.perf_counter()
        for epoch in range(len(result.history), hyper.epochs):
            stats = _run_epoch(forward, model, (frozen, hyper.batchnorm), objective, (loader, outliers), optimizer,
                               scheduler, epoch, options, progress, on_step)
            if selection.score is not None:
                stats[selection.stat] = selection.score(model, selection_sets, options.device)
                if best is None or stats[selection.stat] < result.history[best["epoch"] - 1][selection.stat]:
                    best = {"epoch": epoch + 1,
                            "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
            result.history.append(stats)
            if checkpoint_path is not None:
                _save_resume(checkpoint_path, fingerprint, model, optimizer, scheduler, (loader, outliers),
                             result.history, device, best)
        result.train_s = time.perf_counter() - started
    result.selected_epoch = len(result.history)
    if best is not None:
        model.load_state_dict(best["model"])
        result.selected_epoch = best["epoch"]
    if options.channels_last:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    return result


def _run_epoch(forward, model, modes, objective, loaders, optimizer, scheduler, epoch, options, progress,
               on_step) -> dict:
    loader, outliers = loaders
    frozen, batchnorm = modes
    outlier_batches = None if outliers is None else iter(outliers)
    model.train()
    for m in frozen:
        m.eval()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train(batchnorm == "train")
    device = torch.device(options.device)
    # Batches arrive as float32; a float64 model (the reference goldens, tests/test_recipe_goldens.py) gets them
    # cast to its own dtype, which leaves a float32 run unchanged.
    dtype = next(model.parameters()).dtype
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    started = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        if on_step is not None:
            on_step(epoch, step)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if outlier_batches is not None:
            x = torch.cat([x, next(outlier_batches)[0].to(device, non_blocking=True)])
        x = x.to(dtype)
        if options.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            logits = forward(x)
            loss = objective(logits, y, _loss_terms(model))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.detach().double() * y.shape[0]
        if objective.labels:  # a self-supervised model's outputs are no class scores
            correct += (logits.detach()[:len(y)].argmax(1) == y).sum()
        seen += y.shape[0]
        progress.batch(epoch, step, lambda: (loss_sum.item() / seen, _accuracy(objective, correct, seen), seen))
    if outlier_batches is not None and next(outlier_batches, None) is not None:
        raise HarnessError("internal: the outlier stream is longer than the epoch")  # exhausting it ends its epoch
    seconds = time.perf_counter() - started
    stats = {"epoch": epoch + 1, "loss": loss_sum.item() / seen, "accuracy": _accuracy(objective, correct, seen),
             "images_per_s": seen / seconds if seconds > 0 else float("inf"), "seconds": seconds}
    if not math.isfinite(stats["loss"]):
        raise HarnessError(f"training diverged: loss is {stats['loss']} in epoch {epoch + 1}")
    progress.epoch_done(stats)
    return stats


def _accuracy(objective: objectives.Objective, correct: torch.Tensor, seen: int) -> float | None:
    """Training accuracy so far; None for an objective without labels."""
    return correct.item() / seen if objective.labels else None


def _loss_terms(model: nn.Module) -> dict:
    """What the model's modules reported in their last forward pass for the objective (e.g. a V-TST head's KL)."""
    terms: dict = {}
    for module in model.modules():
        terms.update(getattr(module, "loss_terms", {}))
    return terms


@torch.no_grad()
def _labelled_batches(model: nn.Module, data: ImageSet, what: str, batch_size: int, device: str):
    """(logits, labels) of `model` in eval mode over `data`, batch by batch, un-augmented."""
    if len(data) == 0 or (data.labels < 0).any():
        raise HarnessError(f"{what} needs a non-empty, fully labelled set; got {len(data)} images "
                           f"with {(data.labels < 0).sum()} unlabelled")
    for start, logits in zip(range(0, len(data), batch_size), _logits(model, data.images, batch_size, device)):
        yield logits, torch.from_numpy(data.labels[start:start + batch_size]).to(device)


def accuracy(model: nn.Module, data: ImageSet, *, batch_size: int = 1024, device: str = "cpu") -> float:
    """Top-1 accuracy (fraction) of `model` in eval mode on the labelled images of `data`."""
    hits = sum(int((logits.argmax(1) == y).sum())
               for logits, y in _labelled_batches(model, data, "accuracy", batch_size, device))
    return hits / len(data)


def holdout_nll(model: nn.Module, data: ImageSet, *, batch_size: int = 1024, device: str = "cpu") -> float:
    """Mean negative log-likelihood (nats) of `model` in eval mode on the un-augmented images of `data`."""
    total = sum(float(F.cross_entropy(logits.double(), y, reduction="sum"))
                for logits, y in _labelled_batches(model, data, "holdout NLL", batch_size, device))
    return total / len(data)


@torch.no_grad()
def val_fpr95(model: nn.Module, id_set: ImageSet, ood_set: ImageSet, *, batch_size: int = 1024,
              device: str = "cpu") -> float:
    """FPR95 (fraction) of the energy score of `model` in eval mode: the share of the validation outliers `ood_set`
    scored as in-distribution at the threshold that keeps 95 % of the in-distribution images `id_set`, the energy
    paper's reading of FPR95 (positive = ID; the records' `fpr95@id`)."""
    if len(id_set) == 0 or len(ood_set) == 0:
        raise HarnessError(f"validation FPR95 needs in-distribution and OOD images; got {len(id_set)} and "
                           f"{len(ood_set)}")
    energy = scores.get("energy")
    id_scores, ood_scores = (np.concatenate([energy.score(logits.double().cpu().numpy())
                                             for logits in _logits(model, part.images, batch_size, device)])
                             for part in (id_set, ood_set))
    return metrics.fpr_at_tpr(id_scores, ood_scores, tpr=0.95, positive="id")


def _logits(model: nn.Module, images: np.ndarray, batch_size: int, device: str):
    """`model`'s logits in eval mode over uint8 `images`, normalized and un-augmented, batch by batch."""
    model.eval()
    dtype = next(model.parameters()).dtype  # float64 for the reference goldens
    for start in range(0, len(images), batch_size):
        yield model(normalize(torch.from_numpy(images[start:start + batch_size])).to(device, dtype))


def balanced_indices(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most `limit` sorted indices, as equal per class as the counts allow, seeded; all when limit is None."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    # Round-robin over classes, so a class with few images gives its share to the others.
    order = [idx[i] for i in range(max(map(len, per_class))) for idx in per_class if i < len(idx)]
    return np.sort(np.asarray(order[:limit], dtype=np.int64))


# ---------------------------------------------------------------- pieces

def _validate(train_set: ImageSet, hyper: Hyper, options: Options, selection_sets: dict) -> None:
    for what, value, valid in (("optimizer", hyper.optimizer, OPTIMIZERS), ("objective", hyper.objective,
                               objectives.names()), ("select", hyper.select, SELECTIONS),
                              ("batchnorm mode", hyper.batchnorm, BATCHNORM_MODES)):
        if value not in valid:
            raise HarnessError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    for need in SELECTIONS[hyper.select].needs:
        if selection_sets[need] is None or len(selection_sets[need]) == 0:
            what = {"holdout": "holdout split", "val_ood": "validation OOD split"}[need]
            raise HarnessError(f"select {hyper.select!r} needs a non-empty {what}; the run has none")
    if options.loader not in LOADERS:
        raise HarnessError(f"unknown loader {options.loader!r}; valid: {', '.join(LOADERS)}")
    if options.device.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"device {options.device!r} requested but CUDA is not available; use --device cpu")
    if len(train_set) == 0:
        raise HarnessError("the training set is empty")
    if (train_set.labels < 0).any():
        raise HarnessError("the training set has unlabelled images (label -1); training needs labels")
    if hyper.epochs < 0 or hyper.lr <= 0 or hyper.batch_size < 1:
        raise HarnessError(f"invalid training settings: epochs {hyper.epochs} (>= 0), lr {hyper.lr} (> 0), "
                           f"batch_size {hyper.batch_size} (>= 1)")


def _validate_aux(objective: objectives.Objective, hyper: Hyper, aux: ImageSet | None) -> None:
    if objective.outliers and (aux is None or len(aux) == 0 or hyper.aux_batch_size < 1):
        raise HarnessError(f"objective {objective.name!r} trains on auxiliary outliers: it needs a non-empty outlier "
                           f"set and aux_batch_size >= 1 (got {0 if aux is None else len(aux)} images, "
                           f"aux_batch_size {hyper.aux_batch_size})")
    if not objective.outliers and (aux is not None or hyper.aux_batch_size):
        raise HarnessError(f"objective {objective.name!r} does not use outliers; an outlier set or aux_batch_size "
                           f"needs an outlier objective ({', '.join(objectives.outlier_names())})")


def _make_outlier_loader(aux: ImageSet, hyper: Hyper, seed: int, options: Options, steps: int):
    if options.loader == "fast":
        return OutlierLoader(aux.images, hyper.aux_batch_size, steps, options.device, seed=seed)
    return outlier_reference_loader(aux, hyper.aux_batch_size, steps, seed, num_workers=options.num_workers)


def _make_loader(train_set: ImageSet, hyper: Hyper, seed: int, options: Options):
    if options.loader == "fast":
        return DeviceLoader(train_set.images, train_set.labels, hyper.batch_size, options.device,
                            augment=hyper.augment, shuffle=True, seed=seed)
    return reference_loader(train_set, hyper.batch_size, augment=hyper.augment, shuffle=True, seed=seed,
                            num_workers=options.num_workers)


def _loader_state(loader) -> dict:
    if hasattr(loader, "state_dict"):
        return loader.state_dict()
    return {"epoch": loader.sampler.epoch}  # the reference loader's sampler counts epochs


def _load_loader_state(loader, state: dict) -> None:
    if hasattr(loader, "load_state_dict"):
        loader.load_state_dict(state)
    else:
        loader.sampler.epoch = int(state["epoch"])


def _fingerprint(model, train_set, hyper, seed, options, n_params, aux) -> dict:
    """What a resume file must agree on; a mismatch means it belongs to another run. The outlier settings enter
    only when set, so the resume files of runs without outliers read as before."""
    hyper_fields = {k: v for k, v in dataclasses.asdict(hyper).items()
                    if k not in ("aux_batch_size", "objective_settings") or v}
    fingerprint = {"hyper": hyper_fields, "seed": seed, "loader": options.loader, "n_train": len(train_set),
                   "model": type(model).__name__, "n_trainable_tensors": n_params, "amp": options.amp}
    if aux is not None:
        fingerprint["n_aux"] = len(aux)
    return fingerprint


def _save_resume(path, fingerprint, model, optimizer, scheduler, loaders, history, device, best) -> None:
    loader, outliers = loaders
    state = {"format": _RESUME_FORMAT, "fingerprint": fingerprint, "history": history, "best": best,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "loader": _loader_state(loader),
             "outliers": None if outliers is None else _loader_state(outliers),
             "rng_cpu": torch.get_rng_state(),
             "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
    atomic_save(state, path)


def _resume(path, fingerprint, model, optimizer, scheduler, loaders, device) -> tuple[list[dict], dict | None]:
    loader, outliers = loaders
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated or not a torch file
        raise HarnessError(f"resume file {path} is unreadable ({exc.__class__.__name__}: {exc}); delete it "
                           f"to start this run over") from None
    if not isinstance(state, dict) or state.get("format") != _RESUME_FORMAT:
        raise HarnessError(f"{path} is not a harness resume file; delete it to start this run over")
    if state["fingerprint"] != fingerprint:
        raise HarnessError(f"resume file {path} belongs to a different run (saved {state['fingerprint']}, "
                           f"now {fingerprint}); delete it to start this run over")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    _load_loader_state(loader, state["loader"])
    if outliers is not None:
        _load_loader_state(outliers, state["outliers"])
    torch.set_rng_state(state["rng_cpu"].cpu())
    if state["rng_cuda"] is not None:
        torch.cuda.set_rng_state(state["rng_cuda"].cpu(), device)
    return list(state["history"]), state.get("best")


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temporary file beside `path`, fsync, then rename: readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _determinism(enabled: bool, device: torch.device):
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    # warn_only: an op without a deterministic kernel warns instead of aborting a long GPU run.
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and device.type == "cuda"
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[2], previous[3]


@contextlib.contextmanager
def _frozen(modules: Sequence[nn.Module]):
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


class _Progress:
    """One summary line per epoch on stderr; on a terminal also a live line, refreshed twice a second."""

    def __init__(self, epochs: int, steps: int, quiet: bool):
        self.epochs, self.steps, self.quiet = epochs, steps, quiet
        self.live = not quiet and sys.stderr.isatty()
        self.last = 0.0
        self.epoch_start = time.perf_counter()

    def batch(self, epoch: int, step: int, read: Callable[[], tuple[float, float, int]]) -> None:
        if step == 0:
            self.epoch_start = time.perf_counter()
        if not self.live or time.perf_counter() - self.last < 0.5:
            return
        self.last = time.perf_counter()
        loss, acc, seen = read()
        rate = seen / max(1e-9, self.last - self.epoch_start)
        sys.stderr.write(f"\repoch {epoch + 1}/{self.epochs} [{step + 1}/{self.steps}] loss {loss:.4f} "
                         f"{_percent(acc)}{rate:.0f} img/s ")
        sys.stderr.flush()

    def epoch_done(self, s: dict) -> None:
        if self.quiet:
            return
        prefix = "\r" if self.live else ""
        sys.stderr.write(f"{prefix}epoch {s['epoch']}/{self.epochs} loss {s['loss']:.4f} "
                         f"{_percent(s['accuracy'])}{s['images_per_s']:.0f} img/s {s['seconds']:.1f} s\n")
        sys.stderr.flush()


def _percent(accuracy: float | None) -> str:
    return "" if accuracy is None else f"acc {100 * accuracy:.1f}% "
