"""Input normalizations as data: each recipe family trains and evaluates with its paper's (a recipe's
`normalization` setting names one). The data pipeline feeds every model the harness's x = (u/255 - 0.5) / 0.5; a
model whose normalization is another converts it as its first operation (harness.models.set_input_normalization),
x * 0.5/std + (0.5 - mean)/std = (u/255 - mean) / std, equal to the reference's input up to float rounding."""
from __future__ import annotations

from harness.errors import HarnessError

Stats = tuple[tuple[float, float, float], tuple[float, float, float]]

HALF: Stats = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
_OE: Stats = (tuple(v / 255 for v in (125.3, 123.0, 113.9)), tuple(v / 255 for v in (63.0, 62.1, 66.7)))

# name -> (where it comes from, {dataset prefix: stats}); "" is every other dataset. The papers define their
# statistics for CIFAR only; on another dataset (digits, Tiny ImageNet) a family keeps its CIFAR-10 numbers.
NORMALIZATIONS: dict[str, tuple[str, dict[str, Stats]]] = {
    "half": ("hendrycks/pre-training (every script): mean = std = 0.5", {"": HALF}),
    "oe": ("hendrycks/outlier-exposure baseline.py, oe_tune.py, oe_scratch.py; wetliu/energy_ood train.py: "
           "mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255", {"": _OE}),
    "tst": ("MJordahn/Decoupled-Layers-for-Calibrated-NNs src/experiments/00_train_models.py: CIFAR-10 "
            "(0.4914, 0.4822, 0.4465) / (0.247, 0.243, 0.261), CIFAR-100 (0.5074, 0.4867, 0.4411) / "
            "(0.2011, 0.1987, 0.2025)",
            {"cifar100": ((0.5074, 0.4867, 0.4411), (0.2011, 0.1987, 0.2025)),
             "": ((0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261))}),
}


def names() -> list[str]:
    return list(NORMALIZATIONS)


def check(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise HarnessError(f"unknown normalization {name!r}; known: {', '.join(NORMALIZATIONS)}")


def of(name: str, dataset: str) -> Stats:
    """(mean, std) per channel of normalization `name` on `dataset`."""
    check(name)
    by_dataset = NORMALIZATIONS[name][1]
    prefix = next((p for p in by_dataset if p and dataset.startswith(p)), "")
    return by_dataset[prefix]
