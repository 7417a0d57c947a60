"""--shard K/N: disjoint parts whose union is the whole case list, with every model's cases on one shard."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from harness import profiles, shards
from harness.errors import HarnessError
from harness.profiles import DatasetPlan

REPO = Path(__file__).resolve().parents[1]


def _collected(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider", "--collect-only",
                          "-q", "--profile", "paper", "--seeds", "0,1,2", *args],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 5), out.stdout[-2000:] + out.stderr[-2000:]
    return [line for line in out.stdout.splitlines() if "::test_case[" in line]


@pytest.mark.slow
def test_paper_shards_are_disjoint_and_cover_the_case_list():
    full = _collected()
    parts = [_collected("--shard", f"{k}/3") for k in (1, 2, 3)]
    assert all(parts), "three seeds give three rows: every shard has work"
    assert sorted(sum(parts, [])) == sorted(full) and len(set(sum(parts, []))) == len(full)
    for part in parts:  # a row (dataset, seed) never spans two shards
        seeds = {line.rsplit("-s", 1)[1].rstrip("]") for line in part}
        assert len(seeds) == 1, seeds


def _cases(profile, seeds=(0,)):
    return [(r, p, plan.id, s) for plan in profile.datasets for s in seeds
            for r, p in (("scratch", {}), ("finetune", {}), ("lp_ft", {}), ("wise_ft", {"alpha": 0.5}))]


def test_dependants_stay_together_and_a_shared_upstream_joins_rows():
    smoke = profiles.get("smoke")
    two = dataclasses.replace(smoke, datasets=(DatasetPlan("digits-0-4", "digits", ("gaussian",)),
                                               DatasetPlan("digits-5-9", "digits", ("gaussian",)),
                                               DatasetPlan("digits", "digits-0-4", ("gaussian",))))
    cases = _cases(two, seeds=(0, 1))
    assignment = shards.assign(cases, 4, two)
    by_model: dict[tuple, set[int]] = {}
    for case, shard in zip(cases, assignment):
        for node in shards.trained_models(case[0], case[1], case[2], case[3], two):
            by_model.setdefault(node, set()).add(shard)
    assert all(len(s) == 1 for s in by_model.values()), "a model would be trained on two shards"
    # digits-0-4 and digits-5-9 pre-train on the same upstream: one group per seed, apart from the third row
    shard_of = {(c[2], c[3]): s for c, s in zip(cases, assignment)}
    assert shard_of[("digits-0-4", 0)] == shard_of[("digits-5-9", 0)] != shard_of[("digits-0-4", 1)]
    assert shards.assign(cases, 4, two) == assignment and set(assignment) == {1, 2, 3, 4}


def test_trained_models_follow_the_recipe_dependencies():
    smoke = profiles.get("smoke")
    nodes = shards.trained_models("wise_ft", {"alpha": 0.5}, "digits-0-4", 0, smoke)
    assert {n[0] for n in nodes} == {"pretrain", "finetune"}  # wise_ft itself trains nothing
    assert ("pretrain", (), "digits-5-9", 0) in nodes


@pytest.mark.parametrize("spec", ["3", "0/3", "4/3", "a/b", "1/0", "2/3/4"])
def test_bad_shard_specs(spec):
    with pytest.raises(HarnessError, match="--shard"):
        shards.parse(spec)
