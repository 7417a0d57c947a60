"""The value checks behind the CLI's and the pytest options' directory, count and seed arguments."""
from __future__ import annotations

import argparse

import pytest

from harness import options


def test_directory_accepts_existing_and_creatable_paths(tmp_path):
    assert options.directory(str(tmp_path)) == tmp_path
    assert options.directory(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"


def test_directory_refuses_a_file_anywhere_on_the_path(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file, not a directory"):
        options.directory(str(tmp_path / "f"))
    with pytest.raises(argparse.ArgumentTypeError, match=r"cannot be created: .*f is a file"):
        options.directory(str(tmp_path / "f" / "sub"))


@pytest.mark.parametrize("value", ["0", "-1", "x", "1.5", ""])
def test_positive_int_refuses(value):
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 1"):
        options.positive_int(value)


def test_seed_list():
    assert options.seed_list("0") == (0,)
    assert options.seed_list(" 0, 1,2 ") == (0, 1, 2)
    for bad in ("", " ", "0,", ",1", "a", "1.5", "-1", "0,0"):
        with pytest.raises(argparse.ArgumentTypeError):
            options.seed_list(bad)
