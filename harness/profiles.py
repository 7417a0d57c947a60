"""Profiles as data: harness/profiles.toml names the sizes of each run (see its header)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
_REQUIRED = {"description", "device", "model", "cpu_threads", "deterministic", "loader",
             "num_to_avg", "eval_batch_size", "seeds", "epochs", "datasets"}
_OPTIONAL = {"train_limit", "test_limit"}


@dataclass(frozen=True)
class DatasetPlan:
    id: str
    upstream: str
    ood: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device: str
    model: str
    cpu_threads: int
    deterministic: bool
    loader: str
    num_to_avg: int
    eval_batch_size: int
    seeds: tuple[int, ...]
    epochs: dict[str, int] = field(hash=False)
    datasets: tuple[DatasetPlan, ...]
    train_limit: int | None = None
    test_limit: int | None = None

    @property
    def id_dataset(self) -> str:
        return self.datasets[0].id

    @property
    def upstream_dataset(self) -> str:
        return self.datasets[0].upstream

    @property
    def ood_sets(self) -> tuple[str, ...]:
        return self.datasets[0].ood

    def plan(self, id_dataset: str) -> DatasetPlan:
        for plan in self.datasets:
            if plan.id == id_dataset:
                return plan
        raise HarnessError(f"profile {self.name!r} has no in-distribution dataset {id_dataset!r}; "
                           f"it has {[p.id for p in self.datasets]}")


def _parse(name: str, raw: dict) -> Profile:
    where = f"{PROFILES_FILE}: [{name}]"
    missing = _REQUIRED - raw.keys()
    unknown = raw.keys() - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise HarnessError(f"{where}: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}")
    if raw["device"] not in ("cpu", "cuda"):
        raise HarnessError(f"{where}: device must be 'cpu' or 'cuda', got {raw['device']!r}")
    if raw["loader"] not in ("fast", "reference"):
        raise HarnessError(f"{where}: loader must be 'fast' or 'reference', got {raw['loader']!r}")
    plans = tuple(DatasetPlan(d["id"], d["upstream"], tuple(d["ood"])) for d in raw["datasets"])
    values = {k: v for k, v in raw.items() if k != "datasets"}
    values["seeds"] = tuple(raw["seeds"])
    return Profile(name=name, datasets=plans, **values)


def _load() -> dict[str, Profile]:
    with PROFILES_FILE.open("rb") as f:
        raw = tomllib.load(f)
    return {name: _parse(name, body) for name, body in raw.items()}


_PROFILES = _load()


def names() -> list[str]:
    return list(_PROFILES)


def get(name: str) -> Profile:
    try:
        return _PROFILES[name]
    except KeyError:
        raise HarnessError(f"unknown profile {name!r}; known profiles: {', '.join(_PROFILES)}") from None
