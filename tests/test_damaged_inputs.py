"""Damaged files a user hands the harness: a record with a number beyond a float's range, a dataset's
metadata.json that is not an object. Each is reported or shown as missing, never a traceback."""
from __future__ import annotations

import json

import pytest
from record_factory import shift_records
from test_data_cli import expect_error, run

from harness import data as hdata
from harness.site import leaderboard
from harness.errors import HarnessError

HUGE = 10**400  # valid JSON, and Python reads it as an int: float(HUGE) raises OverflowError


@pytest.mark.parametrize("place", ["alpha", "fpr", "count"])
def test_an_integer_beyond_a_float_never_stops_the_leaderboard(tmp_path, place):
    """D11: 10**400 in recipe.settings.alpha, curves.roc.fpr or curves.reliability[].count stopped the build."""
    shift_records(tmp_path / "r")
    path = next((tmp_path / "r").glob("*alpha0.5-msp-s0.json"))
    record = json.loads(path.read_text())
    if place == "alpha":
        record["recipe"]["settings"]["alpha"] = HUGE
    elif place == "fpr":
        record["report"]["curves"]["roc"]["gaussian"]["fpr"][1] = HUGE
    else:
        record["report"]["curves"]["reliability"][12]["count"] = HUGE
    path.write_text(json.dumps(record))
    site = leaderboard.build_site(tmp_path / "r", tmp_path / "site")
    assert site.records == len(list((tmp_path / "r").glob("*.json"))) and not site.problems
    assert site.index.is_file()


@pytest.mark.parametrize("metadata", ["[]", '{"splits": []}', "1"])
def test_a_metadata_file_that_is_not_an_object_is_damage(tmp_path, capsys, metadata):
    """D12: a metadata.json holding a JSON list gave an AttributeError traceback in `data list`, loading and
    evaluate: it is a damaged entry, reported with its folder."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "metadata.json").write_text(metadata)
    rc, out, _ = run(capsys, "list", "--data-root", tmp_path)
    assert rc == 0 and f"damaged: mine: cached dataset {tmp_path / 'mine'} is damaged" in out
    with pytest.raises(HarnessError, match="is damaged .*; import it again"):
        hdata.load("mine", "test", data_root=tmp_path)
    expect_error(capsys, ["corrupt", "mine", "--data-root", tmp_path], "cached dataset", "is damaged")
