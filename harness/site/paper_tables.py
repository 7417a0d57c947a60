"""The papers' tables as they print them (Hendrycks, Lee, Mazeika 2019, tables A1 to A4 of docs/sources.md), as
data for the leaderboard's paper pages.

A table has columns (a recipe and a metric key suffix each) and sections of rows (a dataset and a key prefix each);
a cell's metric key is row prefix + column suffix, and its published value is the number the paper prints there.
The page puts our measured value beside each cell and takes the band, when one exists, from the band files by
(paper, dataset, recipe, score, key). A paper with bands but no layout here gets its bands as one plain table.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    group: str  # the header over several columns, e.g. "AUROC"
    label: str  # e.g. "scratch"
    recipe: str
    suffix: str  # metric key suffix, e.g. "auroc", "calib/rms"


@dataclass(frozen=True)
class Row:
    label: str
    dataset: str
    prefix: str  # metric key prefix, e.g. "ood/mean/", "ood/dtd/", "" (in-distribution)
    values: tuple[float, ...]  # one per column, as printed


@dataclass(frozen=True)
class Section:
    heading: str  # "" when the table has one section
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Table:
    name: str  # "A1"
    title: str
    tag: str  # docs/sources.md tag: [P] paper, [R] reproduction, [L] reference logs
    columns: tuple[Col, ...]
    sections: tuple[Section, ...]
    note: str = ""
    places: int | None = None  # decimals the paper prints; None: the harness's decimals for the metric


@dataclass(frozen=True)
class Paper:
    tag: str  # harness.bands.PAPERS
    title: str
    score: str  # the OOD score every cell of its tables uses
    summary: str
    tables: tuple[Table, ...]


def _pairs(group: str, suffix: str) -> tuple[Col, Col]:
    return Col(group, "scratch", "scratch", suffix), Col(group, "pre-trained", "finetune", suffix)


def _sets(dataset: str, prefix_of: dict[str, str], rows: str) -> tuple[Row, ...]:
    """Rows from a compact form of the paper's table: 'Name v1, v2 | v3, v4 · Name ...'."""
    out = []
    for item in rows.split(" · "):
        name, _, numbers = item.strip().partition(" ")
        values = tuple(float(v) for v in numbers.replace("|", ",").split(","))
        out.append(Row(name, dataset, prefix_of[name], values))
    return tuple(out)


_A3_KEYS = {"Gaussian": "ood/gaussian/", "Rademacher": "ood/rademacher/", "Blobs": "ood/blobs/",
            "Textures": "ood/dtd/", "SVHN": "ood/svhn/", "CIFAR-100": "ood/cifar100/", "CIFAR-10": "ood/cifar10/",
            "Mean": "ood/mean/"}
# Calibration with OOD data is ood/<set>/calib/<metric>; the in-distribution row is plain calib/<metric>.
_A4_KEYS = {**{k: v + "calib/" for k, v in _A3_KEYS.items()}, "In-distribution": "calib/"}


_A4_COLUMNS = (*_pairs("RMS", "rms_all_bins"), *_pairs("MAD", "mad_all_bins"), *_pairs("Soft F1", "soft_f1"))

