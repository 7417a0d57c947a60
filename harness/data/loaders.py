"""Training/eval batch iterators: a fast whole-split-on-device path and the reference torchvision DataLoader path.

Both implement the reference augmentation: 4 px zero padding of [0, 1] pixels (-1 after normalization), a uniform
random crop back to the original size, a horizontal flip with p = 0.5, normalization with mean = std = 0.5.
Both reshuffle every epoch, keep the last partial batch, and are deterministic given the seed: epoch e draws its
randomness from a generator seeded with (seed, e), so resuming only needs the epoch and the position in it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from harness.data.imageset import ImageSet, normalize_nchw

PAD = 4


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator that drives epoch `epoch`; independent streams for different (seed, epoch) pairs."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class DeviceLoader:
    """A whole split as uint8 on `device`; shuffling, cropping and flipping happen there, batch-wise.

    Iterating the loader runs one epoch; iterating again runs the next one (fresh shuffle and augmentation).
    """

    def __init__(self, images, labels, batch_size: int, device="cpu", augment: bool = False,
                 shuffle: bool = False, seed: int = 0):
        if isinstance(images, np.ndarray):  # np.require copies read-only (memory-mapped) arrays torch cannot wrap
            images = torch.from_numpy(np.require(images, requirements=["C", "W"]))
        if isinstance(labels, np.ndarray):
            labels = torch.from_numpy(np.require(labels, np.int64, requirements=["C", "W"]))
        images, labels = torch.as_tensor(images), torch.as_tensor(labels)
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[3] != 3:
            raise ValueError(f"DeviceLoader expects uint8 images (N, H, W, 3), "
                             f"got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"DeviceLoader labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.images = images.to(self.device).permute(0, 3, 1, 2).contiguous()
        self.labels = labels.to(self.device, torch.int64)
        self.batch_size = int(batch_size)
        self.augment = bool(augment)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            raise ValueError(f"loader state was saved with seed {state['seed']}, this loader has seed {self.seed}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def _epoch_plan(self):
        """Order, crop offsets and flips of the whole epoch, drawn on the CPU so every device sees the same numbers."""
        n = self.images.shape[0]
        g = epoch_generator(self.seed, self.epoch)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        if not self.augment:
            return order.to(self.device), None, None, None
        dy = torch.randint(0, 2 * PAD + 1, (n,), generator=g)
        dx = torch.randint(0, 2 * PAD + 1, (n,), generator=g)
        flip = torch.rand(n, generator=g) < 0.5
        return order.to(self.device), dy.to(self.device), dx.to(self.device), flip.to(self.device)

    def __iter__(self):
        order, dy, dx, flip = self._epoch_plan()
        n = self.images.shape[0]
        for b in range(self.position, len(self)):
            sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
            idx = order[sl]
            x = self.images[idx]
            if self.augment:
                x = _crop_flip(x, dy[sl], dx[sl], flip[sl])
            self.position = b + 1
            yield normalize_nchw(x), self.labels[idx]
        self.epoch += 1
        self.position = 0


def _crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """One gather from the zero-padded batch: a flat pixel index per output pixel, columns reversed where flipped.

    (A flat gather is ~8x faster on CPU than 4-D advanced indexing, and one kernel on a GPU.)"""
    b, c, h, w = x.shape
    pw = w + 2 * PAD
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD)).reshape(b, c, -1)
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = dy[:, None] + ar_h  # (B, H)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)  # (B, W)
    flat = (rows[:, :, None] * pw + cols[:, None, :]).reshape(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, flat).reshape(b, c, h, w)


class _ImageSetDataset(Dataset):
    """PIL images through torchvision transforms; each item carries its own seed so workers stay deterministic."""

    def __init__(self, imageset: ImageSet, transform):
        self.imageset = imageset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.imageset)

    def __getitem__(self, item):
        index, sample_seed = item
        image = Image.fromarray(self.imageset.images[index])
        # torchvision's random transforms draw from the global CPU generator: seed it per sample, then restore it.
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sample_seed)
            x = self.transform(image)
        return x, int(self.imageset.labels[index])


class _EpochSampler(Sampler):
    """Yields (index, per-sample seed); epoch e uses epoch_generator(seed, e), then the epoch counter advances."""

    def __init__(self, n: int, shuffle: bool, seed: int):
        self.n, self.shuffle, self.seed = n, shuffle, seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        g = epoch_generator(self.seed, self.epoch)
        self.epoch += 1
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)
        return iter(zip(order.tolist(), seeds.tolist()))


def reference_transform(augment: bool, image_size: int = 32):
    import torchvision.transforms as T

    steps = [T.RandomCrop(image_size, padding=PAD), T.RandomHorizontalFlip()] if augment else []
    return T.Compose(steps + [T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])


def reference_loader(imageset: ImageSet, batch_size: int, augment: bool, shuffle: bool, seed: int,
                     num_workers: int = 0) -> DataLoader:
    """The reference pipeline: DataLoader over PIL images with torchvision's RandomCrop/Flip/ToTensor/Normalize."""
    dataset = _ImageSetDataset(imageset, reference_transform(augment, imageset.image_size[0]))
    sampler = _EpochSampler(len(imageset), shuffle, seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      drop_last=False, persistent_workers=False)
