"""One benchmark case, end to end: (cached) trained model -> outputs on ID test and OOD sets -> Report -> record.

The library side of `benchmarks/`: pytest only parametrises over `Case`s and asserts on the verdicts, so the same
run is available without pytest. A `Session` memoises what cases share: evaluation inputs per dataset, and each
trained model's logits/features, so a score comparison on one model runs the model once.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import (band_files, bands, baselines, calibration, checkpoints, model_entries, outliers, profiles,
                     recipes, scores, shift, spread, store)
from harness import data as hdata
from harness.errors import HarnessError
from harness.eval_inputs import EvalInputs, Outputs, ShiftInputs, build_inputs, build_shift_inputs
from harness.evaluate import Report, evaluate_arrays
from harness.profiles import Profile

LOADED = "loaded"  # the recipe name of a case whose model is a model entry's file, loaded, not trained


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
    # A model entry (harness.model_entries): the model itself when recipe is LOADED, else the recipe's upstream.
    entry: str | None = None

    @property
    def id(self) -> str:
        recipe = self.recipe + "".join(f"-{k}{_format_param(v)}" for k, v in self.recipe_params)
        if self.entry:
            recipe += f"-{self.entry}" if self.recipe == LOADED else f"-on-{self.entry}"
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
    return band_files.load_all(band_files.default_dir(), datasets=hdata.registry.names(), recipes=recipes.names(),
                               scores=scores.names())


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


class Session:
    def __init__(self, ctx: RunContext):
        self.ctx = ctx
        self._inputs: dict[str, EvalInputs] = {}
        self._outputs = Outputs(ctx.profile.eval_batch_size, ctx.device)
        self._aux: dict[str, torch.Tensor] = {}  # normalized outlier samples for the records' energies
        self._shift: dict[str, ShiftInputs] = {}
        self._bands = None
        if banded(ctx.profile):
            self._bands = ctx.bands if ctx.bands is not None else load_bands()
        self._baseline = baselines.load(ctx.profile.name) if ctx.profile.name in baselines.GATED_PROFILES else None
        self.results: list[dict] = []
        self.entries: dict[str, model_entries.Entry] = {}
        self._upstreams: dict[tuple[str, str], checkpoints.UserCheckpoint] = {}
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
        if case.entry:
            entry = self.entry(case.entry)
            if self.ctx.download:
                entry.download(self.ctx.data_root)
            if entry.absent(self.ctx.data_root):
                return entry.absent(self.ctx.data_root)
        recipe = None if case.recipe == LOADED else recipes.get(case.recipe, **dict(case.recipe_params))
        if recipe is not None and recipe.upstream is not None and not case.entry:
            needed.append(profile.plan(case.dataset).upstream)
        if hasattr(recipe, "aux"):  # an outlier-exposed recipe: its outlier set must be imported too
            needed += [n for n in (recipe.aux or profile.plan(case.dataset).aux,) if n]
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
            self._inputs[dataset] = build_inputs(self.ctx.profile, dataset, self.ctx.data_root, self.ctx.repetitions)
        return self._inputs[dataset]

    def shift_inputs(self, dataset: str) -> ShiftInputs:
        """The profile's shifted cells of `dataset`, loaded once per process."""
        if dataset not in self._shift:
            self._shift[dataset] = build_shift_inputs(self.ctx.profile, dataset, self.ctx.data_root)
        return self._shift[dataset]

    def entry(self, name: str) -> model_entries.Entry:
        """A model entry by name (benchmarks/models, or one `evaluate` registered in `entries`)."""
        if name not in self.entries:
            self.entries[name] = model_entries.get(name)
        return self.entries[name]

    def _upstream_entry(self, case: Case) -> checkpoints.UserCheckpoint | None:
        """The case's entry as its recipe's upstream, after the leakage guard (its declared training data); checked
        once per entry and dataset (the guard hashes the test split)."""
        if not case.entry or case.recipe == LOADED:
            return None
        key = (case.entry, case.dataset)
        if key not in self._upstreams:
            self._upstreams[key] = self.entry(case.entry).as_upstream(case.dataset, self.ctx.data_root)
        return self._upstreams[key]

    def _load_entry(self, case: Case) -> tuple[torch.nn.Module, dict]:
        entry, root = self.entry(case.entry), self.ctx.data_root
        if entry.dataset is None:
            entry.fail("dataset", "the entry names no dataset: it is an upstream only (--upstream-entry)")
        if entry.dataset != case.dataset:
            entry.fail("dataset", f"the model's dataset is {entry.dataset!r}; the case evaluates {case.dataset!r}")
        size = hdata.spec(case.dataset, root).image_size
        if entry.image_size != size:
            entry.fail("image_size", f"{case.dataset} images are {size}x{size}, the entry says {entry.image_size}")
        leakage = entry.check_not_test(case.dataset, root)
        model, loaded = entry.load(root)
        info = {"key": loaded["key"], "model": entry.architecture, "from_cache": True, "settings": entry.to_json(),
                "loaded": {"file": loaded["path"], "sha256": loaded["sha256"],
                           "entry": entry.name if entry.origin else None, "entry_file": entry.origin,
                           "ignored_keys": loaded["ignored_keys"], "leakage_check": leakage},
                "entry": entry}
        return model.to(self.ctx.device).eval(), info

    # --- the case itself -------------------------------------------------------------------------
    def run(self, case: Case, seed: int) -> dict:
        ctx, profile = self.ctx, self.ctx.profile
        recipe = None if case.recipe == LOADED else recipes.get(case.recipe, **dict(case.recipe_params))
        upstream = partial(self._upstream_entry, case)  # only the recipes that train on an entry ask for it
        t0 = time.perf_counter()
        if recipe is None:
            model, info = self._load_entry(case)
        else:
            entry = self.entry(case.entry) if case.entry else None
            model, info = recipe.obtain(case.dataset, profile, seed, entry=entry, upstream=upstream, device=ctx.device,
                                        data_root=ctx.data_root, cache_dir=ctx.cache_dir, quiet=ctx.quiet)
        train_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        inputs = self.inputs(case.dataset)
        key = info["key"]
        aux = info["settings"].get("aux")
        excluded = outliers.excluded(aux, inputs.ood)
        ood = {n: x for n, x in inputs.ood.items() if n not in excluded}
        outs = {"test": self._outputs.get(key, model, "test", inputs.test_x)}
        outs.update({f"ood/{n}": self._outputs.get(key, model, f"ood/{n}", x) for n, x in ood.items()})
        score = scores.get(case.score, **dict(case.score_params))
        if score.needs_fit and not len(inputs.fit_y):
            raise HarnessError(f"score {case.score} is fitted on the training split, which {case.dataset} does not "
                               f"have (an evaluation-only set)")
        if score.needs_fit:
            score.fit(self._outputs.get(key, model, "fit", inputs.fit_x)[1], inputs.fit_y)
        id_scores = ood_scores = None
        if "model" in score.needs:
            batch = profile.eval_batch_size
            id_scores = score.score_model(model, inputs.test_x, batch, ctx.device)
            ood_scores = {n: score.score_model(model, x, batch, ctx.device) for n, x in ood.items()}
        report = evaluate_arrays(
            outs["test"][0], inputs.test_y, {n: outs[f"ood/{n}"][0] for n in ood}, score,
            id_features=outs["test"][1], ood_features={n: outs[f"ood/{n}"][1] for n in ood},
            id_scores=id_scores, ood_scores=ood_scores, num_to_avg=ctx.repetitions, seed=seed)
        holdout = None
        if recipe is not None and recipe.holdout_for(case.dataset) is not None:
            holdout = checkpoints.plan(recipe, case.dataset, profile, seed, data_root=ctx.data_root,
                                       upstream_dataset=profile.plan(case.dataset).upstream,
                                       upstream_checkpoint=upstream()).holdout_set
        report.metrics.update(calibration.views(model, inputs.test_x, inputs.test_y, outs["test"][0], holdout,
                                                profile.eval_batch_size, ctx.device,
                                                {n: outs[f"ood/{n}"][0] for n in ood}, ctx.repetitions, seed))
        report.metrics.update(outliers.paper_means(report.metrics, case.dataset))
        energies = None if aux is None else self._energies(case, seed, recipe, aux, model, outs["test"][0], inputs)
        shift_t0 = time.perf_counter()
        shifted = self._shift_metrics(case, seed, recipe, key, model, inputs)
        report.metrics.update(shifted.pop("metrics"))
        shift_s = time.perf_counter() - shift_t0
        eval_s = time.perf_counter() - t0

        record = self._record(case, seed, info, report, inputs, train_s, eval_s)
        record["checkpoint"].update(selected_epoch=info.get("selected_epoch"), holdout=info.get("holdout"))
        # how a model chosen on validation outliers was chosen (energy_ft_selected): its split and the search
        record["checkpoint"].update({k: info[k] for k in ("val_ood", "margin_search") if k in info})
        record["excluded_ood_sets"] = excluded
        record["shift"] = shifted
        record["timings"]["shift_s"] = round(shift_s, 3)  # part of eval_s: what the shift evaluation adds
        if aux is not None:
            record["outliers"] = {"aux": aux, "aux_limit": profile.aux_limit, "mean_energy": energies}
        record["path"] = str(store.write_record(record, ctx.results_dir))
        self.results.append(record)
        return record

    def _energies(self, case, seed, recipe, aux, model, test_logits, inputs) -> dict:
        """Mean energy (-logsumexp of the logits) on the ID test set and on a sample of the outlier pool, of the
        model (`end`) and of the model it started from (`start`: its upstream; absent for a model trained from
        scratch): where the energy hinges' margins sit relative to the model (docs/outlier-exposure.md)."""
        ctx, profile = self.ctx, self.ctx.profile
        if aux not in self._aux:
            size = hdata.spec(case.dataset, ctx.data_root).image_size
            pool = outliers.pool(aux, case.dataset, size, profile.aux_limit, ctx.data_root)
            self._aux[aux] = hdata.normalize(pool.images[:outliers.ENERGY_SAMPLE])

        def measured(net, logits) -> dict:
            return {"id": float(-torch.logsumexp(torch.from_numpy(logits), dim=1).mean()),
                    "aux": outliers.mean_energy(net, self._aux[aux], profile.eval_batch_size, ctx.device)}

        out = {"end": measured(model, test_logits)}
        if recipe.upstream is not None:
            start, info = self._start(case, seed, recipe)
            out["start"] = measured(start, self._outputs.get(info["key"], start, "test", inputs.test_x)[0])
        return out

    def _start(self, case: Case, seed: int, recipe: recipes.Recipe) -> tuple[torch.nn.Module, dict]:
        """The model `recipe` started from (its first upstream: the very checkpoint its training loaded), trained for
        this profile and seed (cached)."""
        ctx, upstream = self.ctx, self.ctx.profile.plan(case.dataset).upstream
        dataset = case.dataset if recipe.upstream.on == "same" else upstream
        return checkpoints.obtain(recipes.get(recipe.upstream.recipe), dataset, ctx.profile, seed,
                                  device=ctx.device, data_root=ctx.data_root, cache_dir=ctx.cache_dir,
                                  upstream_dataset=upstream, upstream_checkpoint=self._upstream_entry(case),
                                  quiet=ctx.quiet)

    def _shift_metrics(self, case, seed, recipe, key, model, inputs: EvalInputs) -> dict:
        """The record's `shift` block: what was evaluated (or why nothing), and in `metrics` the shift keys and, for
        a model adapted from an upstream, its feature distortion on the ID test set and on the shifted images."""
        shifted = self.shift_inputs(case.dataset)
        out = {"plan": None if shifted.plan is None else shifted.plan.to_json(), "missing": shifted.missing,
               "distortion_from": None, "metrics": {}}
        names = {cell: f"shift/{cell[0]}/{cell[1]}" for cell in shifted.cells}
        inputs_of = {cell: partial(hdata.normalize, s.images) for cell, s in shifted.cells.items()}
        outs = {cell: self._outputs.get(key, model, names[cell], inputs_of[cell]) for cell in shifted.cells}
        out["metrics"] = shift.metrics({cell: (outs[cell][0], shifted.cells[cell].labels) for cell in outs})
        natural = {n: (shift.project(self._outputs.get(key, model, f"shift/{n}",
                                                        partial(hdata.normalize, s.images.images))[0], s.projection),
                       s.images.labels) for n, s in shifted.natural.items()}
        out["metrics"].update(shift.natural_metrics(natural))
        test_features = self._outputs.get(key, model, "test", inputs.test_x)[1]
        if recipe is None or recipe.upstream is None or case.entry or test_features is None:
            return out  # trained from scratch, a loaded model, or an entry's upstream: no upstream of ours to compare
        start, info = self._start(case, seed, recipe)
        start_out = {n: self._outputs.get(info["key"], start, n, x)[1] for n, x in
                     [("test", inputs.test_x), *((names[c], inputs_of[c]) for c in shifted.cells)]}
        out["distortion_from"] = {"recipe": recipe.upstream.recipe, "key": info["key"]}
        values = {"distortion/id": shift.distortion(test_features, start_out["test"])}
        if outs:
            values["distortion/shift"] = shift.distortion(np.concatenate([outs[c][1] for c in outs]),
                                                          np.concatenate([start_out[names[c]] for c in outs]))
        out["metrics"].update({k: {"mean": v, "std": 0.0, "n": 1} for k, v in values.items()})
        return out

    def _record(self, case, seed, info, report: Report, inputs: EvalInputs, train_s, eval_s) -> dict:
        profile = self.ctx.profile
        record = {
            "schema_version": store.SCHEMA_VERSION,
            "case_id": case.id,
            "group": case.group,
            "paper": case.group if case.group in bands.PAPERS else None,
            "profile": profile.name,
            "dataset": case.dataset,
            "model": info["model"],
            "recipe": {"name": case.recipe, "settings": info["settings"], "upstream": info.get("upstream"),
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
        if info.get("loaded"):
            record["loaded"] = info["loaded"]  # what the leaderboard marks as loaded: the file, its sha256, the entry
        metrics = record["report"]["metrics"]
        if self._bands is not None:
            upstream = info.get("pretrain_dataset")
            verdicts = bands.check(self._bands, case.dataset, case.recipe, report.score["name"], metrics, upstream)
            record["verdicts"]["bands"] = [v.to_json() for v in verdicts]
        if info.get("entry") is not None:  # a loaded entry's own published numbers, on the profile they name
            record["verdicts"]["bands"] += info["entry"].band_verdicts(
                report.score["name"], metrics, list(report.ood_sets), (profile.name, profile.dry_run_of))
        record["verdicts"]["not_gated"] = baselines.not_gated(record, profile)
        if case.entry and record["verdicts"]["not_gated"] is None and profile.name in baselines.GATED_PROFILES:
            record["verdicts"]["not_gated"] = (f"model entry {case.entry}: its checkpoint is not part of the "
                                               f"repository, so no regression baseline can hold its numbers")
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


def failures(record: dict) -> list[str]:
    """Why a record fails its gates: non-proxy band misses (paper profile), baseline misses (CPU profiles)."""
    if record.get("dry_run"):
        return []  # a dry run checks that every case runs end to end; its band verdicts are reported, not enforced
    problems = [f"band: {v['message']}" for v in record["verdicts"]["bands"] if v["passed"] is False and not v["proxy"]]
    baseline = record["verdicts"]["baseline"]
    if baseline is None and record["profile"] in baselines.GATED_PROFILES and not record["verdicts"].get("not_gated"):
        problems.append(f"baseline: benchmarks/baselines/{record['profile']}.json has no entry for this case (no "
                        f"spread, and no exact entry for this kind of machine); run `pytest benchmarks --profile "
                        f"{record['profile']} --seeds 0,1,...` and `python -m harness baseline update` after a good "
                        f"run (docs/gates.md)")
    for outcome in spread.outcomes(baseline):
        if outcome.failed:
            problems.append(f"baseline ({outcome.tier}): {outcome.text()}")
            problems += [f"  {v['message']}" for v in baseline if v.get("tier", "exact") == outcome.tier
                         and not v["passed"]]
    return problems


def checked(record: dict) -> bool:
    """Whether any gate decided something about this record: a measured non-proxy band outside a dry run, or a
    baseline metric of either tier."""
    bands = [] if record.get("dry_run") else record["verdicts"]["bands"]
    return bool(record["verdicts"].get("baseline")) or any(v["passed"] is not None and not v["proxy"] for v in bands)
