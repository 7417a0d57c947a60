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


def split_names(value: str) -> tuple[bool, tuple[str, ...]]:
    """`A,B` or `+A,B` -> (whether a leading + adds them, the names stripped of spaces): at least one, no repeats.
    An empty value is refused: it would silently mean 'no change'."""
    add = value.strip().startswith("+")
    names = tuple(p.strip() for p in value.strip().removeprefix("+").split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct comma-separated names (a leading + adds them), "
                                         f"got {value!r}")
    return add, names


def name_list(value: str) -> str:
    """An `A,B | +A,B` option as its canonical text (names stripped), so every reader of the option sees them so."""
    add, names = split_names(value)
    return "+" * add + ",".join(names)


def shard_spec(value: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N -> (K, N)."""
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 2/3, got {value!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected 1 <= K <= N, got {value!r}")
    return k, n


def shard(value: str) -> str:
    shard_spec(value)
    return value
