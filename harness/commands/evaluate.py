"""`python -m harness evaluate`: benchmark a model that is loaded, not trained (a one-off file or a model entry).

It runs the evaluation protocol of a profile (its test set, OOD sets and repetitions) for every `--score` and
writes one record per score, marked as loaded (file, sha256, entry), which `python -m harness leaderboard` shows.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import checkpoint_files, model_entries, models, names, options, profiles, store
from harness import data as hdata
from harness import scores as hscores
from harness.errors import HarnessError
from harness.runner import LOADED, Case, RunContext, Session, resolve_device
from harness.state_mapping import StateMapping
from harness.summary import summary_table


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint file or a model entry (no training) and write its records",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH", help="a state-dict file (loaded with weights_only=True)")
    source.add_argument("--entry", metavar="NAME", help="a model entry, benchmarks/models/NAME.toml")
    p.add_argument("--model", metavar="ARCH", help="architecture of --checkpoint: a registry name (wrn-40-2, "
                                                   "resnet18-cifar, ...) or package.module:factory")
    p.add_argument("--dataset", help="in-distribution dataset (required with --checkpoint; an entry names its own)")
    p.add_argument("--sha256", metavar="HEX", help="expected sha256 of --checkpoint (checked before loading)")
    p.add_argument("--normalize", metavar="MEAN,STD", help="the input normalization the model was trained with: "
                   "MEAN,STD for every channel, or 3 means then 3 stds (default: the harness's 0.5,0.5)")
    p.add_argument("--strip-prefix", metavar="P", help="the model's keys are under P (e.g. backbone. "
                   "in solo-learn files); keys outside it are not the model's and are ignored")
    p.add_argument("--head-prefix", metavar="P", help="where the classifier head's keys are "
                   "(default fc.; solo-learn: classifier.)")
    p.add_argument("--drop", action="append", metavar="GLOB", help="ignore keys matching GLOB "
                   "(repeatable), e.g. 'projector.*'")
    p.add_argument("--num-classes", type=options.positive_int, help="classes of the head (default: the dataset's)")
    p.add_argument("--trained-on", action="append", metavar="DATASET:SPLIT",
                   help="data the model was trained on (repeatable): refused if it holds test images of --dataset")
    p.add_argument("--name", help=f"the name in the case id (default: the file's stem): {names.RULE}")
    p.add_argument("--score", nargs="+", default=["msp"], metavar="S", help=f"scores ({', '.join(hscores.names())})")
    p.add_argument("--profile", help="whose test set, OOD sets and repetitions (default: the paper profile when it "
                                     "has the dataset, else the first profile that has it)")
    p.add_argument("--profile-file", metavar="PATH", help="add the profiles of this TOML file (as pytest's option)")
    p.add_argument("--seed", type=int, default=0, help="evaluation seed of the OOD draws (default 0)")
    p.add_argument("--num-to-avg", type=options.positive_int, help="OOD repetitions (default: the profile's)")
    p.add_argument("--results-dir", type=options.directory, help="where records go (default: results/<profile>)")
    p.add_argument("--data-root", type=options.directory,
                   help="dataset cache (default: $HARNESS_DATA_ROOT or the per-user cache)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--download", action="store_true", help="fetch an entry's checkpoint URL into the cache first")
    p.set_defaults(func=run)


def _one_off(args) -> model_entries.Entry:
    """An entry built from the options, its errors naming the option."""
    for flag, value in (("--model", args.model), ("--dataset", args.dataset)):
        if not value:
            raise HarnessError(f"{flag} is required with --checkpoint")
    path = Path(args.checkpoint).expanduser()
    where = {"": "--checkpoint", "architecture": "--model", "dataset": "--dataset", "checkpoint.sha256": "--sha256",
             "normalize": "--normalize", "provenance.trained_on": "--trained-on"}
    name = store.slug(path.stem) if args.name is None else names.check(args.name, "--name")
    entry = model_entries.Entry(name=name, architecture=args.model, num_classes=1,
                                dataset=args.dataset, path=str(path), where=where)
    if args.sha256 is not None:
        entry.sha256 = args.sha256.strip().lower()
        if len(entry.sha256) != 64 or any(c not in "0123456789abcdef" for c in entry.sha256):
            entry.fail("checkpoint.sha256", f"must be 64 hex digits, got {args.sha256!r}")
    try:
        spec = hdata.spec(args.dataset, args.data_root)
    except HarnessError as exc:
        entry.fail("dataset", str(exc))
    entry.num_classes, entry.image_size = args.num_classes or spec.num_classes, spec.image_size
    try:
        models.spec(args.model)
    except HarnessError as exc:
        entry.fail("architecture", str(exc))
    if args.normalize is not None:
        values = []
        for part in args.normalize.split(","):
            try:
                values.append(float(part))
            except ValueError:
                entry.fail("normalize", f"{part!r} is not a number (expected MEAN,STD or 6 numbers)")
        entry.normalize = model_entries.parse_normalize(values, lambda m: entry.fail("normalize", m))
    entry.mapping = StateMapping(args.strip_prefix or "", tuple(args.drop or ()), True, args.head_prefix or "fc.")
    for item in args.trained_on or ():
        if item.count(":") != 1 or not all(item.split(":")):
            entry.fail("provenance.trained_on", f"expected DATASET:SPLIT, got {item!r}")
    entry.trained_on = tuple(args.trained_on or ())
    if checkpoint_files.not_a_file(path):
        entry.fail("checkpoint", checkpoint_files.not_a_file(path))
    return entry


def _profile(name: str | None, dataset: str) -> profiles.Profile:
    if name is not None:
        profile = profiles.get(name)
        profile.plan(dataset)
        return profile
    candidates = ["paper", *profiles.names()]
    for candidate in candidates:
        profile = profiles.get(candidate)
        if any(plan.id == dataset for plan in profile.datasets):
            return profile
    raise HarnessError(f"--dataset {dataset!r}: no profile evaluates it (profiles: {', '.join(profiles.names())}); "
                       f"add it to a profile file and pass --profile")


def run(args) -> int:
    if args.profile_file:
        profiles.add_file(args.profile_file, args.data_root)
    if args.entry:
        for flag in ("model", "sha256", "normalize", "strip_prefix", "head_prefix", "drop", "num_classes",
                     "trained_on", "name"):
            if getattr(args, flag) is not None:
                raise HarnessError(f"--{flag.replace('_', '-')} goes with --checkpoint; an entry names its own")
        entry = model_entries.get(args.entry)
        if entry.dataset is None:
            entry.fail("dataset", "the entry names no dataset: it is an upstream only (train --upstream-entry)")
        if args.dataset and args.dataset != entry.dataset:
            entry.fail("dataset", f"the entry's dataset is {entry.dataset!r}, --dataset says {args.dataset!r}")
        if args.download:
            entry.download(args.data_root)
        missing = entry.absent(args.data_root)
        if missing:
            raise HarnessError(missing)
    else:
        entry = _one_off(args)
    profile = _profile(args.profile, entry.dataset)
    if entry.ood_sets:  # the OOD sets of the paper's mean, so that its bands can be compared
        profile = profile.with_ood_sets(",".join(entry.ood_sets))
    results = args.results_dir or Path("results") / profile.name
    ctx = RunContext(profile=profile, device=resolve_device(args.device), results_dir=results,
                     data_root=args.data_root, num_to_avg=args.num_to_avg, quiet=True)
    for score in args.score:
        hscores.get(score)
    session = Session(ctx)
    session.entries[entry.name] = entry
    records = [session.run(Case("models", entry.dataset, LOADED, score, entry=entry.name), args.seed)
               for score in args.score]
    loaded = records[0]["loaded"]
    print(f"loaded {loaded['file']} (sha256 {loaded['sha256']}) as {entry.architecture} on {entry.dataset}, "
          f"profile {profile.name}; leakage guard: {loaded['leakage_check']}")
    for line in summary_table(records):
        print(line)
    for record in records:
        for verdict in record["verdicts"]["bands"]:
            print(f"band {'pass' if verdict['passed'] else 'not measured' if verdict['passed'] is None else 'FAIL'}: "
                  f"{verdict['message']}")
        print(f"record: {record['path']}")
    # A band miss fails the command as it fails the pytest case (the record is written either way).
    return 1 if any(v["passed"] is False for r in records for v in r["verdicts"]["bands"]) else 0
