"""A normalization as the models place it: the registry's layer (:mod:`bnlab.layers.norms`),
over ghost batches where ``norm.ghost_batch`` is set, followed by noisy BN's noise where
``norm.noise`` > 0."""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor, nn

from bnlab.config.schema import NormConfig
from bnlab.layers.batchnorm import BatchNorm, one_update
from bnlab.layers.norms import KNC, get_norm
from bnlab.layers.sync_batchnorm import SyncBatchNorm


class BatchNoise(nn.Module):
    """Santurkar et al.'s "noisy BN": after BN, in training mode, a <- s * a + m, with a mean
    m ~ U(-noise, noise) and a scale s ~ U(1, 1 + noise) drawn anew for every unit (channel)
    of every replica at every step: the layer's input distribution keeps shifting (internal
    covariate shift put back on purpose). Identity in eval mode. Draws from torch's global
    generator, so a run stays reproducible and resumable.
    """

    def __init__(self, noise: float, shape: tuple[int, ...]):
        super().__init__()
        self.noise, self.shape = float(noise), shape

    def extra_repr(self) -> str:
        return f"noise={self.noise}"

    def forward(self, a: Tensor) -> Tensor:
        if not self.training:
            return a
        # drawn in float32 whatever a's type, so a float64 copy of the model draws the same
        u = torch.rand((2, *self.shape), device=a.device).to(a.dtype)
        mean = (2 * u[0] - 1) * self.noise
        scale = 1 + u[1] * self.noise
        return torch.addcmul(mean, a, scale)


class GhostBatch(nn.Module):
    """Ghost batch normalization (Hoffer et al. 2017): where ``layer`` computes batch
    statistics (training mode), it normalizes each run of ``size`` consecutive examples of the
    batch on its own (the normalization batch smaller than the SGD batch). The running
    statistics move once per SGD step, towards the mean of the ghost batches' means and
    unbiased variances (:func:`~bnlab.layers.batchnorm.one_update`; Batch Renorm's warmup
    counts steps, not ghost batches), and Algorithm 2's population statistics are collected
    over ghost batches, the batches the network was normalized with. torch's own layer
    (``norm=torch``, the reference) updates per ghost batch in turn, as applying it to each
    would. In eval mode the layer is applied as it is."""

    def __init__(self, layer: nn.Module, size: int, layout: str):
        super().__init__()
        self.layer, self.size = layer, size
        self.batch_dim = 1 if layout == KNC else 0  # (K, N, C) or (N, K*C, H, W)

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def forward(self, x: Tensor) -> Tensor:
        if not self.layer.training:
            return self.layer(x)
        chunks = x.split(self.size, dim=self.batch_dim)
        updates = one_update(self.layer) if isinstance(self.layer, BatchNorm) else nullcontext()
        with updates:
            return torch.cat([self.layer(c) for c in chunks], dim=self.batch_dim)


def norm_layers(norm: NormConfig, replicas: int, features: int, layout: str) -> list[nn.Module]:
    """The registered normalization layer (none for ``norm.kind=none``; synchronized over
    data-parallel workers with ``norm.sync``; over ghost batches with ``norm.ghost_batch``),
    followed by :class:`BatchNoise` when ``norm.noise`` > 0. ``layout``:
    see :mod:`bnlab.layers.norms`."""
    kind = SyncBatchNorm if norm.sync else get_norm(norm.kind)  # sync: norm=bn only
    layer = kind.from_config(norm, replicas, features, layout)
    if layer is None:
        return []
    layers = [layer if norm.ghost_batch is None else GhostBatch(layer, norm.ghost_batch, layout)]
    if norm.noise > 0:
        shape = (replicas, 1, features) if layout == KNC else (1, replicas * features, 1, 1)
        layers.append(BatchNoise(norm.noise, shape))
    return layers
