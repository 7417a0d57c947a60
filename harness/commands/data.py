"""`python -m harness data {import,corrupt,list}`: decode datasets once into the cache, generate corrupted test
sets, and show what the cache holds."""
from __future__ import annotations

from harness import names, options
from harness.data import cache, corruptions, registry, shifted
from harness.data.importer import READERS, import_dataset
from harness.errors import HarnessError


REPLACE_HELP = "overwrite a dataset of this name in the cache (default: refuse); no other dataset is touched"


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="import datasets into the cache and list them", description=__doc__)
    sub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    imp = sub.add_parser(
        "import", help="decode a dataset (directory or .tar.gz) into the cache",
        description="Decode a dataset once into uint8 arrays under the data root. PATH is a directory or a "
                    ".tar[.gz] archive in one of the formats: " + "; ".join(f"{k}: {v[1]}" for k, v in READERS.items()))
    importable = [s.name for s in registry.DATASETS.values() if s.formats]
    imp.add_argument("name", metavar="NAME", help=f"dataset name ({', '.join(importable)}, or with --format any "
                                                  f"{names.RULE.removeprefix('a ')})")
    imp.add_argument("path", metavar="PATH", nargs="?", help="directory or archive holding the dataset")
    imp.add_argument("--format", dest="fmt", choices=tuple(READERS), help="reader to use (default: detected)")
    imp.add_argument("--image-size", type=int, help="size for sources of mixed image sizes "
                                                    "(Resize + CenterCrop; default: the dataset's size, 32)")
    imp.add_argument("--sha256", metavar="HEX", help="expected sha256 of the archive; refuse a mismatch")
    imp.add_argument("--download", action="store_true",
                     help="fetch through torchvision first (cifar10, cifar100, svhn, dtd; needs internet)")
    imp.add_argument("--replace", action="store_true", help=REPLACE_HELP)
    imp.add_argument("--data-root", type=options.directory,
                     help="cache root (default: $HARNESS_DATA_ROOT or ~/.cache/uncertainty-harness)")
    imp.set_defaults(func=run_import)

    cor = sub.add_parser(
        "corrupt", help="generate a corrupted test set (CIFAR-10-C layout) into the cache",
        description="Apply the CIFAR-10-C corruptions (make_cifar_c.py's CIFAR parameters) to the test split of an "
                    "imported 32x32 dataset and write DATASET-c into the cache, in the layout of the released "
                    "files. Image i of corruption c at severity s is seeded with (--seed, c, s, i).")
    cor.add_argument("dataset", metavar="DATASET", help="clean dataset whose test split is corrupted (e.g. cifar10)")
    cor.add_argument("--corruptions", default=",".join(corruptions.NAMES), metavar="A,B,...",
                     help=f"comma-separated (default: all 15: {', '.join(corruptions.NAMES)})")
    cor.add_argument("--severities", default="1,2,3,4,5", metavar="1,...,5", help="comma-separated, 1..5 (default all)")
    cor.add_argument("--images", type=options.positive_int, metavar="N", help="only the first N test images")
    cor.add_argument("--name", help=f"cache entry to write (default: DATASET-c): {names.RULE}")
    cor.add_argument("--replace", action="store_true", help=REPLACE_HELP + "; without it, corruptions can only be "
                     "added to a set generated from the same images with the same seed")
    cor.add_argument("--seed", type=options.non_negative_int, default=0, help="base seed (default 0)")
    cor.add_argument("--frost-dir", type=options.directory, metavar="DIR",
                     help="folder with frost1.png..frost3.png, frost4.jpg, frost5.jpg (default: the installed "
                          "imagecorruptions package's)")
    cor.add_argument("--batch-size", type=options.positive_int, default=1000, help="images per step (memory)")
    cor.add_argument("--data-root", type=options.directory,
                     help="cache root (default: $HARNESS_DATA_ROOT or ~/.cache/uncertainty-harness)")
    cor.set_defaults(func=run_corrupt)

    lst = sub.add_parser("list", help="show the datasets in the cache")
    lst.add_argument("--data-root", type=options.directory,
                     help="cache root (default: $HARNESS_DATA_ROOT or ~/.cache/uncertainty-harness)")
    lst.set_defaults(func=run_list)


def run_import(args) -> int:
    import_dataset(args.name, args.path, data_root=args.data_root, fmt=args.fmt, image_size=args.image_size,
                   sha256=args.sha256, download=args.download, replace=args.replace)
    return 0


def run_corrupt(args) -> int:
    names = [n.strip() for n in args.corruptions.split(",")]
    if not all(names):
        raise HarnessError(f"--corruptions: expected comma-separated corruption names, got {args.corruptions!r}")
    try:
        severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise HarnessError(f"--severities: expected comma-separated integers 1..5, got {args.severities!r}") from None
    shifted.generate(args.dataset, names, severities, name=args.name, data_root=args.data_root, seed=args.seed,
                     images=args.images, frost_dir=args.frost_dir, batch_size=args.batch_size, replace=args.replace)
    return 0


def _cells(meta: dict) -> str:
    """A corrupted set's cells, e.g. '2 corruptions x 2 severities x 10,000 (gaussian_noise, fog; severities 1,5)'."""
    cells = meta["severities"]

    def per_severity(c):
        return meta["splits"][c]["count"] // len(cells[c])

    def levels(c):
        return ",".join(map(str, cells[c]))

    if len({(levels(c), per_severity(c)) for c in cells}) > 1:  # corruptions generated at different severities
        return "  ".join(f"{c} {len(cells[c])} x {per_severity(c):,} (severities {levels(c)})" for c in cells)
    first = next(iter(cells))
    names = f"{', '.join(cells)}; " if len(cells) < 5 else ""
    shape = (f"{_count(len(cells), 'corruption', 'corruptions')} x "
             f"{_count(len(cells[first]), 'severity', 'severities')} x {per_severity(first):,}")
    return f"{shape} ({names}severities {levels(first)})"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def run_list(args) -> int:
    root = cache.data_root(args.data_root)
    print(f"data root: {root}")
    rows = [("NAME", "IMAGES", "CLASSES", "SIZE", "FORMAT", "SOURCE")]
    problems = []
    for name, meta, problem in cache.entries(root):
        if meta is None:
            problems.append(f"{name}: {problem}")
            continue
        counts = _cells(meta) if "severities" in meta else "  ".join(
            f"{split} {info['count']:,}" for split, info in meta["splits"].items())
        h, w = meta["shape"][:2]
        rows.append((name, counts, str(len(meta["classes"])), f"{h}x{w}", meta["format"], meta["source"]["path"]))
    if len(rows) == 1:
        print("no datasets imported yet: python -m harness data import NAME PATH")
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            print("  ".join(c.ljust(wd) for c, wd in zip(r, widths)) + "  " + r[-1])
    for line in problems:
        print(f"damaged: {line}")
    builtin = [s.name for s in registry.DATASETS.values() if s.builtin]
    derived = [f"{s.name} (from {s.base})" for s in registry.DATASETS.values() if s.base]
    print(f"built in: {', '.join(builtin)}")
    print(f"derived: {', '.join(derived)}")
    return 0
