"""`--shard K/N`: a deterministic part of the case list, for spreading a profile over N machines.

Cases that share a trained model must run on the same shard, or two machines would train it twice (the
checkpoint cache's file lock only serialises processes that see the same cache). A shard therefore holds whole
groups: the cases of one (in-distribution dataset, seed) row, joined with every other row that needs one of the
same models (e.g. two rows pre-trained on one upstream dataset). Whole rows also keep a row's direction claims
(fine-tuned vs scratch) on one shard, where both sides run. Groups go to shards largest first, each to the
shard with the fewest cases so far (ties: the lower shard), so every machine computes the same split from the
same case list.
"""
from __future__ import annotations

from argparse import ArgumentTypeError
from collections.abc import Sequence

from harness import options, recipes
from harness.errors import HarnessError
from harness.profiles import Profile
from harness.runner import LOADED


def parse(spec: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N -> (K, N)."""
    try:
        return options.shard_spec(spec)
    except ArgumentTypeError as exc:
        raise HarnessError(f"--shard: {exc}") from None


def trained_models(recipe: str, params: dict, dataset: str, seed: int, profile: Profile) -> set[tuple]:
    """Every trained model a case on `recipe` needs, itself included: (recipe, its parameters, dataset, seed)."""
    if recipe == LOADED:  # a model entry's file: nothing is trained
        return set()
    resolved = recipes.get(recipe, **params)
    upstream_dataset = profile.plan(dataset).upstream if dataset in {p.id for p in profile.datasets} else dataset
    nodes = {(recipe, tuple(sorted(params.items())), dataset, seed)} if resolved.trains else set()
    for dep in resolved.upstreams:
        on = dataset if dep.on == "same" else upstream_dataset
        nodes |= trained_models(dep.recipe, {}, on, seed, profile)
    return nodes


def assign(cases: Sequence[tuple[str, dict, str, int]], n: int, profile: Profile) -> list[int]:
    """The shard (1..n) of each case, a case being (recipe, recipe parameters, dataset, seed)."""
    parent: dict[tuple, tuple] = {}

    def root(x: tuple) -> tuple:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(a: tuple, b: tuple) -> None:
        parent[root(a)] = root(b)

    for recipe, params, dataset, seed in cases:
        row = ("row", dataset, seed)
        root(row)
        for node in trained_models(recipe, params, dataset, seed, profile):
            join(("model", *node), row)
    groups: dict[tuple, list[int]] = {}
    for i, (_, _, dataset, seed) in enumerate(cases):
        groups.setdefault(root(("row", dataset, seed)), []).append(i)
    load, shard_of = [0] * n, [0] * len(cases)
    for members in sorted(groups.values(), key=lambda m: (-len(m), m[0])):
        target = min(range(n), key=lambda s: (load[s], s))
        load[target] += len(members)
        for i in members:
            shard_of[i] = target + 1
    return shard_of
