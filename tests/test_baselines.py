"""Regression baselines: written from records, checked within tolerances, and they catch a broken metric."""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness import baselines, cli, metrics, profiles, runner, scores, summary
from harness.errors import HarnessError
from harness.evaluate import evaluate_arrays
from record_factory import make_record, write_json


def _evaluated_metrics() -> dict:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 500)
    id_logits = rng.normal(size=(500, 5)) + 2.5 * np.eye(5)[labels]
    ood_logits = {"noise": rng.normal(size=(400, 5)), "shifted": rng.normal(size=(400, 5)) + 1.0}
    report = evaluate_arrays(id_logits, labels, ood_logits, scores.get("msp"), num_to_avg=3, seed=0)
    return report.to_json()["metrics"]


def _record_with(metric_values: dict, case_id="digits-0-4-scratch-msp", **kw) -> dict:
    record = make_record(case_id, **{"num_to_avg": 5, **kw})
    record["report"]["metrics"] = metric_values
    return record


@pytest.fixture
def baseline_dir(tmp_path):
    results = tmp_path / "results"
    write_json(results / "a.json", _record_with(_evaluated_metrics()))
    write_json(results / "b.json", _record_with(_evaluated_metrics(), "digits-0-4-finetune-msp"))
    path, n = baselines.update("smoke", results, tmp_path / "baselines")
    assert n == 2 and path == tmp_path / "baselines" / "smoke.json"
    return tmp_path / "baselines"


