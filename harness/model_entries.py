"""Model entries: a model that is loaded, not trained (`benchmarks/models/<name>.toml`, docs/own-model.md).

An entry names the architecture, the checkpoint (a path, or a URL with its sha256 or git blob id, fetched only
when asked), how the file's keys map onto the model (harness.state_mapping), the input normalization it was
trained with, its in-distribution dataset, where it comes from, the data it was trained on (the leakage guard
refuses an evaluation whose declared training data holds test images) and optionally the paper's numbers it must
reproduce. `python -m harness evaluate --checkpoint FILE` builds the same thing from options for a one-off file.

Every problem is one line naming the entry, the field and `file:line` (or the command-line option).
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from harness import bands, checkpoints, clip, models, names, normalizations, profiles, splits, tomlfile
from harness import data as hdata
from harness.errors import HarnessError
from harness.state_mapping import StateMapping

ENTRIES_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "models"
HARNESS_NORMALIZATION = normalizations.HALF  # what harness.data.normalize feeds every model

_TOP = {"architecture": str, "num_classes": int, "dataset": str, "image_size": int, "ood_sets": list,
        "description": str}
_TABLES = {
    "checkpoint": {"path": str, "url": str, "sha256": str, "git_blob": str},
    "state_dict": {"strip_prefix": str, "drop": list, "head": bool, "head_prefix": str},
    "normalize": {"mean": list, "std": list},
    "provenance": {"released_by": str, "paper": str, "recipe": str, "license": str, "source": str,
                   "trained_on": list, "note": str},
    # a CLIP entry (architecture open_clip:ARCH): harness.clip.entries, docs/clip.md
    "clip": {"pretrained": str, "model_config": str, "templates": str, "classnames": list, "classnames_from": str},
}
_BAND = {"metric": str, "score": str, "value": float, "tolerance": float, "source": str, "profile": str}
_BAND_OPTIONAL = {"profile": "paper"}  # the profile whose runs a band gates (its data and sizes are the paper's)
_REQUIRED = ("architecture", "num_classes")


@dataclass(frozen=True)
class EntryBand:
    """A published number of this very model: `value` +- `tolerance` of `metric` under `score`."""

    metric: str
    score: str
    value: float
    tolerance: float
    source: str
    profile: str = "paper"

    def verdict(self, metrics: dict, comparable: str | None) -> dict:
        """The record's band verdict (the shape harness.bands.Verdict.to_json writes); `comparable` says why the
        run cannot be compared with the paper (e.g. other OOD sets in the mean): then it is not measured."""
        low, high = self.value - self.tolerance, self.value + self.tolerance
        measured = None if comparable else metrics.get(self.metric, {}).get("mean")
        passed = None if measured is None else low <= measured <= high
        band = f"[{low:.2f}, {high:.2f}]"
        message = (f"{self.metric} not measured (band {band}{': ' + comparable if comparable else ''})"
                   if measured is None else
                   f"{self.metric} = {measured:.2f} {'inside' if passed else 'outside'} band {band}")
        return {"metric": self.metric, "measured": measured, "low": low, "high": high, "paper_value": self.value,
                "source": self.source, "passed": passed, "proxy": False,
                "message": f"{message} (paper {self.value:.2f}; source: {self.source})"}


@dataclass
class Entry:
    name: str
    architecture: str
    num_classes: int
    dataset: str | None  # None: an upstream only (its head's classes are no harness dataset)
    image_size: int = 32
    ood_sets: tuple[str, ...] = ()  # the OOD sets of the paper's mean, when the entry has bands on ood/mean
    path: str | None = None  # a local checkpoint file
    url: str | None = None
    sha256: str | None = None
    git_blob: str | None = None
    mapping: StateMapping = StateMapping()
    normalize: tuple[tuple[float, ...], tuple[float, ...]] = HARNESS_NORMALIZATION
    provenance: dict = field(default_factory=dict)
    trained_on: tuple[str, ...] = ()  # "dataset:split" the model was trained on (the leakage guard checks them)
    bands: tuple[EntryBand, ...] = ()
    clip: dict = field(default_factory=dict)  # the [clip] table of an open_clip entry
    where: dict[str, str] = field(default_factory=dict)  # field -> "file:line" or the command-line option
    origin: str | None = None  # the entry file; None for a one-off file given on the command line

    def fail(self, key: str, message: str):
        place = self.where.get(key) or self.where.get(key.split(".")[0]) or self.where.get("", "")
        raise HarnessError(f"{place}: model entry {self.name}: {key}: {message}" if place else
                           f"model entry {self.name}: {key}: {message}")

    # --- the file ---------------------------------------------------------------------------------
    def source_url(self) -> str:
        """Where `--download` fetches the checkpoint: the entry's url, else (a CLIP entry that names no file) the
        address open_clip's config gives its pretrained tag."""
        if self.url is not None:
            return self.url
        from harness.clip import entries as clip_entries
        url = clip_entries.spec(self).tag_config().get("url")
        if not url:
            self.fail("clip.pretrained", f"open_clip gives tag {self.clip['pretrained']!r} no download address; "
                                         f"give checkpoint.path or checkpoint.url")
        return url

    def file(self, data_root=None) -> Path:
        """Where the checkpoint is on this machine (it may not exist yet)."""
        if self.path is not None:
            return Path(self.path).expanduser()
        return checkpoints.default_cache_dir(data_root) / "models" / self.name / Path(self.source_url()).name

    def fetch_command(self) -> str:
        if self.path is not None:
            return f"place the checkpoint file at {self.file()} (checkpoint.path of the entry)"
        return f"python -m harness evaluate --entry {self.name} --download"

    def absent(self, data_root=None) -> str | None:
        """Why the checkpoint cannot be used here (with the command that gets it), else None."""
        try:
            if self.file(data_root).is_file():
                return None
        except HarnessError as exc:  # a tagged CLIP entry without open_clip: why it cannot run here
            return str(exc)
        return (f"model entry {self.name}: checkpoint {self.file(data_root)} is absent; get it with: "
                f"{self.fetch_command()}")

    def download(self, data_root=None) -> Path:
        """Fetch the URL into the checkpoint cache (a no-op when the file is there); verified before it is kept."""
        target = self.file(data_root)
        if target.is_file() or self.path is not None:
            return target
        url = self.source_url()
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
                shutil.copyfileobj(response, out)
            self.verified_sha256(partial)
            os.replace(partial, target)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.fail("checkpoint.url" if self.url else "clip.pretrained", f"cannot download {url}: {exc}")
        finally:
            partial.unlink(missing_ok=True)
        return target

    def verified_sha256(self, path: Path) -> str:
        """The sha256 of `path` after checking it against the entry's sha256 or git blob id."""
        if not path.is_file():
            self.fail("checkpoint.path" if self.path else "checkpoint.url",
                      f"checkpoint file {path} does not exist; get it with: {self.fetch_command()}")
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if self.sha256 is not None and sha256 != self.sha256:
            self.fail("checkpoint.sha256", f"{path} has sha256 {sha256}, expected {self.sha256}: wrong or damaged file")
        if self.git_blob is not None:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
            if blob != self.git_blob:
                self.fail("checkpoint.git_blob", f"{path} has git blob id {blob}, expected {self.git_blob}: wrong or "
                                                 f"damaged file")
        return sha256

    def checkpoint(self, data_root=None) -> checkpoints.UserCheckpoint:
        """The verified file as a user checkpoint (what a recipe's upstream and the evaluation load)."""
        path = self.file(data_root)
        return checkpoints.UserCheckpoint(str(path), self.verified_sha256(path), model=self.architecture,
                                          mapping=self.mapping, num_classes=self.num_classes, entry=self.name)

    def as_upstream(self, dataset: str, data_root=None) -> checkpoints.UserCheckpoint:
        """The entry as the pretrained model of a recipe trained on `dataset`, after the leakage guard. The
        recipe trains on the harness's normalization: an entry trained with another one is told so on stderr."""
        missing = self.absent(data_root)
        if missing:
            raise HarnessError(missing)
        self.check_not_test(dataset, data_root)
        if self.normalize != HARNESS_NORMALIZATION:
            print(f"note: model entry {self.name} was trained with input mean {list(self.normalize[0])}, std "
                  f"{list(self.normalize[1])}; the recipe trains and evaluates it on the harness's 0.5/0.5",
                  file=sys.stderr)
        return self.checkpoint(data_root)

    def load(self, data_root=None) -> tuple[nn.Module, dict]:
        """The model on the CPU, in eval mode, fed the harness's normalization (converted to the entry's)."""
        if clip.arch_of(self.architecture):
            from harness.clip import entries as clip_entries
            model, info = clip_entries.zero_shot_classifier(self, self.dataset, data_root)
            return model.eval(), info
        checkpoint = self.checkpoint(data_root)
        try:
            model, info = checkpoints.load_user(checkpoint)
        except HarnessError as exc:
            self.fail("state_dict", str(exc))
        if self.normalize != HARNESS_NORMALIZATION:
            model = Renormalized(model, *self.normalize)
        return model.eval(), info

    # --- the leakage guard ------------------------------------------------------------------------
    def check_not_test(self, dataset: str, data_root=None) -> str:
        """Refuse when a declared training set holds images of `dataset`'s test split (content hashes); the
        record's line on what was checked. A declared set that is not imported here cannot be checked: said so."""
        if not self.trained_on:
            return "not checked: the entry declares no training data (provenance.trained_on)"
        size = hdata.spec(dataset, data_root).image_size
        test = splits.image_digests(hdata.load(dataset, "test", data_root=data_root, image_size=size).images)
        checked, unchecked = [], []
        for item in self.trained_on:
            name, _, split = item.partition(":")
            try:
                images = hdata.load(name, split, data_root=data_root, image_size=size)
            except HarnessError as exc:
                unchecked.append(f"{item} ({exc})")
                continue
            try:
                splits.check_not_test(dataset, {f"declared training data {item} of model entry {self.name}": images},
                                      test)
            except HarnessError as exc:
                self.fail("provenance.trained_on", str(exc))
            checked.append(item)
        parts = [f"checked: {', '.join(checked)} share no image with {dataset}'s test split"] if checked else []
        if unchecked:
            parts.append(f"not checked: {', '.join(unchecked)}")
        return "; ".join(parts)

    def band_verdicts(self, score: str, metrics: dict, ood_run: list[str], profiles: tuple[str, ...]) -> list[dict]:
        """The entry's bands for this score on a run of one of `profiles` (the profile, and the one it is a dry run
        of); a band on the mean over OOD sets is compared only when the run's sets are the paper's (`ood_sets`),
        every one of them measured."""
        differ = None
        if set(ood_run) != set(self.ood_sets):
            differ = (f"the run's OOD sets ({', '.join(sorted(ood_run))}) are not the paper's "
                      f"({', '.join(sorted(self.ood_sets))})")
        return [band.verdict(metrics, differ if band.metric.startswith("ood/mean/") else None)
                for band in self.bands if band.score == score and band.profile in profiles]

    def to_json(self) -> dict:
        return {"entry": self.name, "architecture": self.architecture, "num_classes": self.num_classes,
                "url": self.url if self.url or self.path else self.source_url(), "git_blob": self.git_blob,
                "mapping": self.mapping.to_json(),
                "normalize": {"mean": list(self.normalize[0]), "std": list(self.normalize[1])},
                "provenance": dict(self.provenance), "trained_on": list(self.trained_on)}


