"""Profiles as data: harness/profiles.toml names the sizes of each run (see its header).

A user's TOML file in the same format (`pytest benchmarks --profile-file PATH`) joins its profiles to the built-in
ones for the run, replacing a built-in profile of the same name. Every problem in a profile file is a HarnessError
`file:line: message`; every profile remembers the file it came from, its sha256 and its own table, so a record
says exactly what was run.
"""
from __future__ import annotations

import hashlib
from argparse import ArgumentTypeError
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import names as name_rule
from harness import options, tomlfile
from harness.errors import HarnessError
from harness.shift import ShiftPlan, parse_plan


PROFILES_FILE = Path(__file__).with_name("profiles.toml")
_REQUIRED = {"description", "device", "model", "cpu_threads", "deterministic", "loader",
             "num_to_avg", "eval_batch_size", "seeds", "epochs", "datasets"}
_OPTIONAL = {"train_limit", "upstream_train_limit", "test_limit", "ood_pool_limit", "aux_limit", "dry_run_of"}
_PLAN_FIELDS = {"id", "upstream", "ood"}
_PLAN_OPTIONAL = {"aux", "shift"}
# Integers reach C (torch.set_num_threads, seeds, counts): a value beyond a C int is a typo, refused by its line.
_MAX_INT = 2**31 - 1
_MAX_THREADS = 4096


@dataclass(frozen=True)
class DatasetPlan:
    id: str
    upstream: str
    ood: tuple[str, ...]
    aux: str | None = None  # the auxiliary outlier set of the outlier-exposed recipes (its train split)
    shift: ShiftPlan | None = None  # the shifted test set every case is also evaluated on (harness.shift)


@dataclass(frozen=True)
class Source:
    """Where a profile was defined: the file, its sha256 and the profile's own table as parsed."""

    file: str
    sha256: str
    content: dict = field(hash=False, compare=False)

    @property
    def builtin(self) -> bool:
        return Path(self.file) == PROFILES_FILE

    def to_json(self) -> dict:
        return {"file": self.file, "sha256": self.sha256, "builtin": self.builtin, "content": self.content}


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
    # the cap on an upstream (pretraining) dataset's training images; None: train_limit, as for every dataset
    upstream_train_limit: int | None = None
    test_limit: int | None = None
    ood_pool_limit: int | None = None  # cap on each dataset-backed OOD set's images (seeded sample); None: all
    aux_limit: int | None = None  # cap on the auxiliary outlier pool (seeded sample); None: all
    dry_run_of: str | None = None  # this profile runs that profile's cases and reports its bands, never fails on them
    source: Source | None = field(default=None, compare=False, hash=False)

    @property
    def id_dataset(self) -> str:
        return self.datasets[0].id

    @property
    def upstream_dataset(self) -> str:
        return self.datasets[0].upstream

    @property
    def ood_sets(self) -> tuple[str, ...]:
        return self.datasets[0].ood

    def train_limit_for(self, dataset: str) -> int | None:
        """The training-image cap of `dataset`: an upstream of one of the profile's datasets (and not an
        in-distribution one) takes `upstream_train_limit` when the profile sets it."""
        upstreams = {p.upstream for p in self.datasets} - {p.id for p in self.datasets}
        if self.upstream_train_limit is not None and dataset in upstreams:
            return self.upstream_train_limit
        return self.train_limit

    def plan(self, id_dataset: str) -> DatasetPlan:
        for plan in self.datasets:
            if plan.id == id_dataset:
                return plan
        raise HarnessError(f"profile {self.name!r} has no in-distribution dataset {id_dataset!r}; "
                           f"it has {[p.id for p in self.datasets]}")

    def with_ood_sets(self, spec: str) -> Profile:
        """The profile with `--ood-sets` applied: `a,b` replaces every dataset's OOD sets, `+a,b` adds to them."""
        try:
            add, names = options.split_names(spec)
        except ArgumentTypeError as exc:
            raise HarnessError(f"--ood-sets: {exc}") from None
        plans = tuple(replace(p, ood=tuple(dict.fromkeys((*p.ood, *names) if add else names))) for p in self.datasets)
        return replace(self, datasets=plans)


