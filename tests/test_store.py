"""Result records: atomic writes, round trips, and readers that report bad files instead of crashing."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from harness import store
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
                         "hostname", "platform", "time_utc"}
    assert prov["device"].startswith("cpu") and prov["time_utc"].endswith("Z")


def test_factory_record_is_valid_for_the_reader(tmp_path):
    path = write_json(tmp_path / "r.json", make_record())
    assert store.read_record(path)["case_id"] == "digits-finetune-msp"