class Renormalized(nn.Module):
    """A model trained with another input normalization, fed the harness's: x_h = (u - 0.5) / 0.5 becomes
    (u - mean) / std before the model sees it. `features` and `fc` stay the model's (scores use both)."""

    def __init__(self, body: nn.Module, mean, std):
        super().__init__()
        self.body = body
        scale, shift = models.input_affine(mean, std)
        self.register_buffer("scale", scale, persistent=False)
        self.register_buffer("shift", shift, persistent=False)
        self.fc = body.fc
        self.feature_dim = body.feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body.features(x * self.scale.to(x.dtype) + self.shift.to(x.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


# ---------------------------------------------------------------- reading entries

def parse_normalize(values, fail) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel from 2 numbers (the same for every channel) or 3 means then 3 stds."""
    values = list(values)
    if len(values) not in (2, 6) or not all(_number(v) for v in values):
        fail(f"expected MEAN,STD (2 numbers) or 3 means then 3 stds (6 numbers), got {len(values)} values {values}")
    mean, std = (values[:1] * 3, values[1:] * 3) if len(values) == 2 else (values[:3], values[3:])
    if any(s <= 0 for s in std):
        fail(f"every std must be > 0, got {std}")
    return tuple(map(float, mean)), tuple(map(float, std))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _typed(value, kind) -> bool:
    if kind is float:
        return _number(value)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if kind is list:
        return isinstance(value, list)
    if kind is str:
        return isinstance(value, str) and value.strip() != ""
    return isinstance(value, kind)


def load(path: str | Path) -> Entry:
    """One entry file, validated; any problem -> HarnessError '<file>:<line>: model entry NAME: field: ...'."""
    path = Path(path)
    name = names.check(path.stem, f"{path}: model entry name")  # it names the entry's download folder
    data, text = tomlfile.read(path, f"model entry {name}")
    tables, top = tomlfile.scan(text)
    lines = {key: f"{path}:{n}" for key, n in top.items()}
    for table in tables:
        lines.setdefault(table.name, f"{path}:{table.line}")
        lines.update({f"{table.name}.{k}": f"{path}:{n}" for k, n in table.keys.items()})
    lines[""] = str(path)
    entry = Entry(name, architecture="", num_classes=1, dataset="", where=lines, origin=str(path))

    def check(key, value, kind):
        if not _typed(value, kind):
            wanted = {str: "a non-empty string", int: "an integer >= 1", float: "a finite number", list: "a list",
                      bool: "true or false"}[kind]
            entry.fail(key, f"must be {wanted}, got {value!r}")
        return value

    for key, value in data.items():
        if key in _TABLES:
            if not isinstance(value, dict):
                entry.fail(key, f"must be a table [{key}]")
            for sub, v in value.items():
                if sub not in _TABLES[key]:
                    entry.fail(f"{key}.{sub}", f"unknown field (expected one of: {', '.join(_TABLES[key])})")
                check(f"{key}.{sub}", v, _TABLES[key][sub])
        elif key == "band":
            if not isinstance(value, list):
                entry.fail(key, "write each band as a [[band]] table")
        elif key in _TOP:
            check(key, value, _TOP[key])
        else:
            entry.fail(key, f"unknown field (expected one of: {', '.join([*_TOP, *_TABLES, 'band'])})")
    for key in _REQUIRED:
        if key not in data:
            entry.fail(key, "missing (required)")
    entry.architecture, entry.num_classes = data["architecture"], data["num_classes"]
    entry.dataset = data.get("dataset")
    entry.image_size = data.get("image_size", 32)
    if not all(isinstance(o, str) and o for o in data.get("ood_sets", [])):
        entry.fail("ood_sets", f"must list OOD set names, got {data['ood_sets']!r}")
    entry.ood_sets = tuple(data.get("ood_sets", ()))
    if entry.dataset is None and (entry.ood_sets or data.get("band")):
        entry.fail("dataset", "an entry with bands or OOD sets needs the dataset they were measured on")
    try:
        if clip.arch_of(entry.architecture) is None:
            models.spec(entry.architecture)
    except HarnessError as exc:
        entry.fail("architecture", str(exc))
    entry.clip = dict(data.get("clip", {}))
    if entry.clip and clip.arch_of(entry.architecture) is None:
        entry.fail("clip", f"a [clip] table needs architecture = \"{clip.ARCH_PREFIX}NAME\"")
    if not all(isinstance(c, str) and c for c in entry.clip.get("classnames", [])):
        entry.fail("clip.classnames", f"must list class names (strings), got {entry.clip['classnames']!r}")
    if {"classnames", "classnames_from"} <= set(entry.clip):
        entry.fail("clip.classnames_from", "give clip.classnames or clip.classnames_from, not both")
    if "classnames_from" in entry.clip and entry.clip["classnames_from"] not in clip.CLASSNAME_SOURCES:
        entry.fail("clip.classnames_from", f"no such class-name source {entry.clip['classnames_from']!r} "
                                           f"(known: {', '.join(clip.CLASSNAME_SOURCES)})")
    if "model_config" in entry.clip:
        entry.clip["model_config"] = str((path.parent / Path(entry.clip["model_config"]).expanduser()).resolve())
    ckpt = data.get("checkpoint", {})
    tagged = "pretrained" in entry.clip and not {"path", "url"} & set(ckpt)  # fetched from its tag's address
    if not tagged and ("path" in ckpt) == ("url" in ckpt):
        entry.fail("checkpoint", "give exactly one of path (a local file) and url"
                   + (" (or neither, with clip.pretrained)" if entry.clip else ""))
    if "url" in ckpt and not ({"sha256", "git_blob"} & set(ckpt)):
        entry.fail("checkpoint.url", "a URL needs sha256 or git_blob to check what was downloaded")
    if tagged and not ({"sha256", "git_blob"} & set(ckpt)):
        entry.fail("checkpoint", "a checkpoint fetched by its clip.pretrained tag needs sha256 or git_blob to check "
                                 "what was downloaded")
    for key, size in (("sha256", 64), ("git_blob", 40)):
        value = ckpt.get(key)
        if value is not None and (len(value) != size or any(c not in "0123456789abcdef" for c in value)):
            entry.fail(f"checkpoint.{key}", f"must be {size} lowercase hex digits, got {value!r}")
    if "path" in ckpt:
        entry.path = str((path.parent / Path(ckpt["path"]).expanduser()).resolve())
    entry.url, entry.sha256, entry.git_blob = ckpt.get("url"), ckpt.get("sha256"), ckpt.get("git_blob")
    sd = data.get("state_dict", {})
    if not all(isinstance(p, str) for p in sd.get("drop", [])):
        entry.fail("state_dict.drop", f"must be a list of glob patterns (strings), got {sd['drop']!r}")
    entry.mapping = StateMapping(sd.get("strip_prefix", ""), tuple(sd.get("drop", ())), sd.get("head", True),
                                 sd.get("head_prefix", "fc."))
    norm = data.get("normalize")
    if norm is not None:
        for key in ("mean", "std"):
            if len(norm.get(key, ())) != 3:
                entry.fail(f"normalize.{key}", f"must list 3 numbers (one per channel), got {norm.get(key)!r}")
        entry.normalize = parse_normalize([*norm["mean"], *norm["std"]], lambda m: entry.fail("normalize", m))
    entry.provenance = {k: v for k, v in data.get("provenance", {}).items() if k != "trained_on"}
    trained_on = data.get("provenance", {}).get("trained_on", [])
    if not all(isinstance(t, str) and t.count(":") == 1 and all(t.split(":")) for t in trained_on):
        entry.fail("provenance.trained_on", f"must list DATASET:SPLIT strings, got {trained_on!r}")
    entry.trained_on = tuple(trained_on)
    entry.bands = tuple(_band(entry, i, b, tables) for i, b in enumerate(data.get("band", [])))
    return entry


def _band(entry: Entry, index: int, band: dict, tables) -> EntryBand:
    located = [t for t in tables if t.name == "band"]
    table = located[index] if index < len(located) else None
    label = f"band #{index + 1}"
    if table is not None:
        entry.where[label] = f"{entry.where['']}:{table.line}"
    for key, value in band.items():
        if key not in _BAND:
            entry.fail(label, f"unknown field {key!r} (expected one of: {', '.join(_BAND)})")
        if not _typed(value, _BAND[key]):
            entry.fail(label, f"field {key!r} must be {'a number' if _BAND[key] is float else 'a string'}, "
                              f"got {value!r}")
    missing = [k for k in _BAND if k not in band and k not in _BAND_OPTIONAL]
    if missing:
        entry.fail(label, f"missing field(s) {', '.join(missing)}")
    if not bands.is_metric_key(band["metric"]):
        entry.fail(label, f"unknown metric key {band['metric']!r}")
    if band["tolerance"] < 0:
        entry.fail(label, f"tolerance must be >= 0, got {band['tolerance']}")
    profile = band.get("profile", _BAND_OPTIONAL["profile"])
    if profile not in profiles.names():
        entry.fail(label, f"profile {profile!r} is no profile (known: {', '.join(profiles.names())})")
    return EntryBand(band["metric"], band["score"], float(band["value"]), float(band["tolerance"]), band["source"],
                     profile)


def load_all(directory: str | Path | None = None) -> list[Entry]:
    """Every `*.toml` of `directory` (default benchmarks/models, or $HARNESS_MODELS_DIR), by name."""
    directory = Path(directory or os.environ.get("HARNESS_MODELS_DIR") or ENTRIES_DIR)
    if not directory.is_dir():
        raise HarnessError(f"{directory}: model entry directory not found")
    return [load(p) for p in sorted(directory.glob("*.toml"))]


def upstream(name: str, dataset: str, data_root=None) -> checkpoints.UserCheckpoint:
    """`--upstream-entry NAME`: the entry's checkpoint as a recipe's pretrained model (see Entry.as_upstream)."""
    return get(name).as_upstream(dataset, data_root)


def get(name: str, directory: str | Path | None = None) -> Entry:
    entries = {e.name: e for e in load_all(directory)}
    if name not in entries:
        raise HarnessError(f"unknown model entry {name!r}; entries: {', '.join(entries) or 'none'} "
                           f"(files benchmarks/models/<name>.toml)")
    return entries[name]
