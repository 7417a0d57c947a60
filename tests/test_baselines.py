"""Regression baselines: written from records, checked within tolerances, and they catch a broken metric."""
from __future__ import annotations

import json

import numpy as np
import pytest

from harness import baselines, cli, metrics, profiles, runner, scores, spread, summary
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


def _shifted(values: dict, by: float) -> dict:
    return {key: {**stat, "mean": stat["mean"] + by} for key, stat in values.items()}


SEED_WOBBLE = 0.01  # what one seed moves every metric by in these records: far below the floors


def _write_seeds(results, case_id="digits-0-4-scratch-msp", seeds=range(5), values=None, probe=None):
    for seed in seeds:
        record = _record_with(_shifted(values or _evaluated_metrics(), SEED_WOBBLE * seed), case_id, seed=seed)
        if probe:
            record["provenance"]["kernel_probe"] = probe
        write_json(results / f"{case_id}-s{seed}.json", record)


@pytest.fixture
def baseline_dir(tmp_path):
    results = tmp_path / "results"
    _write_seeds(results)
    _write_seeds(results, "digits-0-4-finetune-msp")
    path, n = baselines.update("smoke", results, tmp_path / "baselines")
    assert n == 10 and path == tmp_path / "baselines" / "smoke.json"
    return tmp_path / "baselines"


def _of_tier(verdicts, tier: str) -> dict:
    return {v.metric: v for v in verdicts if v.tier == tier}


