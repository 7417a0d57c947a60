"""Every registry (recipes, objectives, scores, models) has one shape: a decorator fills it, names() lists it, an
unknown name is a one-line error naming the known ones. Parametrised over the registries' names, so a new entry
is checked by adding it."""
from __future__ import annotations

import dataclasses

import pytest

from harness import models, objectives, recipes, scores
from harness.errors import HarnessError
from harness.registry import Registry

REGISTRIES = {"recipe": recipes.RECIPES, "objective": objectives.OBJECTIVES, "score": scores.SCORES,
              "model": models.MODELS}
ENTRIES = [(kind, name) for kind, registry in REGISTRIES.items() for name in registry.names()]


@pytest.mark.parametrize("kind, name", ENTRIES)
def test_every_listed_name_is_an_entry_of_that_name(kind, name):
    assert REGISTRIES[kind].get(name).name == name


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_builds_with_its_reference_settings(name):
    recipe = recipes.get(name)
    assert recipe.name == name and recipe.summary
    assert recipes.get(name, **recipe.settings()) == recipe
    assert all(recipes.get(up.recipe) for up in recipe.upstreams if up.recipe in recipes.names())


@pytest.mark.parametrize("name", objectives.names())
def test_every_objective_takes_exactly_its_settings(name):
    entry = objectives.get(name, **{setting: 1.0 for setting in objectives.OBJECTIVES.get(name).settings})
    assert entry.name == name and entry.summary and callable(entry.loss)


@pytest.mark.parametrize("kind", REGISTRIES)
def test_an_unknown_name_is_one_line_listing_the_known_ones(kind):
    registry = REGISTRIES[kind]
    with pytest.raises(HarnessError) as info:
        registry.get("no-such-thing")
    message = str(info.value)
    assert message.startswith(f"unknown {kind} 'no-such-thing'; known {kind}s: {', '.join(registry.names())}")
    assert "\n" not in message


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str


def test_registry_lists_entries_and_family_examples_in_registration_order():
    registry: Registry[_Entry] = Registry("widget")
    registry.register(_Entry("plain"))

    @registry.family(r"w-(\d+)", "any w-SIZE", examples=("w-1", "w-2"))
    def _sized(match):
        return _Entry(match[0])

    registry.register(_Entry("last"))
    assert registry.names() == ("plain", "w-1", "w-2", "last")
    assert registry.get("w-7") == _Entry("w-7")  # a family stands for every name its pattern matches
    with pytest.raises(HarnessError, match=r"^unknown widget 'w-x'; known widgets: plain, w-1, w-2, last "
                                           r"\(or any w-SIZE\)$"):
        registry.get("w-x")


def test_a_name_registered_twice_or_an_example_outside_its_family_is_a_programming_error():
    registry: Registry[_Entry] = Registry("widget")
    registry.register(_Entry("a"))
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        registry.register(_Entry("a"))
    with pytest.raises(ValueError, match="an example does not match"):
        registry.family(r"w-(\d+)", "any w-SIZE", examples=("v-1",))
