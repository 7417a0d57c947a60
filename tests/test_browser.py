"""The rendered leaderboard in a real headless Chromium: tables, click-to-sort, a case page with SVG plots.

Uses Debian's chromium + chromium-driver (paths overridable with HARNESS_CHROMIUM / HARNESS_CHROMEDRIVER);
selenium is pointed at both so it never downloads a browser. Skips when they are absent, unless
HARNESS_REQUIRE_BROWSER=1 (CI), where their absence fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import band_files
from harness.site import leaderboard
from record_factory import make_record, paper_profile_records, shift_records, write_json

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("HARNESS_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
         "--window-size=1400,1000")


@pytest.fixture
def browser(tmp_path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("HARNESS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"HARNESS_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()


def column_values(table, column: int) -> list[float]:
    return [float(row.find_elements("css selector", "td")[column].get_attribute("data-sort-value"))
            for row in table.find_elements("css selector", "tbody tr")]


def test_leaderboard_sorts_and_links_to_a_case_page_with_plots(browser, tmp_path):
    for i, auroc in enumerate((82.0, 97.5, 64.25, 90.0)):
        record = make_record(f"digits-recipe{i}-msp", recipe=f"recipe{i}", auroc=auroc, accuracy=90.0 + i)
        if i == 2:  # not gated: no Gate sort value, stays last both ways
            record["verdicts"] = {"bands": [], "baseline": None, "not_gated": "seed 0 is not a baseline seed (test)"}
        if i == 3:  # its baseline check failed: the lowest pass rate
            record["verdicts"]["baseline"][0]["passed"] = False
        write_json(tmp_path / "results" / f"{i}.json", record)
    write_json(tmp_path / "results" / "paper.json", make_record("cifar10-finetune-msp", profile="paper",
                                                                dataset="cifar10"))
    site = leaderboard.build_site(tmp_path / "results", tmp_path / "site")

    browser.get(site.index.as_uri())
    assert browser.title == "Uncertainty leaderboard"
    tables = browser.find_elements("css selector", "table.board.sortable")
    assert len(tables) == 2
    table = tables[1]  # smoke / digits-0-4
    assert "js-sortable" in table.get_attribute("class")  # sort.js loaded from file://
    headers = table.find_elements("css selector", "thead th")
    column = [h.text.split()[0] for h in headers].index("AUROC")
    means = [(82.0 + 80.0) / 2, (97.5 + 95.5) / 2, (64.25 + 62.25) / 2, 89.0]  # mean over the two OOD sets
    assert column_values(table, column) == means

    headers[column].click()
    assert headers[column].get_attribute("aria-sort") == "ascending"
    assert column_values(table, column) == sorted(means)
    headers[column].click()
    assert headers[column].get_attribute("aria-sort") == "descending"
    assert column_values(table, column) == sorted(means, reverse=True)
    first_case = table.find_element("css selector", "tbody tr td.case a")
    assert first_case.text == "digits-recipe1-msp"  # highest AUROC
    browser.save_screenshot(str(tmp_path / "index.png"))

    gate = [h.text.split()[0] for h in headers].index("Gate")
    def cases() -> list[str]:
        return [a.text for a in table.find_elements("css selector", "tbody tr td.case a")]
    headers[gate].click()
    assert cases()[0] == "digits-recipe3-msp" and cases()[-1] == "digits-recipe2-msp"
    headers[gate].click()
    assert cases()[-2:] == ["digits-recipe3-msp", "digits-recipe2-msp"]
    assert "not gated" in table.find_elements("css selector", "tbody tr td.gate")[-1].text

    first_case.click()
    assert browser.find_element("css selector", "h1").text == "digits-recipe1-msp"
    plots = browser.find_elements("css selector", "figure.chart svg")
    assert len(plots) == 2
    assert plots[0].find_elements("css selector", "polyline")
    assert plots[0].size["width"] > 200 and plots[0].size["height"] > 200
    assert browser.find_elements("css selector", "svg rect.bar-acc")
    browser.save_screenshot(str(tmp_path / "case.png"))
    assert (tmp_path / "index.png").stat().st_size > 10_000 and (tmp_path / "case.png").stat().st_size > 10_000


def test_paper_page_matrix_and_conventions_in_the_browser(browser, tmp_path, monkeypatch):
    """The reading views from synthetic paper-profile records: colours, values, the matrix's metric tabs.
    Screenshots go to $HARNESS_SCREENSHOTS when set (to look at them), else to the test's folder."""
    folder = tmp_path / "bands"
    folder.mkdir()
    (folder / "hendrycks2019.toml").write_bytes((band_files.BANDS_DIR / "hendrycks2019.toml").read_bytes())
    monkeypatch.setenv("HARNESS_BANDS_DIR", str(folder))
    paper_profile_records(tmp_path / "results" / "paper")
    shift_records(tmp_path / "results" / "smoke")
    site = leaderboard.build_site(tmp_path / "results", tmp_path / "site")
    shots = Path(os.environ.get("HARNESS_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    browser.get(site.index.as_uri())
    browser.find_element("link text", "Paper: hendrycks2019").click()
    assert browser.find_element("css selector", "h1").text.startswith("Hendrycks, Lee, Mazeika 2019")
    first = browser.find_element("css selector", "#table-A1 td.pcell")
    assert first.get_attribute("class") == "pcell in"
    assert first.find_element("css selector", ".measured a").text == "91.50"
    assert first.value_of_css_property("background-color") == "rgba(227, 245, 231, 1)"  # --pass-bg
    out = browser.find_element("css selector", "#table-A2 td.pcell.out")
    assert out.find_element("css selector", ".measured a").text == "12.00"
    assert "band [4.80, 8.00]" in out.get_attribute("title")
    assert len(browser.find_elements("css selector", "td.pcell.none")) > 100
    browser.save_screenshot(str(shots / "paper.png"))

    browser.find_element("link text", "Recipe \u00d7 score").click()
    panels = browser.find_elements("css selector", ".matrix .panel")
    visible = [p.get_attribute("data-metric") for p in panels if p.is_displayed()]
    assert visible == ["ood/mean/auroc", "ood/mean/auroc"]  # one metric at a time, per group
    best = panels[0].find_element("css selector", "td.best")
    assert best.find_element("css selector", ".value").text == "94.50"
    fpr_label = next(label for label in browser.find_elements("css selector", ".matrix label")
                     if label.text.startswith("FPR95, OOD+"))
    fpr_label.click()
    visible = [p.get_attribute("data-metric") for p in panels if p.is_displayed()]
    assert visible == ["ood/mean/fpr95@ood", "ood/mean/auroc"]
    browser.save_screenshot(str(shots / "matrix.png"))

    browser.find_element("link text", "Conventions").click()
    row = browser.find_element("css selector", ".conventions-table tr[data-key='fpr95_first@ood']")
    assert [c.text for c in row.find_elements("css selector", "td.num .value")][-1] == "22.00"
    browser.save_screenshot(str(shots / "conventions.png"))

    browser.find_element("link text", "Shift").click()
    assert browser.find_elements("css selector", "svg circle.point")
    browser.save_screenshot(str(shots / "shift.png"))
    for name in ("paper", "matrix", "conventions", "shift"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