def test_an_identical_run_passes_every_metric(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    verdicts = baselines.check(_record_with(_evaluated_metrics()), base)
    assert verdicts and all(v.passed for v in verdicts)
    assert {v.metric for v in verdicts} >= {"accuracy", "ood/mean/auroc", "ood/noise/aupr@ood", "calib/rms"}


def test_a_sign_flip_in_aupr_fails_against_the_baseline(baseline_dir, monkeypatch):
    """The acceptance check of the regression gate: break a metric on purpose, the gate must catch it."""
    real_aupr = metrics.aupr
    monkeypatch.setattr(metrics, "aupr", lambda id_s, ood_s, positive="ood": real_aupr(
        -np.asarray(id_s), -np.asarray(ood_s), positive=positive))
    verdicts = baselines.check(_record_with(_evaluated_metrics()), baselines.load("smoke", baseline_dir))
    failed = {v.metric for v in verdicts if not v.passed}
    assert "ood/mean/aupr@ood" in failed and "ood/noise/aupr@id" in failed
    assert not any(key.endswith("auroc") for key in failed), "only the AUPR keys moved"
    message = next(v for v in verdicts if v.metric == "ood/mean/aupr@ood").message()
    assert "baseline" in message and "moved by" in message


def test_a_small_float_wobble_is_within_tolerance_a_real_move_is_not(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    values["accuracy"] = {**values["accuracy"], "mean": values["accuracy"]["mean"] + 0.3}
    values["calib/nll"] = {**values["calib/nll"], "mean": values["calib/nll"]["mean"] + 0.2}
    verdicts = {v.metric: v for v in baselines.check(_record_with(values), base)}
    assert verdicts["accuracy"].passed and verdicts["accuracy"].tolerance == 0.5
    assert not verdicts["calib/nll"].passed and verdicts["calib/nll"].tolerance == 0.05


def test_a_missing_metric_fails_and_an_unknown_case_has_no_verdicts(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    del values["ood/mean/auroc"]
    missing = [v for v in baselines.check(_record_with(values), base) if v.measured is None]
    assert [v.metric for v in missing] == ["ood/mean/auroc"] and not missing[0].passed
    assert "missing" in missing[0].message()
    assert baselines.check(_record_with(values, "digits-0-4-new-case"), base) is None


def test_tolerance_patterns_first_match_wins():
    table = {"calib/nll": 0.05, "ood/*": 2.0, "*": 0.5}
    assert baselines.tolerance_for("calib/nll", table) == 0.05
    assert baselines.tolerance_for("ood/mean/auroc", table) == 2.0
    assert baselines.tolerance_for("accuracy", table) == 0.5
    with pytest.raises(HarnessError, match="no tolerance"):
        baselines.tolerance_for("accuracy", {"calib/*": 1.0})


def test_a_corrupt_baseline_file_names_file_and_line(tmp_path):
    (tmp_path / "smoke.json").write_text('{\n "format_version": 1,\n "cases": {,}\n}')
    with pytest.raises(HarnessError, match=r"smoke.json: invalid JSON at line 3"):
        baselines.load("smoke", tmp_path)
    (tmp_path / "mini.json").write_text(json.dumps({"format_version": 99, "cases": {}}))
    with pytest.raises(HarnessError, match="baseline update"):
        baselines.load("mini", tmp_path)
    assert baselines.load("paper", tmp_path) is None


def test_cli_update_writes_the_file_and_reports_missing_records(tmp_path, capsys):
    results = tmp_path / "results"
    write_json(results / "a.json", _record_with(_evaluated_metrics()))
    assert cli.main(["baseline", "update", "--profile", "smoke", "--results", str(results),
                     "--out-dir", str(tmp_path / "out")]) == 0
    assert "1 cases" in capsys.readouterr().out and (tmp_path / "out" / "smoke.json").exists()
    assert cli.main(["baseline", "update", "--profile", "mini", "--results", str(results),
                     "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no gateable records of profile 'mini'") and err.count("\n") == 1


def test_other_seeds_and_repetitions_are_not_gated():
    """--seeds / --num-to-avg: measured and recorded, but the baseline holds only the profile's defaults."""
    smoke = profiles.get("smoke")
    assert baselines.not_gated(_record_with({}), smoke) is None
    assert "seed 1 is not a baseline seed of profile 'smoke'" in baselines.not_gated(_record_with({}, seed=1), smoke)
    assert "num_to_avg 3 differs" in baselines.not_gated(_record_with({}, num_to_avg=3), smoke)
    assert baselines.not_gated(_record_with({}, seed=1, profile="paper"), profiles.get("paper")) is None


def test_a_not_gated_record_does_not_fail_and_says_why():
    record = _record_with(_evaluated_metrics(), seed=1)
    record["path"] = "r.json"
    record["verdicts"].update(baseline=None, bands=[], not_gated=baselines.not_gated(record, profiles.get("smoke")))
    assert runner.failures(record) == []
    assert "not gated" in summary.summary_table([record])[1]


def test_update_merges_by_default_and_skips_records_it_cannot_gate(baseline_dir, tmp_path, capsys):
    results = tmp_path / "more"
    changed = _evaluated_metrics()
    changed["accuracy"] = {**changed["accuracy"], "mean": 12.5}
    write_json(results / "a.json", _record_with(changed))
    write_json(results / "b.json", _record_with(changed, "digits-0-4-extra-msp", seed=2))
    write_json(results / "c.json", _record_with(changed, "digits-0-4-other-msp", num_to_avg=2))
    path, n = baselines.update("smoke", results, baseline_dir)
    cases = baselines.load("smoke", baseline_dir)["cases"]
    assert n == 1 and sorted(cases) == ["digits-0-4-finetune-msp/s0", "digits-0-4-scratch-msp/s0"]
    assert cases["digits-0-4-scratch-msp/s0"]["accuracy"] == 12.5
    out = capsys.readouterr().out
    assert "skipped digits-0-4-extra-msp (seed 2)" in out and "skipped digits-0-4-other-msp" in out
    baselines.update("smoke", results, baseline_dir, replace=True)
    assert sorted(baselines.load("smoke", baseline_dir)["cases"]) == ["digits-0-4-scratch-msp/s0"]


def test_shipped_smoke_baseline_loads_and_covers_every_smoke_case():
    base = baselines.load("smoke")
    assert base is not None and base["profile"] == "smoke"
    from harness import profiles, scores as score_registry
    plan = profiles.get("smoke").datasets[0]
    expected = {f"{plan.id}-{recipe}-{score}/s0" for recipe in ("scratch", "finetune") for score in score_registry.names()}
    assert expected <= set(base["cases"])


def _with_sets(values: dict, sets: list[str], selection: dict | None) -> dict:
    record = _record_with(values)
    record["report"]["ood_sets"] = {s: {"n_samples": 100, "n_available": 100} for s in sets}
    record["ood_selection"] = selection
    return record


def test_ood_sets_added_or_dropped_gate_only_the_profiles_own_sets(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    own = {"profile": ["noise", "shifted"], "run": ["noise", "shifted", "extra"], "added": ["extra"], "dropped": []}
    added = dict(values)
    for key in [k for k in values if k.startswith("ood/noise/")]:
        added[key.replace("noise", "extra")] = {**values[key], "mean": 0.0}
        mean = key.replace("noise", "mean")
        added[mean] = {**values[mean], "mean": (2 * values[mean]["mean"]) / 3}  # what a 3-set mean would read
    verdicts = baselines.check(_with_sets(added, ["noise", "shifted", "extra"], own), base)
    assert verdicts and all(v.passed for v in verdicts), [v.message() for v in verdicts if not v.passed]
    assert "ood/mean/auroc" in {v.metric for v in verdicts} and not any("extra" in v.metric for v in verdicts)
    broken = dict(added, **{"ood/noise/auroc": {**added["ood/noise/auroc"], "mean": 1.0}})
    failed = {v.metric for v in baselines.check(_with_sets(broken, ["noise", "shifted", "extra"], own), base)
              if not v.passed}
    assert failed == {"ood/noise/auroc", "ood/mean/auroc"}

    dropped = {k: v for k, v in values.items() if not k.startswith(("ood/shifted/", "ood/mean/"))}
    selection = {"profile": ["noise", "shifted"], "run": ["noise"], "added": [], "dropped": ["shifted"]}
    verdicts = baselines.check(_with_sets(dropped, ["noise"], selection), base)
    assert verdicts and all(v.passed for v in verdicts)
    assert not any(v.metric.startswith(("ood/shifted/", "ood/mean/")) for v in verdicts)


def test_an_entry_measured_on_another_kind_of_machine_does_not_gate(baseline_dir, tmp_path):
    """CPU training is bit-identical only where the kernels round alike (harness.machine's probe)."""
    from harness import machine

    base = baselines.load("smoke", baseline_dir)
    record = _record_with(_evaluated_metrics())
    here = machine.kernel_probe()
    assert base["case_machines"][baselines.case_key(record)] == here  # update() tags what it writes
    assert baselines.other_machine(record, base) is None
    base["case_machines"][baselines.case_key(record)] = "0123456789abcdef"
    assert "kernel probe 0123456789abcdef, here " + here in baselines.other_machine(record, base)
    del base["case_machines"][baselines.case_key(record)]
    assert baselines.other_machine(record, base) is None  # untagged entries gate everywhere
    assert machine.kernel_probe.__wrapped__() == here  # deterministic on one machine


def test_untagged_entries_known_to_differ_on_this_machine_do_not_gate(baseline_dir):
    from harness import machine

    base = baselines.load("smoke", baseline_dir)
    record = _record_with(_evaluated_metrics())
    del base["case_machines"][baselines.case_key(record)]
    base["untagged_entries_differ_on"] = {machine.kernel_probe(): "measured: 89.67 % against 88.00 %"}
    assert "predates kernel probes" in baselines.other_machine(record, base)
    base["untagged_entries_differ_on"] = {"0123456789abcdef": "elsewhere"}
    assert baselines.other_machine(record, base) is None


def test_update_tags_each_entry_with_the_probe_of_the_machine_that_measured_it(tmp_path):
    record = _record_with(_evaluated_metrics())
    record["provenance"]["kernel_probe"] = "feedfacefeedface"
    write_json(tmp_path / "r" / "a.json", record)
    baselines.update("smoke", tmp_path / "r", tmp_path / "b")
    assert baselines.load("smoke", tmp_path / "b")["case_machines"] == {"digits-0-4-scratch-msp/s0": "feedfacefeedface"}


def test_each_kind_of_machine_gets_its_own_entry_beside_the_main_one(tmp_path):
    """A record from another kind of machine than the main entry's goes to `by_machine`; each kind is then gated
    by the entry measured on its kind, and neither entry overwrites the other."""
    first = _record_with(_evaluated_metrics())
    first["provenance"]["kernel_probe"] = "aaaaaaaaaaaaaaaa"
    write_json(tmp_path / "r1" / "a.json", first)
    baselines.update("smoke", tmp_path / "r1", tmp_path / "b")
    second = _record_with({k: {**v, "mean": v["mean"] + 3.0} if k == "accuracy" else v
                           for k, v in _evaluated_metrics().items()})
    second["provenance"]["kernel_probe"] = "bbbbbbbbbbbbbbbb"
    write_json(tmp_path / "r2" / "a.json", second)
    baselines.update("smoke", tmp_path / "r2", tmp_path / "b")
    base = baselines.load("smoke", tmp_path / "b")
    key = baselines.case_key(first)
    assert base["case_machines"] == {key: "aaaaaaaaaaaaaaaa"} and set(base["by_machine"]) == {"bbbbbbbbbbbbbbbb"}
    a, b = (baselines.entry(first, base, p)["accuracy"] for p in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"))
    assert b - a == pytest.approx(3.0)
    assert baselines.entry(first, base, "cccccccccccccccc") is None  # a third kind: no entry, not gated
    baselines.update("smoke", tmp_path / "r2", tmp_path / "b")  # re-measuring a kind replaces its own entry only
    assert baselines.load("smoke", tmp_path / "b")["cases"] == base["cases"]
