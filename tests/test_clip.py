"""CLIP backbones (harness.clip): the entry kind, the preprocessing, the zero-shot head against open_clip's own
classifier, the schedule and the probe's sweep, and the errors."""
from __future__ import annotations

import builtins
import re

import numpy as np
import pytest
import torch

from harness import clip, model_entries
from harness import data as hdata
from harness.clip import probe, schedule, zero_shot
from harness.errors import HarnessError

open_clip = pytest.importorskip("open_clip")
from clip_factory import tiny_entry  # noqa: E402  (needs open_clip)


def _digits(n=12):
    test = hdata.load("digits-0-4", "test")
    return test.images[:n], test.classes


def test_zero_shot_logits_equal_open_clips_own_similarity(tmp_path):
    entry = model_entries.load(tiny_entry(tmp_path / "m", extra='templates = "cifar10"\n'))
    model, info = entry.load(tmp_path / "data")
    images, classes = _digits()
    ours = model(hdata.normalize(images)).detach().double()

    # open_clip's side: its PIL evaluation transform on the images, its zero-shot classifier builder (the
    # per-class mean of unit-norm template embeddings, normalised again), logit_scale * cosine similarity
    from PIL import Image
    clip_model, _, preprocess = open_clip.create_model_and_transforms("tiny-clip-test", pretrained=info["path"])
    tokenizer = open_clip.get_tokenizer("tiny-clip-test")
    prompts = zero_shot.template_sets()["cifar10"]
    with torch.no_grad():
        text = open_clip.build_zero_shot_classifier(clip_model.eval(), tokenizer, classes,
                                                    [lambda c, p=p: p.format(c) for p in prompts],
                                                    device="cpu", use_tqdm=False)
        pixels = torch.stack([preprocess(Image.fromarray(im)) for im in images])
        image = clip_model.encode_image(pixels)
        image = image / image.norm(dim=-1, keepdim=True)
        theirs = (clip_model.logit_scale.exp() * image @ text).double()
    assert info["templates"] == "cifar10" and len(prompts) == 18
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ours, theirs.roll(1, dims=1), atol=1e-4)  # the classes do differ


def test_a_32px_image_is_resized_to_the_models_input_like_its_pil_transform(tmp_path):
    entry = model_entries.load(tiny_entry(tmp_path / "m", name="tiny48", image_size=48))
    model, info = entry.load(tmp_path / "data")
    images, _ = _digits(4)
    from PIL import Image
    _, _, preprocess = open_clip.create_model_and_transforms("tiny-clip-test-48", pretrained=info["path"])
    theirs = torch.stack([preprocess(Image.fromarray(im)) for im in images])
    ours = model.prepare(hdata.normalize(images) * 0.5 + 0.5)
    assert ours.shape == theirs.shape == (4, 3, 48, 48)
    # PIL's bicubic (a = -0.5, uint8 rounding) and torch's (a = -0.75) differ a little, pixel by pixel
    assert (ours - theirs).abs().mean() < 0.05


def test_the_head_is_cached_by_weights_classnames_and_templates(tmp_path):
    path = tiny_entry(tmp_path / "m")
    entry = model_entries.load(path)
    _, first = entry.load(tmp_path / "data")
    heads = list((tmp_path / "data" / "checkpoints" / "clip-heads").glob("*.pt"))
    assert len(heads) == 1
    entry.clip["templates"] = "cifar10"
    _, other = entry.load(tmp_path / "data")
    assert other["key"] != first["key"]
    assert len(list(heads[0].parent.glob("*.pt"))) == 2


def test_warmup_is_capped_on_short_runs_and_the_schedule_is_wise_fts():
    assert schedule.warmup_steps(25_020) == 500 and schedule.warmup_steps(40) == 4 and schedule.warmup_steps(5) == 0
    assert schedule.lr_factor(0, 40) == pytest.approx(0.25) and schedule.lr_factor(3, 40) == pytest.approx(1.0)
    assert schedule.lr_factor(4, 40) == pytest.approx(1.0) and schedule.lr_factor(22, 40) == pytest.approx(0.5)
    assert schedule.lr_factor(0, 5) == 1.0


def test_probe_sweep_refines_to_eight_steps_per_decade():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-1, 1, (60, 4)), rng.normal(1, 1, (60, 4))])
    y = np.repeat([0, 1], 60)
    coef, intercept, lam, scores = probe.probe(x, y, 0.25, seed=0)
    assert coef.shape == (2, 4) and intercept.shape == (2,)
    assert len(scores) > len(probe.COARSE) and lam in scores
    exponents = sorted(np.log10(list(scores)))
    assert min(np.diff(exponents)) == pytest.approx(1 / 8)
    assert ((x @ coef.T + intercept).argmax(1) == y).mean() > 0.8


