"""A test-built tiny CLIP entry through the runner: zero-shot, fine-tuned and the whole WiSE-FT curve as
ordinary cases with records, and the leaderboard built from them."""
from __future__ import annotations

import dataclasses
import re

import pytest

from harness import model_entries, profiles
from harness.recipes.clip import ClipWiseFt
from harness.runner import Case, RunContext, Session
from harness.site import leaderboard

pytest.importorskip("open_clip")
from clip_factory import tiny_entry  # noqa: E402  (needs open_clip)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clip")
    smoke = profiles.get("smoke")
    plan = smoke.plan("digits-0-4")  # digits 5-9 stand in for a natural-shift set of the same 5 classes
    plan = dataclasses.replace(plan, shift=dataclasses.replace(plan.shift, natural=("digits-5-9",)))
    profile = dataclasses.replace(smoke, train_limit=100, test_limit=50, epochs={**smoke.epochs, "clip_finetune": 2},
                                  datasets=(plan,))
    session = Session(RunContext(profile, "cpu", tmp / "results", data_root=tmp / "data", cache_dir=tmp / "cache"))
    session.entries["tiny-clip"] = model_entries.load(tiny_entry(tmp / "models"))
    cases = [Case("clip", "digits-0-4", "clip_zero_shot", entry="tiny-clip"),
             Case("clip", "digits-0-4", "clip_finetune", entry="tiny-clip")]
    cases += [Case("clip", "digits-0-4", "clip_wise_ft", recipe_params=(("alpha", a),), entry="tiny-clip")
              for a in ClipWiseFt.CURVE]
    records = {c.id: session.run(c, 0) for c in cases}
    return tmp, records


def _accuracy(record):
    return record["report"]["metrics"]["accuracy"]["mean"]


def test_every_case_has_a_record_with_ood_calibration_and_shift_metrics(run):
    _, records = run
    assert len(records) == 13
    for record in records.values():
        metrics = record["report"]["metrics"]
        assert record["model"] == "open_clip:tiny-clip-test" and "ood/mean/auroc" in metrics
        assert any(k.startswith("shift/") for k in metrics) and "calib/nll" in metrics
    finetune = records["digits-0-4-clip_finetune-on-tiny-clip-msp"]
    settings = finetune["recipe"]["settings"]
    assert (settings["optimizer"], settings["lr"], settings["weight_decay"], settings["epochs"]) == \
        ("adamw_warmup_cosine", 3e-5, 0.1, 2)
    assert settings["warmup_steps"] == 0  # 2 epochs of one 512-batch step: capped at a tenth of the run


def test_wise_ft_curve_ends_at_the_zero_shot_and_the_fine_tuned_model(run):
    _, records = run
    curve = {a: records[f"digits-0-4-clip_wise_ft-alpha{a:g}-on-tiny-clip-msp"] for a in ClipWiseFt.CURVE}
    zero_shot = records["digits-0-4-clip_zero_shot-on-tiny-clip-msp"]
    finetune = records["digits-0-4-clip_finetune-on-tiny-clip-msp"]
    for end, alpha in ((zero_shot, 0.0), (finetune, 1.0)):
        assert curve[alpha]["report"]["metrics"]["calib/nll"]["mean"] == pytest.approx(
            end["report"]["metrics"]["calib/nll"]["mean"], abs=1e-9)
    assert zero_shot["report"]["metrics"]["calib/nll"]["mean"] != finetune["report"]["metrics"]["calib/nll"]["mean"]
    assert curve[0.5]["recipe"]["settings"]["finetune_key"] == finetune["checkpoint"]["key"]


def test_the_leaderboard_shows_the_clip_cases(run):
    tmp, records = run
    site = leaderboard.build_site(tmp / "results", tmp / "site")
    assert site.problems == ()
    index = site.index.read_text()
    for case_id in ("digits-0-4-clip_zero_shot-on-tiny-clip-msp", "digits-0-4-clip_finetune-on-tiny-clip-msp",
                    "digits-0-4-clip_wise_ft-alpha0.5-on-tiny-clip-msp"):
        assert re.search(r'<a href="cases/[^"]+">' + re.escape(case_id) + "</a>", index), case_id


def test_natural_shift_keys_and_the_effective_robustness_table(run):
    tmp, records = run
    for record in records.values():
        metrics = record["report"]["metrics"]
        assert metrics["shift/digits-5-9/accuracy"]["mean"] == metrics["shift/natural/accuracy"]["mean"]
        assert {"shift/digits-5-9/ece", "shift/digits-5-9/nll"} <= set(metrics)
        assert record["shift"]["plan"]["natural"] == ["digits-5-9"]
    leaderboard.build_site(tmp / "results", tmp / "site2")
    html = (tmp / "site2" / "shift.html").read_text()
    table = html.split('<table class="board robustness">')[1].split("</table>")[0]
    assert "digits-5-9" in table and table.count("<tr>") == 1 + len(records)
    assert "alpha curve" in html  # clip_wise_ft draws the curve against the natural-shift mean


def test_evaluate_command_writes_a_record_of_a_clip_entry(tmp_path, monkeypatch, capsys):
    from harness import cli
    tiny_entry(tmp_path / "models")
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    code = cli.main(["evaluate", "--entry", "tiny-clip", "--profile", "smoke", "--data-root", str(tmp_path / "data"),
                     "--results-dir", str(tmp_path / "results")])
    out = capsys.readouterr().out
    assert code == 0 and "as open_clip:tiny-clip-test on digits-0-4" in out
    assert len(list((tmp_path / "results").rglob("*.json"))) == 1