class _Lines:
    """`file:line` of a profile file's tables and keys (harness.tomlfile.scan), for error messages."""

    def __init__(self, path: Path, text: str):
        self.path, (self.tables, _) = path, tomlfile.scan(text)

    def at(self, name: str, key: str | None = None, plan: int | None = None) -> str:
        """`file:line` of `[name]` (or its plan-th `[[name.datasets]]`), or of `key = ...` inside that table."""
        wanted = (name, False) if plan is None else (f"{name}.datasets", True)
        hits = [t for t in self.tables if (t.name, t.array) == wanted]
        nth = plan or 0
        if nth >= len(hits):
            return f"{self.path}:1"
        return f"{self.path}:{hits[nth].line if key is None else hits[nth].at(key)}"


def _parse(name: str, raw: dict, lines: _Lines, known: Callable[[str], bool], source: Source) -> Profile:
    from harness import models, recipes  # the registries import this module's neighbours; load them late

    def fail(message: str, key: str | None = None, plan: int | None = None):
        raise HarnessError(f"{lines.at(name, key, plan)}: profile {name!r}: {message}")

    if not isinstance(raw, dict):
        fail("expected a table [NAME] of profile fields")
    if name_rule.problem(name):  # the name becomes the results folder results/<name>
        fail(name_rule.problem(name))
    missing, unknown = _REQUIRED - raw.keys(), raw.keys() - _REQUIRED - _OPTIONAL
    if unknown:
        key = sorted(unknown)[0]
        fail(f"unknown field {key!r} (fields: {', '.join(sorted(_REQUIRED | _OPTIONAL))})", key)
    if missing:
        fail(f"missing fields {sorted(missing)}")

    def integer(key: str, low: int, high: int = _MAX_INT) -> None:
        value = raw.get(key)
        if key in raw and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            fail(f"{key} must be an integer in {low}..{high}, got {value!r}", key)

    integer("cpu_threads", 0, _MAX_THREADS)
    for key in ("num_to_avg", "eval_batch_size", "train_limit", "upstream_train_limit", "test_limit",
                "ood_pool_limit", "aux_limit"):
        integer(key, 1)
    for key in ("description", "model"):
        if not isinstance(raw[key], str) or not raw[key]:
            fail(f"{key} must be a non-empty string, got {raw[key]!r}", key)
    if not isinstance(raw["deterministic"], bool):
        fail(f"deterministic must be true or false, got {raw['deterministic']!r}", "deterministic")
    if raw["device"] not in ("cpu", "cuda"):
        fail(f"device must be 'cpu' or 'cuda', got {raw['device']!r}", "device")
    if raw["loader"] not in ("fast", "reference"):
        fail(f"loader must be 'fast' or 'reference', got {raw['loader']!r}", "loader")
    if "dry_run_of" in raw and raw["dry_run_of"] != "paper":
        fail(f"dry_run_of: only 'paper' has bands to dry-run, got {raw['dry_run_of']!r}", "dry_run_of")
    if raw["model"] not in models.names():
        fail(f"unknown model {raw['model']!r}; known: {', '.join(models.names())}", "model")
    seeds = raw["seeds"]
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= _MAX_INT for s in seeds)):
        fail(f"seeds must be a non-empty list of distinct integers in 0..{_MAX_INT}, got {seeds!r}", "seeds")
    epochs = raw["epochs"]
    if not isinstance(epochs, dict):
        fail(f"epochs must be a table of recipe = count, got {epochs!r}", "epochs")
    for recipe, count in epochs.items():
        if recipe not in recipes.names():
            fail(f"epochs: unknown recipe {recipe!r}; known: {', '.join(recipes.names())}", "epochs")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= _MAX_INT:
            fail(f"epochs: {recipe} must be an integer in 1..{_MAX_INT}, got {count!r}", "epochs")
    if not isinstance(raw["datasets"], list) or not raw["datasets"]:
        fail(f"needs at least one [[{name}.datasets]] table (id, upstream, ood)")
    plans = []
    for i, entry in enumerate(raw["datasets"]):
        if not isinstance(entry, dict):
            fail("each datasets entry must be a table", plan=i)
        if not _PLAN_FIELDS <= entry.keys() <= _PLAN_FIELDS | _PLAN_OPTIONAL:
            wrong = sorted(entry.keys() - _PLAN_FIELDS - _PLAN_OPTIONAL) or sorted(_PLAN_FIELDS - entry.keys())
            fail(f"a datasets table has the fields id, upstream, ood and optionally aux, shift; check {wrong}",
                 wrong[0] if wrong[0] in entry else None, i)
        for key in ("id", "upstream", "aux"):
            if key in entry and (not isinstance(entry[key], str) or not known(entry[key])):
                fail(f"{key}: unknown dataset {entry[key]!r} (neither registered nor imported: "
                     f"python -m harness data import {entry[key]} PATH)", key, i)
        ood = entry["ood"]
        if not isinstance(ood, list) or not ood or any(not isinstance(n, str) for n in ood) \
                or len(set(ood)) != len(ood):
            fail(f"ood must be a non-empty list of distinct OOD set names, got {ood!r}", "ood", i)
        for n in ood:
            if not known(n):
                fail(f"ood: unknown OOD set {n!r} (neither registered, synthetic nor imported: "
                     f"python -m harness data import {n} PATH --format folder)", "ood", i)
        if entry.get("aux") == entry["id"]:
            fail(f"aux: the outlier set must differ from the in-distribution set {entry['id']!r}", "aux", i)
        shift_plan = None
        if "shift" in entry:
            shift_plan = parse_plan(entry["shift"], lambda message: fail(message, "shift", i))
            for n in shift_plan.natural:
                if not known(n):
                    fail(f"shift: sets: unknown dataset {n!r} (neither registered nor imported: python -m harness "
                         f"data import {n} PATH)", "shift", i)
        plans.append(DatasetPlan(entry["id"], entry["upstream"], tuple(ood), entry.get("aux"), shift_plan))
    if len({p.id for p in plans}) != len(plans):
        fail("two datasets tables have the same id")
    values = {k: v for k, v in raw.items() if k != "datasets"}
    values["seeds"] = tuple(seeds)
    return Profile(name=name, datasets=tuple(plans), source=source, **values)


