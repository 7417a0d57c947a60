"""Model entries: the file format, its one-line `file:line` errors, fetching by URL with the git blob id."""
import hashlib
import re

import pytest
import torch

from checkpoint_factory import SOLO_ENTRY as ENTRY
from checkpoint_factory import write_solo_learn, write_wrn
from harness import model_entries
from harness.errors import HarnessError



def _entry(tmp_path, text=ENTRY, name="byol"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_an_entry_reads_and_loads(tmp_path):
    write_solo_learn(tmp_path / "byol.ckpt")
    entry = model_entries.load(_entry(tmp_path))
    assert (entry.name, entry.architecture, entry.dataset, entry.trained_on) == \
        ("byol", "resnet18-cifar", "digits-0-4", ("digits-5-9:train",))
    model, info = entry.load()
    assert isinstance(model, model_entries.Renormalized) and info["entry"] == "byol"
    # The harness feeds (u - 0.5) / 0.5; the body must see (u - mean) / std.
    u = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in entry.normalize)
    assert torch.allclose(model.features((u - 0.5) / 0.5), model.body.features((u - mean) / std), atol=1e-5)


@pytest.mark.parametrize("old,new,line,message", [
    ("num_classes = 5", "num_classes = 5\nlayers = 3", 3, "model entry byol: layers: unknown field"),
    ('head_prefix = "classifier."', 'head_prefx = "classifier."', 10, "state_dict.head_prefx: unknown field"),
    ('"resnet18-cifar"', '"vgg16"', 1, "architecture: unknown model 'vgg16'"),
    ("mean = [0.4914, 0.4822, 0.4465]", "mean = [0.4914, 0.4822]", 13, "normalize.mean: must list 3 numbers"),
    ('path = "byol.ckpt"', 'url = "file:///nowhere.pt"', 6, "checkpoint.url: a URL needs sha256 or git_blob"),
    ('trained_on = ["digits-5-9:train"]', 'trained_on = ["digits-5-9"]', 18, "must list DATASET:SPLIT"),
    ("num_classes = 5", "num_classes = 0", 2, "num_classes: must be an integer >= 1"),
])
def test_bad_fields_are_one_line_errors_with_file_and_line(tmp_path, old, new, line, message):
    path = _entry(tmp_path, ENTRY.replace(old, new))
    with pytest.raises(HarnessError) as err:
        model_entries.load(path)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{path}:{line}: ") and message in text, text


def test_missing_file_and_checksum_mismatch_name_the_entry_and_field(tmp_path):
    entry = model_entries.load(_entry(tmp_path))
    with pytest.raises(HarnessError,
                       match=r"byol\.toml:6: model entry byol: checkpoint\.path: .*byol\.ckpt does not exist"):
        entry.load()
    write_solo_learn(tmp_path / "byol.ckpt")
    wrong = ENTRY.replace('path = "byol.ckpt"', f'path = "byol.ckpt"\nsha256 = "{"0" * 64}"')
    with pytest.raises(HarnessError, match=r"byol\.toml:7: model entry byol: checkpoint\.sha256: .* has sha256 "):
        model_entries.load(_entry(tmp_path, wrong)).load()
    headless_wrn = ENTRY.replace('"resnet18-cifar"', '"wrn-10-1"')
    with pytest.raises(HarnessError, match=r"byol\.toml:\d+: model entry byol: state_dict: .*key 'conv1\.weight'"):
        model_entries.load(_entry(tmp_path, headless_wrn)).load()


def test_url_is_fetched_only_when_asked_and_checked_by_git_blob_id(tmp_path, monkeypatch):
    """A released checkpoint's path: a file:// URL stands for GitHub, the git blob id is the integrity check."""
    monkeypatch.setenv("HARNESS_DATA_ROOT", str(tmp_path / "data"))
    source = write_wrn(tmp_path / "cifar10_wrn_baseline_epoch_99.pt")
    data = source.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    text = (f'architecture = "wrn-10-1"\nnum_classes = 5\ndataset = "digits-0-4"\n[checkpoint]\n'
            f'url = "{source.as_uri()}"\ngit_blob = "{blob}"\n')
    entry = model_entries.load(_entry(tmp_path, text, "released"))
    assert "python -m harness evaluate --entry released --download" in entry.absent()
    target = entry.download()
    assert target == tmp_path / "data" / "checkpoints" / "models" / "released" / source.name
    assert entry.absent() is None and target.read_bytes() == data
    model, info = entry.load()
    assert info["sha256"] == hashlib.sha256(data).hexdigest()

    target.unlink()
    damaged = model_entries.load(_entry(tmp_path, text.replace(blob, "f" * 40), "damaged"))
    with pytest.raises(HarnessError, match="checkpoint.git_blob: .* has git blob id .*expected f{40}"):
        damaged.download()
    assert not list((tmp_path / "data" / "checkpoints" / "models").glob("damaged/*"))  # nothing unverified kept


