"""A tiny open_clip model with random weights, written as a CLIP model entry: the whole CLIP path on CPU in
seconds (tests/test_clip*.py)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

ARCH = "tiny-clip-test"
# A ViT with one layer of width 32 on 16x16 patches; `image_size` is the model's input size, so a value other
# than 32 makes the preprocessing resize the harness's 32x32 images. The vocabulary is the package tokenizer's.
CONFIG = {"embed_dim": 32,
          "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
          "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def tiny_entry(folder: Path, *, name: str = "tiny-clip", image_size: int = 32, seed: int = 0,
               dataset: str = "digits-0-4", num_classes: int = 5, extra: str = "") -> Path:
    """An entry file `folder/<name>.toml` with its config JSON and weights file beside it."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    arch = ARCH if image_size == 32 else f"{ARCH}-{image_size}"
    config = json.loads(json.dumps(CONFIG))
    config["vision_cfg"]["image_size"] = image_size
    (folder / f"{arch}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{arch}.json")
    torch.manual_seed(seed)
    weights = folder / f"{name}.pt"
    torch.save(open_clip.create_model(arch).state_dict(), weights)
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    entry = folder / f"{name}.toml"
    entry.write_text(f'architecture = "open_clip:{arch}"\nnum_classes = {num_classes}\ndataset = "{dataset}"\n\n'
                     f'[checkpoint]\npath = "{weights.name}"\nsha256 = "{sha256}"\n\n'
                     f'[clip]\nmodel_config = "{arch}.json"\n{extra}')
    return entry
