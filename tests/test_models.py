"""Models: the reference WideResNet layout (keys, shapes, forward semantics), ResNet-18, registry, strict loading."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness import models
from harness.errors import HarnessError


def _bn_keys(prefix, channels):
    return [(f"{prefix}.weight", (channels,)), (f"{prefix}.bias", (channels,)),
            (f"{prefix}.running_mean", (channels,)), (f"{prefix}.running_var", (channels,)),
            (f"{prefix}.num_batches_tracked", ())]


def reference_layout(depth, num_classes, widen):
    """The state_dict of the reference wrn.py, written down from its description (not from its code):
    conv1; block{1,2,3}.layer.{i}.{bn1, conv1, bn2, conv2, convShortcut (only where the width changes)}; bn1; fc."""
    n = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    keys = [("conv1.weight", (16, 3, 3, 3))]
    for b in range(3):
        for i in range(n):
            cin = widths[b] if i == 0 else widths[b + 1]
            cout = widths[b + 1]
            p = f"block{b + 1}.layer.{i}"
            keys += _bn_keys(f"{p}.bn1", cin)
            keys.append((f"{p}.conv1.weight", (cout, cin, 3, 3)))
            keys += _bn_keys(f"{p}.bn2", cout)
            keys.append((f"{p}.conv2.weight", (cout, cout, 3, 3)))
            if cin != cout:
                keys.append((f"{p}.convShortcut.weight", (cout, cin, 1, 1)))
    keys += _bn_keys("bn1", widths[3])
    keys += [("fc.weight", (num_classes, widths[3])), ("fc.bias", (num_classes,))]
    return keys


@pytest.mark.parametrize("depth,classes,widen", [(40, 1000, 2), (16, 10, 1), (28, 100, 10)])
def test_state_dict_matches_reference_layout(depth, classes, widen):
    got = [(k, tuple(v.shape)) for k, v in models.WideResNet(depth, classes, widen).state_dict().items()]
    assert got == reference_layout(depth, classes, widen)


def test_wrn_40_2_parameter_count():
    assert sum(p.numel() for p in models.create("wrn-40-2", 10).parameters()) == 2_243_546


def _reference_forward(sd, x, n, dm=False):
    """The reference forward pass from a state dict (eval mode): pre-activation blocks; where the width changes,
    x is replaced by relu(bn1(x)) and the 1x1 shortcut conv reads that; then bn1 + relu, 8x8 average pool, fc.
    `dm`: DeepMind's variant pads a stride-2 3x3 conv's input (0, 1, 0, 1) instead of 1 on every side."""
    def conv3(t, w, stride):
        if dm and stride == 2:
            return F.conv2d(F.pad(t, (0, 1, 0, 1)), w, stride=2)
        return F.conv2d(t, w, stride=stride, padding=1)

    def bn(p, t):
        return F.batch_norm(t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"])

    out = F.conv2d(x, sd["conv1.weight"], padding=1)
    for b in range(3):
        for i in range(n):
            p = f"block{b + 1}.layer.{i}"
            stride = 2 if (b > 0 and i == 0) else 1
            if f"{p}.convShortcut.weight" in sd:
                out = F.relu(bn(f"{p}.bn1", out))
                h = conv3(out, sd[f"{p}.conv1.weight"], stride)
                h = F.conv2d(F.relu(bn(f"{p}.bn2", h)), sd[f"{p}.conv2.weight"], padding=1)
                out = F.conv2d(out, sd[f"{p}.convShortcut.weight"], stride=stride) + h
            else:
                h = conv3(F.relu(bn(f"{p}.bn1", out)), sd[f"{p}.conv1.weight"], stride)
                h = F.conv2d(F.relu(bn(f"{p}.bn2", h)), sd[f"{p}.conv2.weight"], padding=1)
                out = out + h
    out = F.avg_pool2d(F.relu(bn("bn1", out)), 8).flatten(1)
    return F.linear(out, sd["fc.weight"], sd["fc.bias"])


@pytest.mark.parametrize("name,n", [("wrn-16-1", 2), ("wrn-10-2", 1), ("wrn-16-2-dm", 2)])
def test_forward_matches_reference_semantics(name, n):
    torch.manual_seed(0)
    model = models.create(name, 7, drop_rate=0.0 if name.endswith("-dm") else 0.3).eval()
    with torch.no_grad():  # non-trivial BN statistics so every BN matters
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        x = torch.randn(3, 3, 32, 32)
        expected = _reference_forward(model.state_dict(), x, n, dm=name.endswith("-dm"))
        # the same ops in the same order, the pool included (avg_pool2d, not adaptive_avg_pool2d): bit for bit
        assert torch.equal(model(x), expected)


def test_dm_variant_batchnorm_momentum_and_no_dropout():
    model = models.create("wrn-10-1-dm", 3).train()
    x = torch.randn(4, 3, 32, 32)
    model(x)
    first = model.block1.layer[0].bn1
    assert first.momentum == 0.01
    assert torch.allclose(first.running_mean, 0.01 * model.conv1(x).mean((0, 2, 3)), atol=1e-6)
    assert models.create("wrn-10-1", 3).block1.layer[0].bn1.momentum == 0.1
    with pytest.raises(HarnessError, match="has no dropout"):
        models.create("wrn-10-1-dm", 3, drop_rate=0.3)
    # the same keys as the Hendrycks variant: one checkpoint layout for both
    assert list(model.state_dict()) == list(models.create("wrn-10-1", 3).state_dict())


@pytest.mark.parametrize("name", ["wrn-10-1", "resnet18"])
@pytest.mark.parametrize("size", [32, 64])
def test_features_and_logits(name, size):
    model = models.create(name, 5).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        feats = model.features(x)
        assert feats.shape == (2, model.feature_dim)
        assert torch.equal(model.fc(feats), model(x))
    assert isinstance(model.fc, nn.Linear) and model.fc.out_features == 5


def test_reference_init():
    torch.manual_seed(0)
    model = models.create("wrn-28-10", 10)
    conv = model.block3.layer[0].conv1
    fan_out = conv.out_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert torch.all(model.fc.bias == 0)


def test_resnet18_cifar_stem():
    model = models.create("resnet18", 10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.feature_dim == 512
    with pytest.raises(HarnessError, match="no dropout"):
        models.create("resnet18", 10, drop_rate=0.3)


@pytest.mark.parametrize("name", models.names())
def test_every_named_model_classifies(name):
    assert models.create(name, 3)(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_registry():
    assert {"wrn-40-2", "wrn-16-1", "wrn-28-10", "resnet18"} <= set(models.names())
    m = models.create("wrn-22-3", 4, drop_rate=0.3)  # any wrn-DEPTH-WIDTH, not only the listed ones
    assert m.feature_dim == 192 and len(m.block1.layer) == 3
    with pytest.raises(HarnessError, match="unknown model 'vgg'; known models: .*wrn-40-2.*resnet18.*"
                                           "or any wrn-DEPTH-WIDTH"):
        models.create("vgg", 10)
    with pytest.raises(HarnessError, match="6n\\+4"):
        models.create("wrn-12-2", 10)
    with pytest.raises(HarnessError, match="num_classes"):
        models.create("wrn-10-1", 0)


def test_load_strips_module_prefix():
    src, dst = models.create("wrn-10-1", 4), models.create("wrn-10-1", 4)
    wrapped = {f"module.{k}": v for k, v in src.state_dict().items()}
    models.load_state_dict(dst, wrapped)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))


def test_load_names_first_bad_key():
    model = models.create("wrn-10-1", 4)
    state = models.create("wrn-10-1", 4).state_dict()
    state["block2.layer.0.conv1.weight"] = torch.zeros(32, 16, 5, 5)
    state["fc.weight"] = torch.zeros(9, 64)
    with pytest.raises(HarnessError, match=r"'block2\.layer\.0\.conv1\.weight' has shape \(32, 16, 5, 5\), "
                                           r"the model expects \(32, 16, 3, 3\) \(and 1 more problems\)"):
        models.load_state_dict(model, state)
    state = models.create("wrn-10-1", 4).state_dict()
    del state["bn1.running_var"]
    with pytest.raises(HarnessError, match="missing key 'bn1.running_var'"):
        models.load_state_dict(model, state)
    state = dict(models.create("wrn-10-1", 4).state_dict(), extra=torch.zeros(1))
    with pytest.raises(HarnessError, match="unexpected key 'extra'"):
        models.load_state_dict(model, state)


def test_load_skip_prefixes_keeps_head():
    model = models.create("wrn-10-1", 4)
    head = model.fc.weight.clone()
    other = models.create("wrn-10-1", 1000).state_dict()
    models.load_state_dict(model, other, skip_prefixes=("fc.",))
    assert torch.equal(model.fc.weight, head)
    assert torch.equal(model.conv1.weight, other["conv1.weight"])


def test_user_factory_architecture(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        "from harness.models import WideResNet\n"
        "def small(num_classes):\n    return WideResNet(10, num_classes)\n"
        "def bare(num_classes):\n    return object()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert models.spec("my_nets:small") == ("my_nets:small", "factory", {"target": "my_nets:small"})
    assert models.create("my_nets:small", 3)(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(HarnessError, match="must return an nn.Module with features"):
        models.create("my_nets:bare", 3)
    with pytest.raises(HarnessError, match="cannot import 'nope' from 'my_nets'"):
        models.create("my_nets:nope", 3)
