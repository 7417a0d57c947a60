"""The shift evaluation (harness.shift): the profile field, the cells, the metrics' keys and values, distortion."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness import checkpoints, profiles, recipes, shift
from harness.data import shifted
from harness.errors import HarnessError
from harness.runner import RunContext, Session
from harness.shift import ShiftPlan, parse_plan
from harness.train import balanced_indices


def _fail(message):
    raise HarnessError(message)


@pytest.mark.parametrize("raw, expected", [
    ({"set": "cifar10-c", "generate": True}, "not both"),
    ({"corruptions": ["fog"]}, "not both, and/or natural-shift sets"),
    ({"set": "cifar10-c", "corruptions": ["fogg"]}, "unknown corruption 'fogg'"),
    ({"set": "cifar10-c", "severities": [0, 1]}, "severity 0 is outside 1..5"),
    ({"set": "cifar10-c", "severities": [6]}, "severity 6 is outside 1..5"),
    ({"set": "cifar10-c", "severities": [1, 1]}, "distinct integers"),
    ({"set": "cifar10-c", "corruptions": []}, "non-empty list"),
    ({"set": "cifar10-c", "images": 0}, "images must be an integer >= 1"),
    ({"set": "cifar10-c", "cells": 3}, "unknown field 'cells'"),
    ({"set": ""}, "set must be a dataset name"),
    ("cifar10-c", "shift must be a table"),
])
def test_a_bad_shift_table_is_one_line_naming_the_field(raw, expected):
    with pytest.raises(HarnessError, match=expected) as info:
        parse_plan(raw, _fail)
    assert "\n" not in str(info.value)


def test_a_shift_table_defaults_to_every_corruption_and_severity_and_all_images():
    plan = parse_plan({"set": "cifar10-c"}, _fail)
    assert plan == ShiftPlan("cifar10-c", shift.corruptions.NAMES, (1, 2, 3, 4, 5), None)
    assert len(plan.cells) == 75
    assert parse_plan({"generate": True, "severities": [5, 1]}, _fail).severities == (1, 5)


def test_the_profiles_name_their_shifted_sets():
    assert profiles.get("smoke").plan("digits-0-4").shift.set is None  # generated: no import on a fresh machine
    mini = profiles.get("mini").plan("cifar10").shift
    assert mini.set == "cifar10-c" and mini.images == 500 and len(mini.cells) == 12
    paper = profiles.get("paper")
    assert len(paper.plan("cifar10").shift.cells) == 75 and paper.plan("cifar10").shift.images is None
    assert paper.plan("tinyimagenet").shift is None


def test_a_profile_file_with_a_bad_shift_table_names_its_line(tmp_path):
    text = profiles.PROFILES_FILE.read_text().split("[mini]")[0].replace(
        "severities = [1, 5] }", "severities = [1, 7] }")
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(HarnessError, match=r"p\.toml:\d+: profile 'smoke': shift: severity 7 is outside 1\.\.5"):
        profiles.load_file(path, lambda n: True)


def _logits(labels, right, classes=5):
    """Confident logits, correct on the first `right` rows."""
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), (labels + (np.arange(len(labels)) >= right)) % classes] = 10.0
    return out


def test_metrics_per_cell_per_severity_and_the_mean_over_cells():
    labels = np.arange(200) % 5
    outputs = {("fog", 1): (_logits(labels, 200), labels), ("fog", 5): (_logits(labels, 100), labels),
               ("contrast", 1): (_logits(labels, 150), labels), ("contrast", 5): (_logits(labels, 50), labels)}
    m = shift.metrics(outputs)
    assert m["shift/fog/1/accuracy"] == {"mean": 100.0, "std": 0.0, "n": 1}
    assert m["shift/contrast/5/accuracy"]["mean"] == 25.0
    assert m["shift/severity1/accuracy"] == {"mean": 87.5, "std": 12.5, "n": 2}
    assert m["shift/severity5/accuracy"]["mean"] == 37.5
    assert m["shift/mean/accuracy"] == {"mean": 62.5, "std": pytest.approx(np.std([100, 50, 75, 25])), "n": 4}
    # one confidence c everywhere (one ECE bin): ECE = c - accuracy; NLL = -log c right, log(e^10 + 4) wrong
    conf = np.exp(10) / (np.exp(10) + 4)
    assert m["shift/contrast/5/ece"]["mean"] == pytest.approx(100 * (conf - 0.25))
    assert m["shift/mean/nll"]["mean"] == pytest.approx(0.625 * -np.log(conf) + 0.375 * np.log(np.exp(10) + 4))
    assert m["shift/fog/5/rms"]["mean"] > 0
    assert {k.split("/")[-1] for k in m} == {"accuracy", "ece", "rms", "nll"}


def test_a_cell_too_small_for_rms_leaves_rms_out_and_no_cells_give_no_keys():
    labels = np.arange(50) % 5
    m = shift.metrics({("fog", 3): (_logits(labels, 25), labels)})
    assert "shift/fog/3/rms" not in m and "shift/mean/rms" not in m and "shift/mean/ece" in m
    assert shift.metrics({}) == {}


def test_distortion_is_relative_squared_feature_change():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(40, 8))
    assert shift.distortion(f, f) == 0.0
    assert shift.distortion(3 * f, f) == pytest.approx(4.0)
    assert shift.distortion(f + 1, f) == pytest.approx(8 / np.mean(np.sum(f ** 2, axis=1)))
    with pytest.raises(ValueError, match="one shape"):
        shift.distortion(f[:5], f)
    with pytest.raises(ValueError, match="all zero"):
        shift.distortion(f, np.zeros_like(f))


def test_generated_cells_are_seeded_the_same_test_images_in_every_cell():
    plan = ShiftPlan(None, ("gaussian_noise", "contrast"), (1, 5), 40)
    a = shift.load_cells(plan, "digits-0-4", 0)
    b = shift.load_cells(plan, "digits-0-4", 0)
    assert list(a) == plan.cells
    for cell in plan.cells:
        assert np.array_equal(a[cell].images, b[cell].images) and len(a[cell]) == 40
        assert np.array_equal(a[cell].labels, a[plan.cells[0]].labels)
    assert np.bincount(a[plan.cells[0]].labels).tolist() == [8] * 5  # class-balanced
    assert not np.array_equal(a[("contrast", 1)].images, a[("contrast", 5)].images)


def test_cells_of_a_corrupted_dataset_in_the_cache(tmp_path):
    shifted.generate("digits-0-4", ["fog"], [2, 4], data_root=tmp_path, images=60)
    plan = ShiftPlan("digits-0-4-c", ("fog",), (4,), 30)
    cells = shift.load_cells(plan, "digits-0-4", 0, tmp_path)
    full = shifted.load_cell("digits-0-4-c", "fog", 4, tmp_path)
    rows = balanced_indices(full.labels, 30, 0)
    assert len(full) == 60 and len(rows) == 30
    assert np.array_equal(cells[("fog", 4)].images, full.images[rows])
    assert np.array_equal(cells[("fog", 4)].labels, full.labels[rows])
    with pytest.raises(HarnessError, match="--corruptions fog --severities 5"):
        shift.load_cells(replace(plan, severities=(5,)), "digits-0-4", 0, tmp_path)
    with pytest.raises(HarnessError, match="digits-0-4-c has 32x32 images of 5 classes; digits has 32x32 images "
                                           "of 10 classes"):
        shift.load_cells(plan, "digits", 0, tmp_path)


def test_a_session_records_a_missing_shifted_set_with_the_command(tmp_path):
    mini = profiles.get("mini")
    profile = replace(mini, datasets=(replace(mini.plan("cifar10"), id="digits-0-4"),))
    inputs = Session(RunContext(profile, "cpu", tmp_path / "r", data_root=tmp_path)).shift_inputs("digits-0-4")
    assert inputs.cells == {} and "python -m harness data corrupt" in inputs.missing
    assert inputs.plan.images == 500  # test_limit 2000 does not cut it further


def test_test_limit_caps_the_images_per_cell(tmp_path):
    smoke = profiles.get("smoke")
    inputs = Session(RunContext(replace(smoke, test_limit=25), "cpu", Path(tmp_path))).shift_inputs("digits-0-4")
    assert inputs.missing is None and inputs.plan.images == 25
    assert all(len(cell) == 25 for cell in inputs.cells.values()) and len(inputs.cells) == 8


@pytest.mark.slow  # trains three one-epoch models
def test_records_hold_shift_keys_and_adapted_models_their_distortion(tmp_path):
    from harness.runner import Case

    smoke = profiles.get("smoke")
    plan = replace(smoke.plan("digits-0-4"), shift=ShiftPlan(None, ("fog", "contrast"), (1, 5), 200))
    tiny = replace(smoke, datasets=(plan,), train_limit=100, test_limit=200,
                   epochs={"pretrain": 1, "finetune": 1, "linear_probe": 1, "scratch": 1})
    session = Session(RunContext(tiny, "cpu", tmp_path / "r", cache_dir=tmp_path / "c"))
    records = {r: session.run(Case("t", "digits-0-4", r), seed=0) for r in ("finetune", "linear_probe", "scratch")}
    metrics = {r: rec["report"]["metrics"] for r, rec in records.items()}
    cell_keys = {f"shift/{c}/{s}/{m}" for c in ("fog", "contrast") for s in (1, 5) for m in shift.METRICS}
    summary_keys = {f"shift/{w}/{m}" for w in ("severity1", "severity5", "mean") for m in shift.METRICS}
    for m in metrics.values():
        assert cell_keys | summary_keys <= set(m)
    # distortion is measured against the very checkpoint the recipe started from
    started = checkpoints.plan(recipes.get("finetune"), "digits-0-4", tiny, 0, upstream_dataset="digits-5-9")
    assert records["finetune"]["shift"]["distortion_from"] == {"recipe": "pretrain", "key": started.upstreams[0].key}
    assert metrics["finetune"]["distortion/id"]["mean"] > 0 and metrics["finetune"]["distortion/shift"]["mean"] > 0
    # a linear probe keeps the pretrained body (BatchNorm statistics too): its features are the upstream's, exactly
    assert metrics["linear_probe"]["distortion/id"]["mean"] == metrics["linear_probe"]["distortion/shift"]["mean"] == 0
    assert not any(k.startswith("distortion/") for k in metrics["scratch"])
    assert records["scratch"]["shift"]["plan"]["images_per_cell"] == 200 and records["scratch"]["shift"]["missing"] is None
