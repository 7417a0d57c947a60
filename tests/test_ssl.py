"""Self-supervised recipes (harness.ssl, harness.recipes.ssl): each method's loss against lightly's own on fixed
inputs, one optimisation step lowers it, the views' reproducibility, the backbone that goes downstream, and the
error without lightly."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from harness import objectives, recipes, train
from harness.data import ImageSet
from harness.errors import HarnessError

lightly = pytest.importorskip("lightly")
from lightly import loss as lightly_loss  # noqa: E402  (needs lightly)

from harness.ssl import views  # noqa: E402

# Small heads so a CPU test runs each method in a second; every other setting is the recipe's. DINO keeps its own
# head: a small one's L2-normalised bottleneck is so short at init that any step turns it around.
SMALL = {"byol": {"proj_hidden_dim": 64, "proj_output_dim": 32, "pred_hidden_dim": 64},
         "barlow_twins": {"proj_hidden_dim": 64, "proj_output_dim": 64},
         "dino": {},
         "simclr": {"proj_hidden_dim": 64, "proj_output_dim": 32}}
MODEL = "wrn-10-1"


def _learner(method: str, seed: int = 0):
    recipe = recipes.get(method, **SMALL[method])
    torch.manual_seed(seed)
    learner = recipe.skeleton(MODEL, 5).train()
    learner.plan_steps(10, 5)
    return recipe, learner


def _views(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1, torch.rand(n, 3, 32, 32, generator=g) * 2 - 1


def _lightly_loss(method, recipe, learner, v0, v1):
    """The method's loss computed by a fresh lightly loss object on the learner's network outputs."""
    online = [learner.projector(learner.backbone.features(v)) for v in (v0, v1)]
    if method == "byol":
        p0, p1 = (learner.predictor(z) for z in online)
        with torch.no_grad():
            t0, t1 = (learner.momentum_projector(learner.momentum_backbone.features(v)) for v in (v0, v1))
        ncs = lightly_loss.NegativeCosineSimilarity()
        return 0.5 * (ncs(p0, t1) + ncs(p1, t0))
    if method == "barlow_twins":
        return recipe.scale_loss * lightly_loss.BarlowTwinsLoss(lambda_param=recipe.lambda_param)(*online)
    if method == "simclr":
        return lightly_loss.NTXentLoss(temperature=recipe.temperature)(*online)
    with torch.no_grad():
        teacher = [learner.momentum_projector(learner.momentum_backbone.features(v)) for v in (v0, v1)]
    dino = lightly_loss.DINOLoss(output_dim=recipe.num_prototypes, teacher_temp=recipe.teacher_temperature,
                                 warmup_teacher_temp=recipe.warmup_teacher_temperature,
                                 warmup_teacher_temp_epochs=recipe.warmup_teacher_temperature_epochs,
                                 student_temp=recipe.student_temperature)
    return dino(teacher, online, epoch=0)


@pytest.mark.parametrize("method", list(SMALL))
def test_loss_equals_lightlys_own(method):
    recipe, learner = _learner(method)
    v0, v1 = _views()
    torch.manual_seed(5)  # BatchNorm in train mode: both sides see the same batches, so the same statistics
    expected = _lightly_loss(method, recipe, learner, v0, v1)
    ours, _ = learner.loss(v0, v1)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", list(SMALL))
def test_one_step_lowers_the_loss(method):
    recipe, learner = _learner(method)
    v0, v1 = _views()
    buffers = {k: b.clone() for k, b in learner.criterion.named_buffers()}  # DINO's centre moves with each call
    before, _ = learner.loss(v0, v1)
    # A run's first step: the recipe's optimizer at the start of its warmup (100 epochs of one step each)
    optimizer, _ = train.build_optimizer([p for p in learner.parameters() if p.requires_grad],
                                         recipe.hyper(100), 1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(3e-5)
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    for k, b in learner.criterion.named_buffers():
        b.copy_(buffers[k])
    after, _ = learner.loss(v0, v1)
    assert after.item() < before.item(), f"{method}: loss {before.item():.6f} -> {after.item():.6f}"


def test_forward_reports_the_loss_of_the_two_views():
    """The training forward makes the views from torch's generator and reports the loss of exactly those."""
    recipe, learner = _learner("simclr")
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    torch.manual_seed(3)
    learner(x)
    reported = learner.loss_terms["ssl_loss"]
    torch.manual_seed(3)
    v0, v1 = views.two_views(x, views.symmetric(32))
    torch.testing.assert_close(reported, learner.loss(v0, v1)[0])
    assert int(learner.step) == 1