def test_an_identical_run_passes_every_metric_in_both_tiers(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    verdicts = baselines.check(_record_with(_evaluated_metrics()), base)
    assert verdicts and all(v.passed for v in verdicts)
    assert baselines.tiers([v.to_json() for v in verdicts]) == ["exact", "spread"]
    assert set(_of_tier(verdicts, "exact")) >= {"accuracy", "ood/mean/auroc", "ood/noise/aupr@ood", "calib/rms"}
    spread_metrics = set(_of_tier(verdicts, "spread"))
    assert spread_metrics >= {"accuracy", "ood/mean/auroc", "ood/mean/aupr@ood", "calib/rms", "calib/nll"}
    assert not any(m.startswith("ood/noise/") for m in spread_metrics)  # per-set metrics: the exact tier only


def test_a_sign_flip_in_aupr_fails_in_both_tiers(baseline_dir, monkeypatch):
    """The acceptance check of the regression gate: break a metric on purpose, the gate must catch it."""
    real_aupr = metrics.aupr
    monkeypatch.setattr(metrics, "aupr", lambda id_s, ood_s, positive="ood": real_aupr(
        -np.asarray(id_s), -np.asarray(ood_s), positive=positive))
    verdicts = baselines.check(_record_with(_evaluated_metrics()), baselines.load("smoke", baseline_dir))
    for tier, per_set in (("exact", {"ood/noise/aupr@id"}), ("spread", set())):
        failed = {m for m, v in _of_tier(verdicts, tier).items() if not v.passed}
        assert {"ood/mean/aupr@ood", "ood/mean/aupr@id"} | per_set <= failed
        assert not any(key.endswith("auroc") for key in failed), "only the AUPR keys moved"
    exact, wide = spread.outcomes([v.to_json() for v in verdicts])
    assert exact.failed  # one metric past its tolerance fails the exact tier
    # the 2 AUPR means (@ood, @id) of the headline metrics: one broken metric stays under the spread tier's quorum
    assert wide.outside == 2 and not wide.failed and wide.total > 12
    exact = _of_tier(verdicts, "exact")["ood/mean/aupr@ood"].message()
    assert "baseline" in exact and "moved by" in exact
    wide = _of_tier(verdicts, "spread")["ood/mean/aupr@ood"].message()
    assert "spread of 5 seeds [" in wide and "widened by 0.5" in wide


def test_a_small_float_wobble_is_within_tolerance_a_real_move_is_not(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    values["accuracy"] = {**values["accuracy"], "mean": values["accuracy"]["mean"] + 0.3}
    values["calib/nll"] = {**values["calib/nll"], "mean": values["calib/nll"]["mean"] + 0.2}
    verdicts = baselines.check(_record_with(values), base)
    exact, wide = _of_tier(verdicts, "exact"), _of_tier(verdicts, "spread")
    assert exact["accuracy"].passed and exact["accuracy"].tolerance == 0.5
    assert not exact["calib/nll"].passed and exact["calib/nll"].tolerance == 0.05
    assert wide["accuracy"].passed and not wide["calib/nll"].passed


def test_the_spread_tier_fails_a_case_by_quorum_or_a_missing_metric(baseline_dir):
    """One seed may land far out on a few metrics (measured: docs/findings/gates.md); a regression moves most."""
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    gated = sorted(base["spread"]["digits-0-4-scratch-msp"]["metrics"])
    quorum = int(spread.QUORUM * len(gated))

    def outcome(moved: list[str], drop: str | None = None) -> spread.Outcome:
        changed = {k: ({**v, "mean": v["mean"] + 50} if k in moved else v) for k, v in values.items() if k != drop}
        (wide,) = [o for o in spread.outcomes([v.to_json() for v in baselines.check(_record_with(changed, seed=3),
                                                                                   base)]) if o.tier == "spread"]
        return wide

    assert not outcome(gated[:quorum]).failed and outcome(gated[:quorum]).outside == quorum
    assert outcome(gated[:quorum + 1]).failed
    missing = outcome([], drop="calib/rms")
    assert missing.failed and missing.missing == 1 and "1 missing" in missing.text()


def test_the_spread_interval_is_the_seed_range_widened_by_k_std_or_the_floor(tmp_path):
    """harness.spread: [min - w, max + w], w = max(floor, K * std); checked on a metric whose seeds spread wide."""
    results = tmp_path / "r"
    values = _evaluated_metrics()
    accuracies = [80.0, 82.0, 84.0, 86.0, 88.0]
    for seed, acc in enumerate(accuracies):
        record = _record_with(dict(values, accuracy={**values["accuracy"], "mean": acc}), seed=seed)
        write_json(results / f"s{seed}.json", record)
    baselines.update("smoke", results, tmp_path / "b")
    base = baselines.load("smoke", tmp_path / "b")
    stat = base["spread"]["digits-0-4-scratch-msp"]["metrics"]["accuracy"]
    assert stat == {"mean": 84.0, "std": pytest.approx(np.std(accuracies, ddof=1), abs=1e-4), "min": 80.0,
                    "max": 88.0, "n": 5}
    width = spread.K * stat["std"]
    assert width > 0.5  # K * std wins over the floor here
    for acc, ok in ((80.0 - width + 0.01, True), (88.0 + width - 0.01, True), (80.0 - width - 0.01, False),
                    (88.0 + width + 0.01, False)):
        record = _record_with(dict(values, accuracy={**values["accuracy"], "mean": acc}), seed=7)
        verdict = _of_tier(baselines.check(record, base), "spread")["accuracy"]
        assert verdict.passed is ok, (acc, verdict.message())


def test_a_missing_metric_fails_and_an_unknown_case_has_no_verdicts(baseline_dir):
    base = baselines.load("smoke", baseline_dir)
    values = _evaluated_metrics()
    del values["ood/mean/auroc"]
    missing = [v for v in baselines.check(_record_with(values), base) if v.measured is None]
    assert [(v.metric, v.tier) for v in missing] == [("ood/mean/auroc", "exact"), ("ood/mean/auroc", "spread")]
    assert not any(v.passed for v in missing) and all("missing" in v.message() for v in missing)
    assert baselines.check(_record_with(values, "digits-0-4-new-case"), base) is None


def test_tolerance_patterns_first_match_wins():
    table = {"calib/nll": 0.05, "ood/*": 2.0, "*": 0.5}
    assert baselines.tolerance_for("calib/nll", table) == 0.05
    assert baselines.tolerance_for("ood/mean/auroc", table) == 2.0
    assert baselines.tolerance_for("accuracy", table) == 0.5
    with pytest.raises(HarnessError, match="no tolerance"):
        baselines.tolerance_for("accuracy", {"calib/*": 1.0})


def test_a_corrupt_baseline_file_names_file_and_line(tmp_path):
    (tmp_path / "smoke.json").write_text('{\n "format_version": 2,\n "cases": {,}\n}')
    with pytest.raises(HarnessError, match=r"smoke.json: invalid JSON at line 3"):
        baselines.load("smoke", tmp_path)
    (tmp_path / "mini.json").write_text(json.dumps({"format_version": 99, "cases": {}}))
    with pytest.raises(HarnessError, match="baseline update"):
        baselines.load("mini", tmp_path)
    assert baselines.load("paper", tmp_path) is None


def test_cli_update_refuses_a_spread_from_fewer_seeds_than_the_profile_asks_for(tmp_path, capsys):
    results = tmp_path / "results"
    _write_seeds(results, seeds=range(4))
    out = ["--out-dir", str(tmp_path / "out")]
    assert cli.main(["baseline", "update", "--profile", "smoke", "--results", str(results), *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: digits-0-4-scratch-msp: recorded at 4 seed(s) (0, 1, 2, 3); the spread tier "
                          "needs at least 5") and err.count("\n") == 1
    assert not (tmp_path / "out" / "smoke.json").exists()
    _write_seeds(tmp_path / "more", seeds=[4])  # a second results directory adds the missing seed
    assert cli.main(["baseline", "update", "--profile", "smoke", "--results", str(results),
                     "--results", str(tmp_path / "more"), *out]) == 0
    assert "5 records" in capsys.readouterr().out
    assert baselines.load("smoke", tmp_path / "out")["spread"]["digits-0-4-scratch-msp"]["seeds"] == [0, 1, 2, 3, 4]
    assert cli.main(["baseline", "update", "--profile", "mini", "--results", str(results), *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no gateable records of profile 'mini'") and err.count("\n") == 1


def test_other_seeds_are_gated_by_the_spread_other_repetitions_are_not_gated(baseline_dir):
    """--seeds: the spread is a distribution over seeds, so any seed is gated by it (the exact tier holds only
    the profile's seeds); --num-to-avg: another estimator spread, measured and recorded but not gated."""
    smoke = profiles.get("smoke")
    assert baselines.not_gated(_record_with({}), smoke) is None
    assert baselines.not_gated(_record_with({}, seed=1), smoke) is None
    assert "num_to_avg 3 differs" in baselines.not_gated(_record_with({}, num_to_avg=3), smoke)
    assert baselines.not_gated(_record_with({}, seed=1, profile="paper"), profiles.get("paper")) is None
    verdicts = baselines.check(_record_with(_evaluated_metrics(), seed=9), baselines.load("smoke", baseline_dir))
    assert {v.tier for v in verdicts} == {"spread"} and all(v.passed for v in verdicts)


def test_a_not_gated_record_does_not_fail_and_says_why():
    record = _record_with(_evaluated_metrics(), num_to_avg=3)
    record["path"] = "r.json"
    record["verdicts"].update(baseline=None, bands=[], not_gated=baselines.not_gated(record, profiles.get("smoke")))
    assert runner.failures(record) == [] and not runner.checked(record)
    assert "not gated" in summary.summary_table([record])[1]


def test_update_merges_by_default_and_skips_records_it_cannot_gate(baseline_dir, tmp_path, capsys):
    results = tmp_path / "more"
    changed = _evaluated_metrics()
    changed["accuracy"] = {**changed["accuracy"], "mean": 12.5}
    _write_seeds(results, values=changed)
    write_json(results / "c.json", _record_with(changed, "digits-0-4-other-msp", num_to_avg=2))
    path, n = baselines.update("smoke", results, baseline_dir)
    base = baselines.load("smoke", baseline_dir)
    assert n == 5 and sorted(base["cases"]) == ["digits-0-4-finetune-msp/s0", "digits-0-4-scratch-msp/s0"]
    assert sorted(base["spread"]) == ["digits-0-4-finetune-msp", "digits-0-4-scratch-msp"]
    assert base["cases"]["digits-0-4-scratch-msp/s0"]["accuracy"] == 12.5
    assert base["spread"]["digits-0-4-scratch-msp"]["metrics"]["accuracy"]["min"] == 12.5
    assert "skipped digits-0-4-other-msp" in capsys.readouterr().out
    baselines.update("smoke", results, baseline_dir, replace=True)
    replaced = baselines.load("smoke", baseline_dir)
    assert sorted(replaced["cases"]) == ["digits-0-4-scratch-msp/s0"] and list(replaced["spread"]) == [
        "digits-0-4-scratch-msp"]


@pytest.mark.parametrize("profile", sorted(baselines.GATED_PROFILES))
def test_shipped_baselines_have_a_spread_of_enough_seeds_for_every_case(profile):
    """Every case of a gated profile is gated on every machine: the spread covers it, from enough seeds."""
    from harness import recipes

    base = baselines.load(profile)
    assert base is not None and base["profile"] == profile and base["spread_k"] == spread.K
    cases = {key.removesuffix("/s0") for key in base["cases"]}
    assert cases <= set(base["spread"]), sorted(cases - set(base["spread"]))
    for case_id, entry in base["spread"].items():
        assert len(entry["seeds"]) >= baselines.GATED_PROFILES[profile], case_id
        assert entry["metrics"] and all(stat["n"] >= len(entry["seeds"]) for stat in entry["metrics"].values())
    if profile == "smoke":
        plan = profiles.get("smoke").datasets[0]
        from harness import scores as score_registry
        expected = {f"{plan.id}-{recipe}-{score}" for recipe in ("scratch", "finetune")
                    for score in score_registry.names()}
        assert expected <= set(base["spread"])
    assert recipes  # the registry the case ids come from


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


def test_another_kind_of_machine_is_gated_by_the_spread_alone(baseline_dir):
    """CPU training is bit-identical only where the kernels round alike (harness.machine's probe): an exact entry
    of another kind does not gate, the spread still does; a machine difference never leaves a case ungated."""
    from harness import machine

    base = baselines.load("smoke", baseline_dir)
    record = _record_with(_evaluated_metrics())
    here = machine.kernel_probe()
    assert base["case_machines"][baselines.case_key(record)] == here  # update() tags what it writes
    assert {v.tier for v in baselines.check(record, base)} == {"exact", "spread"}
    base["case_machines"][baselines.case_key(record)] = "0123456789abcdef"
    assert {v.tier for v in baselines.check(record, base)} == {"spread"}
    del base["case_machines"][baselines.case_key(record)]
    assert {v.tier for v in baselines.check(record, base)} == {"exact", "spread"}  # untagged: gate everywhere
    base["untagged_entries_differ_on"] = {here: "measured: 89.67 % against 88.00 %"}
    assert {v.tier for v in baselines.check(record, base)} == {"spread"}
    assert machine.kernel_probe.__wrapped__() == here  # deterministic on one machine


def test_update_tags_each_entry_with_the_probe_of_the_machine_that_measured_it(tmp_path):
    _write_seeds(tmp_path / "r", probe="feedfacefeedface")
    baselines.update("smoke", tmp_path / "r", tmp_path / "b")
    base = baselines.load("smoke", tmp_path / "b")
    assert base["case_machines"] == {"digits-0-4-scratch-msp/s0": "feedfacefeedface"}
    assert base["spread"]["digits-0-4-scratch-msp"]["kernel_probes"] == ["feedfacefeedface"]


def test_each_kind_of_machine_gets_its_own_entry_beside_the_main_one(tmp_path):
    """A record from another kind of machine than the main entry's goes to `by_machine`; each kind is then gated
    by the entry measured on its kind, and neither entry overwrites the other."""
    first = _record_with(_evaluated_metrics())
    _write_seeds(tmp_path / "r1", probe="aaaaaaaaaaaaaaaa")
    baselines.update("smoke", tmp_path / "r1", tmp_path / "b")
    _write_seeds(tmp_path / "r2", probe="bbbbbbbbbbbbbbbb", values={
        k: {**v, "mean": v["mean"] + 3.0} if k == "accuracy" else v for k, v in _evaluated_metrics().items()})
    baselines.update("smoke", tmp_path / "r2", tmp_path / "b")
    base = baselines.load("smoke", tmp_path / "b")
    key = baselines.case_key(first)
    assert base["case_machines"] == {key: "aaaaaaaaaaaaaaaa"} and set(base["by_machine"]) == {"bbbbbbbbbbbbbbbb"}
    a, b = (baselines.entry(first, base, p)["accuracy"] for p in ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"))
    assert b - a == pytest.approx(3.0)
    assert baselines.entry(first, base, "cccccccccccccccc") is None  # a third kind: no exact entry (spread only)
    baselines.update("smoke", tmp_path / "r2", tmp_path / "b")  # re-measuring a kind replaces its own entry only
    assert baselines.load("smoke", tmp_path / "b")["cases"] == base["cases"]
