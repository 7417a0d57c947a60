"""CLIP backbones through open_clip (the optional extra `[clip]`, docs/clip.md).

A model entry whose architecture is `open_clip:ARCH` is a CLIP model: its image tower, the model's own
preprocessing and a linear head (the zero-shot head built from class names and prompt templates, or a trained one)
make an ordinary harness classifier (`backbone.ClipClassifier`), so every score, OOD set, shifted set, calibration
view and record applies to it. The harness imports without open_clip; only building such a model needs it.
"""
from __future__ import annotations

from harness.errors import HarnessError

INSTALL = "pip install -e '.[clip]'"
ARCH_PREFIX = "open_clip:"  # a model entry's architecture `open_clip:ViT-B-32` names an open_clip model
# Named class-name lists an entry's head may take (`clip.classnames_from`), for datasets whose own class names are
# no words (ImageNet-1k's are wnids): source -> the installed open_clip's attribute holding the list. open_clip's
# IMAGENET_CLASSNAMES are OpenAI's 1,000 curated names (openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb),
# the ones its published ImageNet results use.
CLASSNAME_SOURCES = {"open_clip:imagenet": "IMAGENET_CLASSNAMES"}


def open_clip():
    """The open_clip module, or a one-line HarnessError naming the install command."""
    try:
        import open_clip as module
    except ImportError as exc:
        raise HarnessError(f"CLIP backbones need the open_clip package ({exc}); install it with: {INSTALL}") from None
    return module


def arch_of(architecture: str) -> str | None:
    """The open_clip model name of an entry's `architecture` (`open_clip:ViT-B-32` -> `ViT-B-32`), else None."""
    if not architecture.startswith(ARCH_PREFIX):
        return None
    arch = architecture[len(ARCH_PREFIX):]
    if not arch.strip():
        raise HarnessError(f"architecture {architecture!r}: expected {ARCH_PREFIX}NAME with an open_clip model name")
    return arch
