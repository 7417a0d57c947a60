"""What a session evaluates models on, built once per dataset and shared by every case on it: the test, fit and
OOD sets (EvalInputs), the shifted cells (ShiftInputs), and each model's outputs on them (Outputs)."""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from harness import checkpoints, shift, train
from harness import data as hdata
from harness.data import synthetic
from harness.data.imageset import ImageSet
from harness.errors import HarnessError
from harness.evaluate import collect_outputs, head_outputs
from harness.profiles import Profile


@dataclass
class ShiftInputs:
    plan: shift.ShiftPlan | None
    cells: dict[shift.Cell, ImageSet]  # uint8: the full CIFAR-10-C normalized would take 9 GB
    missing: str | None = None
    natural: dict[str, shift.NaturalSet] = field(default_factory=dict)


@dataclass
class EvalInputs:
    test_x: torch.Tensor
    test_y: np.ndarray
    fit_x: torch.Tensor
    fit_y: np.ndarray
    ood: dict[str, torch.Tensor]
    missing: dict[str, str] = field(default_factory=dict)


def build_inputs(profile: Profile, dataset: str, data_root, repetitions: int) -> EvalInputs:
    """The normalized test and fit sets of `dataset` (the subsets the checkpoints were trained and tested on; no fit
    set for a dataset without a train split) and its OOD sets; an OOD set that is not in the cache is named in
    `missing`, with the reason."""
    subset_seed = checkpoints.DATA_SUBSET_SEED  # the same subsets the checkpoints were trained and tested on
    size = hdata.spec(dataset, data_root).image_size
    test = hdata.load(dataset, "test", data_root=data_root, image_size=size)
    test = test.subset(train.balanced_indices(test.labels, profile.test_limit, subset_seed))
    if "train" in hdata.spec(dataset, data_root).splits:
        fit = hdata.load(dataset, "train", data_root=data_root, image_size=size)
        fit = fit.subset(train.balanced_indices(fit.labels, profile.train_limit, subset_seed))
    else:  # an evaluation-only set (ImageNet-1k val): nothing to fit a score on
        fit = test.subset(np.arange(0))
    n_pool = repetitions * (len(test) // 5)
    ood, missing = {}, {}
    for name in profile.plan(dataset).ood:
        if name in synthetic.KINDS:
            # The reference generates num_to_avg * (len(test) // 5) synthetic images and draws from them.
            ood[name] = synthetic.make(name, n_pool, image_size=size, seed=0)
            continue
        try:
            images = hdata.load_ood(name, data_root=data_root, image_size=size).images
        except HarnessError as exc:
            missing[name] = str(exc)
            continue
        if profile.ood_pool_limit and len(images) > profile.ood_pool_limit:
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            images = images[np.sort(rng.choice(len(images), profile.ood_pool_limit, replace=False))]
        ood[name] = hdata.normalize(images)
    return EvalInputs(hdata.normalize(test.images), test.labels, hdata.normalize(fit.images), fit.labels,
                      ood, missing)


def build_shift_inputs(profile: Profile, dataset: str, data_root) -> ShiftInputs:
    """The profile's shifted cells and natural-shift sets of `dataset` (docs/shift.md); `missing` says why some or
    all are not there (no shift set in the profile, or not in the cache: with the command)."""
    plan = profile.plan(dataset).shift
    if plan is not None and profile.test_limit:  # a shifted cell holds test images: their cap applies
        plan = replace(plan, images=min(plan.images or profile.test_limit, profile.test_limit))
    cells, natural, problems = {}, {}, []
    if plan is None:
        problems.append(f"profile {profile.name!r} names no shifted set for {dataset}")
    else:
        for load, put in ((shift.load_cells, cells), (shift.load_natural, natural)):
            try:
                put.update(load(plan, dataset, checkpoints.DATA_SUBSET_SEED, data_root))
            except HarnessError as exc:
                problems.append(str(exc))
    missing = "; ".join(problems) or None
    return ShiftInputs(plan, cells, missing, natural)


class Outputs:
    """Each model's (logits, features) on each named input set, by checkpoint key; a model whose body (every tensor
    but the head) equals an evaluated one's reuses its features."""

    def __init__(self, batch_size: int, device: str):
        self.batch_size, self.device = batch_size, device
        self._outputs: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}
        self._body_outputs: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}  # by body digest
        self._digests: dict[str, str] = {}  # model key -> body digest

    def get(self, key: str, model: torch.nn.Module, name: str, x):
        """(logits, features) of one model on one named input set, computed once per process and only when a
        case needs it (the fit set only for scores fitted on training features). `x`: the normalized inputs, or a
        function that makes them (a shifted cell stays uint8 until a model runs on it)."""
        outs = self._outputs.setdefault(key, {})
        if name not in outs:
            batch, device = self.batch_size, self.device
            body = self._digests.setdefault(key, _body_digest(model))
            shared = self._body_outputs.get(body, {}).get(name)
            if shared is not None:
                # Another model with this very body (a TST head on it, temperature scaling of it) was evaluated on
                # this set: its features are this model's, so only the head runs.
                outs[name] = (head_outputs(model, shared[1], batch, device), shared[1])
            else:
                outs[name] = collect_outputs(model, x() if callable(x) else x, batch, device)
                if outs[name][1] is not None:
                    self._body_outputs.setdefault(body, {})[name] = outs[name]
        return outs[name]


def _body_digest(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the model but its head `fc`: equal digests, equal features."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("fc."):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
