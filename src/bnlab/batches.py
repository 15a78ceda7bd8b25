"""Mini-batches by index: which training examples each replica sees at each step.

The batch order is a pure function of (seed, step): each epoch is a fresh permutation of the
training set drawn from (seed, epoch) alone, cut into ``n // batch_size`` full batches (the
remainder is dropped so every batch has the same size). So runs with and without BN see the
same batches, and a resumed run sees what an uninterrupted one saw, with no state to save.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from bnlab.config import TrainerConfig
from bnlab.errors import ConfigError


class BatchOrder:
    """``indices(step)``: the (K, batch_size) example indices of K seeds' batches at ``step``."""

    def __init__(self, n: int, batch_size: int, seeds: list[int], device: torch.device):
        if batch_size > n:
            raise ConfigError(
                f"trainer.batch_size={batch_size} is larger than the training set ({n} examples)"
            )
        self.n, self.batch_size, self.seeds, self.device = n, batch_size, seeds, device
        self.steps_per_epoch = n // batch_size
        self._epoch: Optional[int] = None
        self._perms: Optional[Tensor] = None

    def permutation(self, seed: int, epoch: int) -> Tensor:
        state = np.random.SeedSequence([seed, epoch, 0xBA7C4]).generate_state(2, dtype=np.uint32)
        gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randperm(self.n, generator=gen)

    def indices(self, step: int) -> Tensor:
        """Indices of the batch trained at ``step`` (1-based)."""
        epoch, position = divmod(step - 1, self.steps_per_epoch)
        if epoch != self._epoch:
            perms = torch.stack([self.permutation(s, epoch) for s in self.seeds])
            self._perms, self._epoch = perms.to(self.device), epoch
        start = position * self.batch_size
        return self._perms[:, start : start + self.batch_size]


def gather(data: Tensor, idx: Tensor) -> Tensor:
    """``data[idx]`` for a (K, B) index (index_select: faster than advanced indexing on CPU)."""
    return torch.index_select(data, 0, idx.reshape(-1)).view(*idx.shape, *data.shape[1:])


def total_steps(trainer: TrainerConfig, n_train: int) -> int:
    """``trainer.steps``, or ceil(epochs * n_train / batch_size) when ``trainer.epochs`` is set."""
    if trainer.epochs:
        return math.ceil(trainer.epochs * n_train / trainer.batch_size)
    return trainer.steps
