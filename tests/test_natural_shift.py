"""Natural-shift sets in a profile (`shift = {sets = [...]}`): the plan, loading a set with its projection onto
ImageNet-1k, the projected logits, the record keys, and the effective robustness of the leaderboard's shift view."""
from __future__ import annotations

import re

import numpy as np
import pytest
from record_factory import make_record, write_json
from test_leaderboard_views import band_dir  # noqa: F401 (a fixture)

from harness import bands, shift
from harness.data import imagenet_family
from harness.data.importer import import_dataset
from harness.errors import HarnessError
from harness.shift import ShiftPlan, parse_plan
from harness.site import leaderboard
from test_data_imagenet import write_images


def _fail(message):
    raise HarnessError(message)


def test_a_plan_of_natural_sets_only_has_no_cells():
    plan = parse_plan({"sets": ["imagenetv2", "imagenet-r"], "images": 100}, _fail)
    assert plan == ShiftPlan(None, (), (), 100, ("imagenetv2", "imagenet-r")) and plan.cells == []
    assert plan.to_json()["generated"] is False and plan.to_json()["natural"] == ["imagenetv2", "imagenet-r"]
    both = parse_plan({"set": "cifar10-c", "severities": [1], "sets": ["cifar10.1"]}, _fail)
    assert len(both.cells) == 15 and both.natural == ("cifar10.1",)


@pytest.mark.parametrize("raw, expected", [
    ({"sets": "imagenetv2"}, "sets must be a list of distinct"),
    ({"sets": ["a", "a"]}, "sets must be a list of distinct"),
    ({"sets": []}, "and/or natural-shift sets"),
    ({"sets": ["imagenetv2"], "severities": [1]}, "severities applies to corrupted sets"),
])
def test_a_bad_natural_plan_is_one_line(raw, expected):
    with pytest.raises(HarnessError, match=expected) as info:
        parse_plan(raw, _fail)
    assert "\n" not in str(info.value)


def test_projection_takes_the_largest_logit_of_each_sets_classes():
    logits = np.array([[0.0, 5.0, 1.0, 2.0], [3.0, 0.0, 4.0, -1.0]])
    assert shift.project(logits, None) is logits
    assert shift.project(logits, ((2,), (0, 3), (1,))).tolist() == [[1.0, 2.0, 5.0], [4.0, 3.0, 0.0]]


def test_natural_metrics_per_set_and_their_mean():
    labels = np.array([0, 1, 0, 1])
    good = np.array([[9.0, 0.0], [0.0, 9.0], [9.0, 0.0], [0.0, 9.0]])
    half = np.array([[9.0, 0.0], [0.0, 9.0], [0.0, 9.0], [9.0, 0.0]])
    out = shift.natural_metrics({"a": (good, labels), "b": (half, labels)})
    assert out["shift/a/accuracy"]["mean"] == 100.0 and out["shift/b/accuracy"]["mean"] == 50.0
    assert out["shift/natural/accuracy"] == {"mean": 75.0, "std": 25.0, "n": 2}
    assert out["shift/b/nll"]["mean"] == pytest.approx(np.log1p(np.exp(-9.0)) / 2 + np.log1p(np.exp(9.0)) / 2)
    assert all(bands.is_metric_key(k) for k in out)


def test_a_subset_set_loads_with_its_projection_and_refuses_another_row(tmp_path):
    subset = imagenet_family.subset_wnids("imagenet-a")
    write_images(tmp_path / "a" / "imagenet-a" / subset[3], 2, size=(224, 224))
    import_dataset("imagenet-a", tmp_path / "a", data_root=tmp_path / "c")
    plan = ShiftPlan(None, (), (), None, ("imagenet-a",))
    loaded = shift.load_natural(plan, "imagenet", 0, tmp_path / "c")["imagenet-a"]
    assert list(loaded.images.labels) == [3, 3] and len(loaded.projection) == 200
    assert imagenet_family.imagenet_wnids()[loaded.projection[3][0]] == subset[3]
    with pytest.raises(HarnessError, match="labelled in classes of imagenet, not of imagenet-r"):
        shift.load_natural(plan, "imagenet-r", 0, tmp_path / "c")
    with pytest.raises(HarnessError, match="imagenetv2.*not in the cache"):
        shift.load_natural(ShiftPlan(None, (), (), None, ("imagenetv2",)), "imagenet", 0, tmp_path / "c")


def _natural_record(case_id, recipe, accuracy, shifted):
    record = make_record(case_id, recipe=recipe, dataset="imagenet", accuracy=accuracy)
    metrics = record["report"]["metrics"]
    for name, value in shifted.items():
        metrics[f"shift/{name}/accuracy"] = {"mean": value, "std": 0.0, "n": 1}
    metrics["shift/natural/accuracy"] = {"mean": sum(shifted.values()) / len(shifted), "std": 0.0, "n": 1}
    return record


def _logit(p):
    p = np.asarray(p) / 100
    return np.log(p / (1 - p))


def test_the_shift_view_shows_each_cases_effective_robustness(tmp_path, band_dir):
    cases = {"clip_zero_shot": (60.0, {"imagenetv2": 55.0, "imagenet-r": 70.0}),
             "clip_finetune": (80.0, {"imagenetv2": 68.0, "imagenet-r": 50.0}),
             "clip_linear_probe": (70.0, {"imagenetv2": 60.0, "imagenet-r": 58.0})}
    for recipe, (acc, shifted) in cases.items():
        case_id = f"imagenet-{recipe}-on-clip-msp"
        write_json(tmp_path / "r" / f"{case_id}.json", _natural_record(case_id, recipe, acc, shifted))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    table = (tmp_path / "site" / "shift.html").read_text().split('<table class="board robustness">')[1]
    table = table.split("</table>")[0]
    x = _logit([acc for acc, _ in cases.values()])
    for recipe, (acc, shifted) in cases.items():
        row = re.search(rf">{recipe}-on-clip</a></th>(.*?)</tr>", table).group(1)
        cells = re.findall(r'<td class="num">([^<]+)</td>', row)
        ers = []
        for name, cell in zip(("imagenet-r", "imagenetv2"), cells):  # sets in name order
            slope, intercept = np.polyfit(x, _logit([s[name] for _, s in cases.values()]), 1)
            er = shifted[name] - 100 / (1 + np.exp(-(slope * _logit(acc) + intercept)))
            ers.append(er)
            assert cell == f"{shifted[name]:.2f} / {er:+.2f}"
        assert cells[2] == f"{np.mean(ers):+.2f}"


def test_an_id_set_without_a_train_split_has_an_empty_fit_set(tmp_path):
    from dataclasses import replace

    from harness import profiles
    from harness.eval_inputs import build_inputs

    write_images(tmp_path / "val" / imagenet_family.imagenet_wnids()[2], 2, size=(224, 224))
    import_dataset("imagenet", tmp_path / "val", data_root=tmp_path / "c")
    smoke = profiles.get("smoke")
    profile = replace(smoke, datasets=(replace(smoke.datasets[0], id="imagenet", ood=("gaussian",)),))
    inputs = build_inputs(profile, "imagenet", tmp_path / "c", 1)
    assert len(inputs.test_y) == 2 and len(inputs.fit_y) == 0 and inputs.fit_x.shape[0] == 0