def test_released_entries_are_well_formed():
    released = {e.name: e for e in model_entries.load_all()}
    names = {"oe-cifar10-baseline", "oe-cifar10-oe-tune", "oe-cifar10-oe-scratch", "oe-cifar100-baseline",
             "energy-cifar10-energy-ft", "energy-cifar100-energy-ft", "imagenet32-nocifar10-wrn-40-2"}
    assert names <= set(released)
    for entry in (released[n] for n in names):
        assert entry.url.startswith("https://github.com/") and re.fullmatch("[0-9a-f]{40}", entry.git_blob)
        assert entry.architecture == "wrn-40-2"
    assert released["imagenet32-nocifar10-wrn-40-2"].dataset is None
    assert released["oe-cifar10-baseline"].normalize[1][0] == pytest.approx(63.0 / 255, abs=1e-6)


def test_entry_band_on_the_mean_compares_only_the_papers_ood_sets(tmp_path):
    text = ENTRY.replace('dataset = "digits-0-4"', 'dataset = "digits-0-4"\nood_sets = ["gaussian"]')
    band = '\n[[band]]\nmetric = "ood/mean/auroc"\nscore = "msp"\nvalue = 90.0\ntolerance = 2.0\nsource = "a table"\n'
    entry = model_entries.load(_entry(tmp_path, text + band))
    metrics = {"ood/mean/auroc": {"mean": 91.0, "std": 0.0, "n": 1}}
    [same] = entry.band_verdicts("msp", metrics, ["gaussian"], ("paper", None))
    [other] = entry.band_verdicts("msp", metrics, ["gaussian", "blobs"], ("paper", None))
    assert same["passed"] is True and other["passed"] is None and "not the paper's" in other["message"]
    assert entry.band_verdicts("energy", metrics, ["gaussian"], ("paper", None)) == []
    assert entry.band_verdicts("msp", metrics, ["gaussian"], ("mini", None)) == []  # a band gates its profile only


def test_an_entry_band_names_its_profile(tmp_path):
    band = '\n[[band]]\nmetric = "accuracy"\nscore = "msp"\nvalue = 90.0\ntolerance = 1.0\nsource = "t"\n'
    entry = model_entries.load(_entry(tmp_path, ENTRY + band.replace('source = "t"', 'source = "t"\nprofile = "clip"')))
    metrics = {"accuracy": {"mean": 89.5, "std": 0.0, "n": 1}}
    assert entry.band_verdicts("msp", metrics, [], ("paper", None)) == []
    assert entry.band_verdicts("msp", metrics, [], ("clip", None))[0]["passed"] is True
    with pytest.raises(HarnessError, match=r"band #1: profile 'nope' is no profile \(known: smoke,"):
        model_entries.load(_entry(tmp_path, ENTRY + band.replace('source = "t"', 'source = "t"\nprofile = "nope"')))


@pytest.mark.parametrize("stem", ["..", "My Model", "checkpoints"])
def test_an_entry_file_name_follows_the_name_rule(tmp_path, stem):
    """An entry's name (its file's stem) names its download folder <data root>/checkpoints/models/<name>."""
    (tmp_path / f"{stem}.toml").write_text(ENTRY)
    with pytest.raises(HarnessError, match=re.escape(f"{stem}.toml: model entry name {stem!r}: ")):
        model_entries.load_all(tmp_path)


def test_clip_profile_cases_skip_naming_the_weights_file_or_the_import(tmp_path):
    from dataclasses import replace

    from harness import profiles
    from harness.runner import LOADED, Case, RunContext, Session

    released = {e.name: e for e in model_entries.load_all()}
    bands = [(b.metric, b.value, b.profile) for n in ("clip-vit-b-32", "clip-vit-b-32-cifar100")
             for b in released[n].bands]
    assert bands == [("accuracy", 89.83, "clip"), ("accuracy", 64.23, "clip")]
    profile = replace(profiles.get("clip"), device="cpu")  # past the GPU check, to the data and weights
    session = Session(RunContext(profile, "cpu", tmp_path / "r", data_root=tmp_path / "data"))
    session.entries["clip-vit-b-32"] = replace(released["clip-vit-b-32"], path=str(tmp_path / "ViT-B-32.pt"))
    why = session.unavailable(Case("models", "cifar10", LOADED, "msp", entry="clip-vit-b-32"))
    assert "ViT-B-32.pt is absent" in why and "place the checkpoint file" in why and "\n" not in why
    (tmp_path / "ViT-B-32.pt").write_bytes(b"weights")
    why = session.unavailable(Case("models", "cifar10", LOADED, "msp", entry="clip-vit-b-32"))
    assert "python -m harness data import cifar10 PATH" in why
