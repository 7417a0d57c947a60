"""The training loop: schedule, determinism, interruption + resume bit-identical, frozen modules, output;
optimizers, objectives and best-holdout selection as data."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from harness import data, models, train
from harness.errors import HarnessError

HYPER = train.Hyper(epochs=2, lr=0.05, weight_decay=5e-4, batch_size=16)
QUIET = train.Options(quiet=True)


@pytest.fixture(scope="module")
def digits():
    full = data.load("digits-0-4", "train", image_size=16)  # 16x16: a quarter of the compute of 32x32
    return full.subset(train.balanced_indices(full.labels, 32, seed=0))


class Interrupted(Exception):
    pass


def _model(seed=0, drop_rate=0.3):
    torch.manual_seed(seed)
    return models.create("wrn-10-1", 5, drop_rate=drop_rate)


def _assert_same(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_cosine_schedule_like_reference():
    hyper = train.Hyper(epochs=3, lr=0.1, weight_decay=0.0)
    param = torch.nn.Parameter(torch.zeros(1))
    opt, sched = train.build_optimizer([param], hyper, steps_per_epoch=4)
    group = opt.param_groups[0]
    assert group["nesterov"] and group["momentum"] == 0.9
    lrs = []
    for _ in range(12):
        lrs.append(group["lr"])
        opt.step()
        sched.step()
    # batch k trains at cosine(k + 1): the reference's scheduler.step() comes before optimizer.step()
    expected = [1e-6 + (0.1 - 1e-6) * 0.5 * (1 + math.cos((k + 1) / 12 * math.pi)) for k in range(12)]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert lrs[-1] == pytest.approx(1e-6, rel=1e-9)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_fit_is_deterministic_and_learns_something(digits):
    a, b = _model(), _model()
    ra = train.fit(a, digits, HYPER, seed=3, options=QUIET)
    rb = train.fit(b, digits, HYPER, seed=3, options=QUIET)
    _assert_same(a, b)
    assert [h["loss"] for h in ra.history] == [h["loss"] for h in rb.history]
    assert len(ra.history) == 2 and not a.training
    c = _model()
    train.fit(c, digits, HYPER, seed=4, options=QUIET)
    assert not torch.equal(a.fc.weight, c.fc.weight)


def test_fit_leaves_global_rng_alone(digits):
    model = _model()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train.fit(model, digits, train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=20), options=QUIET)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("loader", ["fast", "reference"])
def test_interrupted_run_resumes_bit_identical(digits, tmp_path, loader):
    hyper = train.Hyper(epochs=3, lr=0.05, weight_decay=5e-4, batch_size=16)
    options = train.Options(quiet=True, loader=loader)
    reference = _model()
    full = train.fit(reference, digits, hyper, seed=1, options=options, checkpoint_path=tmp_path / "a.pt")

    def crash(epoch, step):
        if (epoch, step) == (1, 1):
            raise Interrupted

    path = tmp_path / "b.pt"
    with pytest.raises(Interrupted):
        train.fit(_model(), digits, hyper, seed=1, options=options, checkpoint_path=path, on_step=crash)
    assert path.exists()
    resumed_model = _model(seed=99)  # different init: everything must come from the resume file
    resumed = train.fit(resumed_model, digits, hyper, seed=1, options=options, checkpoint_path=path)
    assert resumed.resumed_from_epoch == 1
    _assert_same(reference, resumed_model)
    assert resumed.history == [{**h, "images_per_s": r["images_per_s"], "seconds": r["seconds"]}
                               for h, r in zip(full.history, resumed.history)]


def test_resume_file_of_another_run_is_refused(digits, tmp_path):
    path = tmp_path / "r.pt"
    train.fit(_model(), digits, train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=20), options=QUIET,
              checkpoint_path=path)
    with pytest.raises(HarnessError, match="belongs to a different run"):
        train.fit(_model(), digits, train.Hyper(epochs=1, lr=0.01, weight_decay=0, batch_size=20), options=QUIET,
                  checkpoint_path=path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(HarnessError, match="unreadable"):
        train.fit(_model(), digits, train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=20), options=QUIET,
                  checkpoint_path=path)


@pytest.mark.parametrize("batchnorm", ["eval", "train"])
def test_frozen_modules_keep_parameters_and_bn_statistics(digits, batchnorm):
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = models.backbone_modules(model)
    train.fit(model, digits, dataclasses.replace(HYPER, batchnorm=batchnorm), options=QUIET, frozen=frozen)
    after = model.state_dict()
    for k, v in before.items():
        # a frozen module's weights never move; its BatchNorm statistics move only in "train" mode
        moves = k.startswith("fc.") or (batchnorm == "train" and k.endswith(("running_mean", "running_var",
                                                                                "num_batches_tracked")))
        assert torch.equal(v, after[k]) != moves, k
    assert all(p.requires_grad for p in model.parameters())  # restored afterwards
    with pytest.raises(HarnessError, match="nothing to train"):
        train.fit(model, digits, HYPER, options=QUIET, frozen=[model])


def test_progress_output(digits, capsys):
    train.fit(_model(), digits, train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=20), options=QUIET)
    assert capsys.readouterr().err == ""
    train.fit(_model(), digits, train.Hyper(epochs=1, lr=0.05, weight_decay=0, batch_size=20))
    err = capsys.readouterr().err
    assert "epoch 1/1 loss" in err and "acc" in err and "img/s" in err


def test_bad_inputs(digits):
    with pytest.raises(HarnessError, match="unknown loader 'slow'"):
        train.fit(_model(), digits, HYPER, options=train.Options(loader="slow"))
    unlabelled = data.ImageSet(digits.images, np.full(len(digits), -1), digits.classes)
    with pytest.raises(HarnessError, match="unlabelled"):
        train.fit(_model(), unlabelled, HYPER, options=QUIET)
    with pytest.raises(HarnessError, match="fully labelled"):
        train.accuracy(_model(), unlabelled)


def test_accuracy(digits):
    model = _model()
    acc = train.accuracy(model, digits, batch_size=7)
    assert 0.0 <= acc <= 1.0
    with torch.no_grad():
        pred = model(data.normalize(digits.images)).argmax(1).numpy()
    assert acc == pytest.approx(np.mean(pred == digits.labels))


def test_balanced_indices():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 10)
    idx = train.balanced_indices(labels, 12, seed=0)
    assert len(idx) == 12 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [5, 3, 4]
    assert np.array_equal(idx, train.balanced_indices(labels, 12, seed=0))
    assert np.array_equal(train.balanced_indices(labels, None, seed=0), np.arange(23))


# ---------------------------------------------------------------- optimizers, objectives, selection as data

ADAM_SELECT = train.Hyper(epochs=4, lr=3e-3, weight_decay=0.0, batch_size=16, optimizer="adam_constant",
                          select="best_holdout_nll")


@pytest.fixture(scope="module")
def held(digits):
    """20 training images that the `digits` fixture does not hold."""
    full = data.load("digits-0-4", "train", image_size=16)
    return full.subset(np.setdiff1d(np.arange(len(full)), train.balanced_indices(full.labels, 32, seed=0))[:20])


def test_adam_constant_keeps_its_lr_and_has_no_weight_decay():
    param = torch.nn.Parameter(torch.zeros(1))
    opt, sched = train.build_optimizer([param], train.Hyper(epochs=2, lr=1e-4, weight_decay=0.0,
                                                            optimizer="adam_constant"), steps_per_epoch=3)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["weight_decay"] == 0
    for _ in range(6):
        assert opt.param_groups[0]["lr"] == 1e-4
        opt.step()
        sched.step()
    with pytest.raises(HarnessError, match="'adam_constant' takes no weight decay"):
        train.build_optimizer([param], train.Hyper(epochs=1, lr=1e-4, weight_decay=5e-4, optimizer="adam_constant"),
                              steps_per_epoch=1)


def test_best_holdout_epoch_is_kept_and_recorded(digits, held):
    model = _model()
    result = train.fit(model, digits, ADAM_SELECT, seed=2, options=QUIET, holdout=held)
    nlls = [h["holdout_nll"] for h in result.history]
    assert result.selected_epoch == 1 + int(np.argmin(nlls))
    assert train.holdout_nll(model, held) == pytest.approx(min(nlls), rel=1e-12)
    # the same run without selection ends at the last epoch's weights
    last = _model()
    plain = train.fit(last, digits, dataclasses.replace(ADAM_SELECT, select="last"), seed=2, options=QUIET)
    assert plain.selected_epoch == 4 and "holdout_nll" not in plain.history[0]
    if result.selected_epoch != 4:
        assert not torch.equal(model.fc.weight, last.fc.weight)


def test_interrupted_selecting_run_resumes_with_its_best_epoch(digits, held, tmp_path):
    reference = _model()
    full = train.fit(reference, digits, ADAM_SELECT, seed=1, options=QUIET, holdout=held)

    def crash(epoch, step):
        if (epoch, step) == (3, 0):
            raise Interrupted
    path = tmp_path / "s.pt"
    with pytest.raises(Interrupted):
        train.fit(_model(), digits, ADAM_SELECT, seed=1, options=QUIET, holdout=held, checkpoint_path=path,
                  on_step=crash)
    resumed_model = _model(seed=5)
    resumed = train.fit(resumed_model, digits, ADAM_SELECT, seed=1, options=QUIET, holdout=held,
                        checkpoint_path=path)
    assert resumed.resumed_from_epoch == 3 and resumed.selected_epoch == full.selected_epoch
    _assert_same(reference, resumed_model)


def test_objective_changes_what_is_learned(digits):
    ce, focal = _model(), _model()
    train.fit(ce, digits, HYPER, seed=0, options=QUIET)
    train.fit(focal, digits, dataclasses.replace(HYPER, objective="focal"), seed=0, options=QUIET)
    assert not torch.equal(ce.fc.weight, focal.fc.weight)


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "adamw"}, "unknown optimizer 'adamw'; valid: sgd_nesterov_cosine, adam_constant"),
    ({"objective": "mse"}, "unknown objective 'mse'; valid: cross_entropy, focal"),
    ({"select": "best"}, "unknown select 'best'; valid: last, best_holdout_nll"),
    ({"select": "best_holdout_nll"}, "needs a non-empty holdout split"),
])
def test_bad_pieces_are_one_line_errors(digits, change, message):
    with pytest.raises(HarnessError, match=message):
        train.fit(_model(), digits, dataclasses.replace(HYPER, **change), options=QUIET)


def test_a_resumed_run_says_so(digits, tmp_path, capsys):
    hyper = train.Hyper(epochs=2, lr=0.05, weight_decay=5e-4, batch_size=64)

    def crash(epoch, step):
        if (epoch, step) == (1, 0):
            raise Interrupted

    path = tmp_path / "r.pt"
    with pytest.raises(Interrupted):
        train.fit(_model(), digits, hyper, options=train.Options(quiet=True), checkpoint_path=path, on_step=crash)
    capsys.readouterr()
    train.fit(_model(), digits, hyper, options=train.Options(quiet=False), checkpoint_path=path)
    assert f"resumed from epoch 1/2 ({path})" in capsys.readouterr().err
