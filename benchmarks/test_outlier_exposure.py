"""Outlier-exposed training: energy-bounded fine-tuning (Liu et al. 2020, `energy_ft`) and Outlier Exposure
(Hendrycks et al. 2019, `oe` fine-tuning and, on the paper profiles, `oe_scratch`), each with the MSP and energy
scores; on the paper profiles also `energy_ft_selected` (energy_ft with its epoch and margins chosen by FPR95 on
validation outliers that no test OOD set holds, docs/outlier-exposure.md). The fine-tunes start from the `baseline` model (their recipes' `base`: OE's baseline.py, the scratch recipe
with these papers' CIFAR normalization, a case of this module); every step trains on
128 in-distribution images and 256 outliers from the profile's `aux` set in one forward pass. Test OOD sets
drawn from the outliers' source are excluded from these models' cases (record field `excluded_ood_sets`). The
baseline's MSP and energy cases (and ODIN on the paper profiles) carry the papers' baseline rows.

The OE paper's calibration protocol (docs/outlier-exposure.md): `scratch_calib` and `oe_calib` train
without the last 10 % of the training set, fit a temperature on it, and record calibration with OOD data at
that temperature (`ood/<set>/calib@T/*`, OOD samples counted as wrong), MSP score. Not on smoke: a second
scratch model would push smoke past its time budget (the temperature_scaling and tst cases cover that code there).

Bands: benchmarks/bands/liu2020.toml and hendrycks2019oe.toml (paper profile; proxies: the outliers are not 80M
Tiny Images). Their direction claims that name a profile (`profiles = [...]`) are checked on it by
`test_direction_claims`, against the baseline's cases of the same run, over the OOD sets both have.
"""
from casekit import assert_verdicts, enforce_claims, generate, profile_claims, require_measured

from harness import bands, profiles
from harness import data as hdata
from harness.runner import Case, banded

GROUP = "outlier_exposure"
PAPERS = ("liu2020", "hendrycks2019oe")
SCORES = ("msp", "energy")
CALIBRATION = ("scratch_calib", "oe_calib")  # the OE calibration protocol's two models
BASE = "baseline"  # the recipes' default base: the model the claims compare against
# energy_ft with its epoch and margins chosen on validation outliers (beyond the energy paper), compared with
# energy_ft at the paper's margins; on the paper profiles only (the CPU profiles' baselines hold no such case)
SELECTED = "energy_ft_selected"
SELECTED_ON = ("paper", "paper-dryrun")


def _cases(profile: profiles.Profile) -> list[Case]:
    cases = []
    for plan in profile.datasets:
        if plan.aux is None:
            continue  # the profile names no outliers for this dataset
        names = ["oe", "energy_ft"] + (["oe_scratch"] if banded(profile) else [])
        if profile.name in SELECTED_ON:
            names.insert(names.index("energy_ft") + 1, SELECTED)
        if hdata.spec(plan.id).energy_margins is None:
            # no margins to fine-tune with or to centre the search on (docs/outlier-exposure.md)
            names = [n for n in names if n not in ("energy_ft", SELECTED)]
        cases += [Case(GROUP, plan.id, name, score) for name in [BASE, *names] for score in SCORES]
        if banded(profile):
            cases.append(Case(GROUP, plan.id, BASE, "odin"))  # the energy paper's ODIN row of its baseline
        if profile.name != "smoke":
            cases += [Case(GROUP, plan.id, name, "msp") for name in CALIBRATION]
    return cases


def pytest_generate_tests(metafunc):
    generate(metafunc, _cases, has_claims=lambda plan: plan.aux is not None)