HENDRYCKS2019 = Paper(
    tag="hendrycks2019",
    title='Hendrycks, Lee, Mazeika 2019, "Using Pre-Training Can Improve Model Robustness and Uncertainty"',
    score="msp",
    summary="WRN-40-2; scratch = 100 epochs, dropout 0.3; pre-trained = 100 epochs on downsampled ImageNet, then "
            "fine-tuned 10 epochs (CIFAR) / 20 (Tiny ImageNet) at lr 0.001. MSP score, OOD as the positive class. "
            "The harness pre-trains on Tiny-ImageNet-32 without the CIFAR-10 classes instead: its pre-trained "
            "cells are proxies.",
    tables=(
        Table("A1", "OOD detection, mean over OOD sets", "[P]",
              (*_pairs("AUROC", "auroc"), *_pairs("AUPR", "aupr@ood")),
              (Section("", (Row("CIFAR-10", "cifar10", "ood/mean/", (91.5, 94.5, 63.4, 73.5)),
                            Row("CIFAR-100", "cifar100", "ood/mean/", (69.4, 83.1, 29.7, 52.7)),
                            Row("Tiny ImageNet", "tinyimagenet", "ood/mean/", (71.8, 73.9, 30.8, 31.0)))),),
              places=1),
        Table("A2", "In-distribution calibration", "[P]",
              (*_pairs("RMS", "calib/rms"), *_pairs("MAD", "calib/mad")),
              (Section("", (Row("CIFAR-10", "cifar10", "", (6.4, 2.9, 2.9, 1.2)),
                            Row("CIFAR-100", "cifar100", "", (13.3, 3.6, 10.3, 2.5)))),),
              "RMS and MAD with the reference binning (the top bin skipped).", places=1),
        Table("A3", "Per-OOD-set detection, reproduction", "[R]",
              (*_pairs("AUROC", "auroc"), *_pairs("AUPR", "aupr@ood")),
              (Section("CIFAR-10", _sets("cifar10", _A3_KEYS,
                       "Gaussian 89.32, 95.44 | 43.44, 64.38 · Rademacher 89.04, 94.61 | 42.79, 59.47 · "
                       "Blobs 94.56, 97.15 | 68.11, 83.67 · Textures 87.98, 93.74 | 55.84, 70.85 · "
                       "SVHN 91.77, 95.65 | 63.47, 76.77 · CIFAR-100 87.42, 90.49 | 54.76, 65.30 · "
                       "Mean 90.02, 94.49 | 54.80, 69.94")),
               Section("CIFAR-100", _sets("cifar100", _A3_KEYS,
                       "Gaussian 49.67, 96.61 | 14.78, 79.95 · Rademacher 46.75, 97.66 | 14.13, 87.54 · "
                       "Blobs 85.89, 89.34 | 45.02, 55.96 · Textures 73.29, 79.65 | 33.03, 44.03 · "
                       "SVHN 74.51, 79.21 | 32.27, 48.42 · CIFAR-10 75.66, 75.21 | 34.71, 35.52 · "
                       "Mean 67.63, 86.28 | 28.99, 58.57")),
               Section("Tiny ImageNet", _sets("tinyimagenet", _A3_KEYS,
                       "Gaussian 64.82, 78.01 | 18.68, 26.65 · Rademacher 67.48, 73.42 | 19.86, 23.17 · "
                       "Blobs 64.84, 60.47 | 18.95, 17.14 · Textures 68.99, 72.25 | 29.02, 29.99 · "
                       "SVHN 86.66, 89.24 | 51.39, 57.69 · Mean 70.58, 74.68 | 27.58, 30.93"))),
              "The Mean rows share their metric key with A1, and so A1's band (which spans both).", places=2),
        Table("A4", "Calibration with OOD data, reproduction", "[R]", _A4_COLUMNS,
              (Section("CIFAR-10", _sets("cifar10", _A4_KEYS,
                       "In-distribution 6.39, 2.88 | 2.87, 1.24 | 27.83, 29.65 · Gaussian 33.02, 28.17 | 18.09, 14.06 | "
                       "15.44, 34.63 · Rademacher 33.29, 29.63 | 18.20, 14.73 | 14.61, 30.12 · "
                       "Blobs 26.76, 22.54 | 14.94, 11.73 | 36.69, 48.46 · Textures 24.83, 23.18 | 16.02, 13.46 | "
                       "29.88, 38.08 · SVHN 25.26, 23.30 | 15.37, 12.74 | 34.01, 42.58 · "
                       "CIFAR-100 24.80, 22.14 | 16.26, 13.82 | 28.31, 35.69 · Mean 24.91, 21.69 | 14.54, 11.69 | "
                       "26.68, 37.03")),
               Section("CIFAR-100", _sets("cifar100", _A4_KEYS,
                       "In-distribution 13.32, 3.63 | 10.26, 2.51 | 42.44, 46.33 · Gaussian 28.25, 8.48 | 24.30, 5.70 | "
                       "30.90, 64.29 · Rademacher 28.11, 7.49 | 24.52, 5.10 | 30.16, 65.71 · "
                       "Blobs 22.62, 10.13 | 17.95, 7.31 | 50.35, 59.27 · Textures 23.40, 10.81 | 20.11, 8.76 | "
                       "44.24, 54.32 · SVHN 24.06, 10.23 | 24.06, 8.60 | 44.04, 54.67 · "
                       "CIFAR-10 23.64, 11.48 | 19.91, 9.60 | 44.85, 52.12 · Mean 23.34, 8.89 | 19.61, 6.80 | "
                       "41.00, 56.67"))),
              "OOD rows mix the ID test set with OOD samples counted as wrong; every bin counted (no top-bin "
              "skip).", places=2),
    ),
)

LAYOUTS = {paper.tag: paper for paper in (HENDRYCKS2019,)}
