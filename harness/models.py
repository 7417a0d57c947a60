"""Classifiers: WideResNet (checkpoint-compatible with the reference wrn.py) and a CIFAR-style ResNet-18;
the two-stage heads (TST MLP, V-TST variational) that replace a trained model's `fc`.

Every model has `features(x)` (penultimate, globally average-pooled), `forward(x) = fc(features(x))`,
a `fc` Linear head and `feature_dim`. Inputs are normalized float (N,3,H,W); 32x32 and 64x64 both work: the
WideResNet pools with `avg_pool2d` over the whole final map, the reference's op (`avg_pool2d(8)` at 32x32), not
`adaptive_avg_pool2d`, whose float32 sum differs by one rounding step that training amplifies.

`wrn-D-W-dm` is the WideResNet of DeepMind's model zoo (Gowal et al. 2020) that the TST reference trains: the same
weights and keys as `wrn-D-W`, but BatchNorm momentum 0.01 and the stride-2 3x3 convolutions padded (0, 1, 0, 1)
(TensorFlow's SAME) instead of 1 on every side; it has no dropout.
"""
from __future__ import annotations

import importlib
import math
import re
from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.sources import one_line
from harness.errors import HarnessError
from harness.normalizations import HALF
from harness.registry import Registry

__all__ = ["WideResNet", "ResNet18", "MLPHead", "VariationalHead", "create", "names", "spec", "Spec",
           "backbone_modules", "replace_head", "load_state_dict", "wrn_variant", "set_input_normalization",
           "input_affine"]


class _Variant(NamedTuple):
    bn_momentum: float
    stride2_pad: tuple[int, int, int, int] | None  # F.pad of the stride-2 convs' input; None: the conv pads 1
    dropout: bool


WRN_VARIANTS = {
    "hendrycks": _Variant(0.1, None, True),  # hendrycks/pre-training and outlier-exposure wrn.py
    "dm": _Variant(0.01, (0, 1, 0, 1), False),  # deepmind-research adversarial_robustness model_zoo.py
}