def test_case(case, seed, run_case):
    record = run_case(case, seed)
    metrics = record["report"]["metrics"]
    assert {"ood/mean/fpr95@id", "ood/mean/fpr95@ood"} <= set(metrics)
    if case.recipe not in ("scratch_calib", BASE):  # the models that saw outliers
        outliers = record["outliers"]
        assert outliers["aux"] and "excluded_ood_sets" in record, "the record must name its outliers and exclusions"
        assert set(outliers["mean_energy"]) == ({"end"} if case.recipe == "oe_scratch" else {"start", "end"})
    if case.recipe == SELECTED:
        search = record["checkpoint"]["margin_search"]
        chosen = min(search["points"], key=lambda p: p["val_fpr95"])
        assert search["chosen"] == {"m_in": chosen["m_in"], "m_out": chosen["m_out"]}
        assert record["recipe"]["settings"]["m_in"] == chosen["m_in"] and record["checkpoint"]["val_ood"]["n"] >= 1
    if case.recipe in CALIBRATION:
        holdout = record["checkpoint"]["holdout"]
        assert (holdout["fraction"], holdout["rule"]) == (0.1, "tail") and not holdout["seen_by_upstream_training"]
        # RMS / MAD need 200 ID + OOD samples (the dry run has fewer); soft F1 is defined on any
        assert {"calib@T/temperature", "ood/mean/calib@T/soft_f1"} <= set(metrics)
        assert record["report"]["n_id"] < 200 or "ood/mean/calib@T/rms" in metrics
    assert_verdicts(record)


def claim_inputs(records: list[dict], scores, metrics) -> dict[str, dict[str, dict]]:
    """{score: {recipe: {metric: {"mean"}}}} of one seed's records of one dataset under `scores`, each
    `ood/mean/<m>` recomputed over the OOD sets every one of those records has (the outlier-exposed models lack
    the excluded sets, the scratch model's records have them), so a claim compares like with like;
    `ood/mean-real/<m>` over the real ones among them alone, as the papers average (docs/findings/claims.md: on
    mini the synthetic noise sets bring nearly all the seed-to-seed spread of the mean)."""
    mine = [r for r in records if r["score"]["name"] in scores]
    shared = set.intersection(*(set(r["report"]["ood_sets"]) for r in mine)) if mine else set()
    over = {"mean": sorted(shared), "mean-real": sorted(s for s in shared if not hdata.registry.get_ood(s).synthetic)}
    out = {score: {} for score in scores}
    for record in mine:
        values = record["report"]["metrics"]
        out[record["score"]["name"]][record["recipe"]["name"]] = {
            metric: {"mean": sum(values[f"ood/{s}/{key}"]["mean"] for s in sets) / len(sets)}
            for metric in metrics
            for _, mean, key in [metric.split("/", 2)] for sets in [over[mean]] if sets}
    return out


def claim_verdicts(records: list[dict], claims: list, dataset: str) -> dict[int, list]:
    """{seed: claim verdicts} of the outlier-exposure claims, each side read under its own score."""
    mine = [r for r in records if r["dataset"] == dataset and r["group"] == GROUP]
    by_seed = {}
    for seed in sorted({r["seed"] for r in mine if r["group"] == GROUP}):
        of_seed = [r for r in mine if r["seed"] == seed]
        by_seed[seed] = []
        for scores in sorted({c.scores for c in claims}):  # (recipe side, baseline side)
            wanted = [c for c in claims if c.scores == scores]
            inputs = claim_inputs(of_seed, scores, {c.metric for c in wanted})
            by_seed[seed] += bands.check_claims(wanted, dataset, inputs[scores[0]], baseline_results=inputs[scores[1]])
    return by_seed


def test_direction_claims(claim_dataset, harness_session):
    """The claims of liu2020.toml and hendrycks2019oe.toml that name this profile, for every seed of the run."""
    by_seed = claim_verdicts(harness_session.results, profile_claims(harness_session, PAPERS), claim_dataset)
    require_measured(by_seed, f"the {GROUP} cases of {claim_dataset} (-k outlier_exposure)")
    enforce_claims(harness_session, f"{claim_dataset} {GROUP}", by_seed)
