"""Hendrycks, Lee & Mazeika 2019: scratch vs pre-trained-then-fine-tuned, MSP, every OOD set of the profile.

Each case measures OOD detection (both conventions), in-distribution calibration and calibration under OOD;
on the paper profile the numbers are checked against benchmarks/bands/hendrycks2019.toml, and the paper's
direction claims (fine-tuning beats scratch) against the pair of cases.
"""
import pytest
from casekit import assert_verdicts, case_params, enforce_claims

from harness import bands, profiles
from harness.runner import Case, banded

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


def test_direction_claims(claim_dataset, harness_session):
    """Fine-tuned beats scratch by the paper's stated margins (paper profile; after both cases have run)."""
    if not banded(harness_session.ctx.profile):
        pytest.skip("direction claims are checked on the paper profile only (the smoke/mini models are too small)")
    mine = [r for r in harness_session.results if r["dataset"] == claim_dataset and r["group"] == "hendrycks2019"]
    by_seed = {}
    for seed in sorted({r["seed"] for r in mine}):
        runs = {r["recipe"]["name"]: r for r in mine if r["seed"] == seed}
        if set(RECIPES) - runs.keys():
            pytest.skip(f"needs both {RECIPES} cases of {claim_dataset} in this run, for each seed; "
                        f"seed {seed} has {sorted(runs)}")
        by_seed[seed] = bands.check_claims(harness_session.claims(), claim_dataset,
                                           {name: r["report"]["metrics"] for name, r in runs.items()},
                                           upstream=runs["finetune"]["recipe"]["pretrain_dataset"])
    if not by_seed:
        pytest.skip(f"needs both {RECIPES} cases of {claim_dataset} in this run")
    enforce_claims(harness_session, f"{claim_dataset} hendrycks2019", by_seed)
