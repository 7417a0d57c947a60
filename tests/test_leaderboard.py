"""The leaderboard renders records the tests write: tables, case pages, escaping, problems, determinism, CLI."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import band_files, cli
from harness.errors import HarnessError
from harness.site import charts, leaderboard
from record_factory import make_record, write_json


HOSTILE = "<script>alert(1)</script>"
HENDRYCKS_BANDS = band_files.BANDS_DIR / "hendrycks2019.toml"
# Pages every build writes besides the case pages: index, matrix, claims, conventions, one paper page
# (the hendrycks2019 bands), two static files.
FIXED_FILES = 7


@pytest.fixture(autouse=True)
def one_band_file(tmp_path, monkeypatch):
    """The committed hendrycks2019 bands only, so page counts do not depend on band files being added."""
    folder = tmp_path / "bands"
    folder.mkdir()
    (folder / HENDRYCKS_BANDS.name).write_bytes(HENDRYCKS_BANDS.read_bytes())
    monkeypatch.setenv("HARNESS_BANDS_DIR", str(folder))
    return folder


def standard_results(root: Path) -> Path:
    """Two tables (smoke digits, paper cifar10), one case with two runs."""
    write_json(root / "smoke" / "a.json", make_record("digits-finetune-msp", accuracy=95.0, auroc=91.0))
    write_json(root / "smoke" / "b.json", make_record("digits-scratch-msp", recipe="scratch", accuracy=93.0,
                                                      auroc=80.0))
    write_json(root / "smoke" / "old" / "a.json", make_record("digits-finetune-msp", accuracy=50.0,
                                                              time="2026-11-20T10:00:00Z"))
    write_json(root / "paper" / "c.json", make_record("cifar10-finetune-energy", profile="paper", dataset="cifar10",
                                                      score="energy", sets=("dtd", "cifar100", "gaussian")))
    return root


def read_site(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def rows_of(html: str, table: int = 0) -> list[str]:
    body = html.split("<tbody>")[table + 1].split("</tbody>")[0]
    return body.split("<tr")[1:]


def case_page(out: Path, case_id: str) -> str:
    index = (out / "index.html").read_text()
    match = re.search(r'<a href="(cases/[^"]+)">' + re.escape(case_id) + "</a>", index)
    assert match, f"no link to {case_id}"
    return (out / match.group(1)).read_text()


def test_index_has_one_table_per_profile_and_dataset(tmp_path):
    site = leaderboard.build_site(standard_results(tmp_path / "results"), tmp_path / "site")
    assert (site.cases, site.records, site.problems) == (3, 4, ())
    html = site.index.read_text()
    assert html.count('<table class="board sortable">') == 2
    # groups sorted by (profile, dataset): paper/cifar10 first
    assert html.index("cifar10 <span") < html.index("digits-0-4 <span")
    smoke = rows_of(html, 1)
    assert [re.search(r">(digits-[a-z]+-msp)</a>", r).group(1) for r in smoke] == [
        "digits-finetune-msp", "digits-scratch-msp"]
    for header in ("Accuracy", "AUROC", "AUPR", "FPR95", "RMS", "MAD", "ECE", "NLL", "Gate"):
        assert f">{header} " in html or f">{header}<" in html
    assert 'data-sort-value="95.0"' in html and "95.00" in html  # newest run of the case, not the old 50.0
    assert "50.00" not in html
    assert "<span class=\"std\"> ± 0.50</span>" in html  # OOD metrics have repetitions
    assert "0.123" in html  # NLL with three decimals
    assert 'paper 88.25' in html and 'paper 97.50' in html
    assert '<td class="num fail"' in html  # accuracy outside its band
    assert '<span class="gate-name">bands</span> <span class="badge pass">1 pass</span>' in html
    assert '>1 proxy</span>' in html  # the proxy miss is shown but does not count as a fail
    assert '<td class="num" data-sort-value="2">2</td>' in html  # runs of digits-finetune-msp
    assert '<script src="static/sort.js" defer></script>' in html
    assert (tmp_path / "site" / "static" / "sort.js").is_file()
    assert (tmp_path / "site" / "static" / "style.css").is_file()


def test_case_page_has_ood_table_plots_bands_settings_provenance(tmp_path):
    leaderboard.build_site(standard_results(tmp_path / "results"), tmp_path / "site")
    page = case_page(tmp_path / "site", "cifar10-finetune-energy")
    ood = rows_of(page, 2)
    assert [re.search(r'<th scope="row">([^<]+)</th>', r).group(1) for r in ood] == [
        "cifar100", "dtd", "gaussian", "mean"]
    assert "200 <span class=\"muted\">/ 300</span>" in page
    assert page.count("<svg") == 2 and page.count("<polyline") == 3  # one ROC curve per OOD set
    assert "Reliability diagram" in page and 'class="bar-acc"' in page
    assert "Hendrycks 2019, Table 1" in page and "85.00 – 95.00" in page
    assert "nesterov" in page and '{&#34;kind&#34;: &#34;cosine&#34;}' in page
    assert "0123456789abcdef0123" in page and "cpu (x86_64, 2 cores)" in page and "2026-11-23T16:30:00Z" in page
    assert "pretrain on digits-5-9" in page
    assert '<link rel="stylesheet" href="../static/style.css">' in page


def test_case_with_several_runs_says_so(tmp_path):
    leaderboard.build_site(standard_results(tmp_path / "results"), tmp_path / "site")
    page = case_page(tmp_path / "site", "digits-finetune-msp")
    assert "2 runs of this case are stored" in page
    runs = rows_of(page, len(page.split("<tbody>")) - 2)
    assert "2026-11-23T16:30:00Z" in runs[0] and "2026-11-20T10:00:00Z" in runs[1]


def test_missing_optional_metrics_and_curves_show_a_dash(tmp_path):
    record = make_record("digits-finetune-odin", drop=("calib/nll", "ood/gaussian/aupr@id", "ood/mean/aupr@id"))
    del record["report"]["curves"]
    record["verdicts"]["bands"].append({"metric": "calib/nll", "passed": None})
    write_json(tmp_path / "r" / "x.json", record)
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    nll_cell = rows_of(index)[0].split("<td")[-2]
    assert "—" in nll_cell and "data-sort-value" not in nll_cell and "band" in nll_cell
    page = case_page(tmp_path / "site", "digits-finetune-odin")
    assert "No ROC curves recorded." in page and "No reliability bins recorded." in page
    assert "<svg" not in page
    assert '<span class="badge unchecked">unchecked</span>' in page


def test_hostile_strings_are_escaped_everywhere(tmp_path):
    record = make_record(HOSTILE, recipe=HOSTILE, dataset=HOSTILE, score=HOSTILE, sets=(HOSTILE, "gaussian"))
    record["recipe"]["settings"][HOSTILE] = HOSTILE
    record["verdicts"]["bands"][0]["source"] = HOSTILE
    record["provenance"]["device"] = '"><img src=x onerror=alert(1)>'
    write_json(tmp_path / "r" / "x.json", record)
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    files = read_site(tmp_path / "site")
    assert len(files) == FIXED_FILES + 1  # and one case page
    for name, data in files.items():
        text = data.decode()
        assert HOSTILE not in text and "<img" not in text, name
    page = case_page(tmp_path / "site", "&lt;script&gt;alert(1)&lt;/script&gt;")
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") > 5
    (name,) = [n for n in files if n.startswith("cases/")]
    assert re.fullmatch(r"cases/[a-z0-9-]+\.html", name)


def test_case_page_names_are_safe_and_distinct(tmp_path):
    # "." slugs to nothing (an empty case id is an invalid record, see test_invalid_records_...)
    for i, case_id in enumerate(("../../etc/passwd", "A B", "a-b", ".", "ü" * 200)):
        write_json(tmp_path / "r" / f"{i}.json", make_record(case_id))
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    names = [n for n in read_site(tmp_path / "site") if n.startswith("cases/")]
    assert len(names) == 5
    assert all(re.fullmatch(r"cases/[a-z0-9-]{1,120}\.html", n) for n in names)


def test_unreadable_records_are_listed_not_fatal(tmp_path):
    results = standard_results(tmp_path / "results")
    write_json(results / "newer.json", {**make_record("future"), "schema_version": 99})
    (results / "truncated.json").write_text(json.dumps(make_record("cut"))[:200])
    site = leaderboard.build_site(results, tmp_path / "site")
    assert site.cases == 3
    assert sorted(Path(p.path).name for p in site.problems) == ["newer.json", "truncated.json"]
    html = site.index.read_text()
    assert "2 unreadable" in html and "Unreadable records" in html
    assert "<code>newer.json</code>" in html and "<code>truncated.json</code>" in html
    assert "newer harness" in html and "truncated or invalid JSON" in html
    assert ">future</a>" not in html and ">cut</a>" not in html


def test_no_records_renders_an_empty_board(tmp_path):
    (tmp_path / "r").mkdir()
    site = leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    assert "No readable result records yet" in site.index.read_text()


def test_same_records_give_byte_identical_sites(tmp_path):
    standard_results(tmp_path / "one")
    (tmp_path / "one" / "bad.json").write_text("{")
    standard_results(tmp_path / "elsewhere" / "two")
    (tmp_path / "elsewhere" / "two" / "bad.json").write_text("{")
    leaderboard.build_site(tmp_path / "one", tmp_path / "a")
    leaderboard.build_site(tmp_path / "one", tmp_path / "b")
    leaderboard.build_site(tmp_path / "elsewhere" / "two", tmp_path / "c")
    a = read_site(tmp_path / "a")
    assert len(a) == FIXED_FILES + 3 and a == read_site(tmp_path / "b") == read_site(tmp_path / "c")


def test_rerender_removes_pages_of_vanished_cases(tmp_path):
    results = standard_results(tmp_path / "r")
    leaderboard.build_site(results, tmp_path / "site")
    (results / "paper" / "c.json").unlink()
    leaderboard.build_site(results, tmp_path / "site")
    assert len(list((tmp_path / "site" / "cases").glob("*.html"))) == 2


def test_charts_map_the_unit_square_into_the_plot_and_skip_bad_curves():
    chart = charts.roc_chart({"ok": {"fpr": [0, 1], "tpr": [0, 1]}, "short": {"fpr": [0], "tpr": [0]},
                                   "bad": {"fpr": [0, 2], "tpr": [0, 1]}, "nan": {"fpr": [0, float("nan")],
                                                                                  "tpr": [0, 1]}})
    (curve,) = [s for s in chart.shapes if s.kind == "polyline"]
    left, top, size = charts.LEFT, charts.TOP, charts.SIZE
    assert curve.points == f"{left:.2f},{top + size:.2f} {left + size:.2f},{top:.2f}" and curve.title == "ok"
    assert charts.roc_chart({"bad": {"fpr": [0, 2], "tpr": [0, 1]}}) is None
    assert charts.roc_chart(None) is None
    assert charts.reliability_chart([{"lo": 0.5, "hi": 0.4, "count": 3}]) is None
    bars = charts.reliability_chart([{"lo": 0.0, "hi": 0.5, "confidence": 0.4, "accuracy": 0.25, "count": 4}])
    acc = next(s for s in bars.shapes if s.cls == "bar-acc")
    assert acc.height == f"{size * 0.25:.2f}"


def test_missing_templates_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(leaderboard, "PACKAGE", "harness.data")  # a package without templates/
    (tmp_path / "r").mkdir()
    with pytest.raises(HarnessError, match="leaderboard templates not found"):
        leaderboard.build_site(tmp_path / "r", tmp_path / "site")


def test_cli_prints_the_index_path_and_warns_about_bad_records(tmp_path, capsys):
    results = standard_results(tmp_path / "results")
    (results / "truncated.json").write_text('{"schema_version": 1, "case')
    assert cli.main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "site")]) == 0
    out, err = capsys.readouterr()
    assert out == f"{tmp_path / 'site' / 'index.html'}\n"
    assert "warning: skipped unreadable or invalid record" in err and "truncated.json" in err
    assert "3 cases from 4 records (1 unreadable or invalid)" in err


def test_cli_defaults_and_missing_results_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["leaderboard"]) == 2
    assert "error: results directory results does not exist" in capsys.readouterr().err
    standard_results(tmp_path / "results")
    assert cli.main(["leaderboard"]) == 0
    assert capsys.readouterr().out == "site/index.html\n"
    assert (tmp_path / "site" / "index.html").is_file()


# ---------------------------------------------------------------- invalid records (issue 10, A)

@pytest.mark.parametrize("value, shown", [
    (float("nan"), "got nan"), (float("inf"), "got inf"), ("91.0", "got &#39;91.0&#39;"), (-3.0, "got -3.0"),
    (1e300, "got 1e+300"),
])
def test_invalid_records_are_listed_with_the_reason_and_never_shown(tmp_path, value, shown):
    results = standard_results(tmp_path / "results")
    bad = make_record("digits-finetune-msp", accuracy=77.0, time="2026-12-31T23:59:59Z")  # the newest run
    bad["report"]["metrics"]["ood/mean/auroc"]["mean"] = value
    write_json(results / "smoke" / "bad.json", bad)
    site = leaderboard.build_site(results, tmp_path / "site")
    assert (site.cases, site.records) == (3, 4)
    assert [(Path(p.path).name, p.reason) for p in site.problems] == [
        ("bad.json", f'report.metrics["ood/mean/auroc"].mean: expected a finite number in [0, 100], {shown}'
         .replace("&#39;", "'"))]
    html = site.index.read_text()
    assert "1 unreadable or invalid" in html and "<code>smoke/bad.json</code>" in html
    assert f"report.metrics[&#34;ood/mean/auroc&#34;].mean: expected a finite number in [0, 100], {shown}" in html
    # the good run of the same case is still the one shown, with its two runs; the bad one is nowhere
    assert 'data-sort-value="95.0"' in html and "77.00" not in html and "2026-12-31" not in html
    row = next(r for r in rows_of(html, 1) if ">digits-finetune-msp</a>" in r)
    assert '<td class="num" data-sort-value="2">2</td>' in row
    page = case_page(tmp_path / "site", "digits-finetune-msp")
    assert "2 runs of this case are stored" in page and "77.00" not in page and "2026-12-31" not in page
    for text in (f.decode() for f in read_site(tmp_path / "site").values()):
        assert "0" * 100 not in text and ">nan<" not in text and ">inf<" not in text


# ---------------------------------------------------------------- gates (issue 10, B)

def _gate_cell(html: str, case_id: str) -> str:
    for table in range(html.count("<tbody>")):
        for row in rows_of(html, table):
            if f">{case_id}</a>" in row:
                return row.split('<td class="gate"')[1].split("</td>")[0]
    raise AssertionError(f"no row for {case_id}")


def _baseline(*entries) -> list[dict]:
    return [{"metric": m, "measured": got, "expected": want, "tolerance": tol, "passed": abs(got - want) <= tol,
             "message": f"{m} = {got}"} for m, got, want, tol in entries]


def gated_results(root: Path) -> Path:
    paper = make_record("cifar10-finetune-msp", profile="paper", dataset="cifar10")
    paper["verdicts"] = {"bands": [
        {"metric": "ood/mean/auroc", "measured": 90.0, "low": 85.0, "high": 95.0, "passed": True, "proxy": False},
        {"metric": "accuracy", "measured": 80.0, "low": 90.0, "high": 99.0, "passed": False, "proxy": False},
        {"metric": "ood/svhn/auroc", "measured": None, "low": 85.0, "high": 95.0, "passed": None, "proxy": False},
        {"metric": "calib/rms", "measured": 9.0, "low": 1.0, "high": 5.0, "passed": False, "proxy": True}],
        "baseline": None, "not_gated": None}
    write_json(root / "paper.json", paper)
    unbanded = make_record("cifar10-scratch-knn", profile="paper", dataset="cifar10", recipe="scratch", score="knn")
    unbanded["verdicts"] = {"bands": [], "baseline": None}
    write_json(root / "unbanded.json", unbanded)
    moved = make_record("digits-finetune-msp")
    moved["verdicts"] = {"bands": [], "baseline": _baseline(("accuracy", 95.0, 95.1, 0.5),
                                                             ("calib/nll", 0.1234, 0.3, 0.05),
                                                             ("ood/mean/auroc", 90.0, 90.0, 0.5))}
    write_json(root / "moved.json", moved)
    other_seed = make_record("digits-scratch-msp", recipe="scratch", seed=1)
    other_seed["verdicts"] = {"bands": [], "baseline": None,
                              "not_gated": "seed 1 is not a baseline seed of profile 'smoke' (baseline seeds: 0)"}
    write_json(root / "seed1.json", other_seed)
    no_entry = make_record("digits-finetune-energy", score="energy")
    no_entry["verdicts"] = {"bands": [], "baseline": None}  # no not_gated key: an older record
    write_json(root / "noentry.json", no_entry)
    return root


def test_gate_column_names_the_gate_that_decided(tmp_path):
    site = leaderboard.build_site(gated_results(tmp_path / "r"), tmp_path / "site")
    html = site.index.read_text()
    assert ">Gate</th>" in html and ">Bands</th>" not in html and ">none<" not in html
    paper = _gate_cell(html, "cifar10-finetune-msp")
    assert '<span class="gate-name">bands</span>' in paper and '<span class="badge pass">1 pass</span>' in paper
    assert ">1 fail</span>" in paper and ">1 not measured</span>" in paper and ">1 proxy</span>" in paper
    assert 'data-sort-value="0.5"' in paper and "baseline" not in paper  # the proxy miss does not count
    assert _gate_cell(html, "cifar10-scratch-knn") == (
        ' data-sort-value="">\n<div class="gate-line"><span class="gate-name">not gated</span> '
        '<span class="note">no paper band applies to this case</span></div>\n\n')
    moved = _gate_cell(html, "digits-finetune-msp")
    assert '<span class="gate-name">gated (exact)</span> <span class="badge fail"' in moved and ">1 fail</span>" in moved
    assert '<span class="note">3 metrics checked</span>' in moved and "bands" not in moved
    assert 'data-sort-value="0.0"' in moved  # the share of deciding gates passed: its one tier failed
    seed1 = _gate_cell(html, "digits-scratch-msp")
    assert '<span class="gate-name">not gated</span>' in seed1 and 'data-sort-value=""' in seed1
    assert "seed 1 is not a baseline seed of profile &#39;smoke&#39; (baseline seeds: 0)" in seed1
    no_entry = _gate_cell(html, "digits-finetune-energy")
    assert ">no entry</span>" in no_entry and 'badge fail' in no_entry and 'data-sort-value="0.0"' in no_entry


def test_every_run_passing_its_baseline_reads_pass(tmp_path):
    record = make_record("digits-finetune-msp")
    record["verdicts"] = {"bands": [], "baseline": _baseline(("accuracy", 95.0, 95.0, 0.5)), "not_gated": None}
    write_json(tmp_path / "r" / "a.json", record)
    html = leaderboard.build_site(tmp_path / "r", tmp_path / "site").index.read_text()
    assert _gate_cell(html, "digits-finetune-msp") == (
        ' data-sort-value="1.0">\n<div class="gate-line"><span class="gate-name">gated (exact)</span> '
        '<span class="badge pass" title="0 of 1 metrics moved past the tolerance or missing">pass</span> '
        '<span class="note">1 metric checked</span></div>\n\n')


def test_case_page_shows_the_gate_and_a_sorted_formatted_baseline_table(tmp_path):
    gated_results(tmp_path / "r")
    record = make_record("digits-finetune-msp", time="2026-12-01T00:00:00Z")
    record["verdicts"] = {"bands": [], "baseline": _baseline(
        ("ood/mean/auroc", 91.23456789012345, 91.0, 0.5), ("calib/nll", 0.123456789, 0.12, 0.05),
        ("accuracy", 95.0, 96.00000000000001, 0.5), ("calib/brier", 0.0789, 0.08, 0.02))}
    record["verdicts"]["baseline"][0].update(measured=None, passed=False)  # a metric missing from the run
    write_json(tmp_path / "r" / "newer.json", record)
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    page = case_page(tmp_path / "site", "digits-finetune-msp")
    assert "<h2>Gate verdicts</h2>" in page and "No paper bands" not in page
    summary = page.split('<div class="gate-summary">')[1].split("</div>\n</div>")[0]
    assert '<span class="gate-name">gated (exact)</span>' in summary and ">2 fail</span>" in summary
    assert "4 metrics checked" in summary
    table = page.split("<h3>Regression baseline</h3>")[1].split("</table>")[0]
    rows = table.split("<tbody>")[1].split("<tr")[1:]
    assert [re.search(r"<code>([^<]+)</code>", r).group(1) for r in rows] == [
        "accuracy", "calib/brier", "calib/nll", "ood/mean/auroc"]
    cells = [re.findall(r'<td class="num">([^<]*)</td>', r) for r in rows]
    assert cells == [["95.00", "96.00", "0.50", "-1.00"], ["0.0789", "0.0800", "0.0200", "-0.0011"],
                     ["0.123", "0.120", "0.050", "+0.003"], ["—", "91.00", "0.50", "—"]]
    assert "91.23456789012345" not in page and "96.00000000000001" not in page
    assert 'title="calib/nll = 0.123456789"' in rows[2]


def test_case_page_of_a_not_gated_run_gives_the_reason_escaped(tmp_path):
    record = make_record("digits-finetune-msp", seed=2)
    record["verdicts"] = {"bands": [], "baseline": None, "not_gated": HOSTILE}
    write_json(tmp_path / "r" / "a.json", record)
    leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    for name, data in read_site(tmp_path / "site").items():
        assert HOSTILE not in data.decode(), name
    page = case_page(tmp_path / "site", "digits-finetune-msp")
    summary = page.split('<div class="gate-summary">')[1]
    assert summary.startswith('\n<div class="gate-line"><span class="gate-name">not gated</span> '
                              '<span class="note">&lt;script&gt;alert(1)&lt;/script&gt;</span></div>')


def test_gated_sites_are_byte_identical(tmp_path):
    gated_results(tmp_path / "one")
    gated_results(tmp_path / "two")
    leaderboard.build_site(tmp_path / "one", tmp_path / "a")
    leaderboard.build_site(tmp_path / "two", tmp_path / "b")
    assert read_site(tmp_path / "a") == read_site(tmp_path / "b")
