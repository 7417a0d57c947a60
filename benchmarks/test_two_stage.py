"""Jordahn & Olmos 2024 (two-stage training, TST / V-TST) and its replication with focal losses: calibration of
a trained model against the same model with temperature scaling, with its body frozen and a new MLP head (TST)
or variational head (V-TST, M = 10 samples; the record also holds M = 1), and against focal-loss training.

Every model with a holdout split records calibration at T = 1 and at the temperature fitted on that split
(`calib@T/*`). The base of TST, V-TST and temperature scaling is the `scratch` model every other module
shares; the paper's own stage 1, `adam_base`, and TST / V-TST on it are cases of the paper profile. On the
paper profile the cases are checked against benchmarks/bands/jordahn2024.toml; its direction claims are checked
on the profiles each one names (`test_direction_claims`).
"""
import pytest
from casekit import assert_verdicts, enforce_claims, generate, profile_claims, require_measured

from harness import bands, profiles, recipes
from harness.errors import HarnessError
from harness.runner import Case, banded

GROUP = "jordahn2024"
ON_FOCAL = (("base", "scratch_focal"),)
ON_ADAM = (("base", "adam_base"),)


def _cases(profile: profiles.Profile) -> list[Case]:
    cases = []
    for plan in profile.datasets:
        cases += [Case(GROUP, plan.id, name) for name in ("temperature_scaling", "tst", "vtst", "scratch_focal",
                                                         "scratch_adaptive_focal")]
        cases.append(Case(GROUP, plan.id, "tst", recipe_params=ON_FOCAL))
        if banded(profile):  # the paper's own stage 1 and pairing: at CPU scale, a third more time
            cases += [Case(GROUP, plan.id, "adam_base")]
            cases += [Case(GROUP, plan.id, name, recipe_params=ON_ADAM) for name in ("tst", "vtst")]
    for case in cases:
        try:
            recipes.get(case.recipe, **dict(case.recipe_params))
        except HarnessError as exc:
            raise pytest.UsageError(f"{case.id}: {exc}") from None
    return cases


def pytest_generate_tests(metafunc):
    generate(metafunc, _cases)


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))


def claim_inputs(records: list[dict]) -> dict[str, dict]:
    """{recipe: metrics} for the claims, from one seed's records of one dataset.

    The base (`scratch`) is read from the temperature_scaling record: that case evaluates the base model as it
    is, so its metrics at T = 1 are the base's. `temperature_scaling`'s own entry holds its `calib@T/*`
    metrics under the plain `calib/*` keys, so "temperature scaling lowers calib/nll" compares like with like.
    """
    out = {}
    for record in records:
        name, metrics = record["recipe"]["name"], record["report"]["metrics"]
        if name == "temperature_scaling":
            out["scratch"] = metrics
            metrics = {key.replace("calib@T/", "calib/"): stat for key, stat in metrics.items()
                       if key.startswith("calib@T/")}
        if record["recipe"]["upstream"] in (None, {"recipe": "scratch", "dataset": record["dataset"]}):
            out[name] = metrics
    return out


def claim_verdicts(records: list[dict], claims: list, dataset: str) -> dict[int, list]:
    """{seed: claim verdicts} of the jordahn2024 claims over each seed's two-stage records (claim_inputs)."""
    mine = [r for r in records if r["dataset"] == dataset and r["group"] == GROUP]
    return {seed: bands.check_claims(claims, dataset, claim_inputs([r for r in mine if r["seed"] == seed]))
            for seed in sorted({r["seed"] for r in mine})}


def test_direction_claims(claim_dataset, harness_session):
    """The claims of jordahn2024.toml that name this profile (mini: temperature scaling lowers NLL and ECE),
    for every seed of the run."""
    by_seed = claim_verdicts(harness_session.results, profile_claims(harness_session, (GROUP,)), claim_dataset)
    require_measured(by_seed, f"every case of {GROUP} on {claim_dataset}")
    enforce_claims(harness_session, f"{claim_dataset} {GROUP}", by_seed)