class _WideBasic(nn.Module):
    """Pre-activation block. When the width changes, the shortcut conv sees the pre-activated input
    relu(bn1(x)), as in the reference; otherwise the identity shortcut sees the raw x."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float, variant: _Variant):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes, momentum=variant.bn_momentum)
        # SAME padding of a stride-2 conv pads right/bottom only: done in forward, the conv itself pads nothing
        self.pad = variant.stride2_pad if stride == 2 else None
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=0 if self.pad else 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes, momentum=variant.bn_momentum)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        # Attribute name is the reference's so state_dict keys match released checkpoints.
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(
            in_planes, out_planes, 1, stride=stride, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(pre if self.pad is None else F.pad(pre, self.pad))))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.equal_in_out else self.convShortcut(pre)
        return shortcut + out


class _Stage(nn.Module):
    """Holds its blocks in `.layer` (reference key prefix `blockN.layer.i`)."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, drop_rate: float, variant: _Variant):
        super().__init__()
        self.layer = nn.Sequential(*[
            _WideBasic(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate, variant)
            for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int, widen_factor: int = 1, drop_rate: float = 0.0,
                 variant: str = "hendrycks"):
        super().__init__()
        if variant not in WRN_VARIANTS:
            raise HarnessError(f"WideResNet variant must be one of {', '.join(WRN_VARIANTS)}, got {variant!r}")
        var = WRN_VARIANTS[variant]
        if drop_rate and not var.dropout:
            raise HarnessError(f"the {variant} WideResNet has no dropout; drop_rate must be 0, got {drop_rate}")
        if depth < 10 or (depth - 4) % 6:
            raise HarnessError(f"WideResNet depth must be 6n+4 with n >= 1 (10, 16, 28, 40, ...), got {depth}")
        if widen_factor < 1:
            raise HarnessError(f"WideResNet widen factor must be >= 1, got {widen_factor}")
        _check_drop_rate(drop_rate)
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = _Stage(n, widths[0], widths[1], 1, drop_rate, var)
        self.block2 = _Stage(n, widths[1], widths[2], 2, drop_rate, var)
        self.block3 = _Stage(n, widths[2], widths[3], 2, drop_rate, var)
        self.bn1 = nn.BatchNorm2d(widths[3], momentum=var.bn_momentum)
        self.fc = nn.Linear(widths[3], num_classes)
        self.feature_dim = widths[3]
        _reference_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(_converted(self, x)))))
        out = F.relu(self.bn1(out))
        return torch.flatten(F.avg_pool2d(out, out.shape[2:]), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class _ResBasic(nn.Module):
    """Post-activation ResNet block (He et al. 2016) with a 1x1 conv + BN projection when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 for small images: 3x3 stride-1 stem and no max-pool (32x32 keeps 4x4 maps at the end).
    Keys are torchvision's resnet18 keys. `stem_padding=2` is solo-learn's CIFAR backbone (vturrisi/solo-learn,
    docs/sources.md#self-supervised-backbones): its stem pads by 2, so 32x32 inputs give 34x34 maps after the stem
    and 5x5 at the end."""

    def __init__(self, num_classes: int, drop_rate: float = 0.0, stem_padding: int = 1):
        super().__init__()
        if drop_rate:
            raise HarnessError(f"resnet18 has no dropout; drop_rate must be 0, got {drop_rate}")
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=stem_padding, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        planes, layers = 64, []
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(_ResBasic(planes, width, stride), _ResBasic(width, width, 1)))
            planes = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, num_classes)
        self.feature_dim = 512
        _reference_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(_converted(self, x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def _encoder(in_features: int, latent: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 3 * latent), nn.ReLU(), nn.Linear(3 * latent, latent))


def _check_head(latent: int, samples: int = 1) -> None:
    if isinstance(latent, bool) or not isinstance(latent, int) or latent < 1:
        raise HarnessError(f"latent size Z must be an integer >= 1, got {latent!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise HarnessError(f"sample count M must be an integer >= 1, got {samples!r}")


class MLPHead(nn.Module):
    """The TST head (Jordahn & Olmos 2024): Linear(F, 3Z) -> ReLU -> Linear(3Z, Z) -> Linear(Z, K)."""

    def __init__(self, in_features: int, num_classes: int, latent: int):
        super().__init__()
        _check_head(latent)
        self.encoder = _encoder(in_features, latent)
        self.classifier = nn.Linear(latent, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))


class VariationalHead(nn.Module):
    """The V-TST head: q(z|x) = N(mu(x), diag(sigma^2(x))), mu and log sigma^2 from two encoders of the TST
    shape, log sigma^2 = logsigmoid(.) so sigma^2 is in (0, 1); logits = Linear(Z, K)(z).

    Training: one reparameterised sample, and the module reports `loss_terms` = {"kl": KL(q || N(0, I)) per
    example, summed over the Z dimensions, "latent_dim": Z} for the `variational` objective.
    Evaluation: returns log of the softmax averaged over `samples` draws (valid logits: their softmax is that
    average). The draws come from a generator seeded afresh on every call, so evaluation is deterministic.
    """

    EVAL_SEED = 0

    def __init__(self, in_features: int, num_classes: int, latent: int, samples: int):
        super().__init__()
        _check_head(latent, samples)
        self.mean = _encoder(in_features, latent)
        self.log_var = _encoder(in_features, latent)
        self.classifier = nn.Linear(latent, num_classes)
        self.latent = latent
        self.samples = samples
        self.loss_terms: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, log_var = self.mean(x), F.logsigmoid(self.log_var(x))
        std = torch.exp(0.5 * log_var)
        if self.training:
            kl = 0.5 * (mu.pow(2) + log_var.exp() - log_var - 1).sum(1)
            self.loss_terms = {"kl": kl, "latent_dim": self.latent}
            return self.classifier(mu + std * torch.randn_like(mu))
        self.loss_terms = {}
        generator = torch.Generator(device=x.device).manual_seed(self.EVAL_SEED)
        eps = torch.randn((self.samples, *mu.shape), generator=generator, device=x.device, dtype=mu.dtype)
        log_probs = F.log_softmax(self.classifier(mu + std * eps), dim=-1)
        return torch.logsumexp(log_probs, dim=0) - math.log(self.samples)


def input_affine(mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) that turn the harness's input (u - 0.5) / 0.5 into (u - mean) / std, shaped (1, C, 1, 1), in
    float64: a model casts them to its input's dtype, so a float64 model gets them unrounded."""
    (h_mean, h_std, mean, std) = (torch.tensor(v, dtype=torch.float64).view(1, -1, 1, 1)
                                  for v in (*HALF, mean, std))
    return h_std / std, (h_mean - mean) / std


def set_input_normalization(model: nn.Module, mean, std) -> nn.Module:
    """Make a WideResNet or ResNet18 see (u - mean) / std from the harness's input (harness.normalizations). The
    buffers are not saved: the recipe's normalization setting, in the checkpoint's key, restores them."""
    if (tuple(mean), tuple(std)) == HALF:
        return model  # the harness's own input: no arithmetic, bit for bit what the model always saw
    if not isinstance(model, (WideResNet, ResNet18)):
        raise HarnessError(f"only the built-in models take another input normalization; {type(model).__name__} "
                           f"gets the harness's mean = std = 0.5")
    scale, shift = input_affine(mean, std)
    device = next(model.parameters()).device
    model.register_buffer("input_scale", scale.to(device), persistent=False)
    model.register_buffer("input_shift", shift.to(device), persistent=False)
    return model


def _converted(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    scale = getattr(model, "input_scale", None)
    return x if scale is None else x * scale.to(x.dtype) + model.input_shift.to(x.dtype)


def _check_drop_rate(drop_rate: float) -> None:
    if not 0.0 <= drop_rate < 1.0:
        raise HarnessError(f"drop_rate must be in [0, 1), got {drop_rate}")


def _reference_init(model: nn.Module) -> None:
    # The reference draws conv weights from N(0, 2 / (k*k*out_channels)) = Kaiming normal, fan_out;
    # Linear keeps PyTorch's default weight init with a zero bias.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- registry

class Spec(NamedTuple):
    """What a model name stands for: the kind of network and the arguments it is built with."""
    name: str
    kind: str  # "wrn", "resnet18" or "factory" (the user's code)
    args: dict


MODELS: Registry[Spec] = Registry("model")
names = MODELS.names  # the common names; any wrn-D-W with D = 6n+4, and package.module:factory, are models too
spec = MODELS.get  # the Spec of a name; unknown -> HarnessError


@MODELS.family(r"wrn-(\d+)-(\d+)(-dm)?", "any wrn-DEPTH-WIDTH, DEPTH = 6n+4; -dm: DeepMind's variant",
               examples=("wrn-10-1", "wrn-16-1", "wrn-16-4", "wrn-28-10", "wrn-40-2", "wrn-28-10-dm"))
def _wide_resnet(match: re.Match) -> Spec:
    return Spec(match[0], "wrn", {"depth": int(match[1]), "widen_factor": int(match[2]),
                                  "variant": "dm" if match[3] else "hendrycks"})


MODELS.register(Spec("resnet18", "resnet18", {"stem_padding": 1}))
MODELS.register(Spec("resnet18-cifar", "resnet18", {"stem_padding": 2}))


@MODELS.family(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*",
               "package.module:factory for your own code")
def _factory(match: re.Match) -> Spec:
    return Spec(match[0], "factory", {"target": match[0]})


def create(name: str, num_classes: int, *, drop_rate: float = 0.0) -> nn.Module:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise HarnessError(f"num_classes must be a positive integer, got {num_classes!r}")
    _, kind, args = spec(name)
    if kind == "wrn":
        return WideResNet(args["depth"], num_classes, args["widen_factor"], drop_rate, args["variant"])
    if kind == "factory":
        return _from_factory(args["target"], num_classes, drop_rate)
    return ResNet18(num_classes, drop_rate, **args)


def wrn_variant(name: str, variant: str) -> str:
    """The `variant` ("dm" or "hendrycks") of a wrn-D-W model name; any other model name unchanged."""
    kind, args = spec(name)[1:]
    if kind != "wrn":
        return name
    base = f"wrn-{args['depth']}-{args['widen_factor']}"
    return base if variant == "hendrycks" else f"{base}-{variant}"


def _from_factory(target: str, num_classes: int, drop_rate: float) -> nn.Module:
    """`factory(num_classes=K)` of the user's module; the model must have the harness's interface."""
    module_name, _, attr = target.partition(":")
    if drop_rate:
        raise HarnessError(f"model {target!r}: a user factory takes no drop_rate; it must be 0, got {drop_rate}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise HarnessError(f"model {target!r}: cannot import {attr!r} from {module_name!r} ({exc}); the module must "
                           f"be importable (on PYTHONPATH)") from None
    try:
        model = factory(num_classes=num_classes)
    except Exception as exc:  # the user's code: any error of its own, or a signature without num_classes
        raise HarnessError(f"model {target!r}: {attr}(num_classes={num_classes}) failed ({type(exc).__name__}: "
                           f"{one_line(exc)}); the factory must take num_classes and return the model") from None
    missing = [a for a in ("features", "fc", "feature_dim") if not hasattr(model, a)]
    if not isinstance(model, nn.Module) or missing:
        raise HarnessError(f"model {target!r}: the factory must return an nn.Module with features(x), fc and "
                           f"feature_dim, like harness.models.WideResNet; missing: {', '.join(missing) or 'nn.Module'}")
    return model


def backbone_modules(model: nn.Module) -> list[nn.Module]:
    """Every top-level child except the head `fc`: what a linear probe freezes."""
    return [m for name, m in model.named_children() if name != "fc"]


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """A fresh Linear(feature_dim, num_classes) with PyTorch's default init, as the reference fine-tuning does."""
    model.fc = nn.Linear(model.feature_dim, num_classes).to(next(model.parameters()).device)
    return model


def load_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str = "checkpoint",
                    skip_prefixes: tuple[str, ...] = ()) -> nn.Module:
    """Strict load after stripping a DataParallel `module.` prefix; keys starting with any of
    `skip_prefixes` are ignored on both sides (e.g. ("fc.",) to take a backbone only).
    A missing, unexpected or wrong-shaped key raises HarnessError naming the first such key."""
    if not isinstance(state, Mapping):
        raise HarnessError(f"{source}: expected a state dict (mapping of names to tensors), got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    skipped = {k for k in own if k.startswith(skip_prefixes)}
    state = {k: v for k, v in state.items() if not k.startswith(skip_prefixes)}
    expected = {k: v for k, v in own.items() if k not in skipped}
    problems = []
    for key, ref in expected.items():
        if key not in state:
            problems.append(f"missing key {key!r}")
        elif not isinstance(state[key], torch.Tensor):
            problems.append(f"key {key!r} is a {type(state[key]).__name__}, not a tensor")
        elif state[key].shape != ref.shape:
            problems.append(f"key {key!r} has shape {tuple(state[key].shape)}, "
                            f"the model expects {tuple(ref.shape)}")
    problems += [f"unexpected key {key!r}" for key in state if key not in expected]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise HarnessError(f"{source} does not fit {type(model).__name__}: {problems[0]}{more}")
    model.load_state_dict({**{k: own[k] for k in skipped}, **state}, strict=True)
    return model
