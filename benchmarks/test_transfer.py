"""Ways to use a pre-trained model: linear probe, LP-FT, WiSE-FT over alpha (fine-tuning is in
test_hendrycks2019). MSP; the same OOD sets, calibration and shift evaluation as every other case.

The lecture's claims (kumar2022.toml: fine-tuning distorts features, linear probing keeps shifted accuracy, LP-FT
gets both) are checked on the profiles each claim names, per seed, against the `finetune` case of the same run.
"""
from casekit import assert_verdicts, enforce_claims, generate, profile_claims, require_measured

from harness import bands
from harness.runner import Case

GROUP = "transfer"
PAPER = "kumar2022"

# The WiSE-FT curve (the shift view draws it): alpha = 0, 0.1, ..., 1 on the paper profile (and its dry run); the CPU
# profiles keep three points, whose baselines predate the curve.
WISE_FT_ALPHAS = {"paper": tuple(round(0.1 * k, 1) for k in range(11))}
CPU_ALPHAS = (0.25, 0.5, 0.75)


def _cases(profile):
    cases = []
    for plan in profile.datasets:
        cases += [Case(GROUP, plan.id, "linear_probe"), Case(GROUP, plan.id, "lp_ft")]
        alphas = WISE_FT_ALPHAS.get(profile.dry_run_of or profile.name, CPU_ALPHAS)
        cases += [Case(GROUP, plan.id, "wise_ft", recipe_params=(("alpha", a),)) for a in alphas]
    return cases


def pytest_generate_tests(metafunc):
    generate(metafunc, _cases)


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))


def claim_verdicts(records: list[dict], claims: list, dataset: str) -> dict[int, list]:
    """{seed: claim verdicts} of the kumar2022 claims over the MSP records of linear_probe, lp_ft and finetune."""
    mine = [r for r in records if r["dataset"] == dataset and r["score"]["name"] == "msp"
            and r["recipe"]["name"] in ("linear_probe", "lp_ft", "finetune")]
    return {seed: bands.check_claims(claims, dataset, {r["recipe"]["name"]: r["report"]["metrics"]
                                                       for r in mine if r["seed"] == seed})
            for seed in sorted({r["seed"] for r in mine})}


def test_direction_claims(claim_dataset, harness_session):
    """The claims of kumar2022.toml that name this profile, for every seed of the run (needs the linear_probe,
    lp_ft and finetune MSP cases: `pytest benchmarks/test_hendrycks2019.py benchmarks/test_transfer.py`)."""
    by_seed = claim_verdicts(harness_session.results, profile_claims(harness_session, (PAPER,)), claim_dataset)
    require_measured(by_seed, f"the linear_probe, lp_ft and finetune MSP cases of {claim_dataset} "
                              f"(test_hendrycks2019 and test_transfer)")
    enforce_claims(harness_session, f"{claim_dataset} {PAPER}", by_seed)
