"""The leaderboard's reading views on synthetic records made here (never presented as measured): paper tables side
by side, the recipe x score matrix, claims, metric conventions, shift, seeds, profile labels."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import band_files, bands, store
from harness.site import leaderboard
from harness.site.paper_tables import HENDRYCKS2019
from record_factory import make_record, paper_profile_records, shift_record, shift_records, write_json

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def band_dir(tmp_path, monkeypatch) -> Path:
    """The committed hendrycks2019 bands only (other band files come and go); tests may add their own."""
    folder = tmp_path / "bands"
    folder.mkdir()
    source = band_files.BANDS_DIR / "hendrycks2019.toml"
    (folder / source.name).write_bytes(source.read_bytes())
    monkeypatch.setenv("HARNESS_BANDS_DIR", str(folder))
    return folder


@pytest.fixture
def site(tmp_path, band_dir) -> Path:
    results = tmp_path / "results"
    paper_profile_records(results / "paper")
    write_json(results / "smoke" / "scratch.json", make_record("digits-0-4-scratch-msp", recipe="scratch",
                                                               dataset="digits-0-4", accuracy=88.0))
    write_json(results / "smoke" / "energy.json", make_record("digits-0-4-scratch-energy", recipe="scratch",
                                                              dataset="digits-0-4", score="energy", auroc=70.0))
    leaderboard.build_site(results, tmp_path / "site")
    return tmp_path / "site"


def page(site: Path, pattern: str) -> str:
    (path,) = site.glob(pattern)
    return path.read_text()


def cells(html: str) -> list[tuple[str, str]]:
    """(status class, inner html) of every published cell of a paper page."""
    return re.findall(r'<td class="pcell ([a-z]+)"[^>]*>(.*?)</td>', html, flags=re.S)


# ---------------------------------------------------------------- paper pages

def test_the_layout_prints_the_band_values_and_every_cell_has_a_band():
    band_file = band_files.load(band_files.BANDS_DIR / "hendrycks2019.toml")
    by_key = {(b.dataset, b.recipe, b.score, b.metric): b for b in band_file.bands}
    n = 0
    for table in HENDRYCKS2019.tables:
        for section in table.sections:
            for row in section.rows:
                assert len(row.values) == len(table.columns), (table.name, row.label)
                for col, value in zip(table.columns, row.values):
                    band = by_key[(row.dataset, col.recipe, "msp", row.prefix + col.suffix)]
                    n += 1
                    if f"Table {table.name} " in band.source:  # A3's Mean rows print another number than A1's band
                        assert band.value == value, (table.name, row.label, col.label)
                    else:
                        assert (table.name, row.label) == ("A3", "Mean") and band.low <= value <= band.high
    assert n == 12 + 8 + 68 + 12 + 96  # A1, A2, A3 (+ its Mean rows), A4


def test_paper_page_has_every_cell_of_a1_to_a4_measured_or_not(site):
    html = page(site, "papers/hendrycks2019-*.html")
    for name in ("A1", "A2", "A3", "A4"):
        assert f'id="table-{name}"' in html
    found = cells(html)
    assert len(found) == 196 and all(status != "blank" for status, _ in found)
    statuses = [status for status, _ in found]
    # cifar10 has everything but SVHN; cifar100 and Tiny ImageNet have no paper-profile run at all.
    assert statuses.count("in") + statuses.count("out") + statuses.count("proxy") == 4 + 4 + 2 * 2 * 6 + 2 * 3 * 7
    assert statuses.count("out") == 1 and statuses.count("none") == 196 - 4 - 4 - 24 - 42
    scratch_auroc = found[0][1]  # A1, CIFAR-10, AUROC scratch
    assert "paper 91.5<" in scratch_auroc and ">91.50</a>" in scratch_auroc and "in band" in scratch_auroc
    assert "± 0.25" in scratch_auroc  # one seed: the spread over OOD repetitions


def test_paper_cells_say_band_source_proxy_and_seeds_on_hover(site):
    html = page(site, "papers/hendrycks2019-*.html")
    finetune = re.search(r'<td class="pcell proxy" title="([^"]*)"[^>]*>(.*?)</td>', html, flags=re.S)
    title, inner = finetune.groups()
    assert "cifar10 / finetune / msp / ood/mean/auroc" in title and "band [91.99, 97.00] (paper 94.5)" in title
    assert "Hendrycks et al. 2019, Table A1 [P]" in title and "mean over 2 seeds (0, 1)" in title
    assert "proxy: upstream tinyimagenet32-nocifar10, the paper&#39;s is imagenet32" in title
    assert ">94.50</a>" in inner and "± 0.50" in inner and "proxy, in band" in inner  # 94.0 and 95.0
    out = re.search(r'<td class="pcell out" title="([^"]*)"', html).group(1)
    assert "cifar10 / scratch / msp / calib/rms" in out and "band [4.80, 8.00]" in out
    svhn = re.search(r'<td class="pcell none" title="(cifar10 / scratch / msp / ood/svhn/auroc[^"]*)"', html)
    assert "the run of cifar10-scratch-msp has no ood/svhn/auroc" in svhn.group(1)
    cifar100 = re.search(r'<td class="pcell none" title="(cifar100 / scratch[^"]*)"', html).group(1)
    assert "no paper-profile run of this case" in cifar100


def test_a_paper_without_layout_gets_its_bands_and_no_bands_dir_no_paper_pages(tmp_path, band_dir):
    (band_dir / "jordahn2024.toml").write_text(
        '[[band]]\npaper = "jordahn2024"\ndataset = "cifar10"\nrecipe = "tst"\nscore = "msp"\n'
        f'metric = "calib/nll"\nvalue = 0.252\ntolerance = 0.05\nsource = "{HOSTILE}"\nrationale = "r"\n')
    write_json(tmp_path / "r" / "a.json", make_record("cifar10-tst-msp", profile="paper", dataset="cifar10",
                                                      recipe="tst"))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = page(tmp_path / "site", "papers/jordahn2024-*.html")
    assert "Bands of recipe tst" in html and "paper 0.252<" in html and ">0.123</a>" in html
    assert "pcell out" in html and HOSTILE not in html and "&lt;script&gt;" in html
    leaderboard.build_site(tmp_path / "r", tmp_path / "site2", bands_dir=tmp_path / "nowhere")
    assert not (tmp_path / "site2" / "papers").exists()
    assert "No band file with claims" in (tmp_path / "site2" / "claims.html").read_text()


# ---------------------------------------------------------------- matrix

def test_matrix_has_a_panel_per_metric_and_marks_the_best_per_column(site):
    html = page(site, "matrix.html")
    assert html.count('<input type="radio" class="tab"') == 2 * 7  # two (profile, dataset) groups
    assert html.index(">cifar10 <") < html.index(">digits-0-4 <")  # paper profile first
    auroc = html.split('data-metric="ood/mean/auroc"')[1].split("</table>")[0]
    rows = dict(re.findall(r'<th scope="row">([^<]+)</th>(.*?)</tr>', auroc, flags=re.S))
    assert list(rows) == ["finetune", "scratch"]
    assert '<td class="num best">' in rows["finetune"].split("</td>")[1]  # msp: 94.5 beats 91.5
    assert "·" in rows["finetune"].split("</td>")[0]  # no fine-tuned energy case
    fpr = html.split('data-metric="ood/mean/fpr95@ood"')[1].split("</table>")[0]
    assert 'class="num best"' in fpr  # lower is better there
    first = html.split('data-metric="ood/mean/fpr95_first@ood"')[1].split("</table>")[0]
    assert "22.00" in first  # the first-reach key of the records
    assert "regression gate · profile smoke" in html


# ---------------------------------------------------------------- claims

def test_claims_are_judged_per_profile_with_their_sides_gap_and_verdict(site):
    html = page(site, "claims.html")
    assert "Paper claims" in html and "CPU-scale claims" not in html
    rows = re.findall(r'<tr class="claim ([a-z]+)">(.*?)</tr>', html, flags=re.S)
    assert len(rows) == 5
    cifar10_auroc = rows[0][1]
    assert "finetune beats scratch on ood/mean/auroc" in cifar10_auroc and ">94.50</a>" in cifar10_auroc
    assert ">91.50</a>" in cifar10_auroc and '<td class="num">3.00</td>' in cifar10_auroc
    assert "pass (proxy)" in cifar10_auroc and rows[0][0] == "pass"
    rms = next(r for _, r in rows if "calib/rms" in r and "cifar10<" in r)
    assert "finetune has lower calib/rms than scratch" in rms and '<td class="num">9.10</td>' in rms
    assert [status for status, _ in rows].count("unchecked") == 3  # cifar100 and Tiny ImageNet: not measured


def test_a_claim_naming_a_cpu_profile_is_judged_there(tmp_path, band_dir):
    (band_dir / "cpu.toml").write_text(
        '[[claim]]\npaper = "hendrycks2019"\ndataset = "digits-0-4"\nscore = "msp"\nmetric = "accuracy"\n'
        'recipe = "finetune"\nbaseline = "scratch"\ndirection = "higher"\nmargin = 1.0\npaper_gap = 3.0\n'
        f'source = "{HOSTILE}"\nrationale = "r"\nprofiles = ["smoke"]\n')
    write_json(tmp_path / "r" / "a.json", make_record("digits-0-4-finetune-msp", dataset="digits-0-4",
                                                      accuracy=80.0))
    write_json(tmp_path / "r" / "b.json", make_record("digits-0-4-scratch-msp", dataset="digits-0-4",
                                                      recipe="scratch", accuracy=88.0))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = (tmp_path / "site" / "claims.html").read_text()
    cpu = html.split("CPU-scale claims")[1]
    assert html.index("Paper claims") < html.index("CPU-scale claims")
    row = re.search(r'<tr class="claim fail">(.*?)</tr>', cpu, flags=re.S).group(1)
    assert ">80.00</a>" in row and ">88.00</a>" in row and '<td class="num">-8.00</td>' in row
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in row


def test_a_claim_between_two_scores_reads_each_side_from_its_own_score(tmp_path, band_dir):
    (band_dir / "scores.toml").write_text(
        '[[claim]]\npaper = "liu2020"\ndataset = "digits-0-4"\nscore = "energy"\nbaseline_score = "msp"\n'
        'metric = "ood/mean/auroc"\nrecipe = "scratch"\nbaseline = "scratch"\ndirection = "higher"\n'
        'margin = 1.0\npaper_gap = 1.0\nsource = "s"\nrationale = "r"\nprofiles = ["smoke"]\n')
    write_json(tmp_path / "r" / "a.json", make_record("digits-0-4-scratch-energy", dataset="digits-0-4",
                                                      recipe="scratch", score="energy", auroc=93.0))
    write_json(tmp_path / "r" / "b.json", make_record("digits-0-4-scratch-msp", dataset="digits-0-4",
                                                      recipe="scratch", auroc=90.0))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = (tmp_path / "site" / "claims.html").read_text()
    row = re.search(r'<tr class="claim pass">(.*?)</tr>', html.split("CPU-scale claims")[1], flags=re.S).group(1)
    assert "scratch (energy) beats scratch (msp) on ood/mean/auroc" in row
    assert ">92.00</a>" in row and ">89.00</a>" in row and '<td class="num">3.00</td>' in row


def test_a_claim_set_on_seeds_shows_its_seeds_gaps_test_and_decision(tmp_path, band_dir):
    """Issue: every claim entry carries its seeds, gaps, test and level, and the claims page shows them; a claim
    its seeds do not decide is a finding, never a failure."""
    common = ('paper = "hendrycks2019"\ndataset = "digits-0-4"\nscore = "msp"\nrecipe = "finetune"\n'
              'baseline = "scratch"\ndirection = "higher"\npaper_gap = 3.0\nsource = "s"\nrationale = "r"\n'
              'profiles = ["smoke"]\nseeds = [0, 1, 2, 3, 4]\n')
    (band_dir / "seeded.toml").write_text(
        f'[[claim]]\n{common}metric = "accuracy"\ngaps = [-6.0, -9.0, -7.5, -8.0, -8.5]\n\n'
        f'[[claim]]\n{common}metric = "ood/mean/auroc"\ngaps = [4.0, -3.0, 1.0, 0.5, -1.0]\n')
    write_json(tmp_path / "r" / "a.json", make_record("digits-0-4-finetune-msp", dataset="digits-0-4",
                                                      accuracy=80.0, auroc=60.0))
    write_json(tmp_path / "r" / "b.json", make_record("digits-0-4-scratch-msp", dataset="digits-0-4",
                                                      recipe="scratch", accuracy=88.0, auroc=50.0))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    cpu = (tmp_path / "site" / "claims.html").read_text().split("CPU-scale claims")[1]
    rows = dict((m, (status, row)) for status, row in re.findall(r'<tr class="claim ([a-z]+)">(.*?)</tr>', cpu, re.S)
                for m in ("accuracy", "ood/mean/auroc") if f"on {m}" in row)
    status, row = rows["accuracy"]  # the direction is "higher", every seed says lower: it does not stand
    assert status == "finding" and "0: -6.00, 1: -9.00, 2: -7.50, 3: -8.00, 4: -8.50" in row
    assert "no consistent effect: mean gap -7.8 over 5 seeds, one-sided 95% t lower bound" in row
    status, row = rows["ood/mean/auroc"]
    assert status == "finding" and '<td class="num">10.00</td>' in row and "no consistent effect" in row
    (band_dir / "seeded.toml").write_text(
        f'[[claim]]\n{common}metric = "accuracy"\ngaps = [6.0, 9.0, 7.5, 8.0, 8.5]\n'.replace('"higher"', '"lower"'))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    cpu = (tmp_path / "site" / "claims.html").read_text().split("CPU-scale claims")[1]
    status, row = re.search(r'<tr class="claim ([a-z]+)">(.*?)</tr>', cpu, re.S).groups()
    # stands (gaps 6..9); this run's gap is 8: inside [min - w, max + w]
    assert status == "pass" and "stands: mean gap 7.8 over 5 seeds" in row and '<td class="num">[' in row


# ---------------------------------------------------------------- conventions

def test_conventions_page_shows_one_model_under_every_definition(site):
    html = page(site, "conventions.html")
    for key in ("fpr95@ood", "fpr95_first@ood", "fpr95@id", "fpr95_first@id", "aupr@ood", "aupr_trapz@ood",
                "aupr@id", "aupr_trapz@id"):
        assert f'<tr data-key="{key}">' in html
    assert "OpenOOD v1.5, pytorch-ood and torch-uncertainty" in html
    paper = html.split('<section class="group conventions">')[1]
    assert ">cifar10-scratch-msp</a>" in paper  # MSP from scratch, not the energy case
    first_reach = paper.split('<tr data-key="fpr95_first@ood">')[1].split("</tr>")[0]
    assert re.findall(r'<span class="value">([^<]+)</span>', first_reach) == [
        "22.00", "24.00", "23.00", "20.00", "21.00", "22.00"]  # blobs, cifar100, dtd, gaussian, rademacher, mean


def test_conventions_of_an_old_record_show_dashes(tmp_path, band_dir):
    keys = ("fpr95_first@ood", "fpr95_first@id", "aupr_trapz@ood", "aupr_trapz@id")
    record = make_record("digits-0-4-scratch-msp", dataset="digits-0-4", recipe="scratch",
                         drop=tuple(f"ood/{s}/{k}" for s in ("gaussian", "blobs", "mean") for k in keys))
    write_json(tmp_path / "r" / "a.json", record)
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = (tmp_path / "site" / "conventions.html").read_text()
    row = html.split('<tr data-key="aupr_trapz@id">')[1].split("</tr>")[0]
    assert row.count("—") == 3 and "the record predates the key" in html


# ---------------------------------------------------------------- shift

def test_shift_view_has_heat_maps_the_alpha_curve_and_distortion(tmp_path, band_dir):
    shift_records(tmp_path / "r")
    write_json(tmp_path / "r" / "energy.json", {**shift_record("digits-0-4-finetune-energy", "finetune", 1.0, 2.0),
                                                "score": {"name": "energy", "params": {}}})
    write_json(tmp_path / "r" / "plain.json", make_record("digits-0-4-scratch-msp", recipe="scratch"))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    html = (tmp_path / "site" / "shift.html").read_text()
    assert 'href="shift.html"' in (tmp_path / "site" / "index.html").read_text()
    summary = html.split('<table class="board shift-summary">')[1].split("</table>")[0]
    assert [re.sub("<[^>]+>", "", v) for v in re.findall(r'<th scope="row">(.*?)</th>', summary)] == [
        "finetune", "linear_probe", "lp_ft", "wise_ft-alpha0.25", "wise_ft-alpha0.5", "wise_ft-alpha0.75"]
    assert "scratch" not in summary  # no shift keys
    lp = summary.split("linear_probe")[1].split("</tr>")[0]
    assert re.findall(r'<span class="value">([^<]+)</span>', lp) == [
        "72.00", "59.00", "5.50", "6.00", "0.800", "1.50", "2.50"]
    curve = html.split("<h3>WiSE-FT alpha curve</h3>")[1].split("</svg>")[0]
    assert curve.count("<polyline") == 1 and curve.count("<circle") == 6
    labels = re.findall(r'class="point-label"[^>]*>([^<]+)<', curve)
    assert labels == ["\u03b1 0.25", "\u03b1 0.5", "\u03b1 0.75", "LP", "FT", "LP-FT"]
    heat = html.split("<caption>Accuracy (%)</caption>")[1].split("</table>")[0]
    fog = re.search(r'<th scope="row">fog</th>(.*?)</tr>', heat).group(1)
    assert re.findall(r'class="num (heat-\d)"', fog)[0] == "heat-0" and ">63.00<" in fog  # finetune: best cell
    assert "severity 5" in heat and "all corruptions" in heat


def test_no_shift_records_no_shift_page_and_a_stale_one_is_removed(tmp_path, band_dir):
    shift_records(tmp_path / "r")
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    assert (tmp_path / "site" / "shift.html").is_file()
    for path in (tmp_path / "r").glob("*.json"):
        path.unlink()
    write_json(tmp_path / "r" / "a.json", make_record("digits-0-4-scratch-msp"))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    assert not (tmp_path / "site" / "shift.html").exists()
    assert "shift.html" not in (tmp_path / "site" / "index.html").read_text()


@pytest.mark.parametrize("key, value, valid", [
    ("shift/fog/3/nll", 150.0, True), ("shift/mean/nll", 2.5, True), ("shift/severity2/accuracy", 101.0, False),
    ("shift/fog/1/ece", 12.5, True), ("distortion/shift", 2.5, True), ("ood/dtd/fpr95_first@id", 100.5, False),
    ("ood/mean/aupr_trapz@ood", 64.0, True),
])
def test_new_keys_are_validated_in_their_units(tmp_path, key, value, valid):
    record = make_record()
    record["report"]["metrics"][key] = {"mean": value, "std": 0.0, "n": 1}
    write_json(tmp_path / "a.json", record)
    records, problems = store.read_records(tmp_path)
    assert (len(records), len(problems)) == ((1, 0) if valid else (0, 1))


# ---------------------------------------------------------------- seeds and profiles

def test_several_seeds_show_mean_and_std_over_seeds_and_the_case_page_lists_them(site):
    index = (site / "index.html").read_text()
    row = next(r for r in index.split("<tr")[1:] if ">cifar10-finetune-msp</a>" in r)
    assert "mean of seeds 0, 1" in row
    auroc = row.split('<td class="num')[3]  # runs, accuracy, AUROC
    assert '<span class="value">94.50</span>' in auroc
    assert '<span class="std" title="standard deviation over 2 seeds"> ± 0.50</span>' in auroc
    match = re.search(r'<a href="(cases/[^"]+)">cifar10-finetune-msp</a>', index)
    case = (site / match.group(1)).read_text()
    seeds = case.split("<h2>Seeds</h2>")[1].split("</table>")[0]
    assert len(re.findall(r"<tr><td>[01]</td>", seeds)) == 2 and "Mean over 2 seeds" in seeds
    assert "seeds with runs</th><td>0, 1</td>" in case


def test_paper_profile_first_and_cpu_profiles_labelled_as_regression_gates(tmp_path, site):
    index = (site / "index.html").read_text()
    assert index.index("Paper profile: the papers' recipes at full scale") < index.index(
        "CPU profiles: regression gates, not findings")
    assert index.index(">cifar10 <") < index.index(">digits-0-4 <")
    record = make_record("digits-0-4-scratch-msp", dataset="digits-0-4")
    record["profile_source"] = {"builtin": True, "content": {"model": "wrn-10-1", "train_limit": 5000,
                                                             "epochs": {"scratch": 40, "finetune": 30}}}
    write_json(tmp_path / "one" / "a.json", record)
    leaderboard.build_site(tmp_path / "one", tmp_path / "site1")
    one = (tmp_path / "site1" / "index.html").read_text()
    assert "training set capped at 5000 images; 500 test images; epochs finetune 30, scratch 40" in one
    assert "Paper profile" not in one


def test_every_page_is_byte_identical_and_escaped(tmp_path, band_dir):
    for name in ("one", "two"):
        results = tmp_path / name
        paper_profile_records(results / "paper")
        shift_records(results / "smoke")
        hostile = make_record(HOSTILE, profile=HOSTILE, dataset=HOSTILE, recipe=HOSTILE, score=HOSTILE,
                              sets=(HOSTILE,))
        hostile["report"]["metrics"][f"shift/{HOSTILE.replace('/', '')}/1/accuracy"] = {"mean": 50.0, "std": 0.0,
                                                                                      "n": 1}
        write_json(results / "hostile.json", hostile)
        leaderboard.build_site(results, tmp_path / f"site-{name}")
    one = {p.relative_to(tmp_path / "site-one"): p.read_bytes() for p in (tmp_path / "site-one").rglob("*")
           if p.is_file()}
    two = {p.relative_to(tmp_path / "site-two"): p.read_bytes() for p in (tmp_path / "site-two").rglob("*")
           if p.is_file()}
    assert one == two and len(one) == 7 + 1 + 1 + 3 + 6  # fixed pages, shift, hostile, paper and shift cases
    for name, data in one.items():
        assert HOSTILE not in data.decode() and "<script>alert" not in data.decode(), name


@pytest.mark.parametrize("key, ok", [
    ("shift/fog/3/accuracy", True), ("shift/severity2/ece", True), ("shift/mean/nll", True), ("distortion/id", True),
    ("ood/cifar100/fpr95_first@ood", True), ("ood/mean/aupr_trapz@id", True), ("shift/fog/0/ece", False),
    ("shift/imagenet-r/accuracy", True), ("shift/natural/nll", True), ("shift/fog/3/1/accuracy", False),
    ("shift/imagenet-r/auroc", False), ("distortion/x", False), ("ood/mean/fpr95_last@ood", False),
])
def test_band_files_may_name_the_new_keys(key, ok):
    assert bands.is_metric_key(key) is ok
