"""The SSL study (docs/ssl.md): backbones {scratch, supervised upstream (`pretrain`), BYOL, Barlow Twins, DINO} each
fine-tuned on the in-distribution set, then also energy fine-tuned (`energy_ft` on that model), scored with MSP and
the energy score; every OOD set of the profile, calibration and shift as every case has. The SSL backbones train on
the profile's upstream set without its labels (harness.recipes.ssl). A model entry with released or user weights
(benchmarks/models, `dataset` unset: an upstream) is one more row when its file is present.

Not on smoke: the SSL pre-training would push smoke past its time budget (docs/ssl.md). Needs lightly
(`pip install -e '.[ssl]'`); without it the module's cases are not collected.
"""
import pytest
from casekit import assert_verdicts, generate

from harness import data as hdata
from harness import model_entries
from harness.runner import Case
from harness.ssl import study

pytest.importorskip("lightly")


def _cases(profile, entries: list[str]) -> list[Case]:
    if profile.name == "smoke":
        return []
    cases = []
    for plan in profile.datasets:
        models = [Case(study.GROUP, plan.id, recipe) for recipe in study.BACKBONES.values()]
        models += [Case(study.GROUP, plan.id, "finetune", entry=name) for name in entries]
        energy = plan.aux is not None and hdata.spec(plan.id).energy_margins is not None
        for model in models:
            stages = [model] + ([Case(study.GROUP, plan.id, study.ENERGY, recipe_params=(("base", model.recipe),),
                                      entry=model.entry)] if energy else [])
            cases += [Case(c.group, c.dataset, c.recipe, score, c.recipe_params, entry=c.entry)
                      for c in stages for score in study.SCORES]
    return cases


def pytest_generate_tests(metafunc):
    root = metafunc.config.getoption("--data-root")
    # upstream-only entries (no dataset of their own) whose file this machine has
    entries = [e.name for e in model_entries.load_all() if e.dataset is None and e.absent(root) is None]
    generate(metafunc, lambda profile: _cases(profile, entries))


def test_case(case, seed, run_case):
    record = run_case(case, seed)
    assert {"ood/mean/fpr95@id", "ood/mean/auroc"} <= set(record["report"]["metrics"])
    if case.recipe == study.ENERGY:
        assert record["outliers"]["aux"] and "start" in record["outliers"]["mean_energy"]
    assert_verdicts(record)
