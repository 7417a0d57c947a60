"""Training throughput (images/s, batch 128, one CPU process): WRN-16-1 and WRN-40-2, fast vs reference loader.

Each case trains a fresh model on random 32x32 images for STEPS batches, after one warm-up batch (oneDNN builds
its kernels on the first call), and reports the loop's images/s in pytest-benchmark's extra_info. The numbers are
measured when benchmarks are asked for (WRN-40-2 takes about a minute on two cores):

    python -m pytest tests/test_train_bench.py --benchmark-only -s

In a plain `pytest tests` run only WRN-16-1 runs, one batch, no warm-up: it checks the code path, not the speed.
"""
import os

import numpy as np
import pytest
import torch

from harness import models, train
from harness.data import ImageSet

BATCH = 128
STEPS = 3


def _images(n: int) -> ImageSet:
    rng = np.random.default_rng(0)
    return ImageSet(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64),
                    tuple(str(i) for i in range(10)))


def _throughput(model_name: str, loader: str, steps: int) -> float:
    torch.manual_seed(0)
    model = models.create(model_name, 10, drop_rate=0.3)
    hyper = train.Hyper(epochs=1, lr=0.1, weight_decay=5e-4, batch_size=BATCH)
    result = train.fit(model, _images(steps * BATCH), hyper, options=train.Options(quiet=True, loader=loader))
    return result.history[0]["images_per_s"]


@pytest.mark.parametrize("loader", ["fast", "reference"])
@pytest.mark.parametrize("model_name", ["wrn-16-1", "wrn-40-2"])
def test_training_throughput(benchmark, request, model_name, loader):
    measure = request.config.getoption("benchmark_only", False) or os.environ.get("HARNESS_TRAIN_BENCH") == "1"
    if model_name == "wrn-40-2" and not measure:
        pytest.skip("WRN-40-2 throughput takes about a minute: run with --benchmark-only (or HARNESS_TRAIN_BENCH=1)")
    if measure:
        _throughput(model_name, loader, steps=1)
    steps = STEPS if measure else 1
    rate = benchmark.pedantic(_throughput, args=(model_name, loader, steps), rounds=1, iterations=1)
    benchmark.extra_info["images_per_s"] = round(rate, 1)
    print(f"\n{model_name} {loader} loader: {rate:.1f} images/s (batch {BATCH}, {steps} steps, "
          f"{torch.get_num_threads()} threads)")
    assert rate > 0
