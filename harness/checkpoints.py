"""The checkpoint cache: every trained model is stored under a key that hashes everything that determines it.

key = sha256 of the canonical JSON of `Run.identity()`: recipe name and settings, dataset and a sha256 of the
exact training images and labels used, model, epochs, training-set cap, seed, loader, bf16 or not, the keys of
the upstream models, and TRAINING_CODE_VERSION (bump it whenever a change to the training code changes what a
run learns). Settings at their key-neutral values (recipes._KEY_NEUTRAL: how every run before them was trained)
and evaluation-only settings stay out of the key. An upstream model is therefore trained once and reused by
every recipe that needs it; processes asking for one key at the same time train it once (a file lock per key).
Files are written atomically and loaded with `torch.load(weights_only=True)`; each has a JSON sidecar with its
sha256, checked on load.

Layout of a cache dir: <key>.pt, <key>.json (identity + info, human-readable), <key>.lock, and while training
<key>.partial.pt (the per-epoch resume state: an interrupted run continues where it stopped).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import filelock
import numpy as np
import torch
from torch import nn

from harness import data as hdata
from harness import models, normalizations, outliers, recipes, splits, train
from harness.checkpoint_files import atomic_write, load_verified, load_weights_only, sha256_of, unwrap
from harness.data import synthetic
from harness.errors import HarnessError
from harness.profiles import Profile
from harness.profiles import get as get_profile
from harness.state_mapping import StateMapping

# 2: the WideResNet pools with avg_pool2d (the reference's op), not adaptive_avg_pool2d: every trained model moved
TRAINING_CODE_VERSION = 2
DATA_SUBSET_SEED = 0  # the train_limit subset does not depend on the training seed: seeds vary training only
_FORMAT = "harness-checkpoint/1"


@dataclass(frozen=True)
class UserCheckpoint:
    """A model file the user supplies (e.g. a released pretrained WRN, a model entry's file), used in place of
    training `pretrain`. `mapping` turns its keys into the model's; `num_classes` is needed when it has no head."""

    path: str
    sha256: str
    model: str | None = None  # the architecture to load it into; plan() fills in the resolved model
    mapping: StateMapping = StateMapping()
    num_classes: int | None = None
    entry: str | None = None  # the model entry it comes from (benchmarks/models/<entry>.toml), if any


@dataclass
class Run:
    """A recipe resolved against a dataset and a profile: everything needed to train it, and its key."""

    recipe: recipes.Recipe
    dataset: str
    model: str
    num_classes: int
    epochs: int
    train_limit: int | None
    seed: int
    loader: str
    amp: bool
    upstreams: list[Run | UserCheckpoint]
    train_set: hdata.ImageSet | None = field(default=None, repr=False)
    data_sha256: str | None = None
    holdout: splits.Holdout | None = None
    holdout_set: hdata.ImageSet | None = field(default=None, repr=False)
    holdout_seen_by_upstream: int | None = None  # holdout images the first upstream model trained on
    test_copies_dropped: int = 0  # training images left out because the test split holds the same image
    aux_set: hdata.ImageSet | None = field(default=None, repr=False)  # the outlier pool (outlier recipes)
    aux_sha256: str | None = None
    # validation outliers (a recipe with val_ood_size), out of the pool; the info says how they were drawn
    val_ood_set: hdata.ImageSet | None = field(default=None, repr=False)
    val_ood_info: dict | None = None

    def settings(self) -> dict:
        """The effective hyperparameters: the recipe's, with the profile-resolved model and epochs."""
        s = self.recipe.settings()
        s["model"] = self.model
        if self.recipe.trains:
            s["epochs"] = self.epochs
            s["train_limit"] = self.train_limit
        return s

    def identity(self) -> dict:
        return {"training_code_version": TRAINING_CODE_VERSION, "recipe": self.recipe.name,
                "settings": recipes.identity_settings(self.recipe, self.settings()), "dataset": self.dataset,
                "num_classes": self.num_classes,
                "data_sha256": self.data_sha256, "seed": self.seed,
                "loader": self.loader if self.recipe.trains else None, "amp": self.amp and self.recipe.trains,
                "upstreams": [_key_of(u) for u in self.upstreams],
                **({"aux_sha256": self.aux_sha256} if self.aux_sha256 else {}),
                **({"val_ood_sha256": self.val_ood_info["sha256"]} if self.val_ood_info else {})}

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan(recipe: recipes.Recipe | str, dataset: str, profile: Profile | str, seed: int = 0, *,
         upstream_dataset: str | None = None, upstream_checkpoint: UserCheckpoint | None = None,
         epochs: int | None = None, data_root=None, loader: str | None = None, amp: bool = False) -> Run:
    """Resolve `recipe` on `dataset` under `profile` (recursively for its upstreams) without training anything.

    The upstream dataset is `upstream_dataset`, else the profile's upstream for `dataset`, else the profile's
    first upstream. `epochs` overrides the resolved epoch count of this recipe (not of its upstreams).
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    recipe = recipes.get(recipe) if isinstance(recipe, str) else recipe
    if upstream_dataset is None:
        known = {p.id: p.upstream for p in profile.datasets}
        upstream_dataset = known.get(dataset, profile.upstream_dataset)
    loader = loader or profile.loader
    if loader not in train.LOADERS:
        raise HarnessError(f"unknown loader {loader!r}; valid: {', '.join(train.LOADERS)}")
    if epochs is not None and epochs < 1:
        raise HarnessError(f"epochs must be >= 1, got {epochs}")
    memo: dict = {}
    return _plan(recipe, dataset, profile, seed, upstream_dataset, upstream_checkpoint, epochs, data_root,
                 loader, amp, memo)


def _plan(recipe, dataset, profile, seed, upstream_dataset, user_ckpt, epochs, data_root, loader, amp, memo) -> Run:
    spec = hdata.spec(dataset, data_root)
    recipe = recipe.resolve(dataset, next((p.aux for p in profile.datasets if p.id == dataset), None), data_root)
    if not spec.num_classes:
        raise HarnessError(f"dataset {dataset!r} has no labels; a model cannot be trained on it")
    ups: list[Run | UserCheckpoint] = []
    for dep in recipe.upstreams:
        if dep.recipe == "pretrain" and dep.on == "upstream" and user_ckpt is not None:
            ups.append(replace(user_ckpt, model=user_ckpt.model or recipes.get("pretrain").model or profile.model))
            continue
        ds = dataset if dep.on == "same" else upstream_dataset
        ups.append(_plan(recipes.get(dep.recipe), ds, profile, seed, upstream_dataset, user_ckpt, None,
                         data_root, loader, amp, memo))
    # Below a user's checkpoint every model has its architecture (a linear probe on a resnet18-cifar backbone).
    model = recipe.model_for(_user_model(ups) or profile.model, [u.model for u in ups])
    limit = profile.train_limit_for(dataset)
    run = Run(recipe=recipe, dataset=dataset, model=model, num_classes=spec.num_classes,
              epochs=epochs if epochs is not None else recipe.epochs_for(dataset, profile.epochs),
              train_limit=limit, seed=seed, loader=loader, amp=amp, upstreams=ups)
    models.spec(run.model)
    run.holdout = recipe.holdout_for(dataset)
    if recipe.trains or run.holdout is not None:
        cache_key = (dataset, limit, run.holdout)
        if cache_key not in memo:
            memo[cache_key] = _training_data(dataset, spec, limit, run.holdout, data_root, memo)
        train_set, run.holdout_set, run.data_sha256, run.test_copies_dropped = memo[cache_key]
        run.train_set = train_set if recipe.trains else None
        upstream_set = ups[0].train_set if ups and isinstance(ups[0], Run) else None
        if run.holdout_set is not None and upstream_set is not None:
            run.holdout_seen_by_upstream = len(splits.image_digests(run.holdout_set.images)
                                               & splits.image_digests(upstream_set.images))
    aux = getattr(recipe, "aux", None)
    val_size = getattr(recipe, "val_ood_size", 0)
    exclude: frozenset[bytes] = frozenset()
    if aux is not None and val_size:
        size = min(val_size, profile.ood_pool_limit or val_size)  # the profile's cap on every OOD set applies
        if ("val_ood", aux, size) not in memo:
            memo[("val_ood", aux, size)] = outliers.validation_split(
                aux, outliers.source_images(aux, dataset, spec.image_size, data_root), size,
                _test_ood_images(profile, dataset, spec.image_size, data_root))
        run.val_ood_set, run.val_ood_info = memo[("val_ood", aux, size)]
        # the ID test split never selects a model (harness.splits); _training_data hashed it
        splits.check_not_test(dataset, {"validation OOD split": run.val_ood_set}, memo[("test", dataset)])
        exclude = frozenset(splits.image_digests(run.val_ood_set.images))
    if aux is not None:
        pool_key = ("aux", aux, run.val_ood_info["sha256"] if exclude else None)
        if pool_key not in memo:
            pool = outliers.pool(aux, dataset, spec.image_size, profile.aux_limit, data_root, exclude=exclude)
            memo[pool_key] = pool, hashlib.sha256(np.ascontiguousarray(pool.images).data).hexdigest()
        run.aux_set, run.aux_sha256 = memo[pool_key]
    return run


def _test_ood_images(profile: Profile, dataset: str, image_size: int, data_root) -> dict[str, np.ndarray]:
    """{name: every image} of the profile's dataset-backed test OOD sets of `dataset` that are in the cache (one
    that is not is not evaluated either; the generated noise sets share no image with a dataset)."""
    found = {}
    for name in profile.plan(dataset).ood:
        if name in synthetic.KINDS:
            continue
        try:
            found[name] = hdata.load_ood(name, data_root=data_root, image_size=image_size).images
        except HarnessError:
            continue  # not imported: eval_inputs names it missing in every record
    return found


def _training_data(dataset, spec, train_limit, holdout, data_root, memo):
    """(training images, holdout images or None, sha256 of the training images and labels, training images left
    out as copies of test images) of `dataset` under the profile's cap, after checking that no image of either is
    one of the test split's. A released train split can hold a few exact copies of test images (Tiny ImageNet: 6
    of the 87,500 images without the CIFAR-10 classes): up to splits.MAX_TEST_COPIES of the subset they are left
    out, and counted; more is refused."""
    full = hdata.load(dataset, "train", data_root=data_root, image_size=spec.image_size)
    subset = full.subset(train.balanced_indices(full.labels, train_limit, DATA_SUBSET_SEED))
    if ("test", dataset) not in memo:
        test = hdata.load(dataset, "test", data_root=data_root, image_size=spec.image_size)
        memo[("test", dataset)] = splits.image_digests(test.images)
    copies = splits.test_copies(subset, memo[("test", dataset)])
    if copies.mean() <= splits.MAX_TEST_COPIES:  # more is a mixed-up split, not the data's own duplicates
        subset = subset.subset(np.flatnonzero(~copies))
    held = None
    if holdout is not None:
        train_idx, held_idx = holdout.carve(subset.labels)
        subset, held = subset.subset(train_idx), subset.subset(held_idx)
    splits.check_not_test(dataset, {"training split": subset, "holdout split": held}, memo[("test", dataset)])
    digest = hashlib.sha256(np.ascontiguousarray(subset.images).data)
    digest.update(np.ascontiguousarray(subset.labels).data)
    return subset, held, digest.hexdigest(), int(copies.sum())


def _user_model(nodes: list[Run | UserCheckpoint]) -> str | None:
    """The architecture of the first user checkpoint among `nodes` and their upstreams, if any."""
    for node in nodes:
        found = node.model if isinstance(node, UserCheckpoint) else _user_model(node.upstreams)
        if found:
            return found
    return None


def _key_of(node: Run | UserCheckpoint) -> str:
    if not isinstance(node, UserCheckpoint):
        return node.key
    # The same file read through another key mapping or architecture is another model.
    if node.mapping.is_identity:
        return f"user:{node.sha256.lower()}"
    mapping = json.dumps([node.model, node.mapping.to_json()], sort_keys=True)
    return f"user:{node.sha256.lower()}:{hashlib.sha256(mapping.encode()).hexdigest()[:16]}"


def default_cache_dir(data_root=None) -> Path:
    """<data root>/checkpoints (the data root: --data-root, $HARNESS_DATA_ROOT, else the per-user cache)."""
    return hdata.data_root(data_root) / "checkpoints"


def obtain(recipe: recipes.Recipe | str, dataset: str, profile: Profile | str, seed: int = 0, *,
           cache_dir=None, data_root=None, device: str | None = None, upstream_dataset: str | None = None,
           upstream_checkpoint: UserCheckpoint | None = None, epochs: int | None = None, quiet: bool = False,
           loader: str | None = None, amp: bool = False, channels_last: bool = False,
           compile: bool = False) -> tuple[nn.Module, dict]:
    """The trained model for (recipe, dataset, profile, seed), from the cache or trained now (upstreams first).

    Returns the model in eval mode on `device` and an info dict: key, path, from_cache, model, settings,
    upstream ({"recipe", "dataset"} of the first dependency, or None), pretrain_dataset (where the weights were
    pretrained, through any depth of dependencies, or None), accuracy (ID test accuracy, PERCENT),
    train_s (training time of this model when it was trained), history, n_train, n_test, upstreams (their infos).
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    run = plan(recipe, dataset, profile, seed, upstream_dataset=upstream_dataset,
               upstream_checkpoint=upstream_checkpoint, epochs=epochs, data_root=data_root, loader=loader, amp=amp)
    device = device or profile.device
    options = train.Options(device=device, loader=run.loader, deterministic=profile.deterministic, quiet=quiet,
                            amp=amp, channels_last=channels_last, compile=compile)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_root)
    with _cpu_threads(profile.cpu_threads if device == "cpu" else 0):
        return _materialize(run, _Context(cache, data_root, options, profile.eval_batch_size, profile.test_limit))