def test_missing_open_clip_is_one_line_naming_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_open_clip(name, *args, **kwargs):
        if name == "open_clip":
            raise ImportError("No module named 'open_clip'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_open_clip)
    with pytest.raises(HarnessError, match=r"pip install -e '\.\[clip\]'") as info:
        clip.open_clip()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("extra, arch, message", [
    ('pretrained = "no-such-tag"\n', None, "no open_clip tag"),
    ('templates = "nope"\n', None, "no such template set"),
    ("", "wrn-16-1", "needs architecture"),
])
def test_bad_clip_entries_are_one_line_errors(tmp_path, extra, arch, message):
    path = tiny_entry(tmp_path / "m", extra=extra)
    if arch:
        path.write_text(path.read_text().replace('"open_clip:tiny-clip-test"', f'"{arch}"'))
    with pytest.raises(HarnessError, match=message) as info:
        model_entries.load(path).load(tmp_path / "data")
    assert "\n" not in str(info.value)


def test_a_config_file_named_unlike_the_architecture_is_refused(tmp_path):
    path = tiny_entry(tmp_path / "m")
    (tmp_path / "m" / "other.json").write_text((tmp_path / "m" / "tiny-clip-test.json").read_text())
    path.write_text(path.read_text().replace('model_config = "tiny-clip-test.json"', 'model_config = "other.json"'))
    with pytest.raises(HarnessError, match="must be the architecture's"):
        model_entries.load(path).load(tmp_path / "data")


def test_the_shipped_clip_entry_parses_and_names_its_weights():
    entry = model_entries.get("clip-vit-b-32")
    assert clip.arch_of(entry.architecture) == "ViT-B-32" and entry.clip["pretrained"] == "openai"
    assert entry.sha256 == "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"


def _tagged(folder, name, sha256_line):
    """The tiny entry with no file of its own: clip.pretrained = "tiny" names its weights (a file:// address)."""
    path = tiny_entry(folder, name=name)
    source = folder / "released" / "tiny-weights.pt"
    source.parent.mkdir(exist_ok=True)
    (folder / f"{name}.pt").rename(source)
    text = path.read_text().replace(f'path = "{name}.pt"\n', "")
    text = re.sub(r'sha256 = "[0-9a-f]+"\n', sha256_line, text).replace("[clip]\n", '[clip]\npretrained = "tiny"\n')
    path.write_text(text)
    return path, source


def test_download_fetches_a_pretrained_tags_weights_into_the_cache_checked_and_recorded(tmp_path, monkeypatch):
    import hashlib

    import open_clip
    folder, data = tmp_path / "m", tmp_path / "data"
    path, source = _tagged(folder, "tagged", "sha256 = \"@\"\n")
    sha256 = hashlib.sha256(source.read_bytes()).hexdigest()
    path.write_text(path.read_text().replace("@", sha256))
    tags = {"tiny": {"url": source.as_uri()}}
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda arch, tag: tags.get(tag, {}))
    entry = model_entries.load(path)
    assert "python -m harness evaluate --entry tagged --download" in entry.absent(data)  # not fetched unasked
    target = entry.download(data)
    assert target == data / "checkpoints" / "models" / "tagged" / "tiny-weights.pt" and entry.absent(data) is None
    _, info = entry.load(data)
    assert info["sha256"] == sha256 and entry.to_json()["url"] == source.as_uri()

    path.write_text(path.read_text().replace(sha256, "0" * 64))
    damaged = model_entries.load(path)
    target.unlink()
    with pytest.raises(HarnessError, match="checkpoint.sha256: .* has sha256 .*expected 0{64}"):
        damaged.download(data)
    assert not target.exists()  # nothing unverified kept
    tags["tiny"] = {"hf_hub": "someone/tiny/"}  # a tag open_clip fetches from the Hugging Face hub only
    with pytest.raises(HarnessError, match="clip.pretrained: open_clip gives tag 'tiny' no download address"):
        damaged.download(data)


def test_a_tagged_entry_without_a_checksum_is_refused(tmp_path):
    path, _ = _tagged(tmp_path / "m", "unchecked", "")
    with pytest.raises(HarnessError, match="unchecked.toml.*checkpoint: a checkpoint fetched by its clip.pretrained "
                                           "tag needs sha256 or git_blob"):
        model_entries.load(path)


def test_a_clip_recipe_without_an_entry_is_one_line():
    from harness import profiles, recipes
    with pytest.raises(HarnessError, match="recipe clip_zero_shot runs on a CLIP model entry: give the case one"):
        recipes.get("clip_zero_shot").obtain("digits-0-4", profiles.get("smoke"), 0)
