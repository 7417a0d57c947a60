"""`python -m harness train`: train (or fetch from the checkpoint cache) one recipe's model, upstreams first."""
from __future__ import annotations

from harness import checkpoints, model_entries, options, recipes
from harness.errors import HarnessError
from harness.profiles import get as get_profile
from harness.profiles import names as profile_names


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a recipe's model (cached; upstream models are trained first, once)",
        description=__doc__)
    p.add_argument("--recipe", required=True, help=f"one of: {', '.join(recipes.names())}")
    p.add_argument("--dataset", required=True, help="in-distribution dataset (harness.data.registry names)")
    p.add_argument("--upstream-dataset", help="pretraining dataset (default: the profile's upstream for --dataset)")
    p.add_argument("--profile", default="smoke", help=f"one of: {', '.join(profile_names())}")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the profile's first seed)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a recipe setting, e.g. --set lr=0.01 (repeatable)")
    p.add_argument("--epochs", type=int, help="override the resolved epoch count of this recipe")
    p.add_argument("--aux", metavar="NAME", help="outlier set of oe / oe_scratch / energy_ft: any registered or "
                   "imported dataset or folder (default: the profile's aux for --dataset)")
    p.add_argument("--upstream-checkpoint", metavar="PATH", help="use this pretrained model instead of training one")
    p.add_argument("--upstream-sha256", metavar="HEX", help="sha256 of --upstream-checkpoint (required with it)")
    p.add_argument("--upstream-entry", metavar="NAME", help="use model entry NAME (benchmarks/models/NAME.toml, "
                   "e.g. your SSL backbone) as the pretrained model")
    p.add_argument("--data-root", type=options.directory,
                   help="dataset cache (default: $HARNESS_DATA_ROOT or the per-user cache)")
    p.add_argument("--cache-dir", type=options.directory, help="checkpoint cache (default: <data root>/checkpoints)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: the profile's device)")
    p.add_argument("--loader", choices=("fast", "reference"), help="default: the profile's loader")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (changes the result: part of the cache key)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args) -> int:
    profile = get_profile(args.profile)
    overrides = {}
    for item in args.overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--set expects NAME=VALUE, got {item!r}")
        overrides[name.strip()] = value.strip()
    if args.aux is not None:
        overrides["aux"] = args.aux
    recipe = recipes.get(args.recipe, **overrides)
    user = None
    if args.upstream_checkpoint or args.upstream_sha256:
        if not (args.upstream_checkpoint and args.upstream_sha256):
            raise HarnessError("--upstream-checkpoint and --upstream-sha256 go together")
        if args.upstream_entry:
            raise HarnessError("--upstream-entry and --upstream-checkpoint: give one of them")
        user = checkpoints.UserCheckpoint(args.upstream_checkpoint, args.upstream_sha256)
    if args.upstream_entry:
        user = model_entries.upstream(args.upstream_entry, args.dataset, args.data_root)
    seed = args.seed if args.seed is not None else profile.seeds[0]
    _, info = checkpoints.obtain(
        recipe, args.dataset, profile, seed, cache_dir=args.cache_dir, data_root=args.data_root,
        device=args.device, upstream_dataset=args.upstream_dataset, upstream_checkpoint=user, epochs=args.epochs,
        quiet=args.quiet, loader=args.loader, amp=args.amp, channels_last=args.channels_last, compile=args.compile)
    for line in _lines(info, depth=0, seen=set()):
        print(line)
    return 0


def _lines(info: dict, depth: int, seen: set[str]) -> list[str]:
    """Upstreams first (they were trained first), then this model; a model shared by two paths is listed once."""
    out = []
    for up in info.get("upstreams", []):
        if up["key"] not in seen:
            seen.add(up["key"])
            out += _lines(up, depth + 1, seen)
    accuracy = f"{info['accuracy']:.2f}%" if info.get("accuracy") is not None else "n/a"
    if info.get("from_cache"):
        source = "cached"
    elif info.get("trained"):
        source = f"trained in {info['train_s']:.1f} s"
    else:
        source = "built from its upstreams, no training"
    selected = f", weights of epoch {info['selected_epoch']}" if info.get("selected_epoch") is not None else ""
    role = "upstream " if depth else ""
    out.append(f"{role}{info.get('recipe', '?')} on {info.get('dataset') or 'user checkpoint'}: test accuracy "
               f"{accuracy} ({source}){selected} -> {info['path']}")
    return out
