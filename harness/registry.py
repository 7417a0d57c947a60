"""One shape for every registry of named things (recipes, objectives, scores, models).

A Registry is a name -> entry table filled by a decorator: `@RECIPES.register` on a class (or on an entry) adds
it under its `name`. Names that follow a pattern (`wrn-16-1`, `wrn-40-2`: depth and width) are a family: a
function from the regular-expression match to the entry, registered with `@MODELS.family(pattern, ...)`; the
family's examples stand for it in `names()`. A test parametrised over `names()` picks up a new entry by itself.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")


@dataclass(frozen=True)
class _Family(Generic[T]):
    pattern: re.Pattern
    make: Callable[[re.Match], T]
    describe: str  # how the unknown-name error names the family, e.g. "any wrn-DEPTH-WIDTH"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "recipe", "score": the word of the unknown-name error
        self._entries: dict[str, T] = {}
        self._families: list[_Family[T]] = []
        self._listed: list[str] = []  # names() in registration order: the entries' and the families' examples

    def register(self, entry: T) -> T:
        """Decorator: add `entry` under `entry.name`. A name registered twice is a programming error."""
        name = entry.name
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        self._listed.append(name)
        return entry

    def family(self, pattern: str, describe: str, examples: tuple[str, ...] = ()) -> Callable:
        """Decorator of `make(match) -> entry`: every name the pattern matches in full is an entry; `examples`
        (names the pattern matches) are listed by names()."""
        compiled = re.compile(pattern)
        if not all(compiled.fullmatch(name) for name in examples):
            raise ValueError(f"{self.kind} family {pattern!r}: an example does not match it")

        def add(make: Callable[[re.Match], T]) -> Callable[[re.Match], T]:
            self._families.append(_Family(compiled, make, describe))
            self._listed.extend(examples)
            return make
        return add

    def names(self) -> tuple[str, ...]:
        """Every registered name and each family's examples, in the order they were registered."""
        return tuple(self._listed)

    def get(self, name: str) -> T:
        """The entry of `name`; an unknown name is a one-line HarnessError listing the known ones."""
        if name in self._entries:
            return self._entries[name]
        for family in self._families:
            match = family.pattern.fullmatch(name)
            if match:
                return family.make(match)
        more = f" (or {', or '.join(f.describe for f in self._families)})" if self._families else ""
        raise HarnessError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}{more}")
