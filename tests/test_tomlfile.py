"""harness.tomlfile: the reader behind band files, model entries and profile files, and its line scan."""
from __future__ import annotations

import pytest

from harness import tomlfile
from harness.errors import HarnessError


def test_scan_finds_headers_and_keys_quoted_or_dotted_and_skips_multiline_strings():
    text = ('top = 1\n[ "tiny" ]\nmodel = 2\n[[\'tiny\'.datasets]]\n"id" = 3\nnote = """\nfake = 4\n"""\n'
            '[["tiny" . datasets]]\nood = ["a", "b"]\n')
    tables, top = tomlfile.scan(text)
    assert top == {"top": 1}
    assert [(t.name, t.array, t.line) for t in tables] == [("tiny", False, 2), ("tiny.datasets", True, 4),
                                                            ("tiny.datasets", True, 9)]
    assert tables[0].at("model") == 3 and tables[0].at("absent") == 2
    assert tables[1].keys == {"id": 5, "note": 6}  # `fake` sits inside a multi-line string


def test_read_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("a = 1\nb = 2\nb = 3\n", encoding="utf-8")
    with pytest.raises(HarnessError, match=rf"^{path}:3: invalid TOML: "):
        tomlfile.read(path, "band file")
    with pytest.raises(HarnessError, match=rf"^{tmp_path / 'nope.toml'}: band file not found$"):
        tomlfile.read(tmp_path / "nope.toml", "band file")
    path.write_text("a = 1\n", encoding="utf-8")
    assert tomlfile.read(path, "band file") == ({"a": 1}, "a = 1\n")
