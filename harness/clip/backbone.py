"""An open_clip model as a harness classifier: the image tower, the model's own evaluation preprocessing, and a
linear head on the L2-normalised image embedding.

The harness feeds every model uint8 images normalised with mean = std = 0.5 at the dataset's size (32x32 for
CIFAR and digits). `ClipClassifier` undoes that normalisation and applies the model's own evaluation transforms
(open_clip's `preprocess_val`) to the [0, 1] pixels as tensors: Resize of the short side to the model's input
size (bicubic for the released CLIP models, so a 32x32 image becomes 224x224), CenterCrop to that size (a no-op
on a square image) and Normalize with the model's mean and std (OpenAI's for the released weights). PIL, which
open_clip's transform uses on images, clamps the resized uint8 pixels; the tensor path clamps to [0, 1] too.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness import clip
from harness.errors import HarnessError

HARNESS_MEAN, HARNESS_STD = 0.5, 0.5  # harness.data.normalize


@dataclass(frozen=True)
class ClipSpec:
    """What builds the model: the open_clip name, its pretrained tag (quick_gelu, mean/std and download address
    of the released weights come from the tag's open_clip config) and, for a name open_clip does not know, a
    model config JSON (open_clip's format) registered under that name."""

    arch: str
    pretrained: str | None = None
    model_config: str | None = None

    def register_config(self) -> None:
        if self.model_config is None:
            return
        path = Path(self.model_config)
        if path.stem != self.arch:
            raise HarnessError(f"clip.model_config {path}: the file's name must be the architecture's ({self.arch}.json)")
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise HarnessError(f"clip.model_config {path}: cannot read an open_clip model config JSON ({exc})") from None
        if not {"embed_dim", "vision_cfg", "text_cfg"} <= set(config):
            raise HarnessError(f"clip.model_config {path}: expected the keys embed_dim, vision_cfg and text_cfg")
        clip.open_clip().add_model_config(path)

    def tag_config(self) -> dict:
        """The pretrained tag's open_clip config ({} without a tag); an unknown tag is an error listing the known."""
        if self.pretrained is None:
            return {}
        oc = clip.open_clip()
        config = oc.get_pretrained_cfg(self.arch, self.pretrained)
        if not config:
            known = ", ".join(oc.list_pretrained_tags_by_model(self.arch)) or "none"
            raise HarnessError(f"clip.pretrained {self.pretrained!r} is no open_clip tag of {self.arch} (known: {known})")
        return config

    def build(self, weights: Path):
        """(open_clip model in eval mode, its evaluation transform) with the weights file loaded strictly."""
        oc = clip.open_clip()
        self.register_config()
        if oc.get_model_config(self.arch) is None:
            raise HarnessError(f"architecture open_clip:{self.arch}: open_clip has no such model (give clip.model_config, "
                               f"or one of open_clip.list_models())")
        tag = self.tag_config()
        try:
            if _is_torchscript(weights):  # OpenAI's released .pt files: open_clip rebuilds them from the archive
                model = oc.load_openai_model(str(weights), precision="fp32", device="cpu")
                return model.eval(), oc.image_transform(model.visual.image_size, is_train=False,
                                                        mean=tag.get("mean"), std=tag.get("std"))
            model, _, preprocess = oc.create_model_and_transforms(
                self.arch, pretrained=str(weights), force_quick_gelu=bool(tag.get("quick_gelu")),
                image_mean=tag.get("mean"), image_std=tag.get("std"),
                image_interpolation=tag.get("interpolation"), image_resize_mode=tag.get("resize_mode"))
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise HarnessError(f"{weights}: cannot load it as open_clip {self.arch} weights: {str(exc).splitlines()[0]}") \
                from None
        return model.eval(), preprocess


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive (a zip holding compiled code), which torch.load(weights_only=True) refuses."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


def tensor_transforms(preprocess) -> nn.Sequential:
    """The Resize, CenterCrop and Normalize steps of open_clip's evaluation transform, applied to float tensors;
    the PIL-only steps (RGB conversion, ToTensor) have nothing to do on the harness's RGB tensors."""
    from torchvision import transforms as T
    kept = []
    for step in preprocess.transforms:
        if isinstance(step, (T.Resize, T.CenterCrop, T.Normalize)):
            kept.append(step)
            if isinstance(step, T.Resize):
                kept.append(_Clamp())
        elif type(step).__name__ not in _PIL_ONLY:
            raise HarnessError(f"the model's evaluation transform has a step the harness cannot apply to tensors: {step}")
    return nn.Sequential(*kept)


# open_clip's steps that only convert a PIL image to an RGB tensor (3.x names, and the 2.x function and ToTensor)
_PIL_ONLY = {"MaybeConvertMode", "MaybeToTensor", "ToTensor", "function"}


class _Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0.0, 1.0)


class ClipClassifier(nn.Module):
    """logits = fc(normalize(image_tower(preprocess(x)))): with fc.weight = logit_scale * the class text
    embeddings and no bias it is CLIP's zero-shot classifier (WiSE-FT's ImageClassifier with a normalising
    ClassificationHead). `features` are the unit-norm image embeddings (what scores on features use)."""

    def __init__(self, visual: nn.Module, prepare: nn.Sequential, head_weight: torch.Tensor):
        super().__init__()
        self.visual = visual
        self.prepare = prepare
        self.feature_dim = head_weight.shape[1]
        self.fc = nn.Linear(self.feature_dim, head_weight.shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(head_weight)
            self.fc.bias.zero_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x * HARNESS_STD + HARNESS_MEAN
        return F.normalize(self.visual(self.prepare(pixels)), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
