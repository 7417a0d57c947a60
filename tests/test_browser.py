"""The rendered leaderboard in a real headless Chromium: tables, click-to-sort, a case page with SVG plots.

Uses Debian's chromium + chromium-driver (paths overridable with HARNESS_CHROMIUM / HARNESS_CHROMEDRIVER);
selenium is pointed at both so it never downloads a browser. Skips when they are absent, unless
HARNESS_REQUIRE_BROWSER=1 (CI), where their absence fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import leaderboard
from record_factory import make_record, write_json

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
