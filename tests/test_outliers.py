"""Outlier-exposed training: the outlier objectives, the outlier stream (both loader paths, resume), the recipes'
outlier set and margins, the OOD sets they exclude, the papers' means, and the one-line errors of bad input."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from harness import checkpoints, cli, data, objectives, outliers, profiles, recipes, train
from harness.data import loaders
from harness.errors import HarnessError

HYPER = train.Hyper(epochs=2, lr=0.05, weight_decay=5e-4, batch_size=16, aux_batch_size=8,
                    objective="energy_margin", objective_settings=(("m_in", -7.0), ("m_out", -3.0)))
QUIET = train.Options(quiet=True)


@pytest.fixture(scope="module")
def digits():
    full = data.load("digits-0-4", "train", image_size=16)
    return full.subset(train.balanced_indices(full.labels, 32, seed=0))


@pytest.fixture(scope="module")
def aux():
    return outliers.pool("digits-5-9", "digits-0-4", 16, 50)


class Interrupted(Exception):
    pass


def _model(seed=0):
    torch.manual_seed(seed)
    from harness import models
    return models.create("wrn-10-1", 5, drop_rate=0.3)


def _logsumexp(row):
    top = max(row)
    return top + math.log(sum(math.exp(v - top) for v in row))


def _ce(rows, targets):
    return sum(_logsumexp(r) - r[t] for r, t in zip(rows, targets)) / len(targets)


def test_outlier_exposure_is_ce_plus_half_the_cross_entropy_to_uniform():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(5, 4))
    targets = [0, 3]
    got = objectives.get("outlier_exposure")(torch.tensor(logits), torch.tensor(targets))
    rows = logits.tolist()
    # cross-entropy to uniform = mean_k(logsumexp - x_k) = logsumexp - mean_k x_k
    to_uniform = sum(_logsumexp(r) - sum(r) / len(r) for r in rows[2:]) / 3
    assert float(got) == pytest.approx(_ce(rows[:2], targets) + 0.5 * to_uniform, rel=1e-6)  # float32


def test_energy_margin_is_ce_plus_squared_hinges():
    logits = torch.tensor([[9.0, 1.0], [2.0, 2.0], [2.0, 1.0], [-3.0, -4.0]], dtype=torch.float64)
    targets = [0, 1]
    m_in, m_out = -5.0, -1.0
    got = objectives.get("energy_margin", m_in=m_in, m_out=m_out)(logits, torch.tensor(targets))
    rows = logits.tolist()
    energies = [-_logsumexp(r) for r in rows]
    hinge_in = sum(max(0.0, e - m_in) ** 2 for e in energies[:2]) / 2
    hinge_out = sum(max(0.0, m_out - e) ** 2 for e in energies[2:]) / 2
    assert float(got) == pytest.approx(_ce(rows[:2], targets) + 0.1 * (hinge_in + hinge_out), rel=1e-6)
    assert hinge_in > 0 and hinge_out > 0  # one example of each side is past its margin, one is not


def test_objective_settings_are_exactly_the_named_ones():
    with pytest.raises(HarnessError, match="takes the settings m_in, m_out; got none"):
        objectives.get("energy_margin")
    with pytest.raises(HarnessError, match="takes the settings none; got m_in"):
        objectives.get("cross_entropy", m_in=-1.0)
    assert set(objectives.outlier_names()) == {"outlier_exposure", "energy_margin"}


def test_outlier_stream_reads_from_a_random_offset_each_epoch():
    images = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2).repeat(3, 3)
    stream = loaders.OutlierLoader(images, batch_size=4, steps=3, seed=5)
    firsts = []
    for _ in range(3):
        orders = stream._order()[1]
        batches = list(stream)
        assert len(batches) == 3 and all(x.shape == (4, 3, 8, 8) for x, _ in batches)
        assert torch.equal(orders, (orders[0] + torch.arange(12)) % 10)  # consecutive, wrapping around
        firsts.append(int(orders[0]))
    assert len(set(firsts)) > 1
    sampler = loaders._OutlierSampler(10, 12, seed=5)
    assert [i for i, _ in sampler] == ((firsts[0] + torch.arange(12)) % 10).tolist()  # the same stream


def test_training_stream_is_unchanged_by_the_outlier_stream():
    # The two-number entropy every earlier run was drawn with must stay stream 0's.
    expected = np.random.SeedSequence([3, 1]).generate_state(2, np.uint32)
    got = loaders.epoch_generator(3, 1).initial_seed()
    assert got == int(expected[0]) << 32 | int(expected[1])
    assert loaders.epoch_generator(3, 1, loaders.OUTLIER_STREAM).initial_seed() != got


@pytest.mark.parametrize("loader", ["fast", "reference"])
def test_interrupted_energy_ft_run_resumes_bit_identical(digits, aux, tmp_path, loader):
    options = train.Options(quiet=True, loader=loader)
    reference = _model()
    full = train.fit(reference, digits, HYPER, seed=1, options=options, checkpoint_path=tmp_path / "a.pt", aux=aux)

    def crash(epoch, step):
        if (epoch, step) == (1, 1):  # mid-epoch: the outlier stream is part-way through its second epoch
            raise Interrupted

    path = tmp_path / "b.pt"
    with pytest.raises(Interrupted):
        train.fit(_model(), digits, HYPER, seed=1, options=options, checkpoint_path=path, on_step=crash, aux=aux)
    resumed_model = _model(seed=99)
    resumed = train.fit(resumed_model, digits, HYPER, seed=1, options=options, checkpoint_path=path, aux=aux)
    assert resumed.resumed_from_epoch == 1
    sa, sb = reference.state_dict(), resumed_model.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_the_outliers_change_what_is_learned(digits, aux):
    a, b = _model(), _model()
    one_epoch = dataclasses.replace(HYPER, epochs=1)
    train.fit(a, digits, one_epoch, seed=0, options=QUIET, aux=aux)
    other = outliers.pool("digits-5-9", "digits-0-4", 16, 40)
    train.fit(b, digits, one_epoch, seed=0, options=QUIET, aux=other)
    assert not torch.equal(a.fc.weight, b.fc.weight)


def test_outliers_and_objective_must_agree(digits, aux):
    with pytest.raises(HarnessError, match="needs a non-empty outlier set"):
        train.fit(_model(), digits, HYPER, options=QUIET)
    plain = train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=16)
    with pytest.raises(HarnessError, match="does not use outliers"):
        train.fit(_model(), digits, plain, options=QUIET, aux=aux)


def test_recipes_take_their_start_from_the_upstream():
    # OE's baseline.py: the scratch recipe with the OE / energy papers' normalization
    assert recipes.get("energy_ft").upstreams == (recipes.Upstream("baseline", "same"),)
    assert recipes.get("oe").upstreams == (recipes.Upstream("baseline", "same"),)
    assert recipes.get("oe", base="scratch_focal").upstreams == (recipes.Upstream("scratch_focal", "same"),)
    assert recipes.get("oe_scratch").upstreams == ()
    with pytest.raises(HarnessError, match="base must be one of"):
        recipes.get("energy_ft", base="tst")


def test_margins_come_from_the_dataset_unless_set():
    ft = recipes.get("energy_ft").resolve("cifar10", "tinyimagenet32-nocifar10")
    assert (ft.m_in, ft.m_out, ft.aux) == (-23.0, -5.0, "tinyimagenet32-nocifar10")
    assert recipes.get("energy_ft").resolve("cifar100", "x").hyper(1).objective_settings == (("m_in", -27.0),
                                                                                             ("m_out", -5.0))
    own = recipes.get("energy_ft", m_in="-9", m_out="-2", aux="digits-0-4").resolve("digits-5-9", None)
    assert (own.m_in, own.m_out, own.aux) == (-9.0, -2.0, "digits-0-4")


@pytest.mark.parametrize("make, message", [
    (lambda: recipes.get("energy_ft").resolve("digits-5-9", "digits-0-4"),
     "dataset 'digits-5-9' has no energy margins; set them on the recipe: --set m_in=M_IN --set m_out=M_OUT"),
    (lambda: recipes.get("energy_ft", m_in=-5, m_out=-5), "m_in must be below m_out"),
    (lambda: recipes.get("energy_ft", m_in=-5).resolve("cifar10", "digits-0-4"), "set both m_in and m_out"),
    (lambda: recipes.get("oe").resolve("cifar10", None), "needs an outlier set for 'cifar10'"),
    (lambda: recipes.get("oe").resolve("cifar10", "cifar10"), "shares its images with"),
    (lambda: recipes.get("oe", aux="tinyimagenet32-val-nocifar10").resolve("tinyimagenet32-nocifar10", None),
     "shares its images with"),
    (lambda: outliers.pool("no-such-outliers", "cifar10", 32, None),
     "unknown outlier set 'no-such-outliers'.*python -m harness data import no-such-outliers PATH"),
])
def test_bad_outlier_settings_are_one_line_errors(make, message):
    with pytest.raises(HarnessError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args, message", [
    (["--aux", "digits-0-4"], "error: outlier set 'digits-0-4': it is (or shares its images with)"),
    (["--aux", "no-such-outliers"], "error: unknown outlier set 'no-such-outliers'"),
    (["--set", "m_in=-3", "--set", "m_out=-5"], "error: recipe 'energy_ft': m_in must be below m_out"),
    (["--dataset", "digits-5-9", "--aux", "digits-0-4"], "error: dataset 'digits-5-9' has no energy margins"),
])
def test_cli_bad_input_exits_2(args, message, tmp_path, capsys):
    argv = ["train", "--recipe", "energy_ft", "--dataset", "digits-0-4", "--profile", "smoke", "--cache-dir",
            str(tmp_path), "--quiet", *args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and len(err.splitlines()) == 1


def test_same_source_ood_sets_are_excluded():
    got = outliers.excluded("tinyimagenet32-nocifar10", ["gaussian", "cifar100", "tinyimagenet32-val-nocifar10",
                                                         "tinyimagenet32-val-nocifar100"])
    assert set(got) == {"tinyimagenet32-val-nocifar10", "tinyimagenet32-val-nocifar100"}
    assert "tinyimagenet32" in got["tinyimagenet32-val-nocifar10"]
    assert outliers.excluded("digits-5-9", ["digits-5-9", "blobs"]) == {
        "digits-5-9": "drawn from digits-5-9, the source of the training outliers 'digits-5-9'"}
    assert outliers.excluded(None, ["digits-5-9"]) == {}


def test_paper_means_only_with_every_set_of_the_paper():
    sets = outliers.PAPER_SETS["liu2020"]["cifar10"]
    metrics = {f"ood/{s}/fpr95@id": {"mean": float(i), "std": 1.0, "n": 5} for i, s in enumerate(sets)}
    assert outliers.paper_means(metrics, "cifar10") == {
        "ood/mean-liu2020/fpr95@id": {"mean": 2.5, "std": 1.0, "n": 5}}
    del metrics[f"ood/{sets[-1]}/fpr95@id"]
    assert outliers.paper_means(metrics, "cifar10") == {}
    assert outliers.paper_means(metrics, "digits-0-4") == {}


def test_pool_is_a_seeded_sample_in_random_order(aux):
    again = outliers.pool("digits-5-9", "digits-0-4", 16, 50)
    assert len(aux) == 50 and np.array_equal(aux.images, again.images) and (aux.labels == -1).all()
    stored = data.load("digits-5-9", "train", image_size=16).images
    first = [int(np.flatnonzero((stored == img).all(axis=(1, 2, 3)))[0]) for img in aux.images[:10]]
    assert first != sorted(first)


def test_profiles_name_the_outlier_set(tmp_path):
    assert profiles.get("mini").plan("cifar10").aux == "tinyimagenet32-nocifar10"
    assert profiles.get("mini").plan("cifar10").aux != profiles.get("mini").plan("cifar10").id
    path = tmp_path / "p.toml"
    path.write_text(profiles.PROFILES_FILE.read_text().replace('aux = "digits-5-9"', 'aux = "digits-0-4"'))
    with pytest.raises(HarnessError, match=r"p.toml:\d+: profile 'smoke': aux: the outlier set must differ"):
        profiles.load_file(path, lambda n: True)


def test_outlier_pool_enters_the_key_and_other_keys_stay():
    run = checkpoints.plan("energy_ft", "digits-0-4", "smoke", 0)
    assert run.aux_sha256 and run.identity()["aux_sha256"] == run.aux_sha256
    assert run.settings()["aux"] == "digits-5-9" and run.settings()["m_in"] == -7.0
    base = checkpoints.plan("baseline", "digits-0-4", "smoke", 0)
    assert "aux_sha256" not in base.identity() and run.upstreams[0].key == base.key
    # the OE papers' normalization is part of the base's identity: not the half-normalized scratch model
    assert base.key != checkpoints.plan("scratch", "digits-0-4", "smoke", 0).key
