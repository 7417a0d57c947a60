"""Result records: atomic writes, round trips, and readers that report bad files instead of crashing."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from harness import machine, store
from record_factory import make_record, write_json


def test_write_then_read_round_trips(tmp_path):
    record = make_record("cifar10-finetune-msp")
    path = store.write_record(record, tmp_path)
    assert path == store.record_path(tmp_path, "cifar10-finetune-msp", 0)
    assert store.read_record(path) == record
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file must be renamed, not left behind"


def test_record_file_names_are_safe():
    path = store.record_path("r", "../../etc/<x> y", 3)
    assert path.parent.name == "r" and "/" not in path.name and " " not in path.name and path.name.endswith("-s3.json")


def test_write_refuses_incomplete_and_nan_records(tmp_path):
    with pytest.raises(ValueError, match="lacks fields"):
        store.write_record({"case_id": "x", "seed": 0}, tmp_path)
    record = make_record()
    record["report"]["metrics"]["accuracy"]["mean"] = float("nan")
    with pytest.raises(ValueError):
        store.write_record(record, tmp_path)


@pytest.mark.parametrize("mutate, reason", [
    (lambda text, rec: text[: len(text) // 2], "truncated or invalid JSON"),
    (lambda text, rec: json.dumps({**rec, "schema_version": store.SCHEMA_VERSION + 1}), "newer harness"),
    (lambda text, rec: json.dumps({k: v for k, v in rec.items() if k != "report"}), "missing fields"),
    (lambda text, rec: json.dumps([1, 2]), "not a JSON object"),
    (lambda text, rec: json.dumps({**rec, "schema_version": "1"}), "schema_version"),
    (lambda text, rec: json.dumps({**rec, "report": {"curves": {}}}), "no metrics"),
])
def test_readers_report_bad_records_and_keep_the_good_ones(tmp_path, mutate, reason):
    good = store.write_record(make_record("good"), tmp_path)
    record = make_record("bad")
    bad = tmp_path / "sub" / "bad.json"
    bad.parent.mkdir()
    bad.write_text(mutate(json.dumps(record), record))
    records, problems = store.read_records(tmp_path)
    assert [r["case_id"] for r in records] == ["good"]
    assert len(problems) == 1 and problems[0].path == bad and reason in problems[0].reason
    assert str(bad) in str(problems[0])
    assert good.exists()


def test_missing_results_directory_is_a_problem_not_a_crash(tmp_path):
    records, problems = store.read_records(tmp_path / "nowhere")
    assert records == [] and "no such results directory" in problems[0].reason


def _writer(args):
    directory, worker = args
    for i in range(25):
        store.write_record(make_record(f"case-{worker}-{i % 5}", accuracy=float(i)), directory)
        store.write_record(make_record("shared", accuracy=float(worker)), directory)


def test_concurrent_writers_lose_nothing_and_never_leave_half_files(tmp_path):
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_writer, [(tmp_path, w) for w in range(3)])
    records, problems = store.read_records(tmp_path)
    assert problems == []
    assert sorted(r["case_id"] for r in records) == sorted(
        ["shared"] + [f"case-{w}-{i}" for w in range(3) for i in range(5)])
    assert not list(tmp_path.glob(".*"))


def test_provenance_names_code_versions_device_and_time():
    prov = store.provenance("cpu")
    assert set(prov) == {"git_commit", "git_dirty", "harness_version", "python", "torch", "cuda", "device",
                         "hostname", "platform", "time_utc", "kernel_probe"}
    assert prov["device"].startswith("cpu") and prov["time_utc"].endswith("Z")
    assert prov["kernel_probe"] == machine.kernel_probe() and store.provenance("cuda")["kernel_probe"] is None


def test_factory_record_is_valid_for_the_reader(tmp_path):
    path = write_json(tmp_path / "r.json", make_record())
    assert store.read_record(path)["case_id"] == "digits-finetune-msp"


# ---------------------------------------------------------------- validation of what a record holds

def _problem_of(tmp_path, record: dict | None = None, text: str | None = None) -> str | None:
    """The reason read_records gives for one bad record beside a good one, or None when it is accepted."""
    store.write_record(make_record("good"), tmp_path)
    path = tmp_path / "sub" / "r.json"
    if text is None:
        write_json(path, record)  # json.dumps writes NaN / Infinity literals, as a careless writer would
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    records, problems = store.read_records(tmp_path)
    assert "good" in [r["case_id"] for r in records]
    assert len(problems) <= 1 and all(p.path == path for p in problems)
    return problems[0].reason if problems else None


def _with_metric(key: str, **stat) -> dict:
    record = make_record("bad")
    record["report"]["metrics"][key] = {"mean": 50.0, "std": 0.0, "n": 1, **stat}
    return record


@pytest.mark.parametrize("value, shown", [
    (float("nan"), "nan"), (float("inf"), "inf"), (float("-inf"), "-inf"), ("91.0", "'91.0'"), (-1.0, "-1.0"),
    (1e300, "1e+300"), (100.5, "100.5"), (True, "True"), (None, "None"), ([91.0], "a list"),
    pytest.param(10 ** 400, "1" + "0" * 36 + "...", id="int-too-large-for-a-float"),
])
def test_a_metric_mean_that_is_not_a_percentage_makes_the_record_invalid(tmp_path, value, shown):
    reason = _problem_of(tmp_path, _with_metric("ood/mean/auroc", mean=value))
    assert reason == f'report.metrics["ood/mean/auroc"].mean: expected a finite number in [0, 100], got {shown}'


@pytest.mark.parametrize("key, value, valid", [
    ("accuracy", 100.0, True), ("accuracy", 0, True), ("accuracy", 100.0 + 1e-12, True),  # float rounding
    ("ood/svhn/fpr95@id", 101.0, False), ("calib/ece", -0.01, False), ("error_detection/auroc", 100.01, False),
    ("calib/nll", 250.0, True), ("calib/nll", 1e300, True), ("calib/nll", -0.1, False),  # nats, not percent
    ("calib/nll", float("inf"), False),
    ("calib/brier", 1.9, True), ("calib/brier", -1e-17, True), ("calib/brier", 2.5, False), ("calib/brier", 50.0, False),
])
def test_metric_ranges_depend_on_the_key(tmp_path, key, value, valid):
    reason = _problem_of(tmp_path, _with_metric(key, mean=value))
    assert (reason is None) == valid, reason
    if not valid:
        assert reason.startswith(f'report.metrics["{key}"].mean: expected a finite number ')


@pytest.mark.parametrize("stat, reason", [
    ({"std": -0.5}, '.std: expected a finite number in [0, 100], got -0.5'),
    ({"std": float("nan")}, '.std: expected a finite number in [0, 100], got nan'),
    ({"std": None}, '.std: expected a finite number in [0, 100], got None'),  # evaluate.Report always writes one
    ({"std": 1e300}, '.std: expected a finite number in [0, 100], got 1e+300'),
    ({"n": 1.5}, '.n: expected an integer >= 0, got 1.5'),
    ({"n": -1}, '.n: expected an integer >= 0, got -1'),
    ({"n": True}, '.n: expected an integer >= 0, got True'),
])
def test_std_and_n_are_checked(tmp_path, stat, reason):
    assert _problem_of(tmp_path, _with_metric("calib/rms", **stat)) == f'report.metrics["calib/rms"]{reason}'


def test_a_metric_without_n_or_with_std_zero_is_valid_one_that_is_not_an_object_is_not(tmp_path):
    record = make_record("fine")
    del record["report"]["metrics"]["accuracy"]["n"]
    record["report"]["metrics"]["calib/brier"]["std"] = 0
    assert _problem_of(tmp_path, record) is None
    record["report"]["metrics"]["accuracy"] = 95.0
    assert _problem_of(tmp_path, record) == (
        'report.metrics["accuracy"]: expected an object {mean, std, n}, got 95.0')


def _set(path: str, value):
    def mutate(record: dict) -> dict:
        *parents, last = path.split(".")
        target = record
        for name in parents:
            target = target[name]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
        return record
    return mutate


@pytest.mark.parametrize("mutate, reason", [
    (_set("case_id", ""), "case_id: expected a non-empty string, got ''"),
    (_set("case_id", 7), "case_id: expected a non-empty string, got 7"),
    (_set("profile", None), "profile: expected a non-empty string, got None"),
    (_set("dataset", ["digits"]), "dataset: expected a non-empty string, got a list"),
    (_set("model", " "), "model: expected a non-empty string, got ' '"),
    (_set("recipe", "finetune"), "recipe: expected an object {name, ...}, got 'finetune'"),
    (_set("score.name", ""), "score.name: expected a non-empty string, got ''"),
    (_set("seed", "0"), "seed: expected an integer, got '0'"),
    (_set("seed", True), "seed: expected an integer, got True"),
    (_set("seed", 1.5), "seed: expected an integer, got 1.5"),
    (_set("timings", [1.0]), "timings: expected an object, got a list"),
    (_set("timings.train_s", "slow"), "timings.train_s: expected a finite number of seconds >= 0, got 'slow'"),
    (_set("timings.eval_s", float("nan")), "timings.eval_s: expected a finite number of seconds >= 0, got nan"),
    (_set("timings.eval_s", -1), "timings.eval_s: expected a finite number of seconds >= 0, got -1"),
    (_set("verdicts", []), "verdicts: expected an object, got a list"),
    (_set("verdicts.bands", None), "verdicts.bands: expected a list, got None"),
    (_set("verdicts.baseline", "ok"), "verdicts.baseline: expected a list or null, got 'ok'"),
    (_set("verdicts.baseline", [1]), "verdicts.baseline[0]: expected an object, got 1"),
    (_set("verdicts.not_gated", 3), "verdicts.not_gated: expected a string or null, got 3"),
    (lambda r: r["verdicts"]["bands"][0].update(measured=float("inf")) or r,
     "verdicts.bands[0].measured: expected a finite number or null, got inf"),
    (lambda r: r["verdicts"]["baseline"][0].update(passed="yes") or r,
     "verdicts.baseline[0].passed: expected true, false or null, got 'yes'"),
    (_set("provenance", "ci"), "provenance: expected an object, got 'ci'"),
    (_set("provenance.time_utc", KeyError), "provenance.time_utc: expected a UTC time like 2026-01-31T12:00:00Z, "
                                           "got None"),
    (_set("provenance.time_utc", "zzzz"), "provenance.time_utc: expected a UTC time like 2026-01-31T12:00:00Z, "
                                         "got 'zzzz'"),
    (_set("provenance.time_utc", "2026-13-45T99:00:00Z"), "provenance.time_utc: not a valid time, "
                                                         "got '2026-13-45T99:00:00Z'"),
    (_set("schema_version", True), "no integer schema_version"),
    (_set("schema_version", 0), "unknown schema_version 0"),
])
def test_required_fields_are_type_checked(tmp_path, mutate, reason):
    assert _problem_of(tmp_path, mutate(make_record("bad"))) == reason


def test_optional_verdict_fields_may_be_null_or_absent(tmp_path):
    record = make_record("fine")
    record["verdicts"] = {"bands": [], "baseline": None, "not_gated": "seed 1 is not a baseline seed"}
    assert _problem_of(tmp_path, record) is None
    record["verdicts"] = {}
    assert _problem_of(tmp_path, record) is None


def test_nan_or_infinity_anywhere_is_caught_and_named(tmp_path):
    record = make_record("bad")
    record["report"]["curves"]["roc"]["blobs"]["fpr"][2] = float("nan")
    assert _problem_of(tmp_path, record) == (
        "report.curves.roc.blobs.fpr[2]: NaN or infinity, which a record cannot hold (JSON has no such numbers)")
    text = json.dumps(make_record("bad"), indent=1).replace('"n_id": 500', '"n_id": 1e400')
    assert _problem_of(tmp_path, text=text).startswith("report.n_id: NaN or infinity")
    text = json.dumps(make_record("bad")).replace('"mean": 95.0', '"mean": NaN', 1)
    assert _problem_of(tmp_path, text=text) == (
        'report.metrics["accuracy"].mean: expected a finite number in [0, 100], got nan')


def test_json_nested_too_deep_is_invalid_not_a_crash(tmp_path):
    assert _problem_of(tmp_path, text="[" * 100_000 + "]" * 100_000).startswith("truncated or invalid JSON")


def test_a_real_report_is_valid_and_the_ranges_match_the_protocol(tmp_path):
    import numpy as np

    from harness import evaluate, scores
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 400)
    report = evaluate.evaluate_arrays(rng.normal(size=(400, 5)) * 4 + 3 * np.eye(5)[labels], labels,
                                      {"noise": rng.normal(size=(300, 5))}, scores.get("msp"), num_to_avg=3)
    record = make_record("real")
    record["report"] = report.to_json()
    assert store.read_record(store.write_record(record, tmp_path)) == record
    not_metrics_of_one_output = {"calib/temperature", "distortion/id", "distortion/shift"}
    assert set(store.METRIC_RANGES) - not_metrics_of_one_output == evaluate._NOT_PERCENT
    assert store.metric_range("distortion/shift") == (0.0, None) and store.metric_range("shift/fog/1/nll") == (0, None)
    assert all(store.metric_range(k) == store.PERCENT_RANGE for k in report.metrics if k not in evaluate._NOT_PERCENT)


@pytest.mark.parametrize("key, expected", [
    ("calib@T/nll", (0.0, None)), ("calib@M1/nll", (0.0, None)), ("calib@T/brier", (0.0, 2.0)),
    ("calib@T/temperature", (0.0, None)), ("calib@T/ece", (0.0, 100.0)), ("accuracy@M1", (0.0, 100.0)),
    ("ood/calib@T/nll", (0.0, 100.0)),  # only a top-level view is a calibration view
])
def test_calibration_views_keep_the_unit_of_their_metric(key, expected):
    assert store.metric_range(key) == expected
