import math
import re
from pathlib import Path

import pytest

from harness import band_files, bands, spread
from harness.errors import HarnessError

SHIPPED = Path(__file__).resolve().parents[1] / "benchmarks" / "bands" / "hendrycks2019.toml"

BAND = """\
[[band]]
paper = "hendrycks2019"
dataset = "cifar10"
recipe = "scratch"
score = "msp"
metric = "ood/mean/auroc"
value = 91.5
tolerance = 2.0
source = "Hendrycks et al. 2019, Table A1 [P]"
rationale = "seed spread"
"""
CLAIM = """\
[[claim]]
paper = "hendrycks2019"
dataset = "cifar10"
score = "msp"
metric = "ood/mean/auroc"
recipe = "finetune"
baseline = "scratch"
direction = "higher"
margin = 1.0
paper_gap = 3.0
source = "Hendrycks et al. 2019, Table A1 [P]"
rationale = "a third of the gap"
proxy_unless_upstream = "imagenet32"
"""


def stat(mean):
    return {"mean": mean, "std": 0.0, "n": 1}


def write(tmp_path, text, name="b.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path, **kwargs):
    with pytest.raises(HarnessError) as info:
        band_files.load(path, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------- the shipped file

@pytest.fixture(scope="module")
def shipped():
    return band_files.load(SHIPPED, datasets={"cifar10", "cifar100", "tinyimagenet"},
                      recipes={"scratch", "finetune"}, scores={"msp"})


def test_shipped_counts_per_table(shipped):
    per_table = {}
    for band in shipped.bands:
        table = band.source.split("Table ")[1][:2]
        per_table[table] = per_table.get(table, 0) + 1
    # A1 3 datasets x 2 recipes x 2; A2 2 x 2 x 2; A3 (6 + 6 + 5 sets) x 2 x 2;
    # A4 (ID + 6 sets + Mean) x 3 metrics x 2 recipes x 2 datasets; A5 3 x 2.
    assert per_table == {"A1": 12, "A2": 8, "A3": 68, "A4": 96, "A5": 6}
    assert len(shipped.claims) == 5


def test_shipped_entries_are_well_formed(shipped):
    for band in shipped.bands:
        assert bands.is_metric_key(band.metric), band
        assert band.paper == "hendrycks2019" and band.score == "msp"
        assert band.low <= band.value <= band.high and 0 <= band.low and band.high <= 100
        assert any(tag in band.source for tag in ("[P]", "[R]", "[L]")) and "[U]" not in band.source
        assert band.rationale
        paper_upstream = "imagenet64" if band.dataset == "tinyimagenet" else "imagenet32"
        assert band.proxy_unless_upstream == (paper_upstream if band.recipe == "finetune" else None)


def test_shipped_values_spot_checked(shipped):
    by_key = {(b.dataset, b.recipe, b.metric): b for b in shipped.bands}
    assert by_key["cifar10", "scratch", "ood/mean/auroc"].value == 91.5
    assert by_key["cifar100", "finetune", "ood/mean/aupr@ood"].value == 52.7
    assert by_key["cifar100", "scratch", "calib/mad"].value == 10.3
    assert by_key["tinyimagenet", "finetune", "ood/svhn/aupr@ood"].value == 57.69
    assert by_key["cifar10", "scratch", "ood/dtd/calib/soft_f1"].value == 29.88
    assert by_key["cifar100", "finetune", "ood/mean/calib/rms_all_bins"].value == 8.89
    assert by_key["cifar10", "finetune", "calib/rms_all_bins"].value == 2.88
    assert ("tinyimagenet", "scratch", "calib/rms") not in by_key  # only a [U] number exists
    accuracy = by_key["cifar10", "scratch", "accuracy"]
    assert accuracy.value == 94.68 and "test error 5.32" in accuracy.source
    for band in shipped.bands:
        if band.metric == "accuracy":
            error = float(band.source.split("test error ")[1].split()[0])
            assert math.isclose(band.value, 100 - error)


def test_shipped_claims(shipped):
    claims = {(c.dataset, c.metric): c for c in shipped.claims}
    assert set(claims) == {("cifar10", "ood/mean/auroc"), ("cifar100", "ood/mean/auroc"),
                           ("tinyimagenet", "ood/mean/auroc"), ("cifar10", "calib/rms"), ("cifar100", "calib/rms")}
    for claim in shipped.claims:
        assert (claim.recipe, claim.baseline) == ("finetune", "scratch")
        assert claim.direction == ("higher" if claim.metric.startswith("ood/") else "lower")
        assert 0 <= claim.margin < claim.paper_gap


def test_every_band_file_names_what_the_harness_knows():
    from harness import recipes, scores
    from harness.data import registry

    merged = band_files.load_all(SHIPPED.parent, datasets=registry.names(), recipes=recipes.names(), scores=scores.names())
    assert len(merged.bands) >= 190


# ---------------------------------------------------------------- metric key grammar

@pytest.mark.parametrize("key", ["accuracy", "calib/rms", "calib/soft_f1", "error_detection/auroc", "ood/mean/auroc",
                                 "ood/dtd/aupr@ood", "ood/tinyimagenet32-val-nocifar10/fpr95@id",
                                 "ood/svhn/calib/mad_all_bins", "ood/mean/calib/soft_f1", "calib@T/ece10",
                                 "calib@T/nll", "calib@T/temperature", "calib@M1/brier", "accuracy@M1",
                                 "ood/dtd/calib@T/rms", "ood/mean-hendrycks2019oe/calib@T/soft_f1"])
def test_metric_keys_accepted(key):
    assert bands.is_metric_key(key)


@pytest.mark.parametrize("key", ["auroc", "ood/auroc", "ood/mean/aupr", "ood/Mean/auroc", "calib/rms_all",
                                 "ood/dtd/calib/ece", "accuracy ", "ood//auroc", "accuracy@T", "calib@M1/temperature",
                                 "calib@T/accuracy", "ood/dtd/calib@T/temperature",
                                 "ood/dtd/calib@M1/rms", "ood/dtd/calib@T/ece"])
def test_metric_keys_rejected(key):
    assert not bands.is_metric_key(key)


# ---------------------------------------------------------------- check

@pytest.fixture
def two_bands(tmp_path):
    finetune = BAND.replace("ood/mean/auroc", "ood/svhn/auroc").replace('recipe = "scratch"', 'recipe = "finetune"')
    text = BAND + "\n" + finetune + 'proxy_unless_upstream = "imagenet32"\n'
    return band_files.load(write(tmp_path, text)).bands


def test_check_pass_fail(two_bands):
    (inside,) = bands.check(two_bands, "cifar10", "scratch", "msp", {"ood/mean/auroc": stat(92.0)})
    assert inside.passed is True and inside.status == "pass" and inside.proxy is False
    (outside,) = bands.check(two_bands, "cifar10", "scratch", "msp", {"ood/mean/auroc": stat(88.1)})
    assert outside.passed is False and outside.status == "fail"
    assert outside.message() == ("ood/mean/auroc = 88.10 outside band [89.50, 93.50] "
                                 "(paper 91.50; source: Hendrycks et al. 2019, Table A1 [P])")
    assert outside.to_json() == {"metric": "ood/mean/auroc", "measured": 88.1, "low": 89.5, "high": 93.5,
                                 "paper_value": 91.5, "source": "Hendrycks et al. 2019, Table A1 [P]",
                                 "passed": False, "proxy": False, "message": outside.message()}
    edge = bands.check(two_bands, "cifar10", "scratch", "msp", {"ood/mean/auroc": stat(93.5)})
    assert edge[0].passed is True
    nan = bands.check(two_bands, "cifar10", "scratch", "msp", {"ood/mean/auroc": stat(float("nan"))})
    assert nan[0].passed is False


def test_check_not_measured_and_filtering(two_bands):
    measured = {"ood/mean/auroc": stat(95.0)}
    (verdict,) = bands.check(two_bands, "cifar10", "finetune", "msp", measured, upstream="imagenet32")
    assert verdict.passed is None and verdict.status == "not measured" and verdict.measured is None
    assert verdict.message().startswith("ood/svhn/auroc not measured (band [89.50, 93.50], paper 91.50;")
    assert bands.check(two_bands, "cifar100", "scratch", "msp", {"ood/mean/auroc": stat(1.0)}) == []
    assert bands.check(two_bands, "cifar10", "scratch", "energy", {"ood/mean/auroc": stat(1.0)}) == []


@pytest.mark.parametrize("upstream, proxy", [("imagenet32", False), ("imagenet32-nocifar10", False),
                                             ("tinyimagenet32-nocifar10", True), ("imagenet320", True), (None, True)])
def test_check_proxy(two_bands, upstream, proxy):
    (verdict,) = bands.check(two_bands, "cifar10", "finetune", "msp", {"ood/svhn/auroc": stat(90.0)}, upstream=upstream)
    assert verdict.proxy is proxy and verdict.to_json()["proxy"] is proxy
    assert ("proxy: upstream" in verdict.message()) is proxy


def test_check_and_claims_accept_a_band_file(shipped):
    measured = {"ood/mean/auroc": stat(90.0)}
    (verdict,) = [v for v in bands.check(shipped, "cifar10", "scratch", "msp", measured) if v.passed is not None]
    assert verdict.passed is True and verdict.metric == "ood/mean/auroc"
    results = {"scratch": measured, "finetune": {"ood/mean/auroc": stat(94.0)}}
    (claim,) = [v for v in bands.check_claims(shipped, "cifar10", results) if v.passed is not None]
    assert claim.passed is True and claim.proxy is True


def test_check_rejects_malformed_metrics(two_bands):
    with pytest.raises(HarnessError, match="ood/mean/auroc"):
        bands.check(two_bands, "cifar10", "scratch", "msp", {"ood/mean/auroc": {"mean": "high"}})
    with pytest.raises(HarnessError, match="mapping"):
        bands.check(two_bands, "cifar10", "scratch", "msp", [1, 2])


# ---------------------------------------------------------------- claims

@pytest.fixture
def claims(tmp_path):
    rms = (CLAIM.replace('"ood/mean/auroc"', '"calib/rms"').replace('"higher"', '"lower"')
           .replace("margin = 1.0", "margin = 1.1"))
    return band_files.load(write(tmp_path, CLAIM + "\n" + rms)).claims


def test_claims_pass_and_fail(claims):
    results = {"scratch": {"ood/mean/auroc": stat(90.0), "calib/rms": stat(6.0)},
               "finetune": {"ood/mean/auroc": stat(92.5), "calib/rms": stat(5.5)}}
    auroc, rms = bands.check_claims(claims, "cifar10", results, score="msp", upstream="imagenet32")
    assert auroc.passed is True and math.isclose(auroc.gap, 2.5) and auroc.proxy is False
    assert auroc.message().startswith("cifar10: finetune beats scratch on ood/mean/auroc by 2.5 (ok: needs >= 1.00;")
    assert rms.passed is False and math.isclose(rms.gap, 0.5)
    assert rms.message().startswith(
        "cifar10: finetune has lower calib/rms than scratch by 0.5 (FAILED: needs >= 1.10;")
    assert rms.to_json()["passed"] is False


def test_claims_not_measured_proxy_and_filter(claims):
    only_scratch = {"scratch": {"ood/mean/auroc": stat(90.0), "calib/rms": stat(6.0)}}
    verdicts = bands.check_claims(claims, "cifar10", only_scratch)
    assert [v.status for v in verdicts] == ["not measured", "not measured"]
    assert all(v.proxy for v in verdicts) and "not measured" in verdicts[0].message()
    assert bands.check_claims(claims, "cifar100", only_scratch) == []
    assert bands.check_claims(claims, "cifar10", only_scratch, score="energy") == []


SEEDED = CLAIM.replace("margin = 1.0\n", "seeds = [0, 1, 2, 3, 4]\ngaps = [2.0, 3.0, 2.5, 4.0, 3.5]\nprofiles = [\"mini\"]\n")


def test_a_claim_set_on_seeds_stands_by_its_one_sided_t_test(tmp_path):
    """mean 3.0, std 0.791 over 5 seeds: the one-sided 95 % t lower bound is 3.0 - 2.1318 * 0.7906 / sqrt(5) = 2.2463."""
    (claim,) = band_files.load(write(tmp_path, SEEDED)).claims
    assert claim.seeds == (0, 1, 2, 3, 4) and claim.margin == 0 and claim.level == 0.95
    decision = claim.decision
    assert decision.stands and decision.n == 5 and math.isclose(decision.lower, 2.24628, abs_tol=1e-4)
    assert "stands: mean gap 3 over 5 seeds, one-sided 95% t lower bound 2.246" == decision.text()


def test_a_standing_claim_checks_one_seed_as_a_regression_inside_its_gap_spread(tmp_path):
    """A seed's gap must fall in [min - w, max + w], w = max(floor 0.5, K * std): a seed or a machine kind
    cannot fail it, a recipe that lost (or reversed) the effect does."""
    (claim,) = band_files.load(write(tmp_path, SEEDED)).claims
    low, high = 2.0 - spread.K * 0.790569, 4.0 + spread.K * 0.790569
    for gap, ok in ((0.2, True), (low + 0.01, True), (low - 0.01, False), (-2.0, False), (high - 0.01, True),
                    (high + 0.01, False)):
        (verdict,) = bands.check_claims([claim], "cifar10", {"scratch": {"ood/mean/auroc": stat(90.0)},
                                                             "finetune": {"ood/mean/auroc": stat(90.0 + gap)}})
        assert verdict.mode == "regression" and verdict.passed is ok, (gap, verdict.message())
    assert "set on seeds 0, 1, 2, 3, 4: stands" in verdict.message() and "needs a gap in [" in verdict.message()


@pytest.mark.parametrize("gaps", ["[13.33, 3.74, 3.55, -3.45, 0.5]", "[8.5, 8.3, 10.1]"])
def test_a_claim_its_seeds_do_not_decide_is_a_finding_never_enforced(tmp_path, gaps):
    """The liu2020 FPR95 gaps of seeds 0-3 with a fifth: no consistent effect; three seeds: not decided."""
    text = SEEDED.replace("[2.0, 3.0, 2.5, 4.0, 3.5]", gaps)
    if gaps.count(",") == 2:
        text = text.replace("[0, 1, 2, 3, 4]", "[0, 1, 2]")
    (claim,) = band_files.load(write(tmp_path, text)).claims
    assert not claim.decision.stands
    (verdict,) = bands.check_claims([claim], "cifar10", {"scratch": {"ood/mean/auroc": stat(90.0)},
                                                         "finetune": {"ood/mean/auroc": stat(50.0)}})
    assert verdict.mode == "finding" and verdict.passed is None and verdict.status == "finding"
    assert "finding, not enforced" in verdict.message()
    assert ("no consistent effect" if "-3.45" in gaps else "not decided (fewer than 5 seeds)") in verdict.message()


@pytest.mark.parametrize("old, new, words", [
    ("gaps = [2.0, 3.0, 2.5, 4.0, 3.5]", "gaps = [2.0, 3.0]", "one gap per seed"),
    ("seeds = [0, 1, 2, 3, 4]\n", "", "'seeds' and 'gaps' go together"),
    ("seeds = [0, 1, 2, 3, 4]", "seeds = [0, 0, 2, 3, 4]", "distinct seeds"),
    ("gaps = [2.0, 3.0, 2.5, 4.0, 3.5]", "gaps = [2.0, 3.0, 2.5, 4.0, nan]", "finite numbers"),
    ('profiles = ["mini"]', 'profiles = ["mini"]\nmargin = 1.0', "give 'margin'"),
    ('profiles = ["mini"]', 'profiles = ["mini"]\nlevel = 1.5', "level must be between 0.5 and 1"),
])
def test_a_malformed_seeded_claim_is_one_line_naming_the_file(tmp_path, old, new, words):
    with pytest.raises(HarnessError, match=re.escape(words)) as info:
        band_files.load(write(tmp_path, SEEDED.replace(old, new)))
    assert str(info.value).startswith(str(tmp_path)) and "\n" not in str(info.value)


def test_a_claim_can_compare_two_scores_on_one_model(tmp_path):
    text = (CLAIM.replace('recipe = "finetune"', 'recipe = "scratch"').replace('score = "msp"', 'score = "energy"')
            + 'baseline_score = "msp"\n')
    (claim,) = band_files.load(write(tmp_path, text), scores=["msp", "energy"]).claims
    assert claim.scores == ("energy", "msp") and claim.sides() == ("scratch (energy)", "scratch (msp)")
    energy = {"scratch": {"ood/mean/auroc": stat(80.0)}}
    msp = {"scratch": {"ood/mean/auroc": stat(77.5)}}
    (verdict,) = bands.check_claims([claim], "cifar10", energy, baseline_results=msp)
    assert verdict.passed is True and math.isclose(verdict.gap, 2.5)
    assert verdict.message().startswith("cifar10: scratch (energy) beats scratch (msp) on ood/mean/auroc by 2.5 ")
    # without the baseline score's results the claim is not measured, never compared with its own score
    (alone,) = bands.check_claims([claim], "cifar10", energy)
    assert alone.passed is None
    with pytest.raises(HarnessError, match="unknown baseline_score 'msq'"):
        band_files.load(write(tmp_path, text.replace('baseline_score = "msp"', 'baseline_score = "msq"')),
                   scores=["msp", "energy"])
    with pytest.raises(HarnessError, match="baseline_score equals score; leave it out"):
        band_files.load(write(tmp_path, text.replace('baseline_score = "msp"', 'baseline_score = "energy"')))


# ---------------------------------------------------------------- malformed files -> file:line

@pytest.mark.parametrize("old, new, line, words", [
    ("tolerance = 2.0", "tolerence = 2.0", 8, "unknown field 'tolerence'"),
    ('paper = "hendrycks2019"', 'paper = "hendryks2019"', 2,
     "unknown paper 'hendryks2019' (known: hendrycks2019, jordahn2024, hendrycks2019oe, liu2020, kumar2022, wortsman2022;"),
    ('source = "Hendrycks et al. 2019, Table A1 [P]"\n', "", 1, "missing field 'source'"),
    ("tolerance = 2.0\n", "", 1, "missing field 'tolerance' (or both 'low' and 'high')"),
    ("value = 91.5", 'value = "91.5"', 7, "field 'value' must be a finite number"),
    ("value = 91.5", "value = nan", 7, "must be a finite number"),
    ('recipe = "scratch"', "recipe = 3", 4, "field 'recipe' must be a non-empty string"),
    ('metric = "ood/mean/auroc"', 'metric = "ood/mean/auroc_typo"', 6, "unknown metric key 'ood/mean/auroc_typo'"),
    ('dataset = "cifar10"', 'dataset = "CIFAR 10"', 3, "is not a valid name"),
    ("tolerance = 2.0", "tolerance = -0.5", 8, "tolerance must be >= 0"),
    ("tolerance = 2.0", "tolerance = 2.0\nlow = 1.0", 8, "either 'tolerance' or 'low' and 'high'"),
    ("tolerance = 2.0", "low = 92.0\nhigh = 95.0", 8, "must contain value 91.5"),
])
def test_malformed_band_reports_file_and_line(tmp_path, old, new, line, words):
    assert old in BAND
    path = write(tmp_path, "# a comment\n\n" + BAND.replace(old, new))
    message = error_of(path)
    assert message.startswith(f"{path}:{line + 2}: band #1 (")  # +2: the comment lines in front
    assert words in message


def test_second_band_error_points_into_second_table(tmp_path):
    path = write(tmp_path, BAND + "\n" + BAND.replace("tolerance = 2.0", "tolerance = -1"))
    assert error_of(path).startswith(f"{path}:19: band #2 (cifar10 scratch msp ood/mean/auroc): tolerance must be >= 0")


def test_duplicate_band(tmp_path):
    path = write(tmp_path, BAND + "\n" + BAND)
    assert error_of(path) == (f"{path}:12: duplicate band for hendrycks2019 cifar10 scratch msp ood/mean/auroc "
                              f"(first at {path}:1)")


def test_duplicate_across_files(tmp_path):
    write(tmp_path, BAND, "a.toml")
    write(tmp_path, BAND, "b.toml")
    with pytest.raises(HarnessError, match=r"b\.toml:1: duplicate band .* \(first at .*a\.toml:1\)"):
        band_files.load_all(tmp_path)


def test_toml_syntax_error(tmp_path):
    path = write(tmp_path, BAND.replace("value = 91.5", "value = = 91.5"))
    message = error_of(path)
    assert message.startswith(f"{path}:7: invalid TOML: ") and "line 7" in message


def test_unknown_names_when_registries_given(tmp_path):
    path = write(tmp_path, BAND.replace('recipe = "scratch"', 'recipe = "scrach"'))
    assert band_files.load(path).bands[0].recipe == "scrach"
    message = error_of(path, recipes={"scratch", "finetune"})
    assert message.startswith(f"{path}:1: unknown recipe 'scrach' (known: finetune, scratch)")
    message = error_of(write(tmp_path, BAND), datasets={"cifar100"})
    assert message.endswith("unknown dataset 'cifar10' (known: cifar100)")


def test_unknown_tables_and_top_level_keys(tmp_path):
    path = write(tmp_path, BAND + "\n[[bands]]\nvalue = 1\n")
    assert error_of(path).startswith(f"{path}:12: unknown table [[bands]]")
    path = write(tmp_path, BAND.replace("[[band]]", "[band]"))
    assert error_of(path) == f"{path}:1: write [[band]], not [band]: one [[band]] table per entry"
    path = write(tmp_path, "version = 1\n" + BAND)
    assert error_of(path).startswith(f"{path}:1: unexpected top-level key 'version'")
    path = write(tmp_path, 'band = [{paper = "x"}]\n')
    assert error_of(path).startswith(f"{path}:1: unexpected top-level key 'band'")


def test_multiline_strings_do_not_confuse_line_numbers(tmp_path):
    text = BAND.replace('rationale = "seed spread"', 'rationale = """\nvalue = 3\n[[band]]\n"""') \
        .replace("tolerance = 2.0", "tolerance = -1")
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}:8: band #1")


@pytest.mark.parametrize("old, new, line, words", [
    ('direction = "higher"', 'direction = "up"', 8, "direction must be 'higher' or 'lower'"),
    ("margin = 1.0", "margin = -1.0", 9, "margin must be >= 0"),
    ('baseline = "scratch"', 'baseline = "finetune"', 7,
     "recipe and baseline are both 'finetune' (set baseline_score to compare two scores on one model)"),
    ("paper_gap = 3.0\n", "", 1, "missing field 'paper_gap'"),
    ("margin = 1.0", "margn = 1.0", 9, "unknown field 'margn'"),
])
def test_malformed_claim_reports_file_and_line(tmp_path, old, new, line, words):
    path = write(tmp_path, CLAIM.replace(old, new))
    message = error_of(path)
    assert message.startswith(f"{path}:{line}: claim #1") and words in message


def test_missing_file_and_directory(tmp_path):
    assert error_of(tmp_path / "nope.toml") == f"{tmp_path / 'nope.toml'}: band file not found"
    with pytest.raises(HarnessError, match="band directory not found"):
        band_files.load_all(tmp_path / "nowhere")


# ---------------------------------------------------------------- jordahn2024.toml and claim profiles

def test_jordahn2024_bands():
    from harness import recipes
    from harness.data import registry

    loaded = band_files.load(SHIPPED.parent / "jordahn2024.toml", datasets=registry.names(), recipes=recipes.names(),
                        scores=["msp"])
    assert len(loaded.bands) == 14 and {b.paper for b in loaded.bands} == {"jordahn2024"}
    by = {(b.recipe, b.metric): b for b in loaded.bands}
    assert by[("adam_base", "calib@T/nll")].value == 0.302 and by[("vtst", "accuracy@M1")].value == 90.90
    assert all(b.proxy_unless_upstream == "adam_base" for b in loaded.bands if b.recipe in ("tst", "vtst"))
    assert all(b.low <= b.value <= b.high and b.low >= 0 for b in loaded.bands)
    assert [(c.recipe, c.metric, c.profiles) for c in loaded.claims] == [
        ("temperature_scaling", "calib/nll", ("mini",)), ("temperature_scaling", "calib/ece10", ("mini",))]


def test_claim_profiles_default_to_paper_and_are_validated(tmp_path):
    claim = """[[claim]]
paper = "jordahn2024"
dataset = "cifar10"
score = "msp"
metric = "calib/nll"
recipe = "tst"
baseline = "scratch"
direction = "lower"
margin = 0.01
paper_gap = 0.26
source = "s"
rationale = "r"
"""
    path = tmp_path / "c.toml"
    path.write_text(claim)
    assert band_files.load(path).claims[0].profiles == ("paper",)
    path.write_text(claim + 'profiles = ["mini", "paper"]\n')
    assert band_files.load(path).claims[0].profiles == ("mini", "paper")
    path.write_text(claim + "profiles = []\n")
    with pytest.raises(HarnessError, match="field 'profiles' must be a non-empty list of profile names"):
        band_files.load(path)
