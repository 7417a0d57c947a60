"""Speed of the data layer (pytest-benchmark): import of the real CIFAR-10 archive, fast vs reference loader.

The loader benchmarks use the CIFAR-10 train split from $HARNESS_DATA_ROOT when it has been imported, else random
uint8 images of the same shape (50,000 x 32 x 32 x 3): throughput does not depend on pixel values. Both loaders
run on one CPU thread (the reference path with num_workers=0 is single-threaded anyway): on a busy 2-core
machine, two intra-op threads make the fast path's small batch ops swing between 1.5 and 50 ms per batch.
"""
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import harness.data as data
from harness.data.importer import import_dataset
from harness.data.loaders import DeviceLoader, reference_loader
from harness.errors import HarnessError

SHARED = os.environ.get("HARNESS_SHARED_DATA")
BATCH = 128
SPEED = {}  # batches per second, filled by the loader benchmarks for the ratio test


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cifar_train():
    try:
        return data.load("cifar10", "train")
    except HarnessError:
        rng = np.random.default_rng(0)
        return data.ImageSet(rng.integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8),
                             rng.integers(0, 10, 50_000).astype(np.int64), tuple("0123456789"))


def _batches_per_second(benchmark, loader, n_batches, key):
    """Best of 3 rounds of `n_batches` augmented batches (each round starts a new epoch)."""
    seconds = []

    def pull():
        start = time.perf_counter()
        it = iter(loader)
        for _ in range(n_batches):
            x, _ = next(it)
        seconds.append(time.perf_counter() - start)
        assert x.shape == (BATCH, 3, 32, 32)

    benchmark.pedantic(pull, rounds=3, iterations=1)
    SPEED[key] = n_batches / min(seconds)
    benchmark.extra_info["batches_per_s"] = round(SPEED[key], 2)
    benchmark.extra_info["images_per_s"] = round(SPEED[key] * BATCH)


def test_bench_fast_loader(benchmark, cifar_train, one_thread):
    loader = DeviceLoader(cifar_train.images, cifar_train.labels, BATCH, "cpu", augment=True, shuffle=True, seed=0)
    _batches_per_second(benchmark, loader, 100, "fast")


def test_bench_reference_loader(benchmark, cifar_train, one_thread):
    loader = reference_loader(cifar_train, BATCH, augment=True, shuffle=True, seed=0)
    _batches_per_second(benchmark, loader, 16, "reference")


def test_loader_speed_ratio():
    if set(SPEED) != {"fast", "reference"}:
        pytest.skip("needs both loader benchmarks in the same run")
    ratio = SPEED["fast"] / SPEED["reference"]
    print(f"\nbatches/s (batch {BATCH}): fast {SPEED['fast']:.1f}, reference {SPEED['reference']:.2f}, "
          f"ratio {ratio:.1f}x")
    assert ratio > 3


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.skipif(not SHARED, reason="HARNESS_SHARED_DATA is not set (the folder of the shared archives)")
def test_bench_import_cifar10(benchmark, tmp_path_factory):
    archive = Path(SHARED) / "cifar10-jpeg.tar.gz"

    def run():
        root = tmp_path_factory.mktemp("bench-import")
        return import_dataset("cifar10", archive, data_root=root)

    status, _ = benchmark.pedantic(run, rounds=1, iterations=1)
    assert status == "imported"
    assert benchmark.stats is None or benchmark.stats.stats.max < 60  # the target on the 2-core machine
