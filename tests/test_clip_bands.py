"""CLIP's bands and claims (docs/clip.md): the ImageNet entry's class-name source and bands, and the wortsman2022
direction claims decided on synthetic records of the clip profile (benchmarks/test_clip_robustness.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from record_factory import make_record

from harness import band_files, bands, model_entries, profiles
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = band_files.load(ROOT / "benchmarks" / "bands" / "wortsman2022.toml").claims


@pytest.fixture(scope="module")
def module(request):
    """benchmarks/test_clip_robustness.py, loaded under its own name (it imports the benchmarks' casekit)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    request.addfinalizer(lambda: sys.path.remove(str(ROOT / "benchmarks")))
    spec = importlib.util.spec_from_file_location("clip_robustness_module", ROOT / "benchmarks" / "test_clip_robustness.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


# ---------------------------------------------------------------- the ImageNet entry

def test_the_imagenet_entry_bands_what_a_clip_record_holds():
    entry = model_entries.get("clip-vit-b-32-imagenet")
    plan = profiles.get("clip").plan("imagenet")
    keys = {"accuracy"} | {f"shift/{s}/accuracy" for s in plan.shift.natural}
    assert {b.metric for b in entry.bands} == keys - {"shift/objectnet/accuracy"}  # a 113-name head upstream
    for band in entry.bands:
        assert band.profile == "clip" and band.score == "msp" and bands.is_metric_key(band.metric)
        # the value is the cited column's fraction, in percent
        assert band.value == pytest.approx(100 * float(band.source.rsplit(": ", 1)[1]))
        assert "open_clip@89fb801f1e6087880e951fc8354b8a2077b79c6d" in band.source and "ViT-B-32,openai" in band.source


def test_the_imagenet_head_takes_open_clips_names_and_the_80_templates():
    open_clip = pytest.importorskip("open_clip")
    from harness.clip import entries, zero_shot

    entry = model_entries.get("clip-vit-b-32-imagenet")
    assert entries.classnames(entry, "imagenet") == tuple(open_clip.IMAGENET_CLASSNAMES)
    _, prompts = zero_shot.templates(entry.clip["templates"], "imagenet")
    assert list(prompts) == [t("{}") for t in open_clip.zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES]


@pytest.mark.parametrize("clip_table, message", [
    ('classnames_from = "open_clip:nope"\n', "no such class-name source 'open_clip:nope'"),
    ('classnames_from = "open_clip:imagenet"\nclassnames = ["a"]\n', "not both"),
])
def test_a_bad_class_name_source_is_one_line(tmp_path, clip_table, message):
    text = (ROOT / "benchmarks" / "models" / "clip-vit-b-32-imagenet.toml").read_text()
    text = text.replace('classnames_from = "open_clip:imagenet"\n', clip_table)
    (tmp_path / "e.toml").write_text(text)
    with pytest.raises(HarnessError, match=message) as info:
        model_entries.load(tmp_path / "e.toml")
    assert "\n" not in str(info.value)


def test_a_named_list_of_another_length_than_the_head_is_refused():
    pytest.importorskip("open_clip")
    from harness.clip import entries

    entry = model_entries.get("clip-vit-b-32-imagenet")
    entry.num_classes = 10
    with pytest.raises(HarnessError, match="1000 class names for num_classes = 10"):
        entries.classnames(entry, "imagenet")


# ---------------------------------------------------------------- the claims

def _record(recipe: str, accuracy: float, shifted: float, alpha: float | None = None, seed: int = 0) -> dict:
    record = make_record(f"cifar10-{recipe}-msp", profile="clip", dataset="cifar10", recipe=recipe,
                         accuracy=accuracy, seed=seed)
    record["group"] = "clip"
    record["recipe"]["upstream"] = {"recipe": "clip_zero_shot", "dataset": "cifar10", "entry": "clip-vit-b-32"}
    if alpha is not None:
        record["recipe"]["settings"]["alpha"] = alpha
    for key in ("shift/cifar10.1/accuracy", "shift/natural/accuracy"):  # the row's one natural-shift set
        record["report"]["metrics"][key] = {"mean": shifted, "std": 0.0, "n": 1}
    return record


def _row(zero_shot=(89.0, 86.5), finetune=(97.0, 91.0), curve=None) -> list[dict]:
    """A row shaped as the papers report it: zero-shot robust, fine-tuned accurate, WiSE-FT above both inside (the
    curve's ID accuracies are placeholders: the line is fitted over the other four models)."""
    curve = curve or {0.0: zero_shot[1], 0.3: 92.0, 0.5: 93.5, 0.7: 92.5, 1.0: finetune[1]}
    return [_record("clip_zero_shot", *zero_shot), _record("clip_linear_probe", 94.0, 86.0),
            _record("clip_finetune", *finetune), _record("clip_lp_ft", 97.2, 91.5),
            *[_record("clip_wise_ft", 89.0 + 8 * a, s, alpha=a) for a, s in curve.items()]]


def _verdicts(module, records) -> dict[tuple[str, str], bands.ClaimVerdict]:
    (only,) = module.claim_verdicts(records, CLAIMS, "cifar10").values()
    return {(v.recipe, v.baseline): v for v in only}


def test_the_shipped_claims_gate_the_clip_profile_on_cifar10():
    assert {(c.recipe, c.baseline, c.metric) for c in CLAIMS} == {
        ("clip_zero_shot", "clip_finetune", "shift/natural/effective_robustness"),
        ("clip_wise_ft", "clip_finetune", "shift/natural/accuracy"),
        ("clip_wise_ft", "clip_zero_shot", "shift/natural/accuracy")}
    assert all(c.profiles == ("clip",) and c.dataset == "cifar10" and c.margin < c.paper_gap for c in CLAIMS)


def test_a_row_as_the_papers_report_passes_every_claim(module):
    verdicts = _verdicts(module, _row())
    assert all(v.passed for v in verdicts.values()), [v.message() for v in verdicts.values()]
    # the best interior alpha (0.5: 93.5), not an endpoint
    assert verdicts[("clip_wise_ft", "clip_finetune")].gap == pytest.approx(93.5 - 91.0)
    assert verdicts[("clip_wise_ft", "clip_zero_shot")].gap == pytest.approx(93.5 - 86.5)


def test_zero_shot_below_the_line_fails_the_effective_robustness_claim(module):
    verdict = _verdicts(module, _row(zero_shot=(89.0, 78.0)))[("clip_zero_shot", "clip_finetune")]
    assert verdict.passed is False and verdict.gap < 0


def test_a_curve_that_never_beats_an_endpoint_fails_the_wise_ft_claims(module):
    below_finetune = _verdicts(module, _row(curve={0.0: 86.5, 0.5: 90.0, 1.0: 91.0}))
    assert below_finetune[("clip_wise_ft", "clip_finetune")].passed is False
    assert below_finetune[("clip_wise_ft", "clip_zero_shot")].passed is True
    # an interior alpha within the margin of the zero-shot end fails the other claim
    near_zero_shot = _verdicts(module, _row(finetune=(97.0, 80.0), curve={0.0: 86.5, 0.5: 85.0, 1.0: 80.0}))
    assert near_zero_shot[("clip_wise_ft", "clip_zero_shot")].passed is False
    assert near_zero_shot[("clip_wise_ft", "clip_finetune")].passed is True


def test_without_the_curve_or_a_line_the_claims_are_not_measured(module):
    no_curve = [r for r in _row() if r["recipe"]["name"] != "clip_wise_ft"]
    verdicts = _verdicts(module, no_curve)
    assert verdicts[("clip_wise_ft", "clip_finetune")].gap is None
    assert verdicts[("clip_zero_shot", "clip_finetune")].passed is True
    one_accuracy = [_record("clip_zero_shot", 90.0, 84.0), _record("clip_finetune", 90.0, 80.0)]
    assert _verdicts(module, one_accuracy)[("clip_zero_shot", "clip_finetune")].gap is None