def load_file(path: str | Path, known: Callable[[str], bool]) -> dict[str, Profile]:
    """Every profile of a profiles TOML file; `known(name)` says whether a dataset / OOD set name exists."""
    path = Path(path)
    raw, text = tomlfile.read(path, "profile file")
    if not raw:
        raise HarnessError(f"{path}:1: no profile tables ([NAME] with the fields of harness/profiles.toml)")
    lines, digest = _Lines(path, text), hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {name: _parse(name, body, lines, known, Source(str(path), digest, body)) for name, body in raw.items()}


def _registered(name: str) -> bool:
    from harness.data import registry, synthetic

    return name in registry.DATASETS or name in registry.OOD_SETS or name in synthetic.KINDS


_PROFILES = load_file(PROFILES_FILE, _registered)


def names() -> list[str]:
    return list(_PROFILES)


def get(name: str) -> Profile:
    try:
        return _PROFILES[name]
    except KeyError:
        raise HarnessError(f"unknown profile {name!r}; known profiles: {', '.join(_PROFILES)}") from None


def add_file(path: str | Path, data_root=None) -> list[str]:
    """Join the profiles of a user's file to the built-in ones for this process; returns their names.

    Dataset and OOD set names may be any registered, synthetic or imported (under `data_root`) dataset."""
    from harness import data as hdata

    loaded = load_file(path, lambda n: hdata.is_known(n, data_root))
    _PROFILES.update(loaded)
    return list(loaded)
