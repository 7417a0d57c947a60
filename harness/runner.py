"""One benchmark case, end to end: (cached) trained model -> outputs on ID test and OOD sets -> Report -> record.

The library side of `benchmarks/`: pytest only parametrises over `Case`s and asserts on the verdicts, so the same
run is available without pytest. A `Session` memoises what cases share: evaluation inputs per dataset, and each
trained model's logits/features, so a score comparison on one model runs the model once.
"""
from __future__ import annotations

import hashlib
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import baselines, bands, calibration, checkpoints, profiles, recipes, scores, store, train
from harness import data as hdata
from harness.data import synthetic
from harness.errors import HarnessError
from harness.evaluate import Report, collect_outputs, evaluate_arrays, head_outputs
from harness.profiles import Profile

BANDS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "bands"


def _format_param(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Case:
    """What one benchmark case measures; its `id` is the pytest id and the record's case_id."""

    group: str
    dataset: str
    recipe: str
    score: str = "msp"
    recipe_params: tuple[tuple[str, Any], ...] = ()
    score_params: tuple[tuple[str, Any], ...] = ()

    @property
    def id(self) -> str:
        recipe = self.recipe + "".join(f"-{k}{_format_param(v)}" for k, v in self.recipe_params)
        score = self.score + "".join(f"-{k}{_format_param(v)}" for k, v in self.score_params)
        return f"{self.dataset}-{recipe}-{score}"


@dataclass
class RunContext:
    profile: Profile
    device: str
    results_dir: Path
    data_root: Path | None = None
    cache_dir: Path | None = None
    num_to_avg: int | None = None
    download: bool = False
    quiet: bool = True
    bands: bands.BandFile | None = None  # every band file, loaded (and so validated) once per run

    @property
    def repetitions(self) -> int:
        return self.num_to_avg or self.profile.num_to_avg


def load_bands() -> bands.BandFile:
    """Every band file of benchmarks/bands (or $HARNESS_BANDS_DIR, e.g. a fork's own bands); a malformed one raises
    HarnessError `file:line: message`."""
    directory = Path(os.environ.get("HARNESS_BANDS_DIR") or BANDS_DIR)
    return bands.load_all(directory, datasets=hdata.registry.names(), recipes=recipes.names(), scores=scores.names())


def banded(profile: Profile) -> bool:
    """Whether the paper bands apply: the built-in paper profile (enforced) or a dry run of it (reported)."""
    builtin = profile.source is None or profile.source.builtin
    return builtin and (profile.name == "paper" or profile.dry_run_of == "paper")


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError(f"--device {requested}: no CUDA device is available (torch.cuda.is_available() is False)")
    if requested != "cpu" and not requested.startswith("cuda"):
        raise HarnessError(f"--device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    return requested


@dataclass
class EvalInputs:
    test_x: torch.Tensor
    test_y: np.ndarray
    fit_x: torch.Tensor
    fit_y: np.ndarray
    ood: dict[str, torch.Tensor]
    missing: dict[str, str] = field(default_factory=dict)


class Session:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self._inputs: dict[str, EvalInputs] = {}
        self._outputs: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}
        self._body_outputs: dict[str, dict[str, tuple[np.ndarray, np.ndarray | None]]] = {}  # by body digest
        self._bands = None
        if banded(ctx.profile):
            self._bands = ctx.bands if ctx.bands is not None else load_bands()
        self._baseline = baselines.load(ctx.profile.name) if ctx.profile.name in baselines.GATED_PROFILES else None
        self.results: list[dict] = []
        self.dry_run_claims: list[str] = []  # claim verdicts of a dry run, for the end-of-run summary

    def claims(self) -> bands.BandFile | None:
        """The paper bands' direction claims (loaded on the paper profile only)."""
        return self._bands

    # --- what a case needs, and why it cannot run -------------------------------------------------
    def unavailable(self, case: Case) -> str | None:
        """A one-line reason (with the command that fixes it) why this case cannot run here, else None."""
        profile = self.ctx.profile
        if profile.device == "cuda" and not torch.cuda.is_available():
            return (f"profile '{profile.name}' needs a CUDA GPU and torch sees none; run it on a GPU machine "
                    f"(pytest benchmarks --profile {profile.name}) or use --profile smoke|mini on CPU")
        needed = [case.dataset]
        recipe = recipes.get(case.recipe, **dict(case.recipe_params))
        if recipe.upstream is not None:
            needed.append(profile.plan(case.dataset).upstream)
        for name in needed:
            try:
                size = hdata.spec(name, self.ctx.data_root).image_size
                hdata.load(name, "test", data_root=self.ctx.data_root, image_size=size)
            except HarnessError as exc:
                return str(exc)
        return None

    # --- evaluation inputs, shared by every case on a dataset ------------------------------------
    def inputs(self, dataset: str) -> EvalInputs:
        if dataset not in self._inputs:
            self._inputs[dataset] = self._build_inputs(dataset)
        return self._inputs[dataset]

    def _build_inputs(self, dataset: str) -> EvalInputs:
        profile, root = self.ctx.profile, self.ctx.data_root
        subset_seed = checkpoints.DATA_SUBSET_SEED  # the same subsets the checkpoints were trained and tested on
        size = hdata.spec(dataset, root).image_size
        test = hdata.load(dataset, "test", data_root=root, image_size=size)
        test = test.subset(train.balanced_indices(test.labels, profile.test_limit, subset_seed))
        fit = hdata.load(dataset, "train", data_root=root, image_size=size)
        fit = fit.subset(train.balanced_indices(fit.labels, profile.train_limit, subset_seed))
        n_pool = self.ctx.repetitions * (len(test) // 5)
        ood, missing = {}, {}
        for name in profile.plan(dataset).ood:
            if name in synthetic.KINDS:
                # The reference generates num_to_avg * (len(test) // 5) synthetic images and draws from them.
                ood[name] = synthetic.make(name, n_pool, image_size=size, seed=0)
                continue
            try:
                images = hdata.load_ood(name, data_root=root, image_size=size).images
            except HarnessError as exc:
                missing[name] = str(exc)
                continue
            if profile.ood_pool_limit and len(images) > profile.ood_pool_limit:
                rng = np.random.default_rng(zlib.crc32(name.encode()))
                images = images[np.sort(rng.choice(len(images), profile.ood_pool_limit, replace=False))]
            ood[name] = hdata.normalize(images)
        return EvalInputs(hdata.normalize(test.images), test.labels, hdata.normalize(fit.images), fit.labels,
                          ood, missing)

    def _model_outputs(self, key: str, model: torch.nn.Module, inputs: EvalInputs):
        if key not in self._outputs:
            batch, device = self.ctx.profile.eval_batch_size, self.ctx.device
            body = _body_digest(model)
            if body in self._body_outputs:
                # Another model with this very body (a TST head on it, temperature scaling of it) was evaluated:
                # its features are this model's, so only the head runs.
                outs = {name: (head_outputs(model, feats, batch, device), feats)
                        for name, (_, feats) in self._body_outputs[body].items()}
            else:
                outs = {"test": collect_outputs(model, inputs.test_x, batch, device),
                        "fit": collect_outputs(model, inputs.fit_x, batch, device)}
                for name, x in inputs.ood.items():
                    outs[f"ood/{name}"] = collect_outputs(model, x, batch, device)
                if outs["test"][1] is not None:
                    self._body_outputs[body] = outs
            self._outputs[key] = outs
        return self._outputs[key]

    # --- the case itself -------------------------------------------------------------------------
    def run(self, case: Case, seed: int) -> dict:
        ctx, profile = self.ctx, self.ctx.profile
        recipe = recipes.get(case.recipe, **dict(case.recipe_params))
        t0 = time.perf_counter()
        model, info = checkpoints.obtain(recipe, case.dataset, profile, seed, device=ctx.device,
                                         upstream_dataset=profile.plan(case.dataset).upstream,
                                         data_root=ctx.data_root, cache_dir=ctx.cache_dir, quiet=ctx.quiet)
        train_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        inputs = self.inputs(case.dataset)
        outs = self._model_outputs(info["key"], model, inputs)
        score = scores.get(case.score, **dict(case.score_params))
        if score.needs_fit:
            score.fit(outs["fit"][1], inputs.fit_y)
        id_scores = ood_scores = None
        if "model" in score.needs:
            batch = profile.eval_batch_size
            id_scores = score.score_model(model, inputs.test_x, batch, ctx.device)
            ood_scores = {n: score.score_model(model, x, batch, ctx.device) for n, x in inputs.ood.items()}
        report = evaluate_arrays(
            outs["test"][0], inputs.test_y, {n: outs[f"ood/{n}"][0] for n in inputs.ood}, score,
            id_features=outs["test"][1], ood_features={n: outs[f"ood/{n}"][1] for n in inputs.ood},
            id_scores=id_scores, ood_scores=ood_scores, num_to_avg=ctx.repetitions, seed=seed)
        holdout = None
        if recipe.holdout_for(case.dataset) is not None:
            holdout = checkpoints.plan(recipe, case.dataset, profile, seed, data_root=ctx.data_root,
                                       upstream_dataset=profile.plan(case.dataset).upstream).holdout_set
        report.metrics.update(calibration.views(model, inputs.test_x, inputs.test_y, outs["test"][0], holdout,
                                                profile.eval_batch_size, ctx.device))
        eval_s = time.perf_counter() - t0

        record = self._record(case, seed, recipe, info, report, inputs, train_s, eval_s)
        record["checkpoint"].update(selected_epoch=info.get("selected_epoch"), holdout=info.get("holdout"))
        record["path"] = str(store.write_record(record, ctx.results_dir))
        self.results.append(record)
        return record

    def _record(self, case, seed, recipe, info, report: Report, inputs: EvalInputs, train_s, eval_s) -> dict:
        profile = self.ctx.profile
        record = {
            "schema_version": store.SCHEMA_VERSION,
            "case_id": case.id,
            "group": case.group,
            "paper": case.group if case.group in bands.PAPERS else None,
            "profile": profile.name,
            "dataset": case.dataset,
            "model": info["model"],
            "recipe": {"name": recipe.name, "settings": info["settings"], "upstream": info.get("upstream"),
                       "pretrain_dataset": info.get("pretrain_dataset")},
            "score": report.score,
            "seed": seed,
            "checkpoint": {"key": info["key"], "from_cache": info["from_cache"], "test_accuracy": info.get("accuracy")},
            "report": report.to_json(),
            "missing_ood_sets": inputs.missing,
            "ood_selection": _ood_selection(profile, case.dataset),
            "profile_source": profile.source.to_json() if profile.source else None,
            "dry_run": profile.dry_run_of is not None,
            "timings": {"train_s": round(train_s, 3), "eval_s": round(eval_s, 3)},
            "verdicts": {"bands": [], "baseline": None},
            "provenance": store.provenance(self.ctx.device),
        }
        metrics = record["report"]["metrics"]
        if self._bands is not None:
            upstream = info.get("pretrain_dataset")
            verdicts = bands.check(self._bands, case.dataset, case.recipe, report.score["name"], metrics, upstream)
            record["verdicts"]["bands"] = [v.to_json() for v in verdicts]
        record["verdicts"]["not_gated"] = baselines.not_gated(record, profile)
        if self._baseline is not None and record["verdicts"]["not_gated"] is None:
            record["verdicts"]["not_gated"] = baselines.other_machine(record, self._baseline)
        if self._baseline is not None and record["verdicts"]["not_gated"] is None:
            verdicts = baselines.check(record, self._baseline)
            record["verdicts"]["baseline"] = None if verdicts is None else [v.to_json() for v in verdicts]
        return record


def _ood_selection(profile: Profile, dataset: str) -> dict | None:
    """How `--ood-sets` changed this dataset's OOD sets from the profile's own (None: it did not)."""
    own = profiles.get(profile.name).plan(dataset).ood
    run = profile.plan(dataset).ood
    if own == run:
        return None
    return {"profile": list(own), "run": list(run), "added": [s for s in run if s not in own],
            "dropped": [s for s in own if s not in run]}


def _body_digest(model: torch.nn.Module) -> str:
    """sha256 of every tensor of the model but its head `fc`: equal digests, equal features."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if not name.startswith("fc."):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def failures(record: dict) -> list[str]:
    """Why a record fails its gates: non-proxy band misses (paper profile), baseline misses (CPU profiles)."""
    if record.get("dry_run"):
        return []  # a dry run checks that every case runs end to end; its band verdicts are reported, not enforced
    problems = [f"band: {v['message']}" for v in record["verdicts"]["bands"] if v["passed"] is False and not v["proxy"]]
    baseline = record["verdicts"]["baseline"]
    if baseline is None and record["profile"] in baselines.GATED_PROFILES and not record["verdicts"].get("not_gated"):
        problems.append(f"baseline: benchmarks/baselines/{record['profile']}.json has no entry for this case; "
                        f"run `python -m harness baseline update --profile {record['profile']}` after a good run")
    problems += [f"baseline: {v['message']}" for v in baseline or [] if not v["passed"]]
    return problems
