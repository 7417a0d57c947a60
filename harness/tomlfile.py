"""Small TOML files with `file:line` errors: band files, model entries and profile files read through here.

tomllib keeps no positions, so a problem found in a parsed table is located by `scan`, a line scan of the text
for table headers and `key =` lines.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from harness.errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_HEADER = re.compile(r"""\s*(\[\[?)\s*([^\[\]#,=]+?)\s*\]\]?\s*(?:#.*)?\Z""")
_PART = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([^."'\s]+))\s*(?:\.|\Z)""")
_KEY = re.compile(r"""\s*(?:"([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*[.=]""")


@dataclass
class Table:
    name: str  # dotted, quotes dropped: [[a.datasets]] -> "a.datasets"
    array: bool
    line: int
    keys: dict[str, int] = field(default_factory=dict)

    def at(self, key: str) -> int:
        return self.keys.get(key, self.line)


def scan(text: str) -> tuple[list[Table], dict[str, int]]:
    """Line of every table header and of each key under it, plus the top-level keys.

    It only needs to recognise header lines and `key =` lines, so it skips the insides of multi-line strings and
    nothing else.
    """
    tables: list[Table] = []
    top: dict[str, int] = {}
    open_quote = None
    for number, line in enumerate(text.splitlines(), start=1):
        if open_quote:
            if open_quote in line:
                open_quote = None
            continue
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            tables.append(Table(_dotted(header.group(2)), header.group(1) == "[[", number))
        elif key:
            name = next(g for g in key.groups() if g is not None)
            (tables[-1].keys if tables else top).setdefault(name, number)
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                open_quote = quote
                break
    return tables, top


def _dotted(inner: str) -> str:
    """A header's key path, quotes dropped: `"tiny" . datasets` -> "tiny.datasets"."""
    return ".".join(next(g for g in m.groups() if g is not None) for m in _PART.finditer(inner) if m.group(0))


def read(path: str | Path, kind: str) -> tuple[dict, str]:
    """(parsed TOML, text) of a `kind` file ("band file", "model entry", "profile file"); unreadable or invalid
    -> HarnessError '<file>:<line>: message'."""
    where = Located(str(path))
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        where.fail(None, f"{kind} not found")
    except (OSError, UnicodeDecodeError) as exc:
        where.fail(None, f"cannot read {kind}: {exc}")
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        where.fail(int(found.group(1)) if found else None, f"invalid TOML: {exc}")


class Located:
    """Raises HarnessError as '<file>:<line>: <message>'."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, line: int | None, message: str) -> NoReturn:
        raise HarnessError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")
