"""The holdout split and the guard that keeps the test split out of training and selection."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import checkpoints, data, splits
from harness.errors import HarnessError
from test_checkpoints import tiny_profile


@given(n=st.integers(3, 5000), fraction=st.floats(0.001, 0.5), rule=st.sampled_from(splits.RULES),
       classes=st.integers(1, 12), seed=st.integers(0, 100), sort=st.booleans())
def test_carve_partitions_the_set(n, fraction, rule, classes, seed, sort):
    labels = np.random.default_rng(seed).integers(0, classes, size=n)
    if sort:  # the imported train splits are ordered by class
        labels = np.sort(labels)
    holdout = splits.Holdout(fraction, rule)
    train_idx, held = holdout.carve(labels)
    assert len(held) == max(1, round(fraction * n)) and len(train_idx) + len(held) == n
    assert not set(train_idx) & set(held)
    assert list(held) == sorted(held) and list(train_idx) == sorted(train_idx)
    if rule == "tail":
        for c in np.unique(labels):
            of_class = np.flatnonzero(labels == c)
            mine = held[labels[held] == c]
            # each class gives its last images, its share of the holdout rounded one way or the other
            assert list(mine) == list(of_class[len(of_class) - len(mine):])
            assert abs(len(mine) - len(of_class) * len(held) / n) < 1
    else:
        assert np.array_equal(held, np.sort(np.random.default_rng(splits.SPLIT_SEED).permutation(n)[:len(held)]))
    assert np.array_equal(holdout.carve(labels)[1], held)  # does not depend on any global state


def test_tail_of_a_class_ordered_set_holds_every_class():
    labels = np.repeat(np.arange(10), 500)  # CIFAR-10 as imported: class by class
    train_idx, held = splits.Holdout(0.1, "tail").carve(labels)
    assert np.array_equal(np.bincount(labels[held]), np.full(10, 50))
    assert np.array_equal(held[:50], np.arange(450, 500))  # the last 50 airplanes


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0])
def test_fraction_outside_the_range_is_a_one_line_error(fraction):
    with pytest.raises(HarnessError, match=r"holdout fraction must be in \(0, 0.5\]"):
        splits.Holdout(fraction)


def test_unknown_rule_lists_the_rules():
    with pytest.raises(HarnessError, match="unknown holdout rule 'last'; valid rules: random, tail"):
        splits.Holdout(0.1, "last")


def test_two_stage_run_and_its_base_hold_out_the_same_images():
    profile = tiny_profile(train_limit=100)
    tst = checkpoints.plan("tst", "digits-0-4", profile, seed=0)
    base = checkpoints.plan("tst", "digits-0-4", profile, seed=3).upstreams[0]
    ts = checkpoints.plan("temperature_scaling", "digits-0-4", profile, seed=0)
    adam = checkpoints.plan("adam_base", "digits-0-4", profile, seed=1)
    assert len(tst.holdout_set) == 20 and len(tst.train_set) == 80 and ts.train_set is None
    for other in (ts.holdout_set, adam.holdout_set):
        assert np.array_equal(other.images, tst.holdout_set.images)
    # the scratch base trained on every image, so the tst holdout is not new to its body: recorded, not hidden
    assert tst.holdout_seen_by_upstream == 20 and len(base.train_set) == 100
    assert splits.image_digests(adam.holdout_set.images).isdisjoint(splits.image_digests(adam.train_set.images))


@pytest.mark.parametrize("recipe", ["scratch", "tst"])
def test_a_run_that_would_train_or_select_on_the_test_split_cannot_be_built(recipe, monkeypatch):
    real_load = data.load

    def mixed_up(name, split, **kwargs):  # a registry or reader bug that serves the test split as "train"
        return real_load(name, "test", **kwargs)
    monkeypatch.setattr(checkpoints.hdata, "load", mixed_up)
    with pytest.raises(HarnessError) as info:
        checkpoints.plan(recipe, "digits-0-4", tiny_profile(train_limit=None), 0)
    message = str(info.value)
    assert "\n" not in message and "training split of digits-0-4" in message and "test split" in message


@pytest.mark.parametrize("copies, dropped", [(1, 1), (5, None)])
def test_a_datasets_own_copies_of_test_images_are_left_out_more_are_refused(copies, dropped, monkeypatch):
    real_load = data.load

    def with_copies(name, split, **kwargs):  # a train split that holds `copies` test images, as Tiny ImageNet does
        images = real_load(name, split, **kwargs)
        if split != "train":
            return images
        test = real_load(name, "test", **kwargs)
        return data.ImageSet(np.concatenate([images.images, images.images, test.images[:copies]]),
                             np.concatenate([images.labels, images.labels, test.labels[:copies]]), images.classes)
    monkeypatch.setattr(checkpoints.hdata, "load", with_copies)
    profile = tiny_profile(train_limit=None)
    if dropped is None:
        with pytest.raises(HarnessError, match="training split of digits-0-4 holds 5 of"):
            checkpoints.plan("scratch", "digits-0-4", profile, 0)
        return
    run = checkpoints.plan("scratch", "digits-0-4", profile, 0)
    assert run.test_copies_dropped == dropped
    assert len(run.train_set) == 2 * len(real_load("digits-0-4", "train", image_size=32))


def test_a_few_leaked_test_images_are_caught_too():
    test = data.load("digits-0-4", "test", image_size=16)
    train = data.load("digits-0-4", "train", image_size=16)
    leaked = data.ImageSet(np.concatenate([train.images[:50], test.images[:1]]),
                           np.concatenate([train.labels[:50], test.labels[:1]]), train.classes)
    splits.check_not_test("digits-0-4", {"holdout split": None, "training split": train},
                          splits.image_digests(test.images))
    with pytest.raises(HarnessError, match="the holdout split of digits-0-4 holds 1 of 51 images"):
        splits.check_not_test("digits-0-4", {"holdout split": leaked}, splits.image_digests(test.images))
