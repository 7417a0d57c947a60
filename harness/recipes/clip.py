"""Recipes on a CLIP backbone: the case's model entry (`open_clip:ARCH`, docs/clip.md) is the pretrained model.

They are registry entries of their own (`clip_*`) rather than a backbone setting of finetune / linear_probe /
lp_ft / wise_ft: their papers fix other settings (AdamW and a warmup-cosine schedule, not SGD; an L-BFGS probe
with a lambda sweep, not SGD on the head; the zero-shot head, not a new one; interpolating the head too), and
their inputs differ (a loaded entry, not a `pretrain` run). Each returns a `ClipClassifier`, so evaluation,
records and the leaderboard treat them as any other model. Trained models are cached under
<checkpoint cache>/clip/<key>.pt, the key hashing the recipe, its settings, the epochs, the weights and head,
the training images and the seed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from harness import train
from harness import data as hdata
from harness.checkpoint_files import atomic_write
from harness.clip import schedule
from harness.errors import HarnessError
from harness.evaluate import collect_outputs
from harness.recipes.base import Recipe, _check, _Trained, register
from harness.recipes.transfer import interpolate


class _OnClipEntry:
    """A recipe whose pretrained model is the case's CLIP model entry: its `obtain` builds the model from the entry
    (Recipe.obtain's default trains with checkpoints.obtain, the entry as an upstream checkpoint)."""

    linear_head: ClassVar[bool] = False  # its head sits on normalised embeddings: no `base` of other recipes

    def obtain(self, dataset: str, profile, seed: int, *, entry=None, upstream=None, device: str = "cpu",
               data_root=None, cache_dir=None, quiet: bool = True) -> tuple[torch.nn.Module, dict]:
        from harness import checkpoints  # it imports the recipes
        from harness.clip import entries
        if entry is None:
            raise HarnessError(f"recipe {self.name} runs on a CLIP model entry: give the case one "
                               f"(Case(..., entry=NAME), an entry with architecture = \"open_clip:ARCH\")")
        zero_shot, loaded = entries.zero_shot_classifier(entry, dataset, data_root)
        run = _Run(self, entry, dataset, profile, seed, device, data_root,
                   Path(cache_dir) if cache_dir else checkpoints.default_cache_dir(data_root), quiet, loaded)
        model, key, extra = self.make(zero_shot, run)
        info = {"key": key, "model": entry.architecture, "from_cache": extra.pop("from_cache", True),
                "settings": {**self.settings(), **extra, "entry": entry.to_json(), "templates": loaded["templates"]},
                "upstream": {"recipe": "clip_zero_shot", "dataset": dataset, "entry": entry.name},
                "pretrain_dataset": None, "accuracy": run.accuracy(model)}
        return model.to(device).eval(), info

    def make(self, zero_shot, run: _Run) -> tuple[torch.nn.Module, str, dict]:
        raise NotImplementedError


@dataclass
class _Run:
    recipe: Recipe
    entry: object
    dataset: str
    profile: object
    seed: int
    device: str
    data_root: object
    cache_dir: Path
    quiet: bool
    loaded: dict

    def split(self, split: str) -> hdata.ImageSet:
        from harness.checkpoints import DATA_SUBSET_SEED  # it imports the recipes
        limit = self.profile.train_limit if split == "train" else self.profile.test_limit
        size = hdata.spec(self.dataset, self.data_root).image_size
        images = hdata.load(self.dataset, split, data_root=self.data_root, image_size=size)
        return images.subset(train.balanced_indices(images.labels, limit, DATA_SUBSET_SEED))

    def key(self, recipe: Recipe, **more) -> str:
        data = self.split("train")
        digest = hashlib.sha256(data.images.tobytes() + data.labels.tobytes()).hexdigest()
        identity = {"recipe": recipe.name, "settings": recipe.settings(), "head": self.loaded["key"],
                    "data_sha256": digest, "seed": self.seed, **more}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def cached(self, key: str, model: torch.nn.Module, train_it) -> tuple[torch.nn.Module, bool]:
        """`model` with the cached weights of `key`, else trained by `train_it(model)` and stored."""
        path = self.cache_dir / "clip" / f"{key}.pt"
        if path.is_file():
            model.load_state_dict(torch.load(path, weights_only=True))
            return model, True
        train_it(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, blob)
        atomic_write(path, blob.getvalue())
        return model, False

    def accuracy(self, model) -> float:
        test = self.split("test")
        logits, _ = collect_outputs(model.to(self.device), hdata.normalize(test.images),
                                    self.profile.eval_batch_size, self.device)
        return float((logits.argmax(1) == test.labels).mean() * 100)


@register
@dataclass(frozen=True)
class ClipZeroShot(_OnClipEntry, Recipe):
    """Radford et al. 2021: the class-name prompts' text embeddings as the head; nothing is trained."""

    name: ClassVar[str] = "clip_zero_shot"
    summary: ClassVar[str] = "CLIP zero-shot: the prompt templates' text embeddings of the class names as the head"
    trains: ClassVar[bool] = False

    def make(self, zero_shot, run):
        return zero_shot, run.loaded["key"], {}


@register
@dataclass(frozen=True)
class ClipFinetune(_OnClipEntry, _Trained):
    """WiSE-FT's end-to-end fine-tuning (Wortsman et al. 2022; mlfoundations/wise-ft README and src/args.py):
    AdamW lr 3e-5, weight decay 0.1, batch 512, 10 epochs, 500 warmup steps then cosine (harness.clip.schedule
    caps the warmup on short runs), label smoothing 0, the head initialised from the zero-shot head, every weight
    trained. wise-ft trains on the model's evaluation preprocessing, so there is no augmentation."""

    name: ClassVar[str] = "clip_finetune"
    summary: ClassVar[str] = "CLIP end to end from the zero-shot head (WiSE-FT: AdamW 3e-5, wd 0.1, warmup + cosine)"

    drop_rate: float = 0.0
    lr: float = 3e-5
    weight_decay: float = 0.1
    batch_size: int = 512
    epochs: int = 10
    augment: bool = False
    optimizer: str = schedule.NAME

    def start(self, zero_shot, run):
        return zero_shot, run.loaded["key"]

    def make(self, zero_shot, run):
        start, start_key = self.start(zero_shot, run)
        epochs = self.epochs_for(run.dataset, run.profile.epochs)
        key = run.key(self, epochs=epochs, start=start_key)
        options = train.Options(device=run.device, loader=run.profile.loader, quiet=run.quiet,
                                deterministic=run.profile.deterministic)
        model, hit = run.cached(key, start, lambda m: train.fit(m, run.split("train"), self.hyper(epochs),
                                                               seed=run.seed, options=options))
        return model, key, {"epochs": epochs, "warmup_steps": self.warmup(run, epochs), "from_cache": hit}

    def warmup(self, run, epochs: int) -> int:
        steps = -(-len(run.split("train")) // self.batch_size) * epochs
        return schedule.warmup_steps(steps)


@register
@dataclass(frozen=True)
class ClipLinearProbe(_OnClipEntry, Recipe):
    """The CLIP paper's linear probe (harness.clip.probe): L-BFGS logistic regression on the frozen unit-norm
    image embeddings, lambda swept on a held-out part of the training split."""

    name: ClassVar[str] = "clip_linear_probe"
    summary: ClassVar[str] = "CLIP frozen features + L-BFGS logistic regression, lambda swept on a held-out split"

    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "val_fraction", 0 < self.val_fraction < 1, "in (0, 1)")

    def make(self, zero_shot, run):
        from harness.clip import probe
        data = run.split("train")
        key = run.key(self)
        chosen = {}

        def fit_head(model):
            features = collect_outputs(model.to(run.device), hdata.normalize(data.images),
                                       run.profile.eval_batch_size, run.device)[1]
            coef, intercept, lam, scores = probe.probe(features, data.labels, self.val_fraction, run.seed)
            chosen.update(l2_lambda=lam, lambda_sweep={f"{k:.3g}": v for k, v in sorted(scores.items())})
            with torch.no_grad():
                model.fc.weight.copy_(torch.from_numpy(coef))
                model.fc.bias.copy_(torch.from_numpy(intercept))

        model, hit = run.cached(key, zero_shot, fit_head)
        return model, key, {**chosen, "from_cache": hit}


@register
@dataclass(frozen=True)
class ClipLpFt(ClipFinetune):
    """Kumar et al. 2022 on CLIP: the clip_finetune run, started from the clip_linear_probe head."""

    name: ClassVar[str] = "clip_lp_ft"
    summary: ClassVar[str] = "CLIP linear probe, then end-to-end fine-tuning from the probed head (WiSE-FT settings)"

    def start(self, zero_shot, run):
        probed, key, _ = ClipLinearProbe().make(zero_shot, run)
        return probed, key


@register
@dataclass(frozen=True)
class ClipWiseFt(_OnClipEntry, Recipe):
    """Wortsman et al. 2022: theta = (1 - alpha) * theta_zero_shot + alpha * theta_finetuned over every tensor,
    the head included (both ends have the zero-shot head's shape). The paper's curve is alpha = 0, 0.1, ..., 1
    (CURVE): one case per alpha."""

    name: ClassVar[str] = "clip_wise_ft"
    summary: ClassVar[str] = "interpolate CLIP zero-shot and clip_finetune weights at alpha, head included"
    trains: ClassVar[bool] = False
    CURVE: ClassVar[tuple[float, ...]] = tuple(round(0.1 * i, 1) for i in range(11))

    alpha: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self, "alpha", 0 <= self.alpha <= 1, "in [0, 1]")

    def make(self, zero_shot, run):
        theta_0 = {k: v.clone() for k, v in zero_shot.state_dict().items()}
        finetuned, key, extra = ClipFinetune().make(zero_shot, run)
        # head_prefix=(): no key is taken whole from one end; str.startswith(()) is False
        zero_shot.load_state_dict(interpolate(theta_0, finetuned.state_dict(), self.alpha, head_prefix=()))
        mixed = hashlib.sha256(f"{key}:{self.alpha!r}".encode()).hexdigest()
        return zero_shot, mixed, {"finetune_key": key, "finetune_epochs": extra["epochs"]}
