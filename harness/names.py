"""The one rule for a name a user chooses that becomes a file or folder name.

Dataset names (`data import NAME`, `data corrupt --name`), profile names, model entry names and `evaluate --name`
all become one path component (a cache folder, a results folder, a record's file stem). A name that could be
'', '.', '..', hold a separator, start with a dot (the cache's lock files and temporaries) or name a folder the
data root keeps for itself would move, replace or write something outside its own folder; the rule admits none.
Lower case only, so that two names never share a folder on a case-insensitive file system.
"""
from __future__ import annotations

import re

from harness.errors import HarnessError

PATTERN = r"[a-z0-9][a-z0-9._-]*"
MAX_LENGTH = 100  # a folder name plus the cache's prefixes and suffixes stays far below NAME_MAX (255 bytes)
# Folders that other parts of the harness keep in the data root (harness.checkpoints.default_cache_dir).
RESERVED = frozenset({"checkpoints"})
RULE = (f"a name of lower-case letters, digits, '.', '_' and '-' that starts with a letter or digit, "
        f"has no '..' and at most {MAX_LENGTH} characters")

_NAME = re.compile(PATTERN)


def problem(name: object) -> str | None:
    """Why `name` breaks the rule, or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name or len(name) > MAX_LENGTH:
        return f"expected {RULE}"
    if name in RESERVED:
        return f"{name!r} is reserved (the data root keeps its own {name}/ folder there)"
    return None


def check(name: object, what: str) -> str:
    """`name` when it follows the rule, else a HarnessError naming `what` (the option or field) and the rule."""
    why = problem(name)
    if why is not None:
        raise HarnessError(f"{what} {name!r}: {why}")
    return name