def test_views_are_reproducible_and_leave_numpys_generator_alone():
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    np.random.seed(7)
    expected_numpy = np.random.random_sample()
    np.random.seed(7)
    torch.manual_seed(0)
    a = views.two_views(x, views.asymmetric(32))
    assert np.random.random_sample() == expected_numpy
    torch.manual_seed(0)
    b = views.two_views(x, views.asymmetric(32))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a[0], a[1]), "the two views of an image must differ"
    assert a[0].min() >= -1 and a[0].max() <= 1  # back on the harness's scale


def _tiny_set(n=16):
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 5, tuple("abcde"))


def test_fit_trains_the_learner_reproducibly_without_reading_labels():
    recipe = recipes.get("byol", **SMALL["byol"], batch_size=8)
    data = _tiny_set()
    results = []
    for labels in (data.labels, (data.labels + 1) % 5):
        torch.manual_seed(0)
        model, frozen = recipe.build(MODEL, 5, [])
        start_fc = model.backbone.fc.weight.clone()
        result = train.fit(model, ImageSet(data.images, labels, data.classes), recipe.hyper(1),
                           options=train.Options(quiet=True), frozen=frozen)
        assert result.history[0]["accuracy"] is None
        assert torch.equal(model.backbone.fc.weight, start_fc), "the head must not train"
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0]), "labels changed the learner"
    assert int(results[0]["step"]) == 2
    # the momentum copy moved toward the online network, and is not it
    assert not torch.equal(results[0]["momentum_backbone.conv1.weight"], results[0]["backbone.conv1.weight"])


def test_dino_prototypes_stay_fixed_in_the_first_epoch():
    recipe = recipes.get("dino", proj_hidden_dim=64, proj_output_dim=32, num_prototypes=128, batch_size=8)
    torch.manual_seed(0)
    model, frozen = recipe.build(MODEL, 5, [])
    start = model.projector.last_layer.weight_v.clone()
    train.fit(model, _tiny_set(), recipe.hyper(1), options=train.Options(quiet=True), frozen=frozen)
    assert torch.equal(model.projector.last_layer.weight_v, start)
    assert not torch.equal(model.projector.layers[0].weight, model.momentum_projector.layers[0].weight)


def test_finetune_takes_only_the_backbone():
    recipe, learner = _learner("barlow_twins")
    finetune = recipes.get("finetune_barlow_twins")
    model, _ = finetune.build(MODEL, 3, [learner])
    own = learner.backbone.state_dict()
    assert set(model.state_dict()) == set(own)
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))
    assert model.fc.out_features == 3
    assert finetune.model_for("wrn-40-2", ["resnet18-cifar"]) == "resnet18-cifar"
    assert recipes.get("byol").model_for("wrn-40-2", []) == "resnet18-cifar"
    assert recipes.get("byol").model_for("wrn-16-1", []) == "wrn-16-1"


def test_without_lightly_the_error_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightly", None)
    with pytest.raises(HarnessError, match=r"pip install -e '\.\[ssl\]'") as caught:
        recipes.get("simclr").skeleton(MODEL, 5)
    assert "\n" not in str(caught.value)


def test_training_outside_fit_is_refused():
    recipe = recipes.get("simclr", **SMALL["simclr"])
    learner = recipe.skeleton(MODEL, 5).train()
    with pytest.raises(HarnessError, match="train.fit"):
        learner(torch.zeros(2, 3, 32, 32))


def test_the_objective_is_the_reported_loss_and_names_the_learner_when_it_is_missing():
    ssl = objectives.get("self_supervised")
    loss = torch.tensor(1.25)
    assert ssl(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64), {"ssl_loss": loss}) is loss
    assert not ssl.labels
    with pytest.raises(HarnessError, match="self-supervised learner"):
        ssl(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64), {})
