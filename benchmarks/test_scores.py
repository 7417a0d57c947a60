"""OOD scores compared on the same trained models (scratch and fine-tuned), both conventions in every record.

MSP is in test_hendrycks2019; the models come from the checkpoint cache, so nothing is trained twice.
"""
from casekit import assert_verdicts, case_params

from harness import profiles, scores
from harness.runner import Case

RECIPES = ("scratch", "finetune")


def pytest_generate_tests(metafunc):
    profile = profiles.get(metafunc.config.getoption("--profile"))
    cases = [Case("scores", plan.id, recipe, score)
             for plan in profile.datasets for recipe in RECIPES for score in scores.names() if score != "msp"]
    metafunc.parametrize("case,seed", case_params(metafunc.config, cases))


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))
