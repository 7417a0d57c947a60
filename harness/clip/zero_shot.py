"""The zero-shot head: class names x prompt templates -> one unit-norm text embedding per class -> logit_scale *
those embeddings as the weight of a linear head without bias (docs/clip.md).

The per-class rule is the CLIP paper's (openai/CLIP notebooks/Prompt_Engineering_for_ImageNet.ipynb, and
WiSE-FT's zero-shot head): embed every template filled with the class name, L2-normalise each embedding, average
them, L2-normalise the mean. A head is built once per (weights sha256, architecture, class names, templates) and
kept in the checkpoint cache.
"""
from __future__ import annotations

import hashlib
import io
import json
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from harness import clip, tomlfile
from harness.checkpoint_files import atomic_write
from harness.errors import HarnessError

TEMPLATES_FILE = Path(__file__).with_name("templates.toml")
DEFAULT_SETS = (("cifar100", "cifar100"), ("cifar10", "cifar10"), ("imagenet", "imagenet"))  # dataset prefix -> set


@lru_cache(maxsize=None)
def template_sets() -> dict[str, tuple[str, ...]]:
    data, _ = tomlfile.read(TEMPLATES_FILE, "CLIP prompt templates")
    return {name: tuple(templates) for name, templates in data["sets"].items()}


def templates(name: str | None, dataset: str) -> tuple[str, tuple[str, ...]]:
    """(set name, templates): the named set, else the paper's set for the dataset, else the single plain prompt."""
    if name is None:
        name = next((s for prefix, s in DEFAULT_SETS if dataset.startswith(prefix)), "simple")
    sets = template_sets()
    if name not in sets:
        raise HarnessError(f"clip.templates {name!r}: no such template set (known: {', '.join(sets)})")
    return name, sets[name]


@torch.no_grad()
def text_head(model, tokenizer, classnames, prompts) -> torch.Tensor:
    """(C, D): logit_scale * the per-class unit-norm mean of the unit-norm template embeddings."""
    rows = []
    for name in classnames:
        embedded = F.normalize(model.encode_text(tokenizer([p.format(name) for p in prompts])).float(), dim=-1)
        rows.append(F.normalize(embedded.mean(dim=0), dim=-1))
    return model.logit_scale.exp().float() * torch.stack(rows)


def head_key(weights_sha256: str, arch: str, classnames, prompts) -> str:
    identity = {"weights": weights_sha256, "arch": arch, "classnames": list(classnames), "templates": list(prompts)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def cached_head(model, arch: str, weights_sha256: str, classnames, prompts, cache_dir: Path) -> torch.Tensor:
    """text_head, built once per key and stored as `<cache_dir>/clip-heads/<key>.pt`."""
    path = Path(cache_dir) / "clip-heads" / f"{head_key(weights_sha256, arch, classnames, prompts)}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    head = text_head(model, clip.open_clip().get_tokenizer(arch), classnames, prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = io.BytesIO()
    torch.save(head, blob)
    atomic_write(path, blob.getvalue())
    return head
