"""The prepared GPU check: one command that fits a short GPU lease and brings back what it measured.

1. The environment (torch, CUDA, device) and the training throughput of the profile's model on its first
   in-distribution dataset (CIFAR-10 on the paper profile) with the fast (device-resident) loader and the reference
   DataLoader: the ratio is the figure.
2. A plan from the measured fast-path throughput: that dataset's `scratch` recipe at its full length, then
   `pretrain` + `finetune`, each run only if its estimate fits in what is left of the time budget; the plan is
   printed before anything trains, and a stage that does not fit is reported as skipped, never cut short.
3. Each trained stage is evaluated as its benchmark case (bands included) and its record written.

Everything goes under `--out`: environment.json, throughput.json, plan.json, records/*.json, summary.json (the
checkpoints go to the usual cache, `--cache-dir`).
`--profile paper-dryrun` runs the same path on the CPU in a minute (tests do).
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from harness import profiles, recipes, train
from harness import data as hdata
from harness.errors import HarnessError
from harness.runner import Case, RunContext, Session

MEASURE_STEPS = {"cuda": 40, "cpu": 2}  # timed batches per loader, after warm-up batches
STAGES = (("scratch", ("scratch",)), ("pretrain + finetune", ("pretrain", "finetune")))
SAFETY = 1.25  # estimated training time x this = what a stage must have left (evaluation, checkpointing, jitter)


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def environment(device: str) -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "platform": platform.platform(), "device": device, "cpu_threads": torch.get_num_threads()}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   cudnn=torch.backends.cudnn.version())
    return env


def throughput(profile: profiles.Profile, device: str, data_root) -> dict:
    """Training images/s of the profile's model on its dataset's images with each loader (scratch's batch size)."""
    dataset = profile.id_dataset
    images = hdata.load(dataset, "train", data_root=data_root, image_size=hdata.spec(dataset, data_root).image_size)
    recipe = recipes.get("scratch")
    steps = MEASURE_STEPS["cuda" if device.startswith("cuda") else "cpu"]
    rates = {}
    for loader in ("fast", "reference"):
        options = train.Options(device=device, loader=loader, deterministic=False, quiet=True,
                                num_workers=8 if device.startswith("cuda") and loader == "reference" else 0)
        for n_steps in (2, steps):  # the first call builds kernels / autotunes; the second is timed
            subset = images.subset(np.arange(min(len(images), n_steps * recipe.batch_size)))
            model = recipe.build(profile.model, len(images.classes), [])[0]
            result = train.fit(model, subset, recipe.hyper(1), options=options)
        rates[loader] = result.history[0]["images_per_s"]
    return {"model": profile.model, "dataset": dataset, "batch_size": recipe.batch_size, "steps": steps,
            "images_per_s": rates, "fast_over_reference": rates["fast"] / rates["reference"],
            "epoch_s": {k: len(images) / v for k, v in rates.items()}}


def plan(profile: profiles.Profile, images_per_s: float, budget_s: float, data_root) -> list[dict]:
    """Each stage's estimated training seconds at the measured rate; `fits` as they are taken in order."""
    upstream = profile.upstream_dataset
    stages, left = [], budget_s
    for label, names in STAGES:
        estimate = 0.0
        for name in names:
            recipe = recipes.get(name)
            dataset = upstream if name == "pretrain" else profile.id_dataset
            size = hdata.spec(dataset, data_root).image_size
            n = len(hdata.load(dataset, "train", data_root=data_root, image_size=size, mmap=True).labels)
            n = min(n, profile.train_limit or n)
            estimate += recipe.epochs_for(dataset, profile.epochs) * n / images_per_s
        fits = estimate * SAFETY <= left
        if fits:
            left -= estimate * SAFETY
        stages.append({"stage": label, "recipes": list(names), "estimated_train_s": round(estimate, 1),
                       "fits": fits})
    return stages


def run(profile: profiles.Profile | str, out: Path, budget_s: float, data_root=None, device: str | None = None,
        cache_dir=None) -> dict:
    started = time.perf_counter()
    profile = profiles.get(profile) if isinstance(profile, str) else profile
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if profile.device == "cuda" and not device.startswith("cuda"):
        raise HarnessError(f"profile {profile.name!r} needs a CUDA GPU and torch sees none; "
                           f"try --profile paper-dryrun on the CPU")
    for name in (profile.id_dataset, profile.upstream_dataset):  # missing data: the import command, before timing
        hdata.load(name, "test", data_root=data_root, image_size=hdata.spec(name, data_root).image_size, mmap=True)
    out = Path(out)
    env = environment(device)
    _write(out / "environment.json", env)
    print(f"environment: {env}", flush=True)
    rates = throughput(profile, device, data_root)
    _write(out / "throughput.json", rates)
    print(f"throughput ({profile.model}, batch {rates['batch_size']}): fast {rates['images_per_s']['fast']:.0f} "
          f"images/s, reference {rates['images_per_s']['reference']:.0f} images/s, ratio "
          f"{rates['fast_over_reference']:.2f}", flush=True)
    left = budget_s - (time.perf_counter() - started)
    stages = plan(profile, rates["images_per_s"]["fast"], left, data_root)
    _write(out / "plan.json", {"budget_s": budget_s, "left_s": round(left, 1), "stages": stages})
    for stage in stages:
        print(f"plan: {stage['stage']}: ~{stage['estimated_train_s']:.0f} s of training -> "
              f"{'run' if stage['fits'] else 'skipped: does not fit the time left'}", flush=True)
    session = Session(RunContext(profile=profile, device=device, results_dir=out / "records", data_root=data_root,
                                 cache_dir=cache_dir, quiet=False))
    ran = []
    for stage in (s for s in stages if s["fits"]):
        case = Case("hendrycks2019", profile.id_dataset, stage["recipes"][-1])
        record = session.run(case, profile.seeds[0])
        ran.append({"case": case.id, "accuracy": record["checkpoint"]["test_accuracy"],
                    "train_s": record["timings"]["train_s"], "record": record["path"],
                    "bands": [v["message"] for v in record["verdicts"]["bands"]]})
        print(f"{case.id}: accuracy {record['checkpoint']['test_accuracy']:.2f}%, "
              f"train {record['timings']['train_s']:.0f} s", flush=True)
    summary = {"profile": profile.name, "device": env.get("gpu", device), "throughput": rates, "plan": stages,
               "ran": ran, "wall_s": round(time.perf_counter() - started, 1)}
    _write(out / "summary.json", summary)
    return summary

