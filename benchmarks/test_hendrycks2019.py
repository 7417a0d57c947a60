"""Hendrycks, Lee & Mazeika 2019: scratch vs pre-trained-then-fine-tuned, MSP, every OOD set of the profile.

Each case measures OOD detection (both conventions), in-distribution calibration and calibration under OOD;
on the paper profile the numbers are checked against benchmarks/bands/hendrycks2019.toml, and the paper's
direction claims (fine-tuning beats scratch) against the pair of cases.
"""
from casekit import assert_verdicts, case_params, enforce_claims, profile_claims, require_measured

from harness import bands, profiles
from harness.runner import Case

RECIPES = ("scratch", "finetune")


def pytest_generate_tests(metafunc):
    profile = profiles.get(metafunc.config.getoption("--profile"))
    if "case" in metafunc.fixturenames:
        cases = [Case("hendrycks2019", plan.id, recipe) for plan in profile.datasets for recipe in RECIPES]
        metafunc.parametrize("case,seed", case_params(metafunc.config, cases))
    if "claim_dataset" in metafunc.fixturenames:
        metafunc.parametrize("claim_dataset", [plan.id for plan in profile.datasets])


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))


def claim_verdicts(records: list[dict], claims: list, dataset: str) -> dict[int, list]:
    """{seed: claim verdicts} of the finetune-vs-scratch claims over the records of each seed."""
    mine = [r for r in records if r["dataset"] == dataset and r["group"] == "hendrycks2019"]
    by_seed = {}
    for seed in sorted({r["seed"] for r in mine}):
        runs = {r["recipe"]["name"]: r for r in mine if r["seed"] == seed}
        upstream = runs["finetune"]["recipe"]["pretrain_dataset"] if "finetune" in runs else None
        by_seed[seed] = bands.check_claims(claims, dataset, {name: r["report"]["metrics"] for name, r in runs.items()},
                                           upstream=upstream)
    return by_seed


def test_direction_claims(claim_dataset, harness_session):
    """Fine-tuned beats scratch: the claims of hendrycks2019.toml that name this profile (the paper's, by the
    paper's margins, on the paper profile), for every seed of the run (after both cases have run)."""
    by_seed = claim_verdicts(harness_session.results, profile_claims(harness_session, ("hendrycks2019",)),
                             claim_dataset)
    require_measured(by_seed, f"both {RECIPES} cases of {claim_dataset}")
    enforce_claims(harness_session, f"{claim_dataset} hendrycks2019", by_seed)
