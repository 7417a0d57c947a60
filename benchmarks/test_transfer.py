"""Ways to use a pre-trained model: linear probe, LP-FT, WiSE-FT over alpha (fine-tuning is in
test_hendrycks2019). MSP; the same OOD sets and calibration as every other case."""
from casekit import assert_verdicts, case_params

from harness import profiles
from harness.runner import Case

# The WiSE-FT curve (the shift view draws it): alpha = 0, 0.1, ..., 1 on the paper profile (and its dry run); the CPU
# profiles keep three points, whose baselines predate the curve.
WISE_FT_ALPHAS = {"paper": tuple(round(0.1 * k, 1) for k in range(11))}
CPU_ALPHAS = (0.25, 0.5, 0.75)


def pytest_generate_tests(metafunc):
    profile = profiles.get(metafunc.config.getoption("--profile"))
    cases = []
    for plan in profile.datasets:
        cases += [Case("transfer", plan.id, "linear_probe"), Case("transfer", plan.id, "lp_ft")]
        alphas = WISE_FT_ALPHAS.get(profile.dry_run_of or profile.name, CPU_ALPHAS)
        cases += [Case("transfer", plan.id, "wise_ft", recipe_params=(("alpha", a),)) for a in alphas]
    metafunc.parametrize("case,seed", case_params(metafunc.config, cases))


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))
