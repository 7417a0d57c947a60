"""Value checks shared by the CLI and the pytest options, as argparse `type=` functions.

argparse (and pytest, which uses it) turns an `ArgumentTypeError` into one usage line naming the option, so a bad
value stops the run before anything is trained: exit 2 from `python -m harness`, exit 4 from pytest.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def directory(value: str) -> Path:
    """A directory that exists or can be created: nothing along the path may be a file."""
    path = Path(value).expanduser()
    for existing in (path, *path.parents):
        if existing.exists():
            if existing.is_dir():
                return path
            what = "is a file, not a directory" if existing == path else f"cannot be created: {existing} is a file"
            raise argparse.ArgumentTypeError(f"{value}: {what}")
    return path


def _int_at_least(value: str, low: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value!r}") from None
    if number < low:
        raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {number}")
    return number


def positive_int(value: str) -> int:
    return _int_at_least(value, 1)


def non_negative_int(value: str) -> int:
    return _int_at_least(value, 0)


def seed_list(value: str) -> tuple[int, ...]:
    """Comma-separated non-negative integers, at least one, no repeats."""
    parts = [p.strip() for p in value.split(",")]
    if not value.strip() or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {value!r}")
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 0,1,2, got {value!r}") from None
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers, got {value!r}")
    return seeds
