"""Mini-batches by index: which training examples each replica sees at each step.

The batch order is a pure function of (seed, step): each epoch is a fresh permutation of the
training set drawn from (seed, epoch) alone, cut into ``n // batch_size`` full batches (the
remainder is dropped so every batch has the same size). So runs with and without BN see the
same batches, and a resumed run sees what an uninterrupted one saw, with no state to save.

Non-i.i.d. batches (``dataset.classes_per_batch`` = k, Batch Renormalization's second case):
each batch holds batch_size / k examples of each of k classes drawn at random for it; each
class's examples are taken in a per-epoch shuffled order, cycling when a class runs out, so an
epoch has as many batches as before but may repeat or skip a few examples.

Augmentation (``dataset.augment``, images only): each training image is padded by 4 pixels of
zeros, cropped back at a random offset and flipped left-right with probability 1/2 (the CIFAR
recipe of He et al. 2016), on the device, the draws a function of (seed, step) too.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from bnlab.config.schema import TrainerConfig
from bnlab.errors import ConfigError


def seeded_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from ``keys`` (seed, epoch or step, and a tag per use) through
    numpy's SeedSequence, so nearby keys give unrelated streams."""
    state = np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class BatchOrder:
    """``indices(step)``: the (K, batch_size) example indices of K seeds' batches at ``step``."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seeds: list[int],
        device: torch.device,
        labels: Optional[Tensor] = None,
        classes_per_batch: Optional[int] = None,
        augment: bool = False,
    ):
        if batch_size > n:
            raise ConfigError(
                f"trainer.batch_size={batch_size} is larger than the training set ({n} examples)"
            )
        self.n, self.batch_size, self.seeds, self.device = n, batch_size, seeds, device
        self.labels = None if classes_per_batch is None else labels.cpu()
        self.classes_per_batch = classes_per_batch
        self.augment = augment
        self.steps_per_epoch = n // batch_size
        self._epoch: Optional[int] = None
        self._perms: Optional[Tensor] = None

    def permutation(self, seed: int, epoch: int) -> Tensor:
        """The epoch's sequence of example indices; batch i is its i-th slice of batch_size."""
        gen = seeded_generator(seed, epoch, 0xBA7C4)
        if self.classes_per_batch is None:
            return torch.randperm(self.n, generator=gen)
        return self._class_batches(gen)

    def _class_batches(self, gen: torch.Generator) -> Tensor:
        """steps_per_epoch batches, each of batch_size / k examples from each of k classes."""
        k, steps = self.classes_per_batch, self.steps_per_epoch
        classes = int(self.labels.max()) + 1
        chosen = torch.rand(steps, classes, generator=gen).argsort(1)[:, :k]  # (steps, k)
        chunk = self.batch_size // k
        slots = torch.empty(steps, k, chunk, dtype=torch.long)
        for c in range(classes):
            members = torch.nonzero(self.labels == c).flatten()
            queue = members[torch.randperm(len(members), generator=gen)]
            where = chosen == c
            rank = torch.arange(int(where.sum()))  # the class's chunks, in batch order
            offsets = (rank[:, None] * chunk + torch.arange(chunk)) % len(queue)
            slots[where] = queue[offsets]
        return slots.reshape(-1)

    def indices(self, step: int) -> Tensor:
        """Indices of the batch trained at ``step`` (1-based)."""
        epoch, position = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._epoch:
            perms = torch.stack([self.permutation(s, epoch) for s in self.seeds])
            self._perms, self._epoch = perms.to(self.device), epoch
        start = position * self.batch_size
        return self._perms[:, start : start + self.batch_size]

    def batch(self, x: Tensor, y: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """The (K, batch_size, ...) inputs and labels trained at ``step``, augmented where
        ``augment`` is set."""
        idx = self.indices(step)
        images = gather(x, idx)
        if self.augment:
            images = crop_and_flip(images, self.seeds, step)
        return images, gather(y, idx)


PAD = 4  # pixels of padding before the random crop


def crop_and_flip(images: Tensor, seeds: list[int], step: int) -> Tensor:
    """(K, B, C, H, W) images, each padded by PAD zeros, cropped back to H x W at a random
    offset and flipped left-right with probability 1/2; replica k draws from (seeds[k], step)."""
    k, b, c, h, w = images.shape
    draws = []
    for seed in seeds:
        gen = seeded_generator(seed, step, 0xA06)
        offsets = torch.randint(0, 2 * PAD + 1, (b, 2), generator=gen)  # dy, dx
        flips = torch.randint(0, 2, (b, 1), generator=gen)  # 1: mirrored (probability 1/2)
        draws.append(torch.cat([offsets, flips], 1))
    draw = torch.stack(draws).to(images.device)
    rows = draw[..., 0, None] + torch.arange(h, device=images.device)  # (K, B, H)
    across = torch.arange(w, device=images.device)
    across = torch.where(draw[..., 2, None] == 1, w - 1 - across, across)
    cols = draw[..., 1, None] + across  # (K, B, W)
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))
    rows = rows[:, :, None, :, None].expand(k, b, c, h, w + 2 * PAD)
    cropped = torch.gather(padded, 3, rows)
    return torch.gather(cropped, 4, cols[:, :, None, None, :].expand(k, b, c, h, w))


def gather(data: Tensor, idx: Tensor) -> Tensor:
    """``data[idx]`` for a (K, B) index (index_select: faster than advanced indexing on CPU)."""
    return torch.index_select(data, 0, idx.reshape(-1)).view(*idx.shape, *data.shape[1:])


def total_steps(trainer: TrainerConfig, n_train: int) -> int:
    """``trainer.steps``, or ceil(epochs * n_train / batch_size) when ``trainer.epochs`` is set."""
    if trainer.epochs:
        return math.ceil(trainer.epochs * n_train / trainer.batch_size)
    return trainer.steps
