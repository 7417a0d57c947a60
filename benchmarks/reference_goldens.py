"""Reference goldens of the training recipes (docs/reference-goldens.md).

Two halves share the fixed inputs defined here (a wrn-10-1, or its DeepMind variant wrn-10-1-dm for the TST
paper's recipes; weights from a numpy RNG, uint8 images from a numpy RNG, float64, one thread):

- `harness_state(case)`: the recipe through the harness's own path (`recipes.get` -> `build` -> `train.fit`),
  stopped after STEPS optimizer steps. tests/test_recipe_goldens.py runs it and compares its `fingerprint`
  with tests/goldens/recipes.json.
- `python benchmarks/reference_goldens.py --repos DIR [--write]`: the same steps run by each paper's own
  training code, read from the repositories fetched under DIR (one folder per repository, named `owner+name`,
  at the commits in REFERENCES); it writes the fingerprints as the goldens. The reference scripts are run,
  not re-implemented: their optimizer, scheduler and `train()` statements are taken from the script's syntax
  tree and executed with the script's own argparse on the paper's arguments; only their data loaders (the
  batches the harness loader drew, cast to float64), model construction (the same fixed weights) and
  `.cuda()` are replaced.

The TST paper's recipes (adam_base, tst, vtst) are Lightning modules, not scripts: the reference side builds the
paper's networks (DeepMind's WideResNet, TST / VTST on its body) with the same fixed weights and runs the
module's own `configure_optimizers` and `training_step` in a manual loop (what Lightning's automatic optimization
does per batch: training_step, zero_grad, backward, step). It imports lightning, torchmetrics, torchvision and
foolbox (the reference's imports), which the project does not depend on: run it from an environment that has them.

Both sides feed the same normalized float batches, so the input normalization (point 4 of issue 29) does not
enter the comparison. Needs no network.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness import models, recipes, train
from harness.data import ImageSet

GOLDENS = Path(__file__).resolve().parents[1] / "tests" / "goldens" / "recipes.json"
NUM_CLASSES = 10
UPSTREAM_CLASSES = 20   # the pretrained model's head (finetune, linear_probe, wise_ft) differs from the task's
STEPS = 5
EPOCHS = 1              # one epoch of STEPS batches: the cosine schedule runs its whole course
BATCH = 4               # the paper's 128 (+ 256 outliers) costs seconds per float64 step; the ratio is kept
AUX_BATCH = 8
SEED = 0                # fit's seed: shuffling, crops, flips, dropout
WEIGHT_SEED = 1
# Relative to max(1, |golden|), per fingerprint number: the measured deviations are 0 to 4.9e-15
# (docs/reference-goldens.md); a 1 % change of any optimisation setting moves some number by 6.5e-8 or more.
TOLERANCE = 1e-10

REFERENCES = {
    "outlier-exposure": ("hendrycks/outlier-exposure", "e6ede98a5474a0620d9befa50b38eaf584df4401"),
    "pre-training": ("hendrycks/pre-training", "10cd02a3c21698dfc790a50fe442fddf417ad17b"),
    "energy_ood": ("wetliu/energy_ood", "77f3c09b788bb5a7bfde6fd3671228320ea0949c"),
    "transfer_learning": ("AnanyaKumar/transfer_learning", "13c3e2bbb8a34bbb781e28cee96ddf20bed5f76f"),
    "wise-ft": ("mlfoundations/wise-ft", "58b7a4b343b09dc06606aa929c2ef51accced8d1"),
    "decoupled": ("MJordahn/Decoupled-Layers-for-Calibrated-NNs", "9578eb6e960ca8ef50a97b10260798d250fe7f3c"),
}


@dataclass(frozen=True)
class Case:
    recipe: str
    reference: str                  # a key of REFERENCES
    script: str                     # the script (or module) inside that repository
    settings: tuple = ()            # recipe overrides of the golden: (field, value) pairs
    model: str = "wrn-10-1"
    note: str = ""                  # how the reference is run where that is not the script as it is


CASES = {c.recipe: c for c in (
    Case("scratch", "outlier-exposure", "CIFAR/baseline.py", (("batch_size", BATCH),)),
    Case("finetune", "pre-training", "uncertainty/CIFAR/tune.py", (("batch_size", BATCH),)),
    Case("oe", "outlier-exposure", "CIFAR/oe_tune.py", (("batch_size", BATCH), ("aux_batch_size", AUX_BATCH))),
    Case("oe_scratch", "outlier-exposure", "CIFAR/oe_scratch.py",
         (("batch_size", BATCH), ("aux_batch_size", AUX_BATCH))),
    # The CIFAR-10 margins of run.sh; the head's initial scale (HEAD_SCALE) puts outlier energies on both sides
    # of m_out, so both hinges train.
    Case("energy_ft", "energy_ood", "CIFAR/train.py",
         (("batch_size", BATCH), ("aux_batch_size", AUX_BATCH), ("m_in", -23.0), ("m_out", -5.0))),
    Case("linear_probe", "pre-training", "uncertainty/CIFAR/tune.py", (("batch_size", BATCH),),
         note="only fc trains (the body's parameters do not require grad) and the network is in eval mode"),
    Case("lp_ft", "pre-training", "uncertainty/CIFAR/tune.py", (("batch_size", BATCH),),
         note="the network in eval mode while it trains: AnanyaKumar/transfer_learning@13c3e2bbb8a3 "
              "unlabeled_extrapolation/baseline_train.py train(), use_net_val_mode"),
    Case("wise_ft", "wise-ft", "src/wise_ft.py", note="_merge (fishers None) over every entry but the head, "
         "which is the fine-tuned model's (the pretrained head has the upstream's classes)"),
    # The TST paper's (Jordahn & Olmos 2024) stage 1 and 2 on the DeepMind WideResNet (-dm) the paper trains, at
    # depth 10, width 1 (the reference's head input, 64 x WIDERESNET_WIDTH_WANG2023, follows the width).
    Case("adam_base", "decoupled", "src/lightning_modules/One_Stage.py", (("batch_size", BATCH),),
         model="wrn-10-1-dm", note="lt_disc_models(WideResNet) of src/models/WRN.py: configure_optimizers and "
         "training_step per batch (Lightning's automatic optimization without the Trainer)"),
    Case("tst", "decoupled", "src/lightning_modules/Two_Stage.py", (("batch_size", BATCH), ("base", "adam_base")),
         model="wrn-10-1-dm", note="TS_Module(TST(separate_body=True, pretrained_qyx=the base), freeze_qyx=True) "
         "as src/experiments/00_train_models.py builds it: configure_optimizers and training_step per batch; "
         "the module in train mode, so the frozen body's BatchNorm statistics move"),
    Case("vtst", "decoupled", "src/lightning_modules/Two_Stage.py", (("batch_size", BATCH), ("base", "adam_base")),
         model="wrn-10-1-dm", note="VTST_Module(VTST(bound_qzx_var=True, separate_body=True, pretrained_qyx=the "
         "base), freeze_qyx=True) as src/experiments/00_train_models.py builds it: configure_optimizers and "
         "training_step per batch; the reparameterisation noise from torch.manual_seed(SEED) on both sides"),
)}
HEAD_SCALE = {"energy_ft": 12.0}


# ---------------------------------------------------------------- fixed inputs

def images(n: int, seed: int) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                    rng.integers(0, NUM_CLASSES, n).astype(np.int64), tuple(f"c{i}" for i in range(NUM_CLASSES)))


def initial_state(model: torch.nn.Module, seed: int, head_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """Every floating entry of the state dict from a numpy RNG (platform-independent), in key order: He-scaled
    weights, BatchNorm scales near 1, running variances in [0.5, 1.5]; integer buffers as they are."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, value in sorted(model.state_dict().items()):
        if not value.is_floating_point():
            state[key] = value.clone()
            continue
        shape = tuple(value.shape)
        if key.endswith("running_var"):
            x = rng.uniform(0.5, 1.5, shape)
        elif key.endswith(("running_mean", "bias")):
            x = 0.1 * rng.standard_normal(shape)
        elif value.dim() == 1:
            x = 1 + 0.1 * rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape) * np.sqrt(2 / (value[0].numel()))
            if key.startswith("fc."):
                x = x * head_scale
        state[key] = torch.from_numpy(x)
    return state


