"""`python -m harness data {import,list}`: decode datasets once into the cache, and show what the cache holds."""
from __future__ import annotations

from harness import options
from harness.data import cache, registry
from harness.data.importer import import_dataset
from harness.data.readers import READERS


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="import datasets into the cache and list them", description=__doc__)
    sub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    imp = sub.add_parser(
        "import", help="decode a dataset (directory or .tar.gz) into the cache",
        description="Decode a dataset once into uint8 arrays under the data root. PATH is a directory or a "
                    ".tar[.gz] archive in one of the formats: " + "; ".join(f"{k}: {v[1]}" for k, v in READERS.items()))
    importable = [s.name for s in registry.DATASETS.values() if s.formats]
    imp.add_argument("name", metavar="NAME", help=f"dataset name ({', '.join(importable)}, or any name with --format)")
    imp.add_argument("path", metavar="PATH", nargs="?", help="directory or archive holding the dataset")
    imp.add_argument("--format", dest="fmt", choices=tuple(READERS), help="reader to use (default: detected)")
    imp.add_argument("--image-size", type=int, help="size for sources of mixed image sizes "
                                                    "(Resize + CenterCrop; default: the dataset's size, 32)")
    imp.add_argument("--sha256", metavar="HEX", help="expected sha256 of the archive; refuse a mismatch")
    imp.add_argument("--download", action="store_true",
                     help="fetch through torchvision first (cifar10, cifar100, svhn, dtd; needs internet)")
    imp.add_argument("--data-root", type=options.directory,
                     help="cache root (default: $HARNESS_DATA_ROOT or ~/.cache/uncertainty-harness)")
    imp.set_defaults(func=run_import)

    lst = sub.add_parser("list", help="show the datasets in the cache")
    lst.add_argument("--data-root", type=options.directory,
                     help="cache root (default: $HARNESS_DATA_ROOT or ~/.cache/uncertainty-harness)")
    lst.set_defaults(func=run_list)


def run_import(args) -> int:
    import_dataset(args.name, args.path, data_root=args.data_root, fmt=args.fmt, image_size=args.image_size,
                   sha256=args.sha256, download=args.download)
    return 0


def run_list(args) -> int:
    root = cache.data_root(args.data_root)
    print(f"data root: {root}")
    rows = [("NAME", "IMAGES", "CLASSES", "SIZE", "FORMAT", "SOURCE")]
    problems = []
    for name, meta, problem in cache.entries(root):
        if meta is None:
            problems.append(f"{name}: {problem}")
            continue
        counts = "  ".join(f"{split} {info['count']:,}" for split, info in meta["splits"].items())
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
