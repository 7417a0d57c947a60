"""CLIP on a natural shift (docs/clip.md): zero-shot, linear probe, fine-tuned, LP-FT and the WiSE-FT curve
(alpha 0, 0.1, ..., 1) on every CLIP model entry of a row that has natural-shift sets and a training split to
fine-tune on (the `clip` profile: CIFAR-10 with CIFAR-10.1, OpenAI's ViT-B/32). MSP; every score, OOD set,
calibration view and shift metric, like every other case. The entries' own zero-shot bands are test_models'.

Like test_models, an entry whose weights are absent is collected only when the run selects cases by keyword
(`-k clip`): then its cases skip with the command that fetches the weights, as they skip without the data.

Claims: benchmarks/bands/wortsman2022.toml (zero-shot beats fine-tuned on effective robustness; WiSE-FT at some
interior alpha beats both endpoints on the mean shifted accuracy), checked by `test_direction_claims` on the
sides claim_inputs derives from each seed's records of the row.
"""
import pytest
from casekit import assert_verdicts, enforce_claims, generate, profile_claims, require_measured

from harness import bands, clip, model_entries, profiles, robustness
from harness import data as hdata
from harness.errors import HarnessError
from harness.recipes.clip import ClipWiseFt
from harness.runner import Case

GROUP = "clip"
PAPER = "wortsman2022"
RECIPES = ("clip_zero_shot", "clip_linear_probe", "clip_finetune", "clip_lp_ft")
WISE_FT = "clip_wise_ft"
ER = f"shift/{bands.NATURAL_SHIFT_MEAN}/effective_robustness"
SHIFTED = f"shift/{bands.NATURAL_SHIFT_MEAN}/accuracy"


def _fine_tunable(plan) -> bool:
    """A row with natural-shift sets and a training split (ImageNet-1k val alone has none to fine-tune on)."""
    return plan.shift is not None and bool(plan.shift.natural) and "train" in hdata.spec(plan.id).splits


def _cases(profile: profiles.Profile, config) -> list[Case]:
    rows = [plan.id for plan in profile.datasets if _fine_tunable(plan)]
    try:
        entries = [e for e in model_entries.load_all() if clip.arch_of(e.architecture) and e.dataset in rows]
    except HarnessError as exc:  # a malformed entry is a usage error naming file:line
        raise pytest.UsageError(str(exc)) from None
    if not config.getoption("keyword"):  # as test_models: absent weights are collected only when asked for
        entries = [e for e in entries if e.absent(config.getoption("--data-root")) is None]
    cases = []
    for entry in entries:
        cases += [Case(GROUP, entry.dataset, name, entry=entry.name) for name in RECIPES]
        cases += [Case(GROUP, entry.dataset, WISE_FT, recipe_params=(("alpha", a),), entry=entry.name)
                  for a in ClipWiseFt.CURVE]
    return cases


def pytest_generate_tests(metafunc):
    generate(metafunc, lambda profile: _cases(profile, metafunc.config), has_claims=_fine_tunable)


def test_case(case, seed, run_case):
    assert_verdicts(run_case(case, seed))


def _mean(record: dict, key: str) -> float:
    return record["report"]["metrics"][key]["mean"]


def _natural_sets(records: list[dict]) -> list[str]:
    """The natural-shift sets of the records' keys: shift/<set>/accuracy that is no corruption summary (the shift
    view's rule)."""
    found = {key.split("/")[1] for r in records for key in r["report"]["metrics"]
             if key.count("/") == 2 and key.startswith("shift/") and key.endswith("/accuracy")}
    return sorted(found - {"mean", bands.NATURAL_SHIFT_MEAN} - {s for s in found if s.startswith("severity")})


def claim_inputs(records: list[dict]) -> dict[str, dict[str, dict]]:
    """{recipe: {metric: {"mean"}}} from one seed's MSP records of one row and one entry: every recipe's record
    metrics plus its effective robustness per natural-shift set (shift/<set>/effective_robustness, the line fitted
    over these records but the WiSE-FT curve's, harness.robustness) and their mean (ER); clip_wise_ft as its best
    interior alpha on SHIFTED (alpha 0 and 1 are exactly the clip_zero_shot and clip_finetune weights: the
    endpoints compared)."""
    sets = _natural_sets(records)
    # The line is fitted over the models, not the WiSE-FT curve: its cases are blends of two of those models, and
    # eleven of them would outweigh the four and bend the line onto the curve, above both ends by construction.
    models = [r for r in records if r["recipe"]["name"] != WISE_FT]
    per_set = {}
    for name in sets:
        key = f"shift/{name}/accuracy"
        measured = [r for r in models if key in r["report"]["metrics"]]
        try:
            line = robustness.fit([_mean(r, "accuracy") for r in measured], [_mean(r, key) for r in measured])
        except HarnessError:
            continue  # fewer than 2 distinct ID accuracies: no line, so no case's ER on this set is measured
        per_set[name] = {id(r): robustness.effective_robustness(_mean(r, "accuracy"), _mean(r, key), line)
                         for r in measured}
    out = {}
    for record in models:
        derived = {f"shift/{name}/effective_robustness": {"mean": er[id(record)]}
                   for name, er in per_set.items() if id(record) in er}
        if sets and len(derived) == len(sets):  # the mean over every set, or none
            derived[ER] = {"mean": sum(d["mean"] for d in derived.values()) / len(derived)}
        out[record["recipe"]["name"]] = {**record["report"]["metrics"], **derived}
    interior = [_mean(r, SHIFTED) for r in records if r["recipe"]["name"] == WISE_FT
                and 0 < r["recipe"]["settings"]["alpha"] < 1 and SHIFTED in r["report"]["metrics"]]
    if interior:
        out[WISE_FT] = {SHIFTED: {"mean": max(interior)}}
    return out


def claim_verdicts(records: list[dict], claims: list, dataset: str) -> dict[int, list]:
    """{seed: claim verdicts} of the wortsman2022 claims, per entry, over each seed's MSP records of the row."""
    mine = [r for r in records if r["dataset"] == dataset and r["group"] == GROUP and r["score"]["name"] == "msp"]
    by_seed = {}
    for seed in sorted({r["seed"] for r in mine}):
        of_seed = [r for r in mine if r["seed"] == seed]
        by_seed[seed] = []
        for entry in sorted({r["recipe"]["upstream"]["entry"] for r in of_seed}):
            ours = [r for r in of_seed if r["recipe"]["upstream"]["entry"] == entry]
            by_seed[seed] += bands.check_claims(claims, dataset, claim_inputs(ours))
    return by_seed


def test_direction_claims(claim_dataset, harness_session):
    """The claims of wortsman2022.toml that name this profile (clip), for every seed of the run (needs this
    module's cases of the row: -k clip)."""
    by_seed = claim_verdicts(harness_session.results, profile_claims(harness_session, (PAPER,)), claim_dataset)
    require_measured(by_seed, f"the {GROUP} cases of {claim_dataset} (zero-shot, fine-tuned and the WiSE-FT curve)")
    enforce_claims(harness_session, f"{claim_dataset} {PAPER}", by_seed)