def fingerprint(state: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per tensor: sum, sum of squares, and the dot with a fixed numpy-random vector (so a permutation or a
    sign change that keeps both sums shows)."""
    out = {}
    for key, value in sorted(state.items()):
        x = value.detach().to(torch.float64).flatten()
        probe = torch.from_numpy(np.random.default_rng(len(x)).standard_normal(len(x)))
        out[key] = [float(x.sum()), float((x * x).sum()), float(x @ probe)]
    return out


def deviation(got: dict[str, list[float]], golden: dict[str, list[float]]) -> float:
    """The largest |got - golden| / max(1, |golden|) over every number; inf when the keys or shapes differ."""
    if set(got) != set(golden):
        return float("inf")
    return max(abs(a - b) / max(1.0, abs(b)) for k in golden for a, b in zip(got[k], golden[k]))


# ---------------------------------------------------------------- the harness side

class _Stop(Exception):
    pass


def _stop_after(steps: int, steps_per_epoch: int):
    def on_step(epoch: int, step: int) -> None:
        if epoch * steps_per_epoch + step >= steps:
            raise _Stop
    return on_step


def _upstreams(recipe: recipes.Recipe, model: str) -> list[torch.nn.Module]:
    """Untrained stand-ins for the upstream models (their weights are replaced after `build`), except where the
    recipe's output is a function of them (wise_ft): then they carry fixed weights too."""
    inputs = []
    for i, up in enumerate(recipe.upstreams):
        classes = UPSTREAM_CLASSES if up.on == "upstream" else NUM_CLASSES
        net = models.create(model, classes)
        net.load_state_dict(initial_state(net, WEIGHT_SEED + 1 + i))
        inputs.append(net)
    return inputs


def harness_state(case: Case, overrides: dict | None = None, epochs: int = EPOCHS) -> dict[str, torch.Tensor]:
    """The state dict after the recipe's first STEPS optimizer steps on the fixed inputs (for a recipe that does
    not train: the model it builds)."""
    recipe = recipes.get(case.recipe, **{**dict(case.settings), **(overrides or {})})
    torch.set_num_threads(1)
    model, frozen = recipe.build(case.model, NUM_CLASSES, _upstreams(recipe, case.model))
    if not recipe.trains:
        return model.state_dict()
    model.double().load_state_dict(initial_state(model, WEIGHT_SEED, HEAD_SCALE.get(case.recipe, 1.0)))
    hyper = recipe.hyper(epochs)
    data = images(STEPS * BATCH, seed=2)
    outlier = hyper.aux_batch_size > 0
    with contextlib.suppress(_Stop):
        train.fit(model, data, hyper, seed=SEED, options=train.Options(quiet=True), frozen=frozen,
                  on_step=_stop_after(STEPS, -(-len(data) // hyper.batch_size)),
                  aux=images(STEPS * AUX_BATCH * 2, seed=3) if outlier else None,
                  holdout=images(BATCH, seed=4) if hyper.select == "best_holdout_nll" else None)
    return model.state_dict()


def harness_batches(case: Case) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(x, y, outliers) of each of the STEPS steps, float64: what `fit` drew from its own loaders."""
    recipe = recipes.get(case.recipe, **dict(case.settings))
    hyper = recipe.hyper(EPOCHS)
    options = train.Options()
    loader = train._make_loader(images(STEPS * BATCH, seed=2), hyper, SEED, options)
    outs = [None] * len(loader)
    if hyper.aux_batch_size:
        outs = [o for o, _ in train._make_outlier_loader(images(STEPS * AUX_BATCH * 2, seed=3), hyper, SEED,
                                                         options, len(loader))]
    return [(x.double(), y, None if o is None else o.double()) for (x, y), o in zip(loader, outs)]


# ---------------------------------------------------------------- the reference side

def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _function(path: Path, name: str):
    """One top-level function of a module that cannot be imported here (wise_ft.py imports the whole CLIP
    training package), taken from its syntax tree."""
    node = next(n for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace = {"torch": torch}
    code = compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec")
    exec(code, namespace)  # noqa: S102  the reference's own code
    return namespace[name]


_KEEP_ASSIGNED = {"parser", "args", "state", "optimizer", "scheduler"}
_KEEP_FUNCTIONS = {"cosine_annealing", "train"}


def _training_statements(path: Path) -> ast.Module:
    """The statements of a Hendrycks-style script that define its training: the argparse parser and its
    arguments, `state`, `optimizer`, `scheduler`, `cosine_annealing` and `train()`; nothing that reads data,
    builds or loads the model, tests or saves."""
    tree = ast.parse(path.read_text())
    kept = []
    for node in tree.body:
        function = isinstance(node, ast.FunctionDef) and node.name in _KEEP_FUNCTIONS
        assigned = isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in _KEEP_ASSIGNED
                                                        for t in node.targets)
        argument = isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
            and ast.unparse(node.value.func) == "parser.add_argument"
        if function or assigned or argument:
            kept.append(node)
    return ast.Module(body=kept, type_ignores=[])


class _Batches(list):
    """A list of (x, y) batches with the `.dataset` the outlier loop sets a random offset on."""

    class _Dataset:
        offset = 0

        def __len__(self):
            return 1

    dataset = _Dataset()


@contextlib.contextmanager
def _cpu_cuda():
    """The scripts call `.cuda()` on every batch; on this CPU float64 run that is the identity."""
    saved = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self
    try:
        yield
    finally:
        torch.Tensor.cuda = saved


def _reference_wrn(repos: Path, case: Case, recipe: recipes.Recipe, classes: int):
    wrn = _load_module(_repo(repos, case.reference) / Path(case.script).parent / "models" / "wrn.py",
                       f"reference_wrn_{case.reference.replace('-', '_')}")
    depth, width = (int(v) for v in case.model.split("-")[1:3])
    return wrn.WideResNet(depth, classes, width, dropRate=recipe.drop_rate)


def _repo(repos: Path, key: str) -> Path:
    return repos / REFERENCES[key][0].replace("/", "+")


def _run_script(repos: Path, case: Case, argv: list[str], net, batches, outliers=None, frozen_prefix=None,
                eval_mode=False) -> dict[str, torch.Tensor]:
    """One epoch of the script's own `train()` on `batches`."""
    script = _repo(repos, case.reference) / case.script
    if frozen_prefix is not None:
        for name, p in net.named_parameters():
            p.requires_grad_(name.startswith(frozen_prefix))
    if eval_mode:
        # Kumar et al.'s use_net_val_mode (baseline_train.py, train()): the network in eval mode while it trains.
        net.train = lambda mode=True: torch.nn.Module.train(net, False)
    namespace = {"__name__": "reference", "argparse": argparse, "np": np, "torch": torch, "nn": torch.nn,
                 "F": torch.nn.functional, "net": net, "train_loader": _Batches(batches),
                 "train_loader_in": _Batches(batches), "train_loader_out": _Batches(outliers or [])}
    saved_argv = sys.argv
    sys.argv = [str(script), *argv]
    try:
        code = compile(_training_statements(script), str(script), "exec")
        exec(code, namespace)  # noqa: S102  the reference's own code
    finally:
        sys.argv = saved_argv
    torch.manual_seed(SEED)
    with _cpu_cuda():
        namespace["train"]()
    return net.state_dict()


def _paper_args(case: Case, recipe: recipes.Recipe, epochs: int, outlier: bool) -> list[str]:
    # tune.py names the dataset with --dataset; the OE and energy scripts take it as their first argument
    dataset = ["--dataset", "cifar10"] if case.reference == "pre-training" else ["cifar10"]
    argv = [*dataset, "--model", "wrn", "--epochs", str(epochs), "--learning_rate", repr(recipe.lr),
            "--batch_size", str(recipe.batch_size), "--momentum", repr(recipe.momentum),
            "--decay", repr(recipe.weight_decay), "--droprate", repr(recipe.drop_rate), "--ngpu", "0"]
    return argv + (["--oe_batch_size", str(recipe.aux_batch_size)] if outlier else [])


# The harness's WideResNet keys -> DeepMind's (src/models/WRN.py); the TST/VTST body is that under "qzx_body.".
_DM_BLOCK = {"bn1": "batchnorm_0", "conv1": "conv_0", "bn2": "batchnorm_1", "conv2": "conv_1",
             "convShortcut": "shortcut"}
_DM_TOP = {"conv1": "init_conv", "bn1": "batchnorm", "fc": "logits"}
# The harness's head modules -> the reference's: TST's qzx_model (WRN2810Head) and pyz (CIFAR10SimpelLabelDecoder);
# V-TST's mean head is qzx_model, its log-variance head (logsigmoid in its forward) qzx_var (WRN2810VarHead).
_DM_HEADS = {
    "tst": {"fc.encoder.0": "qzx_model.fc1", "fc.encoder.2": "qzx_model.fc2", "fc.classifier": "pyz.fc1_y"},
    "vtst": {"fc.mean.0": "qzx_model.fc1", "fc.mean.2": "qzx_model.fc2", "fc.log_var.0": "qzx_var.fc1",
             "fc.log_var.2": "qzx_var.fc2", "fc.classifier": "pyz.fc1_y"},
}


def _dm_key(key: str, recipe: str) -> str:
    module, _, leaf = key.rpartition(".")
    if recipe in _DM_HEADS:
        if module.startswith("fc."):
            return f"{_DM_HEADS[recipe][module]}.{leaf}"
        return "qzx_body." + _dm_key(key, "adam_base")
    block = re.fullmatch(r"block(\d+)\.layer\.(\d+)\.(\w+)", module)
    if block:
        return f"layer.{int(block[1]) - 1}.block.{block[2]}.{_DM_BLOCK[block[3]]}.{leaf}"
    return f"{_DM_TOP[module]}.{leaf}"


@contextlib.contextmanager
def _decoupled_code(repo: Path, depth: int, width: int):
    """The reference's modules, imported from `repo` (they import each other as `src.…`), with the size of the
    golden's network: construct_ClassYEncoderBody builds a WRN-28-10 body and WRN2810Head takes
    64 x WIDERESNET_WIDTH_WANG2023 inputs, both fixed to the paper's WRN-28-10; here depth and width are the
    golden's. Modules are built in float64 (so the pretrained body is copied into the TST body unrounded)."""
    sys.path.insert(0, str(repo))
    try:  # the reference's own code, imported here only (never by the project)
        from src.lightning_modules import One_Stage, Two_Stage
        from src.models import TST, VTST, WRN, ClassYEncoders
        from src.utils import utils
    finally:
        sys.path.remove(str(repo))
    saved = (ClassYEncoders.WIDERESNET_WIDTH_WANG2023, utils.WRN2810Body, torch.get_default_dtype())
    ClassYEncoders.WIDERESNET_WIDTH_WANG2023 = width
    utils.WRN2810Body = lambda **kw: ClassYEncoders.WRN2810Body(**{**kw, "depth": depth, "width": width})
    torch.set_default_dtype(torch.float64)
    try:
        yield {"One_Stage": One_Stage, "Two_Stage": Two_Stage, "TST": TST, "VTST": VTST, "WRN": WRN}
    finally:
        ClassYEncoders.WIDERESNET_WIDTH_WANG2023, utils.WRN2810Body = saved[:2]
        torch.set_default_dtype(saved[2])


def _decoupled_state(repos: Path, case: Case, recipe: recipes.Recipe) -> dict[str, torch.Tensor]:
    """STEPS batches through the TST reference's Lightning module: its configure_optimizers, then per batch its
    training_step, zero_grad, backward and step, as Lightning's automatic optimization runs them."""
    depth, width = (int(v) for v in case.model.split("-")[1:3])
    ours = initial_state(recipe.skeleton(case.model, NUM_CLASSES), WEIGHT_SEED)
    to_ref = {k: _dm_key(k, case.recipe) for k in ours}
    state = {to_ref[k]: v for k, v in ours.items()}
    # Drawn before float64 becomes the default dtype: the loader's float tensors would then not be what fit saw.
    batches = harness_batches(case)
    with _decoupled_code(_repo(repos, case.reference), depth, width) as ref:
        if case.recipe == "adam_base":
            net = ref["WRN"].WideResNet(num_classes=NUM_CLASSES, depth=depth, width=width, num_input_channels=3)
            net.load_state_dict(state)
            module = ref["One_Stage"].lt_disc_models(net, NUM_CLASSES)
        else:
            # The base as the reference hands it over (load_WRN_model: a WideResNet), its body entries the golden's
            base = ref["WRN"].WideResNet(num_classes=NUM_CLASSES, depth=depth, width=width, num_input_channels=3)
            body = {k.removeprefix("qzx_body."): v for k, v in state.items() if k.startswith("qzx_body.")}
            missing, unexpected = base.load_state_dict(body, strict=False)
            assert not unexpected and {k.split(".")[0] for k in missing} == {"logits"}, (missing, unexpected)
            kwargs = {"dataset": "CIFAR10", "num_classes": NUM_CLASSES, "latent_dim": recipe.latent,
                      "accelerator": "cpu", "pretrained_qyx": base, "separate_body": True}
            if case.recipe == "tst":
                net = ref["TST"].TST(**kwargs)
                module_class = ref["Two_Stage"].TS_Module
            else:
                net = ref["VTST"].VTST(bound_qzx_var=True, **kwargs)
                module_class = ref["Two_Stage"].VTST_Module
            # the new head's entries (and the body again, the same values)
            net.load_state_dict(state)
            module = module_class(net, NUM_CLASSES, device="cpu", freeze_qyx=True, dataset="CIFAR10")
        optimizer = module.configure_optimizers()
        module.train()  # what Trainer.fit does: every submodule, the frozen body's BatchNorm included
        torch.manual_seed(SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # self.log without a Trainer warns and does nothing
            for i, (x, y, _) in enumerate(batches):
                loss = module.training_step((x, y), i)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    after = net.state_dict()
    assert set(after) == set(state), set(after) ^ set(state)
    return {k: after[to_ref[k]] for k in ours}


def reference_state(repos: Path, case: Case) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    recipe = recipes.get(case.recipe, **dict(case.settings))
    if case.recipe == "wise_ft":
        merge = _function(_repo(repos, "wise-ft") / case.script, "_merge")
        theta_0, theta_1 = (m.state_dict() for m in _upstreams(recipe, case.model))
        # The head: the pretrained one has the upstream's classes, so the harness keeps the fine-tuned head
        # (a deliberate difference); every other entry goes through the reference's _merge.
        body = {k: v for k, v in theta_1.items() if not k.startswith("fc.")}
        merged = merge(recipe.alpha, {k: theta_0[k] for k in body}, body, None, None)
        return {**merged, **{k: v for k, v in theta_1.items() if k.startswith("fc.")}}
    if case.reference == "decoupled":
        return _decoupled_state(repos, case, recipe)
    batches = harness_batches(case)
    steps = [(x, y) for x, y, _ in batches]
    outliers = [(o, torch.zeros(len(o), dtype=torch.int64)) for _, _, o in batches if o is not None]
    net = _reference_wrn(repos, case, recipe, NUM_CLASSES).double()
    net.load_state_dict(initial_state(net, WEIGHT_SEED, HEAD_SCALE.get(case.recipe, 1.0)))
    argv = _paper_args(case, recipe, EPOCHS, bool(outliers))
    if case.recipe == "energy_ft":
        argv += ["--score", "energy", "--m_in", repr(recipe.m_in), "--m_out", repr(recipe.m_out)]
    if case.recipe in ("linear_probe", "lp_ft"):
        return _run_script(repos, case, argv, net, steps, eval_mode=True,
                           frozen_prefix="fc." if case.recipe == "linear_probe" else None)
    return _run_script(repos, case, argv, net, steps, outliers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=Path, required=True,
                        help="folder holding the fetched repositories, one folder each named owner+name")
    parser.add_argument("--write", action="store_true", help=f"write the goldens to {GOLDENS}")
    parser.add_argument("--only", nargs="*", default=list(CASES), help="recipes to run (default: all)")
    args = parser.parse_args(argv)
    goldens = json.loads(GOLDENS.read_text()) if GOLDENS.exists() else {}
    goldens.setdefault("recipes", {})
    for name in args.only:
        case = CASES[name]
        ref = fingerprint(reference_state(args.repos, case))
        ours = deviation(fingerprint(harness_state(case)), ref)
        print(f"{name:14s} harness vs reference: {ours:.3g}")
        repo, commit = REFERENCES[case.reference]
        goldens["recipes"][name] = {"reference": f"{repo}@{commit}", "script": case.script, "note": case.note,
                                    "settings": dict(case.settings), "model": case.model, "fingerprint": ref}
    goldens.pop("model", None)  # each recipe's own entry names its model
    goldens.update({"steps": STEPS, "epochs": EPOCHS, "dtype": "float64",
                    "tolerance": TOLERANCE, "tolerance_rule": "|got - golden| <= tolerance * max(1, |golden|)"})
    if args.write:
        GOLDENS.parent.mkdir(parents=True, exist_ok=True)
        GOLDENS.write_text(json.dumps(goldens, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
