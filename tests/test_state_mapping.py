"""solo-learn's ResNet-18 layout (vturrisi/solo-learn; docs/sources.md#self-supervised-backbones) and the key
mapping that loads it."""
import hashlib

import pytest
import torch
import torch.nn.functional as F

from checkpoint_factory import solo_learn_state, write_solo_learn
from harness import checkpoints, models
from harness.errors import HarnessError
from harness.state_mapping import StateMapping

SOLO = StateMapping(strip_prefix="backbone.", head_prefix="classifier.")


def test_resnet18_cifar_is_solo_learns_backbone():
    net = models.create("resnet18-cifar", 10)
    assert net.conv1.padding == (2, 2) and net.conv1.stride == (1, 1) and net.conv1.kernel_size == (3, 3)
    assert models.create("resnet18", 10).conv1.padding == (1, 1)
    x = torch.randn(2, 3, 32, 32)
    assert net.conv1(x).shape[-2:] == (34, 34)  # padding 2 grows the map; the other resnet keeps 32x32
    assert net.features(x).shape == (2, 512) and net.feature_dim == 512
    # torchvision's resnet18 keys: the same state dict loads into either stem
    assert models.create("resnet18", 10).state_dict().keys() == net.state_dict().keys()


def test_solo_learn_layout_loads_with_projector_predictor_and_momentum_keys_present():
    state = solo_learn_state(num_classes=5)
    mapped, ignored = SOLO.apply(state)
    assert ignored == sum(not k.startswith(("backbone.", "classifier.")) for k in state)
    net = models.load_state_dict(models.create("resnet18-cifar", 5), mapped)
    assert torch.equal(net.conv1.weight, state["backbone.conv1.weight"])
    assert torch.equal(net.fc.weight, state["classifier.weight"])
    x = torch.randn(3, 3, 32, 32)
    stem = F.relu(net.bn1(F.conv2d(x, state["backbone.conv1.weight"], padding=2)))
    assert torch.allclose(F.relu(net.bn1(net.conv1(x))), stem)


def test_mapping_drop_and_headless():
    state = solo_learn_state()
    mapped, _ = StateMapping(strip_prefix="backbone.", head=False).apply(state)
    assert not any(k.startswith("fc.") for k in mapped)
    dropped = StateMapping(drop=("backbone.layer4.*",), strip_prefix="backbone.", head_prefix="classifier.")
    mapped, _ = dropped.apply(state)
    with pytest.raises(HarnessError, match="missing key 'layer4.0.conv1.weight'"):
        models.load_state_dict(models.create("resnet18-cifar", 5), mapped)


def test_a_key_that_does_not_fit_is_named(tmp_path):
    path = write_solo_learn(tmp_path / "byol.ckpt")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    ckpt = checkpoints.UserCheckpoint(str(path), digest, model="wrn-10-1", mapping=SOLO)
    with pytest.raises(HarnessError, match="key 'conv1.weight' has shape \\(64, 3, 3, 3\\), the model expects "
                                           "\\(16, 3, 3, 3\\)"):
        checkpoints.load_user(ckpt)
    wrong_classes = checkpoints.UserCheckpoint(str(path), digest, model="resnet18-cifar", mapping=SOLO, num_classes=10)
    with pytest.raises(HarnessError, match="the head has 5 classes, 10 were expected"):
        checkpoints.load_user(wrong_classes)
    model, info = checkpoints.load_user(checkpoints.UserCheckpoint(str(path), digest, model="resnet18-cifar",
                                                                   mapping=SOLO))
    assert info["num_classes"] == 5 and info["ignored_keys"] > 0 and info["key"].startswith(f"user:{digest}:")
