"""Result records grouped the way every leaderboard page reads them: one Case per (profile, case id).

A case keeps all its runs, the newest run of each training seed, and the metrics the pages show: the newest run's
report for one seed, or the mean and population standard deviation (ddof 0, like the OOD repetitions) over seeds
when runs of several seeds exist.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property

from harness.site.cells import SEEDS, as_dict, as_list, canonical, text
from harness.spread import GATED_PROFILES

# How a profile's results are presented: the paper profile's are findings; the CPU profiles' are regression gates of
# small, briefly trained models; a profile from --profile-file is neither.
PROFILE_KINDS = ("paper", "gate", "other")


def profile_kind(profile: str) -> str:
    return "paper" if profile == "paper" else "gate" if profile in GATED_PROFILES else "other"


def profile_order(profile: str) -> tuple[int, str]:
    """Paper profile first, then the CPU regression gates, then other profiles; by name within each."""
    return PROFILE_KINDS.index(profile_kind(profile)), profile


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:48] or "x"


def ident(*parts: str) -> str:
    """A safe, deterministic file or anchor name: readable slug plus a short hash of the exact id."""
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:10]
    return f"{'--'.join(_slug(p) for p in parts)}-{digest}"


def grouped(cases: list[Case]) -> list[tuple[str, str, list[Case]]]:
    """(profile, dataset, cases) per table of the site: paper profile first, then by profile and dataset."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.profile, case.dataset), []).append(case)
    return [(p, d, groups[p, d]) for p, d in sorted(groups, key=lambda g: (profile_order(g[0]), g[1]))]


def ood_set_names(metrics: dict) -> list[str]:
    """The OOD sets a report's keys name (ood/<set>/...), sorted, the `mean` pseudo-set last."""
    named = {k.split("/")[1] for k in metrics if k.startswith("ood/") and k.count("/") >= 2}
    return sorted(named - {"mean"}) + (["mean"] if "mean" in named else [])


def time_of(record: dict) -> str:
    return text(as_dict(record.get("provenance")).get("time_utc"))


def metrics_of(record: dict) -> dict:
    return as_dict(as_dict(record.get("report")).get("metrics"))


def over_seeds(records: list[dict]) -> dict:
    """{key: {mean, std, n, over}} over the records (one per seed), for the keys every one of them has."""
    tables = [metrics_of(r) for r in records]
    shared = set(tables[0]).intersection(*tables[1:])
    out = {}
    for key in sorted(shared):
        means = [as_dict(t[key]).get("mean") for t in tables]
        if all(isinstance(m, (int, float)) and not isinstance(m, bool) for m in means):
            mean = math.fsum(means) / len(means)
            out[key] = {"mean": mean, "std": math.sqrt(math.fsum((m - mean) ** 2 for m in means) / len(means)),
                        "n": len(means), "over": SEEDS}
    return out


@dataclass(frozen=True)
class Case:
    """The runs of one (profile, case id): newest first, and the newest of each seed (by seed)."""
    runs: tuple[dict, ...]
    seeds: tuple[dict, ...]
    href: str  # relative to the site root

    @property
    def record(self) -> dict:
        return self.runs[0]

    @property
    def case_id(self) -> str:
        return text(self.record["case_id"])

    @property
    def profile(self) -> str:
        return text(self.record["profile"])

    @property
    def dataset(self) -> str:
        return text(self.record["dataset"])

    @cached_property
    def metrics(self) -> dict:
        """What the pages show: the newest run's metrics, or mean +- std over the seeds when there are several."""
        return metrics_of(self.record) if len(self.seeds) == 1 else over_seeds(list(self.seeds))

    @property
    def seed_list(self) -> str:
        return ", ".join(text(r.get("seed")) for r in self.seeds)

    @property
    def bands(self) -> list[dict]:
        return as_list(as_dict(self.record.get("verdicts")).get("bands"))

    @property
    def recipe(self) -> str:
        recipe = self.record.get("recipe")
        return text(recipe.get("name") if isinstance(recipe, dict) else recipe)

    @property
    def settings(self) -> dict:
        return as_dict(as_dict(self.record.get("recipe")).get("settings"))

    @property
    def pretrain_dataset(self) -> str | None:
        value = as_dict(self.record.get("recipe")).get("pretrain_dataset")
        return value if isinstance(value, str) else None

    @property
    def upstream(self) -> str:
        up = as_dict(as_dict(self.record.get("recipe")).get("upstream"))
        if up.get("entry"):
            return f"model entry {text(up['entry'])}"
        return f"{text(up.get('recipe'))} on {text(up.get('dataset'))}" if up else ""

    @property
    def loaded(self) -> str:
        """What a loaded (not trained) model was loaded from: its model entry, else its file; "" when trained."""
        loaded = as_dict(self.record.get("loaded"))
        if not loaded:
            return ""
        return f"entry {text(loaded['entry'])}" if loaded.get("entry") else text(loaded.get("file"))

    @property
    def score(self) -> str:
        score = self.record.get("score")
        return text(score.get("name") if isinstance(score, dict) else score)

    @property
    def score_params(self) -> str:
        params = as_dict(as_dict(self.record.get("score")).get("params"))
        return ", ".join(f"{k}={text(params[k])}" for k in sorted(params))

    @property
    def variant(self) -> str:
        """The recipe as the case id names it, e.g. `wise_ft-alpha0.25`: the case id without dataset and score."""
        name = self.case_id
        head, tail = f"{self.dataset}-", f"-{self.score}"
        if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
            return name[len(head):-len(tail)]
        return self.recipe


def cases_of(records: list[dict]) -> list[Case]:
    """One Case per (profile, case id), sorted by them; runs newest first (time, then content, for ties)."""
    by_key: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        by_key.setdefault((text(record["profile"]), text(record["case_id"])), []).append(record)
    cases = []
    for (profile, case_id), runs in sorted(by_key.items()):
        runs.sort(key=lambda r: (time_of(r), canonical(r)), reverse=True)
        newest: dict[int, dict] = {}
        for run in runs:
            newest.setdefault(run["seed"], run)
        seeds = tuple(newest[s] for s in sorted(newest))
        cases.append(Case(tuple(runs), seeds, f"cases/{ident(profile, case_id)}.html"))
    return cases
