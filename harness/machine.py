"""Which CPU arithmetic this machine does: a fingerprint of its float kernels, for the regression baselines.

The CPU profiles are bit-identical from run to run on one machine, but not across machines whose kernels round
differently (oneDNN, MKL and ATen pick AVX2 or AVX-512 code paths, blockings by cache size, ...): after a few
epochs the difference grows into whole points of accuracy. Measured here: the smoke `scratch` model reaches 89.67 %
on one 2-core AVX2 machine and 88.00 % on the machine that recorded the committed baseline, with the same code.
The probe trains a tiny network for two steps on fixed data and hashes the resulting weights: two machines with
the same hash compute the same training, so a baseline entry gates only runs on machines with its probe hash.
"""
from __future__ import annotations

import functools
import hashlib


@functools.lru_cache(maxsize=None)
def kernel_probe() -> str:
    import torch
    from torch import nn

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the CPU profiles' thread count: reduction orders depend on it
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
            x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
            for _ in range(2):
                opt.zero_grad()
                nn.functional.cross_entropy(net(x), y).backward()
                opt.step()
            digest = hashlib.sha256()
            for tensor in net.state_dict().values():
                digest.update(tensor.detach().contiguous().numpy().tobytes())
    finally:
        torch.set_num_threads(threads)
    return digest.hexdigest()[:16]