@dataclass(frozen=True)
class _Context:
    cache: Path
    data_root: object
    options: train.Options
    eval_batch_size: int
    test_limit: int | None


def _materialize(node: Run | UserCheckpoint, ctx: _Context) -> tuple[nn.Module, dict]:
    if isinstance(node, UserCheckpoint):
        return _load_user(node, ctx)
    key = node.key
    path = ctx.cache / f"{key}.pt"
    if path.exists():
        return _load_cached(path, node, ctx)
    ctx.cache.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(ctx.cache / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _say(ctx, f"waiting: another process is training {node.recipe.name} on {node.dataset} ({key[:12]})")
        lock.acquire()
    try:
        if path.exists():  # trained by the process we waited for
            return _load_cached(path, node, ctx)
        return _train_and_store(node, path, ctx)
    finally:
        lock.release()


def _train_and_store(run: Run, path: Path, ctx: _Context) -> tuple[nn.Module, dict]:
    inputs, up_infos = [], []
    for up in run.upstreams:
        model, info = _materialize(up, ctx)
        inputs.append(model)
        up_infos.append(info)
    n_train = len(run.train_set) if run.train_set is not None else 0
    what = f"{n_train} images, {run.epochs} epochs" if run.recipe.trains else "no training"
    _say(ctx, f"training {run.recipe.name} ({run.model}) on {run.dataset}: {what}, seed {run.seed}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        model, frozen = run.recipe.build(run.model, run.num_classes, [m.cpu() for m in inputs])
    _normalize_input(model, run)
    history, train_s, selected_epoch = [], 0.0, None
    partial = path.with_name(f"{path.stem}.partial.pt")
    if run.recipe.trains:
        result = train.fit(model, run.train_set, run.recipe.hyper(run.epochs), seed=run.seed,
                           options=ctx.options, frozen=frozen, checkpoint_path=partial, holdout=run.holdout_set,
                           aux=run.aux_set, val_ood=run.val_ood_set)
        history, train_s, selected_epoch = result.history, result.train_s, result.selected_epoch
    model.to(ctx.options.device).eval()
    acc, n_test = _test_accuracy(model, run.dataset, ctx)
    info = {"key": run.key, "path": str(path), "from_cache": False, "recipe": run.recipe.name,
            "dataset": run.dataset, "model": run.model, "num_classes": run.num_classes, "seed": run.seed,
            "settings": run.settings(), "upstream": _upstream_ref(run), "pretrain_dataset": _pretrain_dataset(run),
            "accuracy": acc, "n_test": n_test, "n_train": n_train, "trained": run.recipe.trains,
            "train_s": round(train_s, 3),
            "history": history, "upstreams": [_brief(i) for i in up_infos], "selected_epoch": selected_epoch,
            "holdout": _holdout_info(run),
            **({"val_ood": run.val_ood_info} if run.val_ood_info else {}),
            **({"test_copies_dropped": run.test_copies_dropped} if run.test_copies_dropped else {})}
    payload = {"format": _FORMAT, "key": run.key, "identity": run.identity(),
               "model": {"name": run.model, "num_classes": run.num_classes},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "info": json.loads(json.dumps(info))}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getvalue()
    sidecar = {"sha256": hashlib.sha256(blob).hexdigest(), "identity": run.identity(), "info": info}
    # The sidecar goes first: a .pt file present means the entry is complete.
    atomic_write(path.with_suffix(".json"), json.dumps(sidecar, indent=2, sort_keys=True).encode())
    atomic_write(path, blob)
    partial.unlink(missing_ok=True)
    _say(ctx, f"stored {path} (test accuracy {acc:.2f}%)")
    return model, info


def _load_cached(path: Path, run: Run, ctx: _Context) -> tuple[nn.Module, dict]:
    sidecar_path = path.with_suffix(".json")
    try:
        sidecar = json.loads(sidecar_path.read_text())
    except (OSError, ValueError):
        raise HarnessError(f"cached checkpoint {path} has no readable {sidecar_path.name}; delete both files to "
                           f"retrain it") from None
    actual = sha256_of(path)
    if actual != sidecar.get("sha256"):
        raise HarnessError(f"cached checkpoint {path} is damaged (sha256 {actual}, recorded {sidecar.get('sha256')}); "
                           f"delete it to retrain")
    payload = load_weights_only(path)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT or payload.get("key") != run.key:
        raise HarnessError(f"{path} is not the harness checkpoint for key {run.key}; delete it to retrain")
    model = _normalize_input(run.recipe.skeleton(run.model, run.num_classes), run)
    models.load_state_dict(model, payload["state_dict"], source=str(path))
    info = _as_cached(dict(payload["info"], path=str(path)))
    _say(ctx, f"loaded {run.recipe.name} on {run.dataset} from the cache: {path} "
              f"(test accuracy {info.get('accuracy', float('nan')):.2f}%)")
    return model.to(ctx.options.device).eval(), info


def _normalize_input(model: nn.Module, run: Run) -> nn.Module:
    return models.set_input_normalization(model, *normalizations.of(run.recipe.normalization, run.dataset))


def _as_cached(info: dict) -> dict:
    """A stored info, marked as loaded from the cache down its whole upstream tree."""
    return dict(info, from_cache=True, upstreams=[_as_cached(u) for u in info.get("upstreams", [])])


def _load_user(ckpt: UserCheckpoint, ctx: _Context) -> tuple[nn.Module, dict]:
    model, info = load_user(ckpt)
    return model.to(ctx.options.device).eval(), info


def load_user(ckpt: UserCheckpoint) -> tuple[nn.Module, dict]:
    """A user-supplied checkpoint on the CPU: sha256 verified first, keys mapped, then loaded strictly into
    `ckpt.model`; without a head (`mapping.head` false) the model's `fc` stays as initialised."""
    state, ignored = ckpt.mapping.apply(unwrap(load_verified(ckpt.path, ckpt.sha256), ckpt.path))
    num_classes = ckpt.num_classes
    if ckpt.mapping.head:
        fc = {k.removeprefix("module."): v for k, v in state.items()}.get("fc.weight")
        if fc is None or fc.dim() != 2:
            raise HarnessError(f"{ckpt.path}: no 2-d head weight {ckpt.mapping.head_prefix + 'weight'!r} (after "
                               f"the key mapping); expected a classifier state dict, or say that it has no head")
        if num_classes is not None and num_classes != fc.shape[0]:
            raise HarnessError(f"{ckpt.path}: the head has {fc.shape[0]} classes, {num_classes} were expected")
        num_classes = int(fc.shape[0])
    if num_classes is None:
        raise HarnessError(f"{ckpt.path}: a checkpoint without a head needs its number of classes")
    model = models.create(ckpt.model, num_classes)
    models.load_state_dict(model, state, source=f"checkpoint {ckpt.path}",
                           skip_prefixes=() if ckpt.mapping.head else ("fc.",))
    info = {"key": _key_of(ckpt), "recipe": "pretrain", "path": ckpt.path, "from_cache": True, "model": ckpt.model,
            "num_classes": num_classes, "sha256": ckpt.sha256, "entry": ckpt.entry, "ignored_keys": ignored,
            "mapping": ckpt.mapping.to_json()}
    return model.eval(), info


def _upstream_ref(run: Run) -> dict | None:
    if not run.upstreams:
        return None
    first = run.upstreams[0]
    if isinstance(first, UserCheckpoint):
        return {"recipe": "pretrain", "dataset": None, "checkpoint": first.path, "sha256": first.sha256,
                "entry": first.entry}
    return {"recipe": first.recipe.name, "dataset": first.dataset}


def _pretrain_dataset(node: Run | UserCheckpoint) -> str | None:
    """Where the weights were pretrained, however deep in the dependencies ("user checkpoint" for a user's)."""
    if isinstance(node, UserCheckpoint):
        return "user checkpoint"
    if node.recipe.name == "pretrain":
        return node.dataset
    found = [_pretrain_dataset(u) for u in node.upstreams]
    return next((f for f in found if f is not None), None)


def _holdout_info(run: Run) -> dict | None:
    if run.holdout is None:
        return None
    return {"fraction": run.holdout.fraction, "rule": run.holdout.rule, "n": len(run.holdout_set),
            "seen_by_upstream_training": run.holdout_seen_by_upstream}


def _brief(info: dict) -> dict:
    keep = ("key", "recipe", "dataset", "model", "accuracy", "from_cache", "trained", "train_s", "selected_epoch",
            "path", "upstreams")
    return {k: info[k] for k in keep if k in info}


def _test_accuracy(model: nn.Module, dataset: str, ctx: _Context) -> tuple[float, int]:
    spec = hdata.spec(dataset, ctx.data_root)
    test = hdata.load(dataset, "test", data_root=ctx.data_root, image_size=spec.image_size)
    test = test.subset(train.balanced_indices(test.labels, ctx.test_limit, DATA_SUBSET_SEED))
    acc = train.accuracy(model, test, batch_size=ctx.eval_batch_size, device=ctx.options.device)
    return round(100 * acc, 4), len(test)


def _say(ctx: _Context, message: str) -> None:
    if not ctx.options.quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _cpu_threads(n: int):
    """The profile's fixed CPU thread count (results must not depend on the machine's core count)."""
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
